"""The workflow's vocabulary, each stage once: its spec, the label and command that start it, who may run
it, its tools and write paths, its caps, and the stage that follows (pure data and lookups)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from typing import Any, Mapping

READ_TOOLS = ("list_files", "read_file", "search_code")
WRITE_TOOL = "write_file"
SUBMIT_TOOL = "submit"

# The stage family of labels, in workflow order (keys; a repository may rename each label).
STAGE_LABELS = ("needs-triage", "needs-info", "needs-reproduction", "ready-for-research", "deferred", "researched",
                "ready-for-implementation", "in-review", "approved")

# Flags: labels beside the stage that change how chantbot handles an issue (keys; each may be renamed).
FLAG_LABELS = ("security",)

# Where a reproduction may put its test (the repository's own test suites, in the usual layouts).
TEST_PATHS = ("tests/**", "test/**", "testing/**", "spec/**", "**/tests/**", "**/test/**", "**/__tests__/**",
              "**/test_*.py", "**/*_test.py", "**/*_test.go", "**/*.test.js", "**/*.test.ts", "**/*.spec.js",
              "**/*.spec.ts", "**/*_spec.rb")
DOC_PATHS = ("docs/**", "doc/**", "**/*.md", "**/*.rst")
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
class Stage:
    """One stage of the workflow."""

    name: str
    title: str  # how comments name it
    spec_type: str  # chant's `type`
    command: str | None  # the slash command that starts it
    role: str  # the command's default minimum role
    start_label: str | None  # stage-family key of the label that starts it
    done_label: str | None  # stage-family key chantbot sets when it succeeds
    agent: bool  # an agent runs it (it needs a model)
    writes: tuple[str, ...] = ()  # paths `write_file` may touch (glob); empty: read-only
    code: bool = False  # its writes are committed to the issue's branch and judged by CI
    auto: bool = False  # a label chantbot set starts it, unless the repository turns `auto` off
    caps: Caps = Caps()
    next: str | None = None  # the stage that usually follows
    output: str | None = None  # its document, `.chant/research/<output>`; {n} is the issue number
    help: str = ""

    @property
    def tools(self) -> tuple[str, ...]:
        return READ_TOOLS + ((WRITE_TOOL,) if self.writes else ()) + (SUBMIT_TOOL,)

    def output_path(self, number: int) -> str | None:
        return f".chant/research/{self.output.format(n=number)}" if self.output else None


STAGES: tuple[Stage, ...] = (
    Stage("triage", "Triage", "task", None, "triage", None, None, agent=False, next="reproduce",
          help="Assess the report: category, priority, severity, questions"),
    Stage("reproduce", "Reproduce", "task", "reproduce", "write", "needs-reproduction", "ready-for-research",
          agent=True, writes=TEST_PATHS, code=True, auto=True, next="research", output="issue-{n}-reproduction.md",
          help="Start reproduction: a minimal failing test for the report"),
    Stage("research", "Research", "research", "research", "write", "ready-for-research", "researched",
          agent=True, auto=True, next="implement", output="issue-{n}-root-cause.md",
          help="Start research: root cause, 2–3 approaches and their trade-offs"),
    Stage("implement", "Implement", "code", "implement", "write", "ready-for-implementation", "in-review",
          agent=True, writes=ANY_PATH, code=True, caps=Caps(max_usd=5.0), next="review",
          output="issue-{n}-implementation.md",
          help="Start implementation of the recommended approach, with tests"),
    Stage("review", "Review", "task", "review", "write", "in-review", None, agent=True, auto=True,
          next="document", output="issue-{n}-review.md",
          help="Start an independent review of the change against the research"),
    Stage("document", "Document", "documentation", "document", "write", None, None, agent=True,
          writes=DOC_PATHS, code=True, auto=True, output="issue-{n}-documentation.md",
          help="Start documentation: update the docs the change affects"),
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


def after_triage(category: str, stage_label: str) -> tuple[str, Stage | None]:
    """The stage label triage sets (by key) for an issue of `category` whose recommendation maps to
    `stage_label`, and the stage that label starts.

    A documentation report goes to the document stage, not to reproduction or research.
    """
    if category == "documentation" and stage_label in ("needs-reproduction", "ready-for-research",
                                                       "ready-for-implementation"):
        return "ready-for-implementation", stage("document")
    return stage_label, started_by(stage_label)


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


def path_allowed(path: str, patterns: tuple[str, ...]) -> bool:
    """Whether a normalised relative path matches one of the glob patterns."""
    return any(glob_regex(pattern).fullmatch(path) for pattern in patterns)
