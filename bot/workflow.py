"""The workflow's vocabulary, each stage defined once: the label and command that start it, who may run it,
its tools and write paths, its caps, its spec's task and criteria, what its agent submits and how its document
reads, how its result is judged, and the stage that follows. Specs, results, documents, the runner, the
configuration, `/help` and `/status` all read it (pure data and lookups)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

READ_TOOLS = ("list_files", "read_file", "search_code")
WRITE_TOOL = "write_file"
TEST_TOOL = "run_tests"
SUBMIT_TOOL = "submit"

# The stage family of labels, in workflow order (keys; a repository may rename each label).
STAGE_LABELS = ("needs-triage", "needs-info", "needs-reproduction", "ready-for-research", "deferred", "researched",
                "ready-for-implementation", "in-review", "approved")
# Stage-family labels (keys) that say a gate was passed: chantbot sets them when the gate is passed (`approved`
# when a maintainer runs `/approve`), never because someone named them. `in-review` is not one: it starts review.
GATE_LABELS = ("approved",)

# Flags: labels beside the stage that change how chantbot handles an issue (keys; each may be renamed).
FLAG_LABELS = ("security",)

# Where a reproduction may put its test (the repository's own test suites, in the usual layouts).
TEST_PATHS = ("tests/**", "test/**", "testing/**", "spec/**", "**/tests/**", "**/test/**", "**/__tests__/**",
              "**/test_*.py", "**/*_test.py", "**/*_test.go", "**/*.test.js", "**/*.test.ts", "**/*.spec.js",
              "**/*.spec.ts", "**/*_spec.rb")
# Documentation files only: prose, never code (a `docs/conf.py` or `docs/conftest.py` runs when docs build or
# tests run).
DOC_SUFFIXES = (".md", ".rst", ".txt", ".adoc")
DOC_PATHS = tuple(f"**/*{suffix}" for suffix in DOC_SUFFIXES)
ANY_PATH = ("**",)


@dataclass(frozen=True)
class Caps:
    """What one run of a stage may spend before it ends `failed`."""

    max_turns: int = 40  # model calls
    max_usd: float = 2.0
    timeout: float = 20 * 60.0  # seconds of wall time, CI waits excluded
    ci_rounds: int = 2  # extra commits after failing checks (implement)
    ci_timeout: float = 30 * 60.0  # seconds to wait for the repository's checks
    grace: float = 10 * 60.0  # seconds before triage's own label starts the stage (a person may change it first)


@dataclass(frozen=True)
class Section:
    """One section of a stage's document, after its summary: a heading and how the submission fills it.

    `kind`: prose (a text field), items (a list field), code (one value as code), command (one line, fenced),
    written (the files the run committed, chantbot's record), or one of the stage's own renderings: evidence,
    approaches, findings, checks.
    """

    heading: str
    field: str = ""
    kind: str = "prose"
    optional: bool = False  # left out when the field is empty


def _text(limit: int = 4000) -> dict[str, Any]:
    return {"type": "string", "maxLength": limit}


def _items(limit: int = 600, most: int = 12) -> dict[str, Any]:
    return {"type": "array", "items": _text(limit), "maxItems": most}


MAX_FINDINGS = 5



@dataclass(frozen=True)
class Stage:
    """One stage of the workflow: everything chantbot knows about it, in one place."""

    name: str
    title: str  # how comments name it
    spec_type: str  # chant's `type`
    command: str | None  # the slash command that starts it
    role: str  # the command's default minimum role
    start_label: str | None  # stage-family key of the label that starts it
    done_label: str | None  # stage-family key chantbot sets when it succeeds
    agent: bool  # an agent runs it (it needs a model)
    writes: tuple[str, ...] = ()  # paths `write_file` may touch (glob); empty: read-only
    only: tuple[str, ...] = ()  # file suffixes it may write, whatever paths a repository configures (empty: any)
    code: bool = False  # its writes are committed to the issue's branch
    auto: bool = False  # a label chantbot set starts it, unless the repository turns `auto` off
    caps: Caps = Caps()
    output: str | None = None  # its document, `.chant/research/<output>`; {n} is the issue number
    help: str = ""
    # How its result is judged: `done` (its submission is the result), `reproduction` (a test the run wrote must
    # fail for the reported reason), `fix` (the reproduction passes and nothing that passed before fails).
    judge: str = "done"
    tests: bool = False  # its agent may run the repository's tests (in the sandbox)
    follows: tuple[tuple[str, str], ...] = ()  # (stage, when) started on success: when is `always` or `behaviour`
    # Its spec: the task, the acceptance criteria an agent ticks, chant's approval block.
    task: str = ""  # {output} is the output path, {n} the issue number
    criteria: tuple[str, ...] = ()
    approval: bool = False
    # What its agent submits, and what chantbot makes of it.
    submit: dict[str, Any] | None = None  # the submit tool's input schema
    submit_help: str = ""
    sections: tuple[Section, ...] = ()  # its document, after the summary
    output_fields: tuple[str, ...] = ()  # submission fields repeated in the spec's `## Agent Output`
    met: tuple[str, ...] = ()  # what a completed run met, as chantbot checked it (see documents.criteria)

    @property
    def tools(self) -> tuple[str, ...]:
        return READ_TOOLS + ((WRITE_TOOL,) if self.writes else ()) + ((TEST_TOOL,) if self.tests else ()) \
            + (SUBMIT_TOOL,)

    def output_path(self, number: int) -> str | None:
        return f".chant/research/{self.output.format(n=number)}" if self.output else None


STAGES: tuple[Stage, ...] = (
    Stage("triage", "Triage", "task", None, "triage", None, None, agent=False,
          help="Assess the report: category, priority, severity, questions"),
    Stage(
        "reproduce", "Reproduce", "task", "reproduce", "write", "needs-reproduction", "ready-for-research",
        agent=True, writes=TEST_PATHS, code=True, auto=True, output="issue-{n}-reproduction.md",
        help="Start reproduction: a minimal failing test for the report", judge="reproduction", tests=True,
        follows=(("research", "always"),),
        task="Write the smallest test that reproduces the reported behaviour and fails because of it. Put the "
             "test in the repository's own test suite (under its tests directory, named after issue #{n}), not "
             "under `.chant/`. Run it and see it fail for the reported reason, not for an import or set-up "
             "error. Then record the reproduction in `{output}`: the test path, the command that runs it, the "
             "observed and expected results and the environment. If the problem cannot be reproduced, record "
             "every attempt and what information is missing instead. Do not fix the bug.",
        criteria=("A minimal, self-contained test reproduces the reported behaviour and fails for the reported reason",
                  "The test fails consistently (not flaky)",
                  "The test lives in the project's test suite and its name or docstring refers to issue #{n}",
                  "Expected and actual behaviour and the environment are documented in the test",
                  "`{output}` names the test, the command that runs it and the observed failure "
                  "(or, if it could not be reproduced, what was tried)"),
        submit={"type": "object", "additionalProperties": False, "required": ["summary", "expected", "observed"],
                "properties": {"summary": _text(), "expected": _text(600), "observed": _text(600),
                               "command": _text(300), "environment": _text(600)}},
        submit_help="Submit the reproduction once your failing test is written with write_file and you have seen it "
                    "fail with run_tests for the reported reason. chantbot runs it again to judge it.",
        sections=(Section("Test", kind="written"), Section("Expected", "expected"), Section("Observed", "observed"),
                  Section("Command", "command", "command", optional=True),
                  Section("Environment", "environment", optional=True)),
        met=("A test was written in the repository's test suite: {written}",
             "?sandbox:{sandbox}",
             "?ci:The repository's CI failed on the reproduction commit: {ci}",
             "The reproduction (expected and observed behaviour) is {doc}")),
    Stage(
        "research", "Research", "research", "research", "write", "ready-for-research", "researched",
        agent=True, auto=True, output="issue-{n}-root-cause.md",
        help="Start research: root cause, 2–3 approaches and their trade-offs",
        task="Find out why the problem happens, starting from the reproduction. Trace the code path, form and "
             "test hypotheses, and write the root-cause analysis to `{output}`: the root cause with evidence, "
             "the affected components, two or three fix approaches with their trade-offs, a recommendation, "
             "edge cases and the files an implementation will touch. Do not implement a fix.",
        criteria=("Root cause identified with evidence (file:line references, test output)",
                  "Affected components and code paths listed",
                  "2-3 fix approaches evaluated with trade-offs (complexity, risk, performance, compatibility)",
                  "One approach recommended, with the reason",
                  "Edge cases and risks documented",
                  "Files to modify listed for the implementation",
                  "Analysis written to `{output}`; no fix implemented"),
        submit={"type": "object", "additionalProperties": False,
                "required": ["summary", "root_cause", "approaches", "recommendation"],
                "properties": {
                    "summary": _text(), "root_cause": _text(),
                    "evidence": {"type": "array", "maxItems": 12, "items": {
                        "type": "object", "additionalProperties": False, "required": ["location"],
                        "properties": {"location": {"type": "string", "maxLength": 320,
                                                    "description": "path:line in the repository"},
                                       "note": _text(600)}}},
                    "affected_components": _items(),
                    "approaches": {"type": "array", "minItems": 2, "maxItems": 3, "items": {
                        "type": "object", "additionalProperties": False,
                        "required": ["name", "description", "trade_offs"],
                        "properties": {"name": _text(200), "description": _text(), "trade_offs": _text()}}},
                    "recommendation": _text(), "edge_cases": _items(), "files_to_modify": _items(320)}},
        submit_help="Submit the root-cause analysis: cause, evidence as path:line, two or three approaches with "
                    "trade-offs, and a recommendation. This ends the run.",
        sections=(Section("Root cause", "root_cause"), Section("Evidence", "evidence", "evidence"),
                  Section("Affected components", "affected_components", "items"),
                  Section("Approaches", "approaches", "approaches"), Section("Recommendation", "recommendation"),
                  Section("Edge cases and risks", "edge_cases", "items"),
                  Section("Files to modify", "files_to_modify", "items")),
        output_fields=("root_cause",),
        met=("Root cause stated with {evidence} code reference(s), {evidence_found} found in the repository",
             "{approaches} approaches compared with their trade-offs",
             "One approach recommended, with the reason", "Analysis {doc}; no code changed")),
    Stage(
        "implement", "Implement", "code", "implement", "write", "ready-for-implementation", "in-review",
        agent=True, writes=ANY_PATH, code=True, caps=Caps(max_usd=5.0), output="issue-{n}-implementation.md",
        help="Start implementation of the recommended approach, with tests", judge="fix", tests=True,
        follows=(("review", "always"),),
        task="Implement the fix recommended by the research, keeping the change minimal. Make the reproduction "
             "test pass, add tests for the edge cases the research names, and run the full test suite. Summarise "
             "the change (files, reasoning, verification) in `{output}` and write user-facing release notes in "
             "this spec's `## Release Notes` section. If the recommended approach turns out not to work, stop "
             "and explain why in `{output}` instead of improvising a different fix.",
        criteria=("The fix follows the research recommendation (or the deviation is explained)",
                  "The reproduction test passes",
                  "Tests cover the edge cases named in the research",
                  "The full test suite passes",
                  "Documentation is updated where behaviour changed",
                  "Release notes are written in this spec's `## Release Notes` section",
                  "`{output}` summarises the change and how it was verified"),
        approval=True,
        submit={"type": "object", "additionalProperties": False,
                "required": ["summary", "release_notes", "change_type"],
                "properties": {"summary": _text(), "release_notes": _text(2000),
                               "change_type": {"type": "string", "enum": ["fix", "feature", "breaking",
                                                                          "deprecation"]},
                               "tests": _items()}},
        submit_help="Submit once the fix and its tests are written with write_file and run_tests shows the "
                    "reproduction and the suite passing: a summary and user-facing release notes. chantbot runs "
                    "the tests again to judge the change.",
        sections=(Section("Files changed", kind="written"), Section("Tests", "tests", "items"),
                  Section("Release notes", "release_notes"), Section("Kind of change", "change_type", "code")),
        output_fields=("release_notes",),
        met=("The change is committed: {commits}",
             "?sandbox:{sandbox}",
             "The repository's CI passed on it: {ci}",
             "?reproduction:The reproduction test now passes in that CI run: {reproduction}",
             "Release notes are written in this spec's `## Release Notes` section", "Summary {doc}")),
    Stage(
        "review", "Review", "task", "review", "write", "in-review", None, agent=True, auto=True,
        output="issue-{n}-review.md", follows=(("document", "behaviour"),),
        help="Start an independent review of the change against the research",
        task="Review the fix independently: do not trust earlier conclusions, verify them. Read the change "
             "against the research recommendation and the reproduction, and check edge cases, documentation and "
             "release notes. Write the review to `{output}` with a verdict of APPROVED or REJECTED, a checklist "
             "of results, and blocking issues kept apart from suggestions. A maintainer approves this spec before "
             "the work moves on.",
        criteria=("The reproduction test passes",
                  "The full test suite passes with no regressions",
                  "The change matches the research recommendation (or the deviation is justified)",
                  "Edge cases are handled and tested",
                  "Documentation and release notes are adequate",
                  "`{output}` states APPROVED or REJECTED with reasons"),
        submit={"type": "object", "additionalProperties": False,
                "required": ["summary", "reproduction_passes", "edge_cases_covered", "docs_needed"],
                "properties": {
                    "summary": _text(),
                    "findings": {"type": "array", "maxItems": MAX_FINDINGS, "items": {
                        "type": "object", "additionalProperties": False, "required": ["path", "line", "body"],
                        "properties": {"path": {"type": "string", "maxLength": 320},
                                       "line": {"type": "integer", "minimum": 1}, "body": _text(1500)}}},
                    "reproduction_passes": {"type": "boolean"}, "edge_cases_covered": {"type": "boolean"},
                    "docs_needed": {"type": "boolean"}}},
        submit_help="Submit the review: at most five findings tied to lines of the diff, most important first.",
        sections=(Section("Findings", "findings", "findings"), Section("Checks", kind="checks")),
        met=("One review with {findings} finding(s) posted on pull request {pull}", "Review {doc}")),
    Stage(
        "document", "Document", "documentation", "document", "write", None, None, agent=True,
        writes=DOC_PATHS, only=DOC_SUFFIXES, code=True, auto=True, output="issue-{n}-documentation.md",
        help="Start documentation: update the docs the change affects",
        task="Update the project's user-facing documentation for the change: what behaves differently and why "
             "it matters to users, with working examples. Call out breaking changes with migration steps. List "
             "the documentation files changed, and anything left undocumented, in `{output}`.",
        criteria=("User documentation describes the new or changed behaviour from the user's point of view",
                  "Examples are included and work",
                  "Breaking changes and migration steps are called out (or stated as none)",
                  "`{output}` lists the documentation files changed"),
        submit={"type": "object", "additionalProperties": False, "required": ["summary"],
                "properties": {"summary": _text(), "tracks": _items(320)}},
        submit_help="Submit once the documentation is updated with write_file (or to say that nothing needs "
                    "changing).",
        sections=(Section("Documentation changed", kind="written"), Section("Tracks", "tracks", "items")),
        met=("?written:Documentation updated: {written}",
             "?!written:No documentation change was needed (recorded with the reason)", "Summary {doc}")),
    Stage("release-notes", "Release notes", "documentation", "release-notes", "maintain", None, None,
          agent=False, help="Gather the release notes of the version into a draft release"),
)
BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}
CHAIN = tuple(stage.name for stage in STAGES if stage.name != "release-notes")  # the spec chain, in order
AGENT_STAGES = tuple(stage.name for stage in STAGES if stage.agent)


def stage(name: str) -> Stage:
    """The stage called `name`. Raises KeyError for an unknown name."""
    return BY_NAME[name]


def by_command(command: str) -> Stage | None:
    return next((s for s in STAGES if s.command == command), None)


def started_by(label_key: str) -> Stage | None:
    """The stage a stage-family label starts (by its key), if any."""
    return next((s for s in STAGES if s.start_label == label_key), None)


def after_triage(category: str, stage_label: str,
                 enabled: Callable[[str], bool] = lambda name: True) -> tuple[str, Stage | None]:
    """The stage label triage sets (by key) for an issue of `category` whose recommendation maps to
    `stage_label`, and the stage that label starts.

    A documentation report goes to the document stage, not to reproduction or research. A stage the repository
    turned off is skipped: its label would promise work that will not happen, so the issue goes to the next
    stage that is on (or is deferred when none is).
    """
    if category == "documentation" and stage_label in ("needs-reproduction", "ready-for-research",
                                                       "ready-for-implementation"):
        return ("ready-for-implementation", stage("document")) if enabled("document") else ("deferred", None)
    starts = started_by(stage_label)
    if starts is None or enabled(starts.name):
        return stage_label, starts
    for name in CHAIN[CHAIN.index(starts.name) + 1:]:
        later = stage(name)
        if later.start_label and enabled(name):
            return later.start_label, later
    return "deferred", None


def follow(name: str, *, behaviour_changed: bool) -> str | None:
    """The stage that starts on its own after `name` succeeds, if any."""
    for after, when in stage(name).follows:
        if when == "always" or (when == "behaviour" and behaviour_changed):
            return after
    return None


def previous(name: str) -> str | None:
    """The stage before `name` in the chain."""
    index = CHAIN.index(name)
    return CHAIN[index - 1] if index > 0 else None


@dataclass(frozen=True)
class StageSettings:
    """A stage as one repository runs it: the defaults with its `.github/chantbot.yml` applied."""

    stage: Stage
    enabled: bool
    auto: bool
    caps: Caps
    writes: tuple[str, ...]

    @property
    def grace(self) -> float:
        return self.caps.grace


# `.github/chantbot.yml` keys of one stage's mapping, and their JSON schema.
SETTING_SCHEMA: dict[str, Any] = {
    "enabled": {"type": "boolean"},
    "auto": {"type": "boolean"},
    "max_turns": {"type": "integer", "minimum": 1, "maximum": 200},
    "max_usd": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
    "timeout": {"type": "integer", "minimum": 1, "maximum": 240, "description": "minutes"},
    "ci_rounds": {"type": "integer", "minimum": 0, "maximum": 5},
    "ci_timeout": {"type": "integer", "minimum": 1, "maximum": 240, "description": "minutes"},
    "grace": {"type": "integer", "minimum": 0, "maximum": 1440, "description": "minutes"},
    "paths": {"type": "array", "maxItems": 50, "items": {"type": "string", "minLength": 1, "maxLength": 200}},
}


def config_schema() -> dict[str, Any]:
    """The schema of `stages:` in `.github/chantbot.yml`: per stage `true`/`false` or a mapping of settings."""
    return {"type": "object", "additionalProperties": False,
            "properties": {s.name: {"oneOf": [{"type": "boolean"},
                                              {"type": "object", "additionalProperties": False,
                                               "properties": SETTING_SCHEMA}]}
                           for s in STAGES}}


def settings(name: str, entry: bool | Mapping[str, Any] | None) -> StageSettings:
    """The stage's settings from its (validated) configuration entry; None means the defaults."""
    base = stage(name)
    if entry is None or isinstance(entry, bool):
        return StageSettings(base, enabled=entry is not False, auto=base.auto, caps=base.caps, writes=base.writes)
    caps = replace(base.caps,
                   max_turns=int(entry.get("max_turns", base.caps.max_turns)),
                   max_usd=float(entry.get("max_usd", base.caps.max_usd)),
                   timeout=float(entry["timeout"]) * 60 if "timeout" in entry else base.caps.timeout,
                   ci_rounds=int(entry.get("ci_rounds", base.caps.ci_rounds)),
                   ci_timeout=float(entry["ci_timeout"]) * 60 if "ci_timeout" in entry else base.caps.ci_timeout,
                   grace=float(entry["grace"]) * 60 if "grace" in entry else base.caps.grace)
    writes = tuple(entry["paths"]) if base.writes and "paths" in entry else base.writes
    return StageSettings(base, enabled=bool(entry.get("enabled", True)), auto=bool(entry.get("auto", base.auto)),
                         caps=caps, writes=writes)


@functools.lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as a regex: `*` and `?` stay within one folder, `**/` is any number of folders, `**` anything."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def path_allowed(path: str, patterns: tuple[str, ...], only: tuple[str, ...] = ()) -> bool:
    """Whether a normalised relative path matches one of the glob patterns (and ends in one of `only`'s
    suffixes, when given)."""
    if only and not path.lower().endswith(only):
        return False
    return any(glob_regex(pattern).fullmatch(path) for pattern in patterns)
