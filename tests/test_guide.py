"""The maintainer guide (docs/guides/oss-maintainer-workflow/) says only what is true: every slash command in it
parses and is valid, every YAML block is a valid `.github/chantbot.yml`, every spec example is one chant accepts,
every shell command exists, and its worked example is what the demo prints.

The real chant CLI is not part of this project: the checks that need it run only where it sits beside the
checkout (`../shared/tools/chant/`) and are skipped, saying so, everywhere else.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from bot import example, repoconfig, specs
from bot.__main__ import build_parser
from bot.commands import parser, registry
from bot.markdown import CodeSpans

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guides" / "oss-maintainer-workflow"
PAGES = ("index.md", "01-triage.md", "02-reproduction.md", "03-research.md", "04-implementation.md", "05-review.md",
         "06-documentation.md", "07-release.md", "08-advanced.md", "09-example.md", "10-try.md")
REGENERATE = "make guide  (or: .venv/bin/python -m bot demo --quiet --example-out docs/guides/oss-maintainer-workflow)"
TOOLS = ROOT.parent / "shared" / "tools" / "chant"
CHANT, CHECK = TOOLS / "chant", TOOLS / "check.sh"
needs_chant = pytest.mark.skipif(not (CHANT.is_file() and CHECK.is_file()),
                                 reason=f"the real chant CLI is not at {TOOLS} (it is not part of this project)")


# ---------------------------------------------------------------------------------------------- reading the guide
@dataclass(frozen=True)
class Block:
    """A fenced code block of a page."""

    where: str  # page:line
    info: str
    text: str
    before: str  # the last line of text above the block


_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")


def _scan(page: Path) -> tuple[list[Block], list[tuple[str, str]]]:
    """The page's fenced blocks, and its inline code spans outside them as (page:line, code)."""
    blocks, spans = [], []
    fence: tuple[str, int, int, str] | None = None  # char, length, first line, info
    body: list[str] = []
    before = ""
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if fence is not None:
            char, length, start, info = fence
            stripped = line.strip()
            if len(stripped) >= length and stripped == char * len(stripped):
                blocks.append(Block(f"{page.name}:{start}", info, "\n".join(body) + "\n", before))
                fence, body = None, []
            else:
                body.append(line)
            continue
        opener = _FENCE.match(line)
        if opener:
            fence = (opener.group(1)[0], len(opener.group(1)), number, opener.group(2).strip())
            continue
        if line.strip():
            before = line
        for start, end in CodeSpans(line).all():
            ticks = len(line[start:end]) - len(line[start:end].lstrip("`"))
            spans.append((f"{page.name}:{number}", line[start + ticks:end - ticks].strip()))
    assert fence is None, f"{page.name}: a code block opened at line {fence[2]} is never closed"
    return blocks, spans


@functools.lru_cache(maxsize=1)
def guide() -> tuple[tuple[Block, ...], tuple[tuple[str, str], ...]]:
    blocks, spans = [], []
    for name in PAGES:
        found, inline = _scan(GUIDE / name)
        blocks += found
        spans += inline
    return tuple(blocks), tuple(spans)


def test_the_guide_has_its_pages_and_the_readme_links_it():
    assert [p.name for p in sorted(GUIDE.glob("*.md"))] == sorted(PAGES)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/guides/oss-maintainer-workflow/index.md)" in readme


def test_every_relative_link_in_the_guide_leads_to_a_file_and_heading_that_exist():
    broken = []
    for name in PAGES:
        text = (GUIDE / name).read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            page = (GUIDE / path).resolve() if path else GUIDE / name
            if not page.exists():
                broken.append(f"{name}: {target}")
            elif anchor and page.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.M)
                slugs = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
                if anchor not in slugs:
                    broken.append(f"{name}: {target} (no such heading)")
    assert not broken, broken


# ---------------------------------------------------------------------------------------------- slash commands
def _slash_lines() -> list[tuple[str, str]]:
    blocks, spans = guide()
    found = [(where, code) for where, code in spans if code.startswith("/")]
    for block in blocks:
        found += [(block.where, line.strip()) for line in block.text.splitlines() if line.strip().startswith("/")]
    return found


def test_every_slash_command_in_the_guide_parses_and_is_valid():
    found = _slash_lines()
    assert len(found) >= 40
    wrong = []
    for where, line in found:
        commands = parser.parse(line)
        if len(commands) != 1:
            wrong.append(f"{where}: {line!r} is not one command")
            continue
        spec = registry.spec_for(commands[0].name)
        if spec is None:
            wrong.append(f"{where}: {line!r}: chantbot has no command /{commands[0].name}")
            continue
        _, error = registry.check_args(spec, commands[0].args)
        if error:
            wrong.append(f"{where}: {line!r}: {error}")
    assert not wrong, "\n".join(wrong)


def test_the_guide_shows_every_command_chantbot_has():
    shown = {parser.parse(line)[0].name for _, line in _slash_lines() if parser.parse(line)}
    missing = sorted(spec.usage for spec in registry.COMMANDS if spec.name not in shown)
    assert not missing, f"the guide never shows {', '.join(missing)}: say what it does on the page of its stage"


# ---------------------------------------------------------------------------------------------- configuration
def test_every_yaml_block_is_a_valid_configuration():
    blocks = [b for b in guide()[0] if b.info in ("yaml", "yml")]
    assert len(blocks) >= 8
    for block in blocks:
        assert isinstance(yaml.safe_load(block.text), dict), f"{block.where}: not a configuration"
        config, problems = repoconfig.parse(block.text)
        assert problems == [], f"{block.where}: {problems}"


# ---------------------------------------------------------------------------------------------- spec examples
# chant's SpecFrontmatter (v0.23.2), by what each field holds; chant ignores any other key.
LIST_FIELDS = {"labels", "target_files", "context", "commits", "tracks", "informed_by", "origin", "members",
               "conflicting_files", "blocked_specs", "verification_failures", "derived_fields"}
TEXT_FIELDS = {"prompt", "branch", "completed_at", "model", "schedule", "source_branch", "target_branch",
               "original_spec", "last_verified", "replayed_at", "original_completed_at", "output_schema"}
OTHER_FIELDS = {"type", "status", "depends_on", "approval", "public", "replay_count", "verification_status",
                "retry_state"}
TYPES = {"code", "task", "driver", "documentation", "research", "group"}
STATUSES = {"pending", "in_progress", "paused", "completed", "failed", "needs_attention", "blocked", "cancelled"}
_ID = re.compile(r"\d{4}-\d{2}-\d{2}-[0-9a-z]{3}-[0-9a-z]{3}")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")


def chant_problems(text: str) -> list[str]:
    """What chant 0.23.2 would reject, ignore or misread in a spec file (its rules: ../shared/notes/chant.md
    §1.2-1.4): the front matter, its values, the title, and a completed spec's acceptance criteria."""
    if not text.startswith("---\n"):
        return ["no front matter"]
    end = text.find("---", 4)  # chant ends the front matter at the first `---`, wherever it is
    if end < 0 or text[end - 1] != "\n" or text[end:end + 4] not in ("---\n", "---"):
        return ["`---` inside the front matter: chant would end it there"]
    try:
        meta, body = specs.parse_front_matter(text)
    except ValueError as exc:
        return [str(exc)]
    problems = [f"chant ignores the key `{key}`" for key in meta
                if key not in LIST_FIELDS | TEXT_FIELDS | OTHER_FIELDS]
    if meta.get("type", "code") not in TYPES:
        problems.append(f"type {meta.get('type')!r} is not one of chant's (the spec would be skipped)")
    status = meta.get("status", "pending")
    if status == "ready":
        problems.append("`ready` is computed by chant, never written: `chant work` cannot start it")
    elif status not in STATUSES:
        problems.append(f"status {status!r} is not one of chant's (the spec would be skipped)")
    for key in LIST_FIELDS & set(meta):
        if not (isinstance(meta[key], list) and all(isinstance(v, str) for v in meta[key])):
            problems.append(f"`{key}` must be a list of strings")
    for key in TEXT_FIELDS & set(meta):
        if not isinstance(meta[key], str):
            problems.append(f"`{key}` must be a string")
    depends = meta.get("depends_on", [])
    for value in [depends] if isinstance(depends, str) else depends if isinstance(depends, list) else [None]:
        if not (isinstance(value, str) and _ID.fullmatch(value)):
            problems.append(f"depends_on {value!r} is no full spec id (chant matches them exactly)")
    if "completed_at" in meta and not _RFC3339.fullmatch(str(meta["completed_at"])):
        problems.append("completed_at is not an RFC 3339 time")
    approval = meta.get("approval")
    if approval is not None:
        if not isinstance(approval, dict) or set(approval) - {"required", "status", "by", "at"}:
            problems.append("approval must be chant's nested {required, status, by, at}")
        elif approval.get("status", "pending") not in ("pending", "approved", "rejected") or \
                not isinstance(approval.get("required", False), bool):
            problems.append("approval's status is pending, approved or rejected, and required a boolean")
    if not any(line.startswith("# ") for line in body.splitlines()):
        problems.append("no `# ` title line")
    if status == "completed" and _criteria(body).count(False):
        problems.append("a completed spec with unticked acceptance criteria (chant refuses to finalize it)")
    return problems


def _criteria(body: str) -> list[bool]:
    """The checkboxes of the last `## Acceptance Criteria` section outside code fences: ticked or not."""
    sections, current, fence = [], None, None
    for line in body.splitlines():
        opener = _FENCE.match(line)
        if fence is None and opener:
            fence = opener.group(1)
            continue
        if fence is not None:
            if line.strip() and line.strip() == fence[0] * len(line.strip()) and len(line.strip()) >= len(fence):
                fence = None
            continue
        if line.startswith("## "):
            current = [] if line.strip() == "## Acceptance Criteria" else None
            if current is not None:
                sections.append(current)
        elif current is not None and re.match(r"\s*- \[[ xX]\] ", line):
            current.append(line.strip()[3] in "xX")
    return sections[-1] if sections else []


def _spec_examples() -> list[Block]:
    found = []
    for block in guide()[0]:
        if not block.text.startswith("---\n"):
            continue
        try:
            meta, _ = specs.parse_front_matter(block.text)
        except ValueError:
            meta = {"unreadable": True}
        if not meta or set(meta) & (LIST_FIELDS | TEXT_FIELDS | {"type", "status", "depends_on"}):
            found.append(block)  # not a prompt's front matter (name, purpose) nor chant's config (project, …)
    return found


def test_every_spec_example_follows_chants_rules():
    examples = _spec_examples()
    assert len(examples) >= 7
    wrong = {b.where: problems for b in examples if (problems := chant_problems(b.text))}
    assert not wrong, wrong
    kinds = {specs.parse_front_matter(b.text)[0]["type"] for b in examples}
    assert kinds >= {"task", "research", "code", "documentation"}


VALID = """---
type: code
status: completed
depends_on:
- 2026-03-02-009-fye
labels:
- implement
commits:
- 5294ecc17ef74b8f13af7622bfa848eec1c6149b
completed_at: '2026-03-02T09:30:00Z'
approval:
  required: true
  status: approved
  by: maria
  at: '2026-03-02T09:30:00Z'
---

# Implement issue #15

## Acceptance Criteria

- [x] Done

## Agent Output

```
- [ ] inside a fence: not a criterion
```
"""


@pytest.mark.parametrize("change, problem", [
    (("status: completed", "status: ready"), "computed"),
    (("status: completed", "status: done"), "not one of chant's"),
    (("type: code", "type: implementation"), "not one of chant's"),
    (("labels:\n- implement", "labels: implement"), "list of strings"),
    (("approval:\n", "approved_by: maria\napproval:\n"), "ignores the key `approved_by`"),
    (("  status: approved", "  status: ok"), "approval's status"),
    (("- 2026-03-02-009-fye", "- 009-fye"), "no full spec id"),
    (("completed_at: '2026-03-02T09:30:00Z'", "completed_at: yesterday"), "RFC 3339"),
    (("# Implement issue #15", "Implement issue #15"), "title"),
    (("- [x] Done", "- [x] Done\n- [ ] Tested"), "unticked"),
    (("  by: maria", "  by: maria---x"), "`---` inside"),
])
def test_the_spec_checker_catches_what_chant_rejects_or_misreads(change, problem):
    assert chant_problems(VALID) == []
    broken = VALID.replace(*change, 1)
    assert broken != VALID
    assert any(problem in p for p in chant_problems(broken)), chant_problems(broken)


def _clean_env(home: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(home), "NO_COLOR": "1",
            "GIT_AUTHOR_NAME": "check", "GIT_AUTHOR_EMAIL": "check@example.com", "GIT_COMMITTER_NAME": "check",
            "GIT_COMMITTER_EMAIL": "check@example.com"}


@needs_chant
def test_the_spec_examples_pass_the_real_chant(tmp_path):
    folder = tmp_path / "guide" / ".chant" / "specs"
    folder.mkdir(parents=True)
    written: dict[str, str] = {}
    for number, block in enumerate(_spec_examples(), 1):
        named = re.search(r"\.chant/specs/(" + _ID.pattern + r")\.md", block.before) or \
            re.search(r"tick the boxes below in `\.chant/specs/(" + _ID.pattern + r")\.md`", block.text)
        name = named.group(1) if named else f"2026-03-02-z{number:02d}-gde"
        if written.get(name) == block.text:
            continue  # the same spec shown on two pages
        written[name if name not in written else f"2026-03-02-z{number:02d}-gde"] = block.text
    # A page shows one spec of a chain: the specs it depends on and does not show stand in as completed stubs.
    shown = dict(written)
    for text in shown.values():
        for needed in specs.parse_front_matter(text)[0].get("depends_on") or []:
            written.setdefault(needed, "---\ntype: task\nstatus: completed\n---\n\n# (a spec the guide does not "
                                       "show)\n")
    for name, text in written.items():
        (folder / f"{name}.md").write_text(text, encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run([str(CHECK), str(tmp_path / "guide")], env=_clean_env(home), capture_output=True,
                          text=True, timeout=180)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"listed: {len(written)} of {len(written)}" in output, output


# ---------------------------------------------------------------------------------------------- shell commands
def _shell_commands() -> list[tuple[str, list[str]]]:
    """Every command line the guide shows that runs chantbot, make or chant, as (where, words)."""
    blocks, spans = guide()
    lines = list(spans)
    for block in blocks:
        if block.info in ("sh", "bash", "shell", "console"):
            lines += [(block.where, line) for line in block.text.splitlines()]
    found = []
    for where, line in lines:
        for part in re.split(r"\s(?:&&|\|\||;|\||&)(?:\s|$)", line.removeprefix("$ ")):
            try:
                words = shlex.split(part, comments=True)
            except ValueError as exc:
                raise AssertionError(f"{where}: {part!r} is not a shell command: {exc}") from None
            while words and re.match(r"[A-Z_][A-Z0-9_]*=", words[0]):
                words = words[1:]
            if words[:3] in (["python", "-m", "bot"], [".venv/bin/python", "-m", "bot"]):
                found.append((where, ["python", "-m", "bot", *words[3:]]))
            elif words[:1] in (["make"], ["chant"]):
                found.append((where, words))
    return found


def _flags(words: list[str]) -> list[str]:
    return [w.split("=", 1)[0] for w in words if w.startswith("-")]


def _has(help_text: str, flag: str) -> bool:
    return re.search(r"(?<![\w-])" + re.escape(flag) + r"(?![\w-])", help_text) is not None


def test_every_chantbot_and_make_command_in_the_guide_exists():
    commands = _shell_commands()
    bot = [(w, c) for w, c in commands if c[0] == "python"]
    make = [(w, c) for w, c in commands if c[0] == "make"]
    assert len(bot) >= 6 and len(make) >= 2
    top = build_parser()
    subparsers = next(a for a in top._actions if a.choices and "serve" in a.choices).choices  # noqa: SLF001
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M))
    wrong = []
    for where, words in bot:
        args = words[3:]
        name = next((a for a in args if not a.startswith("-")), None)
        if name is None:
            help_text = top.format_help()
        elif name not in subparsers:
            wrong.append(f"{where}: `python -m bot {name}` is no subcommand")
            continue
        else:
            help_text = subparsers[name].format_help()
        wrong += [f"{where}: `python -m bot {name}` has no {flag}" for flag in _flags(args)
                  if not _has(help_text, flag)]
    for where, words in make:
        wrong += [f"{where}: the Makefile has no target {t!r}" for t in words[1:] if not t.startswith("-")
                  and t not in targets]
    assert not wrong, "\n".join(wrong)


@functools.lru_cache(maxsize=None)
def _chant_help(sub: str) -> str | None:
    done = subprocess.run([str(CHANT), sub, "--help"], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "HOME": "/nonexistent"})
    return done.stdout if done.returncode == 0 else None


@needs_chant
def test_every_chant_command_in_the_guide_exists_with_its_flags():
    commands = [(w, c) for w, c in _shell_commands() if c[0] == "chant"]
    assert len(commands) >= 10
    wrong = []
    for where, words in commands:
        sub = words[1]
        help_text = _chant_help(sub)
        if help_text is None:
            wrong.append(f"{where}: chant 0.23.2 has no `chant {sub}`")
            continue
        wrong += [f"{where}: `chant {sub}` has no {flag}" for flag in _flags(words[2:]) if not _has(help_text, flag)]
    assert not wrong, "\n".join(wrong)


# ---------------------------------------------------------------------------------------------- the worked example
@functools.lru_cache(maxsize=1)
def _no_sandbox() -> str:
    """Why bubblewrap cannot run here ("" when it can): the guide's example shows the sandbox's verdicts."""
    from bot import sandbox

    box, why = sandbox.find(None)
    return "" if box is not None else why


def test_the_worked_example_is_what_the_demo_prints(tmp_path):
    assert "walkthrough" in example.marked((GUIDE / "09-example.md").read_text(encoding="utf-8"))
    if _no_sandbox():
        pytest.skip(f"the guide's example shows the sandbox's verdicts, and {_no_sandbox()} (make sandbox)")
    copy = tmp_path / "guide"
    shutil.copytree(GUIDE, copy)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANTHROPIC_")}
    env["CHANTBOT_SANDBOX"] = "bwrap"
    done = subprocess.run([sys.executable, "-m", "bot", "demo", "--quiet", "--example-out", str(copy)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    stale = []
    for name in PAGES:
        page, made = (GUIDE / name).read_text(encoding="utf-8"), (copy / name).read_text(encoding="utf-8")
        if page != made:
            stale.append("".join(difflib.unified_diff(page.splitlines(True), made.splitlines(True),
                                                      f"{name} (the page)", f"{name} (the demo now)", n=1)))
    assert not stale, (f"the guide's generated sections differ from what the demo prints now; refresh them with\n"
                       f"    {REGENERATE}\nand read the result before committing it:\n\n"
                       + "\n".join(stale)[:6000])


def _walkthrough() -> str:
    page = (GUIDE / "09-example.md").read_text(encoding="utf-8")
    return page.split("<!-- demo:walkthrough -->", 1)[1].split("<!-- /demo:walkthrough -->", 1)[0]


def test_the_demos_account_shows_what_people_see_offline():
    """The walkthrough is what the demo prints (the test above): no hidden markers, no links that only work on
    GitHub, and no research section left empty by the scripted agent."""
    walk = _walkthrough()
    assert "<!-- chantbot:" not in walk
    assert not re.search(r"\]\(https?://", walk), "a Markdown link the reader cannot follow offline"
    assert "spec (.chant/specs/" in walk  # a link shows its text and the file it leads to
    affected = walk.split("## Affected components", 1)[1].split("##", 1)[0]
    assert "src/widgets/layout.py" in affected and "See the root cause" not in affected


def test_the_demo_takes_an_outsiders_bug_through_the_ci_gate():
    """Held with the sandbox's verdict and the diff, the reporter's /ok-to-test refused, the maintainer's
    releasing it to a red CI run; the fix held, /approve refused until a second /ok-to-test, then green."""
    walk = _walkthrough()
    steps = [
        "comments '/reproduce'",
        "branch chant/issue-17: not made, and no CI ran",
        "the sandbox's verdict: reproduced `tests/test_columns_exact_fit.py::test_columns_that_fit_exactly_are_counted`"
        ": assert 2 == 3",
        "+    assert columns(100, 30, 5) == 3",  # the held diff, opened
        "frank (read) comments '/ok-to-test'",
        "Not run: only people with write access and above may run `/ok-to-test`",
        "maria (maintain) comments '/ok-to-test'",
        "Released to `chant/issue-17`: reproduce",
        "CI on the released reproduction commit: failure",
        "comments '/implement'",
        "| Implement | **held**",
        "the sandbox's verdict: green",
        "maria (maintain) comments '/approve'",
        "The implementation is held",
        "maria (maintain) comments '/ok-to-test'",
        "Released to `chant/issue-17`: implement",
        "CI on the fix: success",
        "commit status chantbot/approval: success",
    ]
    at = 0
    for step in steps:
        found = walk.find(step, at)
        assert found >= 0, f"the demo's account lacks, or has out of order: {step!r}"
        at = found + len(step)
