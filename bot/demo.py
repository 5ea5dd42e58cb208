"""`python -m bot demo`: chantbot's whole flow offline, against the built-in GitHub simulator.

It starts the simulator (whose CI really runs the demo repository's tests) and chantbot on this
machine, with its sandbox where one works, opens realistic issues, lets maintainers and an outsider
comment commands, takes one real bug of an outsider's through the CI gate from report to an approved
fix with release notes, and prints what each person would see.
Without ANTHROPIC_API_KEY the stage agents follow a script played by chantbot's fake Messages API,
and the demo says so.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from aiohttp import web

from bot import example, specs, workflow
from bot.example import Section
from bot.offline import collapsed, idle as _idle, rule as _rule, unmarked
from bot.runtime import Runtime
from bot.settings import Settings
from bot.stages.state import ACTIVE, Phase, RunState
from bot.store import Run
from chantbot_sim.github import GitHubSimulator, app_key_pair
from bot.writelimit import parse_write_limits

REPO = "acme/widgets"
INSTALLATION = 1
APP_ID = 1
SECRET = "demo-secret"
PEOPLE = {"maria": "maintain", "tom": "triage", "outsider": "none"}
CONFIG = ("# chantbot: a bug waits for a maintainer's /reproduce here, and a documentation report for /document;\n"
          "# research follows a reproduction on its own, and review an implementation.\n"
          "stages:\n  reproduce: {auto: false}\n  document: {auto: false}\n"
          "# Code an agent wrote for an issue that someone without write access shaped waits for a maintainer's\n"
          "# /ok-to-test before it reaches a branch and CI (the default, said here to be seen).\n"
          "gate: outsiders\n"
          "# The tests chantbot runs itself, in its sandbox: at most a minute a run.\n"
          "sandbox: {timeout: 60}\n")
LAYOUT = ('"""Layout helpers."""\n\n\ndef columns(width: int, column: int, gap: int) -> int:\n'
          '    """How many columns of `column` pixels fit in `width`, with `gap` pixels between two columns."""\n'
          '    if column <= 0:\n        raise ValueError("column must be positive")\n'
          '    return width // (column + gap)\n')
FIXED_LAYOUT = LAYOUT.replace("return width // (column + gap)", "return (width + gap) // (column + gap)")
FILES = {
    "README.md": "# widgets\n\nSmall widgets for acme.\n",
    "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["src"]\n',
    "src/widgets/__init__.py": "from widgets.core import Widget\nfrom widgets.layout import columns\n",
    "src/widgets/core.py": "class Widget:\n    def __init__(self, size: int) -> None:\n        self.size = size\n",
    "src/widgets/layout.py": LAYOUT,
    "tests/test_layout.py": "from widgets import columns\n\n\ndef test_one_column_fits_its_own_width():\n"
                            "    assert columns(30, 30, 5) == 1\n",
    "docs/usage.md": "# Usage\n\n`columns(width, column, gap)` says how many columns fit in a width.\n",
}

HISTORY = [  # closed, labelled issues the local triager learns from
    ("Crash when resizing a widget to zero", "Traceback (most recent call last): ZeroDivisionError", "bug"),
    ("Widget.grow raises TypeError with floats", "Calling grow(1.5) raises TypeError: expected int", "bug"),
    ("Export fails with UnicodeEncodeError", "Exporting a widget named 'café' fails with an exception", "bug"),
    ("Add support for widget themes", "It would be nice to support themes for widgets.", "enhancement"),
    ("Feature request: async widget loading", "Please add an async API to load widgets.", "enhancement"),
    ("Allow custom widget colours", "Would be great to allow custom colours in the config.", "enhancement"),
    ("How do I set a default size?", "How can I configure the default widget size?", "question"),
    ("Is there a way to clone a widget?", "How do I copy a widget with all its settings?", "question"),
    ("What does grow() return?", "Does grow return the new size or None?", "question"),
]

CASES = [
    ("a bug with a stack trace", "Saving a widget crashes with KeyError 'size'",
     "Steps to reproduce:\n1. `w = Widget(3)`\n2. `w.save('/tmp/w.json')`\n\nExpected: the file is written.\n"
     "Actual: it crashes:\n\n```\nTraceback (most recent call last):\n  File \"app.py\", line 4, in <module>\n"
     "    w.save('/tmp/w.json')\n  File \"widgets/core.py\", line 88, in save\n    data['size']\nKeyError: 'size'\n```\n\n"
     "widgets 2.3.1, Python 3.11 on Ubuntu 22.04.", "alice"),
    ("a vague bug", "widgets broken", "It doesn't work anymore after the update. Please fix.", "bob"),
    ("a feature request", "Support exporting widgets to YAML",
     "It would be nice to add support for exporting a Widget to YAML, next to the JSON export.\n\n"
     "Use case: our deployment tooling reads YAML only.", "carol"),
    ("a question", "How do I change the colour of a widget?",
     "I read docs/usage.md but could not find how to set a widget's colour. Is there an option?", "dave"),
    ("a duplicate", "Saving a widget crashes with KeyError 'size'",
     "Same here: saving a widget crashes with KeyError 'size' after upgrading to 2.3.1.", "erin"),
    ("a documentation report", "The docs don't say what columns() does with a zero gap",
     "docs/usage.md explains `columns(width, column, gap)` but not what happens when the gap is 0. The "
     "documentation should say whether a zero gap is allowed.", "gina"),
    ("a security report", "Path traversal in widget export overwrites any file",
     "Exporting a widget named `../../etc/cron.d/x` writes outside the export folder. This path traversal is a "
     "vulnerability an attacker can exploit to overwrite files.", "hank"),
]


async def _settle(sim: GitHubSimulator, runtime: Runtime, number: int, timeout: float) -> None:
    """Until the issue's stage runs have ended: CI done, webhooks delivered, chantbot idle."""
    deadline = time.monotonic() + timeout
    while True:
        for _ in range(2):  # chantbot's jobs may push (a released batch) and CI's verdict may queue jobs
            await sim.ci_idle(timeout)
            await _idle(runtime, timeout)
        runs = await runtime.store.runs_for_issue(REPO, number)
        if not any(_moving(run) for run in runs):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the stages did not end within the demo's time")
        await asyncio.sleep(0.2)


def _moving(run: Run) -> bool:
    """Whether a stage run will go on by itself: not ended, and not held for a maintainer's `/ok-to-test`."""
    if run.status not in ACTIVE:
        return False
    return RunState.of(run).phase is not Phase.HELD


_LINK = re.compile(r"\[([^\]\n]{1,300})\]\((https?://[^)\s]{1,600})\)")
_REPO_FILE = re.compile(r"https://github\.com/" + re.escape(REPO) + r"/(?:blob|tree)/[^/]{1,200}/(.{1,400})")


def _link_text(match: re.Match[str]) -> str:
    """A link as the demo can show it offline: its text, and the file it leads to in the simulated repository."""
    text, url = match.group(1), match.group(2)
    path = _REPO_FILE.fullmatch(url)
    if path is None or path.group(1).strip("/") in text:
        return text
    return f"{text} ({path.group(1)})"


def _seen(body: str) -> str:
    """What a reader sees of chantbot's Markdown, offline: no hidden markers, links as their text (and file)."""
    return _LINK.sub(_link_text, unmarked(body))


def _folded(body: str) -> str:
    """Markdown as GitHub first shows it: a collapsed section shows only its summary; no hidden markers."""
    return collapsed(unmarked(body))


def _collapsed(body: str) -> str:
    """A comment as GitHub first shows it, offline: collapsed sections, links as their text."""
    return collapsed(_seen(body))


def _expanded(body: str) -> str:
    """A comment with its collapsed sections opened, as a reader who clicks them sees it."""
    opened = re.sub(r"<details><summary>(.*?)</summary>", r"▾ \1 (opened)", _seen(body))
    return opened.replace("</details>", "").strip()


def _shown(body: str, *, opened: bool = False) -> str:
    """A comment as GitHub shows it, set off from the demo's own lines."""
    return textwrap.indent(_expanded(body) if opened else _collapsed(body), "    │ ", lambda line: True)


def _show(body: str) -> None:
    print(_shown(body))


class _Printer:
    """Prints the demo's lines and keeps them whole (the guide's walk-through is the workflow case as printed)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.lines: list[str] = []

    def __call__(self, text: str = "", *, brief: str | None = None) -> None:
        print(brief if self.quiet and brief is not None else text)
        self.lines.append(text)


def _spec_line(path: str, text: str) -> str:
    """A spec file in one line: its path, chant's status and its title."""
    try:
        meta, body = specs.parse_front_matter(text)
    except ValueError:
        meta, body = {}, text
    title = next((line[2:] for line in body.splitlines() if line.startswith("# ")), "")
    return f"  {path}  {str(meta.get('status', '')):<9}  {title}"


async def _show_issue(sim: GitHubSimulator, runtime: Runtime, number: int, *, quiet: bool, whole_spec: bool) -> None:
    comments = sim.comments(REPO, number, bot_only=True)
    print(f"labels: {', '.join(sorted(sim.labels_on(REPO, number))) or '(none)'}")
    if comments and not quiet:
        print("chantbot's comment, as the reporter sees it:\n")
        _show(comments[-1]["body"])
    record = await runtime.store.spec_for(REPO, number, "triage")
    text = sim.files(REPO, branch="chant-specs").get(record.path, "") if record is not None else ""
    if not text:
        return
    if whole_spec and not quiet:
        print(f"\nits triage record, the chant spec {record.path} on the chant-specs branch:\n")
        print(textwrap.indent(text.strip(), "    "))
    else:
        print(f"its triage record:\n{_spec_line(record.path, text)}")


BUG = ("columns() drops a column that fits exactly",
       "`columns(100, 30, 5)` returns 2, but three 30px columns with two 5px gaps fit exactly in 100px:\n\n"
       "```python\n>>> from widgets import columns\n>>> columns(100, 30, 5)\n2\n```\n\n"
       "Expected 3. widgets 1.4.0, Python 3.11 on Debian.", "frank")
REPRO = ("from widgets import columns\n\n\ndef test_columns_that_fit_exactly_are_counted():\n"
         "    \"\"\"Issue: three 30px columns and two 5px gaps fill 100px exactly.\"\"\"\n"
         "    assert columns(100, 30, 5) == 3\n")
ROOT_CAUSE = ("columns() divides the width by column + gap, which counts a gap after the last column too; "
              "a row of n columns needs n * column + (n - 1) * gap pixels.")
RELEASE_NOTE = "columns() now counts a column that fits exactly (it used to drop the last one)."


def _step(name: str, **inputs: object) -> dict:
    return {"name": name, "input": inputs}


AGENT_SCRIPTS = {  # what the scripted agents do when no ANTHROPIC_API_KEY is set
    "reproduce": [_step("read_file", path="src/widgets/layout.py"),
                  _step("write_file", path="tests/test_columns_exact_fit.py", content=REPRO),
                  _step("run_tests", paths=["tests/test_columns_exact_fit.py"]),
                  {"name": "submit", "fill_text": "columns(100, 30, 5) returns 2; the new test expects 3.",
                   "input": {"command": "python -m pytest tests/test_columns_exact_fit.py"}}],
    "research": [_step("search_code", query="def columns"), _step("read_file", path="src/widgets/layout.py"),
                 {"name": "submit", "fill_text": "See the root cause.", "input": {
                     "summary": "The division counts one gap too many.", "root_cause": ROOT_CAUSE,
                     "evidence": [{"location": "src/widgets/layout.py:8", "note": "width // (column + gap)"}],
                     "affected_components": [
                         "src/widgets/layout.py: columns(), the one place that counts columns",
                         "tests/test_columns_exact_fit.py: the reproduction, which passes once columns() is fixed"],
                     "approaches": [
                         {"name": "Add one gap to the width", "description": "(width + gap) // (column + gap)",
                          "trade_offs": "One line; exact for every positive input."},
                         {"name": "Loop and count", "description": "Add columns while they fit.",
                          "trade_offs": "Obvious, but slower for wide layouts and more code to test."}],
                     "recommendation": "Add one gap to the width: the smallest change, and exact.",
                     "edge_cases": ["a width smaller than one column", "a zero gap"],
                     "files_to_modify": ["src/widgets/layout.py"]}}],
    "implement": [_step("read_file", path="src/widgets/layout.py"),
                  _step("write_file", path="src/widgets/layout.py", content=FIXED_LAYOUT),
                  _step("run_tests"),
                  {"name": "submit", "fill_text": "Counted the gaps between columns only.",
                   "input": {"release_notes": RELEASE_NOTE, "change_type": "fix"}}],
    "review": [_step("read_file", path="src/widgets/layout.py"),
               {"name": "submit", "fill_text": "The fix matches the research; the reproduction covers it.", "input": {
                   "findings": [{"path": "src/widgets/layout.py", "line": 8,
                                 "body": "Correct: n columns need n - 1 gaps, so adding one gap to the width "
                                         "before dividing counts exactly."}],
                   "reproduction_passes": True, "edge_cases_covered": True, "docs_needed": False}}],
}


async def _comment(sim: GitHubSimulator, url: str, number: int, user: str, body: str) -> int:
    comment = sim.add_comment(REPO, number, body=body, user=user)
    return await sim.deliver(url, SECRET, "issue_comment", sim.comment_payload("created", REPO, number, comment["id"]))


def _workflow_comment(sim: GitHubSimulator, number: int) -> str:
    found = [c["body"] for c in sim.comments(REPO, number, bot_only=True) if "chantbot:workflow" in c["body"]]
    return found[-1] if found else ""


def _replies(sim: GitHubSimulator, number: int) -> list[str]:
    return [c["body"] for c in sim.comments(REPO, number, bot_only=True) if "chantbot:reply" in c["body"]]


def _last_reply(sim: GitHubSimulator, number: int) -> str:
    found = _replies(sim, number)
    return found[-1] if found else ""


def _role(who: str) -> str:
    return PEOPLE.get(who, "read")


async def _triage_cases(sim: GitHubSimulator, runtime: Runtime, url: str, *, quiet: bool) -> list[int]:
    numbers = []
    for what, title, body, user in CASES:
        issue = sim.add_issue(REPO, title=title, body=body, user=user)
        numbers.append(issue["number"])
        status = await sim.deliver(url, SECRET, "issues", sim.issue_payload("opened", REPO, issue["number"]))
        print(_rule(f"#{issue['number']} {what}: {title!r} by {user} -> HTTP {status}"))
        await _idle(runtime)
        await _show_issue(sim, runtime, issue["number"], quiet=quiet, whole_spec=len(numbers) == 1)
    await _idle(runtime)
    files = sim.files(REPO, branch="chant-specs")
    found = sorted(p for p in files if p.startswith(".chant/specs/"))
    print(_rule(f"the chant-specs branch: {len(found)} specs, each issue's triage document, chant's config and the "
                f"prompts its specs name"))
    print("\n".join(_spec_line(p, files[p]) for p in found) or "  (none)")
    print("(`python -m bot demo --specs-out DIR` copies the branch's files into DIR at the end, for chant.)")

    feature = numbers[2]
    for user, body in (("maria", "/priority high"), ("outsider", "/approve")):
        status = await _comment(sim, url, feature, user, body)
        await _idle(runtime)
        print(_rule(f"#{feature}: {user} ({_role(user)}) comments {body!r} -> HTTP {status}"))
        print(f"labels: {', '.join(sorted(sim.labels_on(REPO, feature)))}")
        if body != "/priority high":
            print("chantbot's reply:\n")
            _show(_last_reply(sim, feature))
    return numbers


async def _workflow_case(sim: GitHubSimulator, runtime: Runtime, url: str, say: _Printer) -> tuple[int, dict[str, str]]:
    """One real bug from report to an approved fix and a draft release, every step a chant spec. Its reporter has
    no write access, so chantbot holds the code its agents write until a maintainer's `/ok-to-test`. Returns the
    issue's number and what the guide shows of the held stages (the workflow comment as each was held)."""
    title, body, user = BUG
    issue = sim.add_issue(REPO, title=title, body=body, user=user)
    n = issue["number"]
    branch = f"chant/issue-{n}"
    held: dict[str, str] = {}
    await sim.deliver(url, SECRET, "issues", sim.issue_payload("opened", REPO, n))
    say(_rule(f"the workflow on a real bug: #{n} {title!r} by {user} ({_role(user)}: no write access)"))
    await _idle(runtime)
    say(f"triaged: labels {', '.join(sorted(sim.labels_on(REPO, n)))}")

    async def command(who: str, text: str, *, wait: float = 120.0) -> None:
        before = len(_replies(sim, n))
        await _comment(sim, url, n, who, text)
        await _settle(sim, runtime, n, wait)
        say(_rule(f"#{n}: {who} ({_role(who)}) comments {text!r}"))
        for reply in _replies(sim, n)[before:]:
            say("chantbot's reply:")
            say(_shown(reply))

    def on_branch() -> None:
        tests = sorted(p for p in sim.files(REPO, branch=branch) if p.startswith("tests/"))
        if not tests:
            say(f"branch {branch}: not made, and no CI ran: {user} shaped the issue and has no write access, so "
                f"the reproduction's commit is held (gate: outsiders)")
            return
        suites = sim.check_suites(REPO, branch)
        say(f"branch {branch}: {', '.join(tests)}")
        say(f"CI on the released reproduction commit: {', '.join(str(s['conclusion']) for s in suites) or 'none'} "
            f"(pytest really ran)")
        pulls = [p for p in sim.pulls(REPO) if p["head"]["ref"] == branch]
        if pulls:
            say(f"draft pull request #{pulls[0]['number']}: {pulls[0]['title']!r}")

    research_shown = False

    def research(after: str) -> None:
        nonlocal research_shown
        doc = sim.files(REPO, branch="chant-specs").get(f".chant/research/issue-{n}-root-cause.md")
        if doc is None or research_shown:
            return
        research_shown = True
        say(f"research started on its own {after} (auto); its write-up:")
        say(_shown(doc), brief=_shown(doc.split("## Evidence")[0]))

    await command("maria", "/reproduce")
    on_branch()
    held["reproduce"] = _workflow_comment(sim, n)
    say("the workflow comment, with the held diff opened (GitHub shows it collapsed):\n")
    say(_shown(held["reproduce"], opened=True))
    research("after the sandbox's verdict, reading the held test as part of the branch")

    await command(user, "/ok-to-test")
    await command("maria", "/ok-to-test")
    on_branch()
    research("once CI had judged the released reproduction")

    await command("maria", "/implement", wait=180.0)
    held["implement"] = _workflow_comment(sim, n)
    say("the workflow comment now reads:\n")
    say(_shown(held["implement"]))
    await command("maria", "/approve")
    await command("maria", "/ok-to-test", wait=180.0)
    suites = sim.check_suites(REPO, branch)
    say(f"CI on the fix: {suites[-1]['conclusion'] if suites else 'none'}")
    pulls = [p for p in sim.pulls(REPO) if p["head"]["ref"] == branch]
    if pulls:
        pull = sim.pull(REPO, pulls[0]["number"])
        say(f"pull request #{pull['number']} says: {pull['body'].splitlines()[0]!r}")
        for review in sim.reviews(REPO, pull["number"]):
            say(f"independent review ({review['state']}):")
            say(_shown(review["body"]))
        for note in sim.review_comments(REPO, pull["number"]):
            say(f"  on {note['path']} line {note['line']}: {note['body']}")
    say(f"commit status chantbot/approval: {_approval(sim, branch)}")
    for who in ("outsider", "maria"):
        await command(who, "/approve")
        say(f"commit status chantbot/approval: {_approval(sim, branch)}")

    sim.label_issue(REPO, n, "v1.5.0", user="maria")
    await command("maria", "/release-notes v1.5.0")
    for release in sim.releases(REPO):
        say(f"draft release {release['tag_name']} (draft: {release['draft']}):")
        say(_shown(release["body"]))
    say("\nthe workflow comment at the end:\n")
    say(_shown(_workflow_comment(sim, n)))
    runs = await runtime.store.runs_for_issue(REPO, n)
    say(_rule("what each stage run cost (tokens as the Messages API reported them)"))
    for run in runs:
        usage = run.data.get("usage") or {}
        say(f"  {run.stage:<10} {run.status:<7} {run.data.get('turns', 0):>2} model calls, "
            f"{usage.get('input_tokens', 0) + usage.get('cache_read_input_tokens', 0) + usage.get('cache_creation_input_tokens', 0):>6} "
            f"input tokens ({usage.get('cache_read_input_tokens', 0)} from the cache), "
            f"{usage.get('output_tokens', 0):>5} output, ${run.data.get('usd', 0.0):.4f}")
    return n, held


def _approval(sim: GitHubSimulator, branch: str) -> str:
    status = next((st for st in sim.statuses(REPO, branch) if st["context"] == "chantbot/approval"), None)
    return status["state"] if status else "none"


def _triage_comment(sim: GitHubSimulator, number: int) -> str:
    found = [c["body"] for c in sim.comments(REPO, number, bot_only=True) if "chantbot:triage" in c["body"]]
    return found[-1] if found else ""


async def _example(sim: GitHubSimulator, runtime: Runtime, cases: list[int], n: int,
                   walkthrough: list[str], held: dict[str, str]) -> dict[str, Section]:
    """The maintainer guide's generated sections: the workflow case as printed, what each person saw, and the
    files each stage wrote, with what changes from run to run replaced (`bot.example.normalise`)."""
    files = sim.files(REPO, branch="chant-specs")
    made = {"config": Section(CONFIG, "yaml", "`.github/chantbot.yml`:"),
            "report": Section(f"# {BUG[0]}\n\n{BUG[1]}", "markdown"),
            "walkthrough": Section("\n".join(walkthrough).strip("\n")),
            "triage-comment": Section(_folded(_triage_comment(sim, n)), "markdown")}
    for stage, comment in held.items():  # the workflow comment while the stage's commits were held, as posted
        made[f"held-{stage}"] = Section(unmarked(comment).strip(), "markdown")
    numbers = dict(zip((what for what, *_ in CASES), cases))
    for what, name, stage in (("a vague bug", "questions", None), ("a question", "question", None),
                              ("a documentation report", "documentation", "document"),
                              ("a security report", "security", "triage")):
        if what not in numbers:
            continue
        made[f"triage-{name}"] = Section(_folded(_triage_comment(sim, numbers[what])), "markdown")
        record = await runtime.store.spec_for(REPO, numbers[what], stage) if stage else None
        if record is not None and record.path in files:
            made[f"spec-{name}-report"] = Section(files[record.path], "markdown", f"`{record.path}`:")
    if ".chant/config.md" in files:
        made["chant-config"] = Section(files[".chant/config.md"], "markdown", "`.chant/config.md`:")
    for stage in workflow.CHAIN:
        record = await runtime.store.spec_for(REPO, n, stage)
        if record is not None and record.path in files:
            made[f"spec-{stage}"] = Section(files[record.path], "markdown", f"`{record.path}`:")
        path = specs.triage_doc_path(n) if stage == "triage" else workflow.stage(stage).output_path(n)
        if path in files:
            made[f"doc-{stage}"] = Section(files[path], "markdown", f"`{path}`:")
    chain = [record.path for record in await runtime.store.specs(REPO, n)] + [specs.triage_doc_path(n)]
    chain += [path for path in files if path.startswith(f".chant/research/issue-{n}-")]
    made["files"] = Section("\n".join(sorted(path for path in chain if path in files)))
    pull = next((p for p in sim.pulls(REPO) if p["head"]["ref"] == f"chant/issue-{n}"), None)
    if pull is not None:
        made["pull-request"] = Section(sim.pull(REPO, pull["number"])["body"], "markdown")
    made["workflow-comment"] = Section(_workflow_comment(sim, n).strip(), "markdown")
    for release in sim.releases(REPO):
        made[f"release-{release['tag_name']}"] = Section(release["body"].strip(), "markdown")
    commits = [sha for entry in sim.ref_log(REPO) for sha in (entry.get("old"), entry.get("new")) if sha]
    return example.normalise(made, list(dict.fromkeys(commits)))


def _example_target_problem(target: Path) -> str | None:
    """Why `--example-out` cannot write to `target` (checked before the demo runs), or None."""
    if not target.exists():
        return None if target.parent.is_dir() else f"the folder {target.parent} does not exist"
    pages = sorted(target.glob("*.md")) if target.is_dir() else [target]
    if not any(example.marked(page.read_text(encoding="utf-8")) for page in pages):
        return f"{target} has no sections marked <!-- demo:NAME --> … <!-- /demo:NAME -->"
    return None


def write_example(target: Path, sections: dict[str, Section]) -> list[Path]:
    """Fill the marked sections of `target`: a Markdown page, or every page of a folder that has some. A path
    that does not exist yet gets every section. Raises ValueError for a page without marked sections, and
    KeyError for a section the run did not make (then no page is written)."""
    if not target.exists():
        target.write_text(example.document(sections), encoding="utf-8")
        return [target]
    pages = sorted(target.glob("*.md")) if target.is_dir() else [target]
    texts = {page: page.read_text(encoding="utf-8") for page in pages}
    texts = {page: text for page, text in texts.items() if example.marked(text)}
    if not texts:
        raise ValueError(f"{target} has no sections marked <!-- demo:NAME --> … <!-- /demo:NAME -->")
    filled = {page: example.fill(text, sections) for page, text in texts.items()}
    for page, text in filled.items():
        if text != texts[page]:
            page.write_text(text, encoding="utf-8")
    return list(filled)


async def run(*, quiet: bool = False, api_key: str | None = None, specs_out: str | None = None,
              example_out: str | None = None, sandbox: str | None = None) -> int:
    """Run the showcase; returns the process exit status. `example_out` also fills the maintainer guide's
    generated sections (a page or a folder of pages; see `bot.example`) from this run. `sandbox` is
    CHANTBOT_SANDBOX: where the agents' tests run (bubblewrap where it works by default)."""
    from chantbot_sim.messages import FakeMessagesAPI
    from bot import sandbox as sandboxes
    from bot.llm import make_client

    try:
        box, why = sandboxes.find(sandbox)
    except sandboxes.SandboxUnavailable as exc:
        print(f"chantbot: {exc}", file=sys.stderr)
        return 2

    if example_out and api_key:
        print("chantbot: --example-out needs the scripted agents, so that the guide's example is the same on every "
              "run: unset ANTHROPIC_API_KEY", file=sys.stderr)
        return 2
    if example_out and (problem := _example_target_problem(Path(example_out))):
        print(f"chantbot: --example-out: {problem}", file=sys.stderr)
        return 2
    private, public = app_key_pair()
    sim = GitHubSimulator(app_id=APP_ID, public_key_pem=public, app_slug="chantbot")
    sim.write_limits = [(1000, 60.0)]  # the demo's GitHub lets it move faster than github.com would
    sim.add_repo(REPO, files={**FILES, ".github/chantbot.yml": CONFIG}, collaborators=dict(PEOPLE))
    sim.add_installation(INSTALLATION, "acme", [REPO])
    for title, body, label in HISTORY:
        sim.add_issue(REPO, title=title, body=body, user="someone", labels=[label], state="closed")
    await sim.start()
    fake = None
    if not api_key:
        fake = FakeMessagesAPI()
        await fake.start()
        for stage, steps in AGENT_SCRIPTS.items():
            fake.agent_script(stage, steps)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chantbot-demo-") as tmp:
        settings = Settings(port=0, host="127.0.0.1", app_id=str(APP_ID), private_key=private,
                            webhook_secrets=(SECRET,), github_api_url=sim.base_url, anthropic_api_key=api_key,
                            database_url=f"sqlite:///{Path(tmp) / 'chantbot.db'}", concurrency=4,
                            write_limits=parse_write_limits("1000/min"))
        agent = None
        if fake is not None:
            agent = make_client(api_key="demo", max_retries=0).with_options(base_url=fake.base_url)
        # The demo waits for every spec commit, so it batches them over a fifth of a second, not two.
        runtime = Runtime(settings, llm=None if fake else "auto", agent_client=agent if fake else "auto",
                          sandbox=box, spec_commit_delay=0.2)
        await runtime.open()
        runner = web.AppRunner(runtime.web_app(with_workers=True), shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        url = f"http://127.0.0.1:{port}/webhook"
        sim.enable_ci(url, SECRET)
        try:
            print(_rule("chantbot demo: the built-in GitHub simulator at " + sim.base_url))
            print(f"triager: {'Claude (' + settings.model + ')' if api_key else 'local (no ANTHROPIC_API_KEY set)'}")
            print("stage agents: " + (f"Claude ({settings.model})" if api_key else
                                      "scripted (no ANTHROPIC_API_KEY set): chantbot's fake Messages API plays "
                                      "each agent's tool calls; CI, commits, reviews and statuses are real "
                                      "against the simulator"))
            print(sandboxes.describe(box, why) + ("; the simulator's CI runs the repository's tests as GitHub's "
                                                  "would, after the gate" if box else ""))
            print(f"people: {', '.join(f'{who} ({role})' for who, role in PEOPLE.items())}; every reporter has "
                  f"read access only, like anyone on a public repository")
            print(f"{REPO}'s .github/chantbot.yml:\n")
            print(textwrap.indent(CONFIG.strip(), "    "))
            status = await sim.deliver(url, SECRET, "installation_repositories", {
                "action": "added", "installation": {"id": INSTALLATION},
                "repositories_added": [{"full_name": REPO}], "sender": {"login": "maria", "type": "User"}})
            print(f"installation event -> HTTP {status}; chantbot indexes {REPO}'s closed issues")
            await _idle(runtime)
            cases = await _triage_cases(sim, runtime, url, quiet=quiet)
            say = _Printer(quiet)
            n, held = await _workflow_case(sim, runtime, url, say)
            spec_files = sorted(p for p in sim.files(REPO, branch="chant-specs") if p.startswith(".chant/specs/"))
            if specs_out:
                for path, text in sim.files(REPO, branch="chant-specs").items():
                    target = Path(specs_out) / path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(text, encoding="utf-8")
            if example_out:
                sections = await _example(sim, runtime, cases, n, say.lines, held)
                try:
                    pages = write_example(Path(example_out), sections)
                except KeyError as exc:
                    print(f"chantbot: --example-out: the demo makes no section {exc}; it makes "
                          f"{', '.join(sections)}", file=sys.stderr)
                    return 2
                print(f"the guide's example: {len(sections)} sections from this run filled into "
                      f"{', '.join(str(page) for page in pages)}")
            print(_rule(f"{len(spec_files)} specs on chant-specs; GitHub requests made: {len(sim.requests)}; "
                        f"wall time {time.monotonic() - started:.1f} s"))
        finally:
            await runner.cleanup()
            await runtime.close()
            if agent is not None:
                await agent.close()
            if fake is not None:
                await fake.stop()
            await sim.stop()
    return 0
