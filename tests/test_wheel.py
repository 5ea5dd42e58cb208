"""The wheel: built from this checkout, installed in a new virtual environment, chantbot runs from there.

Slow (an install and the whole demo), so `make test` leaves it out; `.ci/run` runs it with `-m wheel`.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from bot import prompts
from tests.test_register import ROOT, clean_env

pytestmark = pytest.mark.wheel
ISSUES = [
    {"title": "Crash when saving a widget", "body": "Traceback (most recent call last):\nKeyError: 'size'",
     "label": "bug"},
    {"title": "Support YAML export", "body": "It would be nice to export widgets to YAML.", "label": "enhancement"},
    {"title": "How do I set a colour?", "body": "Is there an option for the colour of a widget?", "label": "question"},
]


def build_wheel(tmp_path: Path) -> Path:
    """The wheel of a copy of this checkout (a build leaves build/ and egg-info behind; not here)."""
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info",
                                                                "__pycache__", ".pytest_cache", "*.db*", ".env"))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                    "--quiet", "--wheel-dir", str(dist)], check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("chantbot-*.whl")
    return wheel


def install(wheel: Path, tmp_path: Path) -> Path:
    """A new virtual environment (no access to this one's packages) with the wheel and its dependencies."""
    home = tmp_path / "venv"
    venv.create(home, with_pip=False, system_site_packages=False)
    python = home / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--disable-pip-version-check", "--find-links", str(wheel.parent), "chantbot"],
                   check=True, capture_output=True, timeout=600)
    return python


async def test_the_wheel_ships_prompts_not_tests_and_runs_the_demo_and_an_llm_triage(tmp_path, fake_llm):
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n]
    shipped = {n.removeprefix("bot/prompt_files/") for n in names if n.startswith("bot/prompt_files/")}
    assert shipped == {p.name for p in (ROOT / "prompts").glob("*.md")} and shipped
    assert {"bot/app.yaml", "bot/templates/register.html", "chantbot_sim/github/server.py", "chantbot_sim/messages.py"} <= names

    python = install(wheel, tmp_path)
    work = tmp_path / "elsewhere"  # not the checkout: `bot` must come from the installed package
    work.mkdir()
    env = clean_env()
    env.pop("PYTHONPATH")
    where = subprocess.run([python, "-c", "import bot.prompts; print(bot.__file__, bot.prompts.prompts_dir())"],
                           cwd=work, env=env, capture_output=True, text=True, check=True)
    module, prompt_dir = where.stdout.split()
    assert module.startswith(str(tmp_path / "venv")) and prompt_dir.endswith("bot/prompt_files")

    demo = await asyncio.create_subprocess_exec(python, "-m", "bot", "demo", "--quiet", cwd=work, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(demo.communicate(), 120)
    assert demo.returncode == 0, err.decode()[-2000:]
    # the bug goes through the whole chain: the simulator's CI really runs the example's tests (with the
    # installed pytest), red on the reproduction, green on the fix
    text = out.decode()
    assert "CI on the fix: success" in text and re.search(r"^ +implement +done ", text, re.M), text[-3000:]

    (work / "issues.jsonl").write_text("".join(json.dumps(issue) + "\n" for issue in ISSUES))
    evaluate = await asyncio.create_subprocess_exec(
        python, "-m", "bot", "eval", "issues.jsonl", "--triager", "llm", cwd=work,
        env={**env, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": fake_llm.base_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(evaluate.communicate(), 120)
    assert evaluate.returncode == 0, err.decode()[-2000:]
    assert "unavailable: 0 of 3 issues" in out.decode()
    triage = prompts.packaged("triage").body
    systems = [r["body"]["system"][0]["text"] for r in fake_llm.requests if r["status"] == 200]
    assert len(systems) == 3 and all(text == triage for text in systems)  # the packaged prompt, not a fallback

