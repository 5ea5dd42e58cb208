"""Per-repository configuration (`.github/chantbot.yml`): schema, defaults and validation (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import itertools

import jsonschema
import yaml

from bot import workflow
from bot.safeyaml import BudgetLoader

CONFIG_PATH = ".github/chantbot.yml"
MAX_BYTES = 64 * 1024  # a configuration file is a few hundred bytes; anything this large is not one
MAX_PROBLEMS = 10  # problems reported from one file
MAX_PROBLEM = 300  # characters of one problem
STAGE_NAMES = tuple(stage.name for stage in workflow.STAGES)
DAILY_USD = 20.0
ROLE_LEVELS = ("anyone", "read", "triage", "write", "maintain", "admin")

DEFAULT_LABELS: dict[str, dict[str, str]] = {
    "category": {"bug": "bug", "feature": "enhancement", "documentation": "documentation",
                 "question": "question", "duplicate": "duplicate"},
    "priority": {"critical": "priority: critical", "high": "priority: high", "medium": "priority: medium",
                 "low": "priority: low"},
    "severity": {"blocking": "severity: blocking", "degraded": "severity: degraded",
                 "cosmetic": "severity: cosmetic"},
    "stage": {name: name for name in workflow.STAGE_LABELS},
    "flags": {name: name for name in workflow.FLAG_LABELS},
}
REMIND_AFTER = 7  # days an issue waits for the reporter's answers before one reminder
CLOSE_AFTER = 14  # days after the reminder before it is closed as not planned
RETRIAGE_DEBOUNCE = 60.0  # seconds of quiet after a reporter's last answer before it is re-triaged
MAX_RETRIAGE = 6  # re-triages a reporter's answers bring per issue per day

_NAME = {"type": "string", "minLength": 1, "maxLength": 50}
_DAYS = {"type": "integer", "minimum": 1, "maximum": 365, "description": "days"}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "labels": {
            "type": "object",
            "additionalProperties": False,
            "properties": {**{family: {"type": "object", "additionalProperties": False,
                                       "properties": {key: _NAME for key in keys}}
                              for family, keys in DEFAULT_LABELS.items()},
                           # the repository's own labels that `/label` may add (Prow's additional_labels)
                           "additional": {"type": "array", "maxItems": 100, "items": _NAME}},
        },
        "needs_info": {"type": "object", "additionalProperties": False,
                       "properties": {"remind_after": _DAYS,
                                      "close_after": {"oneOf": [_DAYS, {"type": "boolean", "const": False}]},
                                      "debounce": {"type": "integer", "minimum": 0, "maximum": 3600,
                                                   "description": "seconds"},
                                      "max_retriage": {"type": "integer", "minimum": 1, "maximum": 50}}},
        "stages": workflow.config_schema(),
        "budget": {"type": "object", "additionalProperties": False,
                   "properties": {"daily_usd": {"type": "number", "minimum": 0, "maximum": 10000}}},
        "commands": {"type": "object", "additionalProperties": {"type": "string", "enum": list(ROLE_LEVELS)}},
        "model": {"type": "string", "minLength": 1, "maxLength": 100},
        "specs_branch": {"type": ["string", "boolean"], "minLength": 1, "maxLength": 200},
        "close_duplicates": {"type": "boolean"},
    },
}


@dataclass(frozen=True)
class RepoConfig:
    """A repository's settings, defaults filled in."""

    labels: dict[str, dict[str, str]] = field(default_factory=lambda: {f: dict(m) for f, m in DEFAULT_LABELS.items()})
    stages: dict[str, Any] = field(default_factory=dict)  # stage → true/false or its settings mapping
    commands: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    specs_branch: str | None = "chant-specs"
    close_duplicates: bool = False
    daily_usd: float = DAILY_USD
    additional_labels: tuple[str, ...] = ()  # repository labels `/label` may add besides the vocabulary
    remind_after: int = REMIND_AFTER  # days
    close_after: int | None = CLOSE_AFTER  # days after the reminder; None: never closed
    retriage_debounce: float = RETRIAGE_DEBOUNCE  # seconds
    max_retriage: int = MAX_RETRIAGE  # per issue per day

    def stage(self, name: str) -> workflow.StageSettings:
        """How this repository runs the stage (defaults, with its configuration applied)."""
        return workflow.settings(name, self.stages.get(name))

    def label(self, family: str, key: str) -> str:
        return self.labels[family][key]

    def vocabulary(self) -> frozenset[str]:
        return frozenset(name for names in self.labels.values() for name in names.values())

    def additional(self, label: str) -> str | None:
        """The allowed additional label `label` names (case-insensitive, as GitHub compares labels), if any."""
        return next((name for name in self.additional_labels if name.lower() == label.lower()), None)

    def family_of(self, label: str) -> str | None:
        for family, names in self.labels.items():
            if label in names.values():
                return family
        return None


def _where(error: jsonschema.ValidationError) -> str:
    return _short(".".join(str(p) for p in error.absolute_path) or "(top level)")


def _short(text: str) -> str:
    return text if len(text) <= MAX_PROBLEM else text[:MAX_PROBLEM - 1] + "…"


def _json_type(value: Any) -> str | None:
    for kind, python in (("boolean", bool), ("integer", int), ("number", float), ("string", str),
                         ("array", list), ("object", dict)):
        if isinstance(value, python):
            return kind
    return None


def _message(error: jsonschema.ValidationError) -> str:
    """jsonschema's message, except that a choice of shapes names the shapes it accepts."""
    if error.validator in ("oneOf", "anyOf"):
        kinds = [str(option.get("type")) for option in error.validator_value if isinstance(option, dict)]
        shape = _json_type(error.instance)
        index = kinds.index(shape) if shape in kinds else -1
        inner = [e for e in error.context if e.relative_schema_path and e.relative_schema_path[0] == index]
        if inner:
            where = ".".join(str(p) for p in inner[0].relative_path)
            return (f"`{where}`: " if where else "") + inner[0].message
        return f"{error.instance!r} is not of type " + " or ".join(f"'{kind}'" for kind in kinds)
    return error.message


def parse(text: str | None) -> tuple[RepoConfig, list[str]]:
    """The configuration from the file's text (None: no file), and what is wrong with it.

    An invalid file never stops chantbot: the valid parts are ignored too and defaults are used,
    and every problem is reported in words a maintainer can act on. The file's size, its nesting,
    its aliases and the problems reported are all bounded, so a hostile file costs little.
    """
    if text is None or not text.strip():
        return RepoConfig(), []
    if len(text.encode("utf-8")) > MAX_BYTES:
        return RepoConfig(), [f"{CONFIG_PATH} is larger than {MAX_BYTES // 1024} KiB, so chantbot did not read it"]
    return _parse(text)


def _parse(text: str) -> tuple[RepoConfig, list[str]]:
    try:
        data = yaml.load(text, Loader=BudgetLoader)  # noqa: S506 - a SafeLoader with a budget
    except ValueError:  # raised by PyYAML's constructors, not its parser: no position to point at
        return RepoConfig(), [f"{CONFIG_PATH} holds a value YAML cannot turn into data (an impossible date, or a "
                              "number thousands of digits long)"]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return RepoConfig(), [_short(f"{CONFIG_PATH} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}")]
    if data is None:
        return RepoConfig(), []
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = list(itertools.islice(validator.iter_errors(data), MAX_PROBLEMS + 1))
    problems = [_short(f"{CONFIG_PATH}: `{_where(e)}`: {_message(e)}")
                for e in sorted(errors[:MAX_PROBLEMS], key=lambda e: list(map(str, e.absolute_path)))]
    if len(errors) > MAX_PROBLEMS:
        problems.append(f"{CONFIG_PATH}: more problems than these; fix these first")
    if problems:
        return RepoConfig(), problems
    return build(data), []


def build(data: Mapping[str, Any]) -> RepoConfig:
    """A RepoConfig from validated data."""
    default = RepoConfig()
    labels = {family: {**names, **data.get("labels", {}).get(family, {})} for family, names in default.labels.items()}
    branch = data.get("specs_branch", "chant-specs")
    needs_info = data.get("needs_info", {})
    close_after = needs_info.get("close_after", CLOSE_AFTER)
    return RepoConfig(
        labels=labels,
        stages=dict(data.get("stages", {})),
        commands=dict(data.get("commands", {})),
        model=data.get("model"),
        specs_branch=None if branch is False else ("chant-specs" if branch is True else branch),
        close_duplicates=bool(data.get("close_duplicates", False)),
        daily_usd=float(data.get("budget", {}).get("daily_usd", DAILY_USD)),
        additional_labels=tuple(dict.fromkeys(data.get("labels", {}).get("additional", []))),
        remind_after=int(needs_info.get("remind_after", REMIND_AFTER)),
        close_after=None if close_after is False else int(close_after),
        retriage_debounce=float(needs_info.get("debounce", RETRIAGE_DEBOUNCE)),
        max_retriage=int(needs_info.get("max_retriage", MAX_RETRIAGE)),
    )
