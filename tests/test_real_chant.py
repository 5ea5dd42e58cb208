"""What chantbot writes on the specs branch, checked with the real chant CLI: every spec loads without a silent
misread and lints without a dependency warning, and `chant work <id>` gets as far as starting its agent.

chant is not part of this project: these tests run only where the real CLI sits beside the checkout
(`../shared/tools/chant/`), and are skipped, saying so, everywhere else.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import pytest

from bot import specs
from bot.assessment import Assessment
from bot.issuetext import IssueText
from tests.conftest import REPO

TOOLS = Path(__file__).resolve().parents[2] / "shared" / "tools" / "chant"
CHANT, CHECK = TOOLS / "chant", TOOLS / "check.sh"
pytestmark = pytest.mark.skipif(not (CHANT.is_file() and CHECK.is_file()),
                                reason=f"the real chant CLI is not at {TOOLS} (it is not part of this project)")


def environment(home: Path) -> dict[str, str]:
    """A clean environment: no agent on PATH (chant stops where it would start one), git identity set."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(home), "NO_COLOR": "1",
            "GIT_AUTHOR_NAME": "check", "GIT_AUTHOR_EMAIL": "check@example.com", "GIT_COMMITTER_NAME": "check",
            "GIT_COMMITTER_EMAIL": "check@example.com"}


def checkout(files: dict[str, str], where: Path, env: dict[str, str]) -> Path:
    """A git repository holding `files` on `main`, as a clone of the specs branch would."""
    where.mkdir(parents=True)
    for path, text in files.items():
        target = where / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for command in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "specs"]):
        subprocess.run(command, cwd=where, env=env, check=True, capture_output=True)
    return where


def check(where: Path, env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run([str(CHECK), str(where)], env=env, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


async def test_the_specs_branch_passes_chant_and_chant_work_reaches_its_agent(start_bot, tmp_path):
    bot = await start_bot()
    bot.sim.set_file(REPO, "docs/usage.md", "# Usage\n")
    bug = await bot.open_issue("Saving a widget crashes with KeyError 'size'",
                               "Steps:\n1. `Widget(3).save('w.json')`\n\nExpected: saved. Actual:\n\n```\nTraceback "
                               "(most recent call last):\n  File \"<module>\", line 1\nKeyError: 'size'\n```\n\n"
                               "widgets 2.3.1 on Python 3.11", user="alice")
    docs = await bot.open_issue("The docs don't explain the colour option",
                                "docs/usage.md does not mention colours; the documentation should.", user="gina")
    others = [await bot.open_issue("SQL injection in search", "' OR 1=1 -- dumps the users table.", user="eve"),
              await bot.open_issue("How do I change a widget's colour?", "Is there an option?", user="dave"),
              await bot.open_issue("widgets broken", "It doesn't work.", user="bob")]
    for number in (bug, docs, *others):
        await bot.triaged(number)
    await bot.comment(bug, "/research", user="writer")
    await bot.idle()

    env = environment(tmp_path)
    repo = checkout(bot.sim.files(REPO, branch="chant-specs"), tmp_path / "specs", env)
    status, output = check(repo, env)
    assert status == 0, output
    assert "use depends_on" not in output and "Unknown dependency" not in output  # no dependency warning
    assert "Lint validation" in output and " warned" not in output

    pending = {}
    for path in (repo / ".chant" / "specs").glob("*.md"):
        meta, _ = specs.parse_front_matter(path.read_text(encoding="utf-8"))
        if meta["status"] == "pending":
            pending[meta["prompt"]] = path.stem
    assert {"reproduce", "research", "document"} <= set(pending)
    spec_id = pending["reproduce"]
    worktree = Path(f"/tmp/chant-widgets-{spec_id}")  # chant's own place for it
    try:
        done = subprocess.run([str(CHANT), "work", spec_id, "--no-watch"], cwd=repo, env=env, capture_output=True,
                              text=True, timeout=60)
        output = done.stdout + done.stderr
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=repo, env=env, capture_output=True)
        shutil.rmtree(worktree, ignore_errors=True)
    assert "Prompt not found" not in output and "Failed to read config" not in output, output
    assert f"Working {spec_id} with prompt 'reproduce'" in output, output
    assert "Failed to invoke agent" in output  # as far as chant goes without an agent installed


def test_three_dashes_in_a_value_do_not_cut_chants_front_matter(tmp_path):
    issue = IssueText(number=3, title="A title --- with dashes", body="---\nbody", author="dev",
                      url="https://github.com/acme/a---b/issues/3")
    assessment = Assessment(category="bug", recommendation="defer", summary="x", priority="low")
    text = specs.triage_spec(spec_id="2026-11-24-001-abc", issue=issue, assessment=assessment,
                             completed_at=datetime.datetime(2026, 11, 24, 12), model="llm:claude---x")
    text = specs.set_approval(specs.add_labels(text, ["v1.2.3-rc---1"]), status="approved", by="a---b",
                              at="2026-11-24T12:00:00Z")
    env = environment(tmp_path)
    folder = tmp_path / "one" / ".chant" / "specs"
    folder.mkdir(parents=True)
    (folder / "2026-11-24-001-abc.md").write_text(text, encoding="utf-8")
    status, output = check(tmp_path / "one", env)
    assert status == 0 and "disagree" not in output and "IGNORED" not in output, output
    assert "v1.2.3-rc---1" in output or "listed: 1 of 1" in output
