"""Build hook: the installed package carries the top-level `prompts/` (as `bot/prompt_files/`) and `app.yaml`.

`prompts/` and `app.yaml` stay where maintainers edit them; everything else is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithPrompts(build_py):
    def run(self) -> None:
        super().run()
        package = Path(self.build_lib) / "bot"
        self.copy_tree("prompts", str(package / "prompt_files"))
        self.copy_file("app.yaml", str(package / "app.yaml"))


setup(cmdclass={"build_py": BuildWithPrompts})
