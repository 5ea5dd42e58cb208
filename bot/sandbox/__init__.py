"""Where chantbot runs a repository's tests: the sandbox's interface, its detection, and the default commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from typing import Mapping, Protocol, Sequence

from bot.sandbox.results import Limits, Outcome, Setup, TestRun
from bot.sandbox.tree import DEPENDENCY_FILES, is_dependency

DEFAULT_TEST = 'python3 -m pytest -q -p no:cacheprovider --junitxml="$CHANT_JUNIT" {paths}'
SETTINGS = ("bwrap", "none")
OFF = "sandbox: none — {why}; agents cannot run tests, and CI judges their commits after the gate"
INSTALL = ("install bubblewrap (Debian and Ubuntu: apt-get install bubblewrap) and allow unprivileged user "
           "namespaces (docs/operating.md, \"The sandbox\"), or set CHANTBOT_SANDBOX=none")

__all__ = ["DEFAULT_TEST", "DEPENDENCY_FILES", "Limits", "Outcome", "Sandbox", "SandboxUnavailable", "Setup",
           "TestRun", "default_cache", "default_setup", "describe", "detect", "find", "is_dependency"]


class SandboxUnavailable(Exception):
    """The sandbox asked for cannot run here (the message is one line: why, and what to do)."""


class Sandbox(Protocol):
    """A place where a repository's commands run isolated from chantbot and the network."""

    kind: str

    async def setup(self, archive: bytes, command: str, *, timeout: float) -> Setup: ...

    async def run_tests(self, archive: bytes, overlay: Mapping[str, str], command: str, *,
                        paths: Sequence[str] = (), select: str | None = None, setup: Setup | None = None,
                        limits: Limits = Limits()) -> TestRun: ...

    def describe(self) -> str: ...


def default_cache() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "chantbot", "sandbox")


def find(setting: str | None, *, python: str | None = None, cache: str | None = None) -> tuple[Sandbox | None, str]:
    """The sandbox `setting` asks for, or None and why not (SandboxUnavailable when bwrap was asked for by name)."""
    from bot.sandbox.bwrap import BwrapSandbox, SandboxError, named_interpreter, own_interpreter

    choice = (setting or "").strip().lower()
    if choice and choice not in SETTINGS:
        raise SandboxUnavailable(f"CHANTBOT_SANDBOX must be one of {', '.join(SETTINGS)}, not {setting[:40]!r}")
    if choice == "none":
        return None, "CHANTBOT_SANDBOX=none"
    binary = shutil.which("bwrap")
    why = ""
    if binary is None:
        why = "bubblewrap (bwrap) is not installed"
    else:
        workdir = tempfile.mkdtemp(prefix="chantbot-sandbox-")
        try:
            version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
            own = not python or os.path.realpath(python) == os.path.realpath(sys.executable)
            interpreter = own_interpreter(workdir) if own else named_interpreter(python, workdir)  # type: ignore[arg-type]
            sandbox = BwrapSandbox(binary, version.split()[-1] if version.split() else "?", interpreter,
                                   cache or default_cache(), workdir)
            sandbox.check()
            return sandbox, ""
        except (SandboxError, OSError, subprocess.SubprocessError) as error:
            shutil.rmtree(workdir, True)
            why = f"bubblewrap cannot start a sandbox here ({str(error)[:200]})"
    if choice == "bwrap":
        raise SandboxUnavailable(f"CHANTBOT_SANDBOX=bwrap, but {why}: {INSTALL}")
    return None, why


def detect(setting: str | None, *, python: str | None = None, cache: str | None = None) -> Sandbox | None:
    """CHANTBOT_SANDBOX: None or "" → bwrap where it works, else None; "none" → None; "bwrap" → bwrap, or
    SandboxUnavailable with one line saying why and what to do."""
    return find(setting, python=python, cache=cache)[0]


def describe(sandbox: Sandbox | None, why: str = "") -> str:
    """The one start-up line saying which sandbox is in use."""
    if sandbox is None:
        return OFF.format(why=why or "no sandbox")
    return f"sandbox: {sandbox.describe()}"


def _pyproject(text: str) -> dict:  # type: ignore[type-arg]
    try:
        return tomllib.loads(text[: 1024 * 1024])
    except (tomllib.TOMLDecodeError, ValueError):
        return {}


def default_setup(files: Mapping[str, str]) -> str:
    """The default setup for a repository's files (its root's): for a Python project, a virtual environment in
    $CHANT_ENV with the project (editable, so a run's changes are what is tested), its `test` extra when it has
    one, and pytest; "" for a repository that is not a Python project."""
    pyproject = _pyproject(files["pyproject.toml"]) if "pyproject.toml" in files else {}
    installable = bool(pyproject.get("project") or pyproject.get("build-system")) or any(
        name in files for name in ("setup.py", "setup.cfg"))
    requirements = "requirements.txt" in files
    if not installable and not requirements:
        return ""
    extras = (pyproject.get("project") or {}).get("optional-dependencies") or {}
    target = ".[test]" if isinstance(extras, dict) and "test" in extras else "."
    what = (f"-e '{target}'" if installable else "") + (" -r requirements.txt" if requirements else "")
    return ('python3 -m venv "$CHANT_ENV" && "$CHANT_ENV/bin/python" -m pip install -q '
            f'--disable-pip-version-check {what.strip()} pytest')
