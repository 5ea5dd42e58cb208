"""`python -m bot try`: chantbot on a local clone and one issue, end to end against the simulator (whose CI really
runs the repository's pytest), the stage agents scripted on the fake Messages API through the real anthropic SDK."""

from __future__ import annotations

import argparse
import io
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot import demo, offline, tryout
from bot.__main__ import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT.parent / "shared" / "tools" / "chant"
CHANT, CHECK = TOOLS / "chant", TOOLS / "check.sh"
needs_chant = pytest.mark.skipif(not (CHANT.is_file() and CHECK.is_file()),
                                 reason=f"the real chant CLI is not at {TOOLS} (it is not part of this project)")
NO_SANDBOX = {"CHANTBOT_SANDBOX": "none"}  # CI judges here; the sandbox has its own tests

CALC = {
    "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["."]\n',
    "calc.py": "def mean(values):\n    return sum(values) // len(values)\n",
    "tests/test_calc.py": "from calc import mean\n\n\ndef test_mean_of_equal_values():\n    assert mean([2, 2]) == 2\n",
}
CALC_REPRO = "from calc import mean\n\n\ndef test_mean_keeps_the_fraction():\n    assert mean([1, 2]) == 1.5\n"
REPRODUCE_CALC = [{"name": "read_file", "input": {"path": "calc.py"}},
                  {"name": "write_file", "input": {"path": "tests/test_issue_mean.py", "content": CALC_REPRO}},
                  {"name": "submit", "fill_text": "mean([1, 2]) returns 1; the new test expects 1.5."}]


def git_repository(path: Path, files: dict[str, str | bytes], links: dict[str, str] | None = None) -> Path:
    """A new git repository at `path` with `files` (and symbolic links) committed on main."""
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data.encode() if isinstance(data, str) else data)
    for name, to in (links or {}).items():
        (path / name).symlink_to(to)
    for command in (["init", "-q", "-b", "main"], ["add", "-A"],
                    ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "start"]):
        subprocess.run(["git", "-C", str(path), *command], check=True, capture_output=True)
    return path


def arguments(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["try", *argv])


async def run_try(tmp_path: Path, repo: Path, *argv: str, env: dict[str, str], stdin: str = "") -> tuple[str, Path]:
    out, target = io.StringIO(), tmp_path / "out"
    args = arguments(str(repo), "--out", str(target), *argv)
    assert await tryout.run(args, env=env, out=out, stdin=io.StringIO(stdin)) == 0
    return out.getvalue(), target


def body_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "issue.md"
    path.write_text(text, encoding="utf-8")
    return str(path)


async def test_try_takes_the_demo_repository_through_reproduce_research_implement_and_review(
        tmp_path, fake_llm, monkeypatch):
    repo = git_repository(tmp_path / "widgets", {**demo.FILES, ".github/chantbot.yml": demo.CONFIG})
    for stage, steps in demo.AGENT_SCRIPTS.items():
        fake_llm.agent_script(stage, steps)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_llm.base_url)  # read by the anthropic SDK itself
    text, target = await run_try(tmp_path, repo, "--title", demo.BUG[0], "--body-file", body_file(tmp_path, demo.BUG[1]),
                                 "--as", "writer", "--stages", "reproduce,research,implement,review",
                                 env={"ANTHROPIC_API_KEY": "test", **NO_SANDBOX})

    assert "configuration: .github/chantbot.yml" in text
    assert "triager: Claude" in text and "stage agents: Claude" in text
    assert "<!-- chantbot:" not in text  # people never see the hidden markers
    assert "maint (maintain access) comments '/reproduce'" in text
    assert "research: already started on its own" in text  # the reproduction moved it on; not asked twice
    assert "review: already started on its own" in text  # implement's success started it
    branch = "chant/issue-1"
    assert f"branch {branch}: changes src/widgets/layout.py, tests/test_columns_exact_fit.py" in text
    assert "  CI on " in text and ": failure" in text and ": success" in text  # red reproduction, green fix
    assert "draft pull request #2" in text and "review (COMMENTED)" in text
    assert "commit status chantbot/approval: pending" in text
    assert demo.ROOT_CAUSE in text  # the research document's contents, not only its path
    assert "input tokens" in text and "total $" in text

    assert subprocess.run(["git", "-C", str(target), "rev-parse", "--abbrev-ref", "HEAD"], capture_output=True,
                          text=True).stdout.strip() == "main"
    branches = subprocess.run(["git", "-C", str(target), "branch", "--format=%(refname:short)"],
                              capture_output=True, text=True).stdout.split()
    assert sorted(branches) == ["chant-specs", branch, "main"]
    fixed = subprocess.run(["git", "-C", str(target), "show", f"{branch}:src/widgets/layout.py"],
                           capture_output=True, text=True).stdout
    assert fixed == demo.FIXED_LAYOUT
    assert (target / "src/widgets/layout.py").read_text() == demo.LAYOUT  # the default branch is untouched
    specs = sorted(p.name for p in (target / ".chant" / "specs").glob("*.md"))
    assert len(specs) == 5  # triage, reproduce, research, implement, review
    assert (target / ".chant" / "research" / "issue-1-root-cause.md").is_file()


async def test_an_outsiders_issue_is_held_until_a_maintainer_says_ok_to_test(tmp_path, fake_llm, monkeypatch):
    """A repository made from scratch: the reproduction an outsider's issue shaped is shown, not pushed, until
    the maintainer's `/ok-to-test`; the outsider's own is refused."""
    repo = git_repository(tmp_path / "calc", CALC)
    fake_llm.agent_script("reproduce", REPRODUCE_CALC)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_llm.base_url)
    stdin = "as outsider: /ok-to-test\nas maint: /ok-to-test\nnonsense\nquit\n"
    text, target = await run_try(
        tmp_path, repo, "--title", "mean() drops the fraction",
        "--body-file", body_file(tmp_path, "`mean([1, 2])` returns 1, expected 1.5. Python 3.11, calc 0.1."),
        "--stages", "reproduce,implement", "--interactive", env={"ANTHROPIC_API_KEY": "test", **NO_SANDBOX},
        stdin=stdin)

    assert "local/calc" in text and "3 files of main" in text
    assert "opened by outsider (no access)" in text
    held, released = text.split("maint (maintain access) comments '/ok-to-test'")
    assert "assert mean([1, 2]) == 1.5" in held  # the held diff, printed for the maintainer to read
    assert ("reproduce: held for a maintainer's `/ok-to-test`: maint does not start implement meanwhile" in held
            and "comments '/implement'" not in text)  # a command the wait would refuse is not made
    refused = held.split("outsider (no access) comments '/ok-to-test'")[1]
    assert "Not run: only people with write access and above may run `/ok-to-test`" in refused
    assert "not understood: 'nonsense'" in released
    assert "branch chant/issue-1: changes tests/test_issue_mean.py" in released
    assert ": failure" in released  # pushed once released, and CI ran the reproduction red
    assert "<!-- chantbot:" not in text
    shown = subprocess.run(["git", "-C", str(target), "show", "chant/issue-1:tests/test_issue_mean.py"],
                           capture_output=True, text=True).stdout
    assert shown == CALC_REPRO


async def test_no_ci_runs_nothing_of_the_repository_and_the_pushed_reproduction_waits(tmp_path, fake_llm, monkeypatch):
    repo = git_repository(tmp_path / "calc", CALC)
    fake_llm.agent_script("reproduce", REPRODUCE_CALC)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_llm.base_url)
    text, target = await run_try(tmp_path, repo, "--title", "mean() drops the fraction", "--body-file",
                                 body_file(tmp_path, "`mean([1, 2])` returns 1, expected 1.5. Python 3.11."),
                                 "--as", "writer", "--stages", "reproduce", "--no-ci",
                                 env={"ANTHROPIC_API_KEY": "test", **NO_SANDBOX})
    assert "CI: off (--no-ci)" in text
    assert "branch chant/issue-1: changes tests/test_issue_mean.py" in text  # a writer's issue: pushed at once
    assert "  CI on " not in text and "waiting for CI" in text


LOGO = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xff\xfe"


async def test_without_a_key_the_stage_says_it_needs_a_model_and_its_pending_spec_is_in_out(tmp_path):
    repo = git_repository(tmp_path / "calc", {**CALC, "docs/logo.png": LOGO}, links={"docs/calc.py": "../calc.py"})
    history = tmp_path / "history.jsonl"
    history.write_text('{"title": "mean() crashes on an empty list", "body": "ZeroDivisionError", "label": "bug"}\n'
                       '{"title": "Add a median()", "body": "It would be nice to have median.", '
                       '"label": "enhancement"}\n', encoding="utf-8")
    text, target = await run_try(tmp_path, repo, "--title", "mean() drops the fraction", "--body-file",
                                 body_file(tmp_path, "mean([1, 2]) returns 1 instead of 1.5 (error in the result)."),
                                 "--history", str(history), "--stages", "reproduce", env=NO_SANDBOX)

    assert "triager: local (no ANTHROPIC_API_KEY set); it is given 2 labelled past issues from --history" in text
    assert "needs a model (no ANTHROPIC_API_KEY)" in text
    assert "the local triager: no model calls, $0" in text
    assert "<!-- chantbot:" not in text
    pending = [p for p in (target / ".chant" / "specs").glob("*.md") if "status: pending" in p.read_text()]
    assert len(pending) == 1 and "prompt: reproduce" in pending[0].read_text()
    assert offline.framed(pending[0].read_text().rstrip("\n")) in text  # the spec's contents, not only its path
    assert "#3 'mean() drops the fraction'" in text  # the two history issues came first
    assert "4 files of main" in text and "left out: docs/calc.py (a symbolic link)" in text
    assert (target / "docs" / "logo.png").read_bytes() == LOGO  # binary files go through unchanged


@needs_chant
async def test_chant_lists_and_shows_the_specs_try_leaves(tmp_path):
    repo = git_repository(tmp_path / "calc", CALC)
    text, target = await run_try(tmp_path, repo, "--title", "mean() drops the fraction", "--body-file",
                                 body_file(tmp_path, "mean([1, 2]) returns 1, expected 1.5."), "--stages",
                                 "reproduce", env=NO_SANDBOX)
    ids = sorted(p.stem for p in (target / ".chant" / "specs").glob("*.md"))
    listed = subprocess.run([str(CHANT), "list"], cwd=target, capture_output=True, text=True)
    assert listed.returncode == 0 and all(spec in listed.stdout for spec in ids), listed.stdout + listed.stderr
    for spec in ids:
        shown = subprocess.run([str(CHANT), "show", spec], cwd=target, capture_output=True, text=True)
        assert shown.returncode == 0, shown.stderr
    checked = subprocess.run(["bash", str(CHECK), str(target)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout[-3000:]


@pytest.mark.parametrize("argv, message", [
    (["--stages", "reproduce,deploy"], "--stages: no stage 'deploy'; the stages are reproduce, research, implement, "
                                       "review, document"),
    (["--history", "HISTORY"], "--history HISTORY, line 2: not JSON"),
])
def test_a_mistake_is_one_line(tmp_path, capsys, argv, message):
    repo = git_repository(tmp_path / "calc", CALC)
    history = tmp_path / "history.jsonl"
    history.write_text('{"title": "t", "body": "b", "label": "bug"}\ntitle: not json\n', encoding="utf-8")
    argv = [str(history) if a == "HISTORY" else a for a in argv]
    with pytest.raises(SystemExit) as exit_:
        main(["try", str(repo), "--title", "t", "--body-file", body_file(tmp_path, "b"), *argv])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"chantbot: {message.replace('HISTORY', str(history))}\n"


def test_a_folder_that_is_not_a_repository_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["try", str(tmp_path), "--title", "t", "--body-file", body_file(tmp_path, "b")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"chantbot: {tmp_path} is not a git repository (try reads a local clone)\n"


GUIDE_PAGE = ROOT / "docs" / "guides" / "oss-maintainer-workflow" / "10-try.md"
_SPEC_ID = re.compile(r"\b[0-9]{4}-[0-9]{2}-[0-9]{2}-([0-9]{3})-[a-z0-9]{3}\b")


def _normalised(text: str) -> list[str]:
    """Lines with what changes from run to run (spec ids, the commit) made the same."""
    text = _SPEC_ID.sub(r"SPEC-\1", text)
    text = re.sub(r"\bat [0-9a-f]{12}\b", "at COMMIT", text)
    return [line.rstrip() for line in text.splitlines()]


def test_the_guides_example_on_the_demo_repository_prints_what_the_guide_shows(tmp_path, monkeypatch, capsys):
    page = GUIDE_PAGE.read_text(encoding="utf-8")
    section = page.split("## On the demo's repository", 1)[1]
    commands = section.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    shown = section.split("<!-- try:output -->\n```text\n", 1)[1].split("```\n<!-- /try:output -->", 1)[0]
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    ran = 0
    for line in commands:
        words = shlex.split(line.replace("/tmp/", f"{tmp_path}/"))
        while "=" in words[0]:
            monkeypatch.setenv(*words.pop(0).split("=", 1))
        if words[:3] == [".venv/bin/python", "-m", "bot"]:
            assert main(words[3:]) == 0
            ran += 1
    assert ran == 2
    printed = _normalised(capsys.readouterr().out.replace(str(tmp_path), "/tmp"))
    missing, at = [], 0
    for line in _normalised(shown):
        try:
            at = printed.index(line, at) + 1
        except ValueError:
            missing.append(line)
    assert not missing, "the guide shows lines `try` does not print (in this order):\n" + "\n".join(missing)
    assert "<!-- chantbot:" not in "\n".join(printed)


@pytest.mark.parametrize("body, shown", [
    ("<!-- chantbot:triage -->\nThanks!\n", "Thanks!\n"),
    ("a <!-- chantbot:reply-1-ab --> b", "a  b"),
    ("kept <!-- a person's comment --> and <!-- chantbot:unterminated", "kept <!-- a person's comment --> and "
                                                                        "<!-- chantbot:unterminated"),
])
def test_hidden_markers_are_removed_and_nothing_else(body, shown):
    assert offline.unmarked(body) == shown


def test_a_held_diff_is_shown_open():
    body = "<!-- chantbot:workflow -->\nHeld.\n\n<details><summary>The diff: 1 file</summary>\n\n+x\n\n</details>\n"
    assert offline.unfolded(body) == "Held.\n\n▾ The diff: 1 file\n\n\n+x"


def test_ctrl_c_while_waiting_for_a_command_ends_try_with_one_line(tmp_path):
    repo = git_repository(tmp_path / "calc", CALC)
    reading, writing = os.pipe()  # a person who has not typed yet
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")} | NO_SANDBOX
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "try", str(repo), "--title", "t", "--body-file", body_file(tmp_path, "b"),
         "--interactive"], stdin=reading, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        printed = b""
        while b"interactive:" not in printed:
            chunk = process.stdout.read1(65536)
            assert chunk, process.stderr.read().decode()
            printed += chunk
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 130
        assert process.stderr.read().decode().splitlines()[-1] == (
            "chantbot: try interrupted; the simulated repository's final state was not written out")
    finally:
        process.kill()
        os.close(writing)
        os.close(reading)


async def test_a_clone_is_read_from_its_default_branch_under_origins_name(tmp_path):
    upstream = git_repository(tmp_path / "upstream", CALC)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(upstream), str(clone)], check=True, capture_output=True)
    for command in (["remote", "set-url", "origin", "git@github.com:acme/calc.git"], ["checkout", "-q", "-b", "wip"],
                    ["rm", "-q", "calc.py"], ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q",
                                              "-m", "work in progress"]):
        subprocess.run(["git", "-C", str(clone), *command], check=True, capture_output=True)
    text, target = await run_try(tmp_path, clone, "--title", "t", "--body-file", body_file(tmp_path, "b"),
                                 env=NO_SANDBOX)
    assert f"chantbot try: {clone} as acme/calc in the built-in GitHub simulator" in text
    assert "3 files of main" in text and "(refs/heads/main)" in text  # not the branch checked out
    assert (target / "calc.py").read_text() == CALC["calc.py"]
