"""Per-repository configuration (`.github/chantbot.yml`): schema, defaults, validation, and the most
restrictive setting of each part that is wrong (pure)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import jsonschema
import yaml

from bot import workflow
from bot.commands import registry
from bot.safeyaml import BudgetLoader

CONFIG_PATH = ".github/chantbot.yml"
MAX_BYTES = 64 * 1024  # a configuration file is a few hundred bytes; anything this large is not one
MAX_PROBLEMS = 10  # problems reported from one file
MAX_PROBLEM = 300  # characters of one problem
STAGE_NAMES = tuple(stage.name for stage in workflow.STAGES)
ROLE_LEVELS = ("anyone", "read", "triage", "write", "maintain", "admin")  # ascending
GATES = ("outsiders", "always", "never")  # whose agent-written commits are held for a maintainer's /ok-to-test
GATE = "outsiders"
SANDBOX_TIMEOUT = 300  # seconds one sandboxed test run may take
SANDBOX_RUNS = 20  # sandboxed test runs of one stage run
AUTO_PER_AUTHOR = 3  # automatic stage runs per issue author per day

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
                   "properties": {"daily_usd": {"type": "number", "minimum": 0, "maximum": 10000},
                                  "auto_per_author": {"type": "integer", "minimum": 0, "maximum": 100}}},
        "gate": {"type": "string", "enum": list(GATES)},
        "sandbox": {"type": "object", "additionalProperties": False,
                    "properties": {"setup": {"type": "string", "maxLength": 2000},
                                   "test": {"type": "string", "maxLength": 2000},
                                   "timeout": {"type": "integer", "minimum": 1, "maximum": 3600,
                                               "description": "seconds"},
                                   "runs": {"type": "integer", "minimum": 1, "maximum": 100}}},
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
    daily_usd: float | None = None  # this repository's share of the installation's daily cap (None: all of it)
    additional_labels: tuple[str, ...] = ()  # repository labels `/label` may add besides the vocabulary
    remind_after: int = REMIND_AFTER  # days
    close_after: int | None = CLOSE_AFTER  # days after the reminder; None: never closed
    gate: str = GATE  # outsiders | always | never
    sandbox_setup: str | None = None  # None: the default for the repository
    sandbox_test: str | None = None  # None: the default for the repository
    sandbox_timeout: float = float(SANDBOX_TIMEOUT)  # seconds
    sandbox_runs: int = SANDBOX_RUNS
    auto_per_author: int = AUTO_PER_AUTHOR
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

    An invalid file never stops chantbot, and never loosens what the repository set: the valid parts are
    kept, and each part that is wrong takes its most restrictive setting (`restrictive`); a file chantbot
    cannot read at all makes every part restrictive. Every problem is reported in words a maintainer can act
    on. The file's size, its nesting, its aliases and the problems reported are all bounded, so a hostile
    file costs little.
    """
    if text is None or not text.strip():
        return RepoConfig(), []
    if len(text.encode("utf-8")) > MAX_BYTES:
        return unreadable(f"{CONFIG_PATH} is larger than {MAX_BYTES // 1024} KiB, so chantbot did not read it")
    return _parse(text)


def unreadable(problem: str) -> tuple[RepoConfig, list[str]]:
    """A file chantbot could not read at all: every part restrictive, the problem and what applies instead."""
    return restrictive(), [problem, _notice(set(SCHEMA["properties"]))]


def _parse(text: str) -> tuple[RepoConfig, list[str]]:
    try:
        data = yaml.load(text, Loader=BudgetLoader)  # noqa: S506 - a SafeLoader with a budget
    except ValueError:  # raised by PyYAML's constructors, not its parser: no position to point at
        return unreadable(f"{CONFIG_PATH} holds a value YAML cannot turn into data (an impossible date, or a "
                          "number thousands of digits long)")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return unreadable(_short(f"{CONFIG_PATH} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"))
    if data is None:
        return RepoConfig(), []
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = list(itertools.islice(validator.iter_errors(data), MAX_PROBLEMS + 1))
    problems = [_short(f"{CONFIG_PATH}: `{_where(e)}`: {_message(e)}")
                for e in sorted(errors[:MAX_PROBLEMS], key=lambda e: list(map(str, e.absolute_path)))]
    if len(errors) > MAX_PROBLEMS:
        problems.append(f"{CONFIG_PATH}: more problems than these; fix these first")
    if not isinstance(data, dict):
        return restrictive(), problems + [_notice(set(SCHEMA["properties"]))]
    commands = data.get("commands")
    unknown = sorted(str(name) for name in commands if registry.spec_for(str(name)) is None)[:MAX_PROBLEMS] \
        if isinstance(commands, dict) else []
    problems += [_short(f"{CONFIG_PATH}: `commands.{name}`: there is no command /{name}") for name in unknown]
    valid, wrong = _split(data)
    config = _restrict(build(valid), data, wrong)
    if wrong:
        problems.append(_notice(wrong))
    return config, problems


def _split(data: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The valid parts of the file (per section; per key within a mapping section), and the wrong ones
    (`section` or `section.key`)."""
    valid: dict[str, Any] = {}
    wrong: set[str] = set()
    for section, schema in SCHEMA["properties"].items():
        if section not in data:
            continue
        value = data[section]
        if jsonschema.Draft202012Validator(schema).is_valid(value) and not (
                section == "commands" and any(registry.spec_for(str(name)) is None for name in value)):
            valid[section] = value
            continue
        if schema.get("type") != "object" or not isinstance(value, dict):
            wrong.add(section)
            continue
        checker = jsonschema.Draft202012Validator(schema)
        kept = {key: item for key, item in value.items()
                if checker.is_valid({key: item}) and (section != "commands" or registry.spec_for(str(key)))}
        valid[section] = kept
        bad = [key for key in value if key not in kept]
        per_key = {f"{section}.{key}" for key in bad if (section, key) in _PER_KEY}
        wrong |= per_key if len(per_key) == len(bad) else {section}
    return valid, wrong


# Keys whose own restrictive setting replaces just that key; a wrong key elsewhere makes its whole section
# restrictive (a wrong stage entry turns every automatic start off, a wrong command role raises every command).
_PER_KEY = {("budget", "daily_usd"), ("budget", "auto_per_author"), ("sandbox", "setup"), ("sandbox", "test"),
            ("sandbox", "timeout"), ("sandbox", "runs"), ("needs_info", "remind_after"),
            ("needs_info", "close_after"), ("needs_info", "debounce"), ("needs_info", "max_retriage"),
            ("labels", "additional"),
            *(("labels", family) for family in DEFAULT_LABELS)}


def restrictive() -> RepoConfig:
    """The configuration of a file chantbot cannot read: every part at its most restrictive setting."""
    return _restrict(RepoConfig(), {}, set(SCHEMA["properties"]))


def _restrict(config: RepoConfig, data: Mapping[str, Any], wrong: set[str]) -> RepoConfig:
    """`config` (built from the valid parts of `data`, the file) with the most restrictive setting for each
    wrong part (`section` or `section.key`), keeping what the valid parts say where that is at least as strict."""
    def hit(section: str, key: str | None = None) -> bool:
        return section in wrong or (key is not None and f"{section}.{key}" in wrong)

    sandbox = data.get("sandbox") if isinstance(data.get("sandbox"), dict) else {}
    changes: dict[str, Any] = {}
    if hit("stages"):  # no stage starts on its own; what the valid entries say otherwise still holds
        changes["stages"] = {name: _not_auto(config.stages.get(name)) for name in STAGE_NAMES}
    if hit("commands"):  # each command: the stricter of its default role and the valid configured one
        configured = {registry.spec_for(str(name)).name: role for name, role in config.commands.items()}
        changes["commands"] = {name: max(default, configured.get(name, default), key=ROLE_LEVELS.index)
                               for name, default in registry.levels().items()}
    if hit("gate"):
        changes["gate"] = "always"
    if hit("budget", "daily_usd"):
        changes["daily_usd"] = 0.0
    if hit("budget", "auto_per_author"):
        changes["auto_per_author"] = 0
    if hit("sandbox", "setup"):
        changes["sandbox_setup"] = None
    if hit("sandbox", "test"):
        changes["sandbox_test"] = None
    if hit("sandbox", "timeout"):
        changes["sandbox_timeout"] = float(_smaller(SANDBOX_TIMEOUT, sandbox.get("timeout"), 3600))
    if hit("sandbox", "runs"):
        changes["sandbox_runs"] = _smaller(SANDBOX_RUNS, sandbox.get("runs"), 100)
    if hit("needs_info", "close_after"):
        changes["close_after"] = None  # chantbot closes nobody's issue on a setting it could not read
    if hit("needs_info", "remind_after"):
        changes["remind_after"] = REMIND_AFTER
    if hit("needs_info", "debounce"):
        changes["retriage_debounce"] = RETRIAGE_DEBOUNCE
    if hit("needs_info", "max_retriage"):
        changes["max_retriage"] = 1  # one re-triage a day from answers; a maintainer's /retriage runs more
    if hit("labels", "additional"):
        changes["additional_labels"] = ()
    if any(hit("labels", family) for family in DEFAULT_LABELS):
        changes["labels"] = {family: dict(DEFAULT_LABELS[family]) if hit("labels", family) else names
                             for family, names in config.labels.items()}
    if hit("model"):
        changes["model"] = None  # the operator's model
    if hit("close_duplicates"):
        changes["close_duplicates"] = False
    if hit("specs_branch"):
        changes["specs_branch"] = "chant-specs"  # chantbot's own branch: never the repository's code
    return replace(config, **changes)


def _smaller(default: int, value: Any, limit: int) -> int:
    """The smaller of the default and a wrong number brought into range (a wrong value that is no number: the
    default)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return default
    return min(default, max(1, min(limit, int(value))))


def _not_auto(entry: bool | Mapping[str, Any] | None) -> dict[str, Any]:
    if entry is False:
        return {"enabled": False, "auto": False}
    return {**(dict(entry) if isinstance(entry, Mapping) else {}), "auto": False}


# What applies in place of a wrong part, as the maintainer reads it (per `section` or `section.key`).
FALLBACKS = {
    "stages": "`stages`: no stage starts on its own (`auto: false` for every stage)",
    "commands": "`commands`: each command needs the stricter of its default role and the one configured, and no "
                "issue author is excepted",
    "gate": "`gate: always`",
    "budget": "`budget: {daily_usd: 0, auto_per_author: 0}`",
    "budget.daily_usd": "`budget.daily_usd: 0`",
    "budget.auto_per_author": "`budget.auto_per_author: 0`",
    "sandbox": "`sandbox`: its defaults",
    "sandbox.setup": "`sandbox.setup`: the default for the repository",
    "sandbox.test": "`sandbox.test`: the default for the repository",
    "sandbox.timeout": "`sandbox.timeout`: the smaller of its default and the value given",
    "sandbox.runs": "`sandbox.runs`: the smaller of its default and the value given",
    "needs_info": "`needs_info`: no issue is closed for want of answers, and answers are re-triaged once a day",
    "needs_info.debounce": f"`needs_info.debounce: {int(RETRIAGE_DEBOUNCE)}`",
    "needs_info.max_retriage": "`needs_info.max_retriage: 1`",
    "needs_info.close_after": "`needs_info.close_after: false` (no issue is closed for want of answers)",
    "needs_info.remind_after": f"`needs_info.remind_after: {REMIND_AFTER}`",
    "labels": "`labels`: chantbot's default names, and no additional labels",
    "labels.additional": "`labels.additional`: none",
    **{f"labels.{family}": f"`labels.{family}`: chantbot's default names" for family in DEFAULT_LABELS},
    "model": "`model`: the operator's model",
    "close_duplicates": "`close_duplicates: false`",
    "specs_branch": "`specs_branch: chant-specs`",
}


def _notice(wrong: set[str]) -> str:
    """One line: what chantbot applies in place of each wrong part until the file is fixed."""
    parts = [FALLBACKS[name] for name in sorted(wrong)
             if name in FALLBACKS and (name == name.split(".")[0] or name.split(".")[0] not in wrong)]
    return f"{CONFIG_PATH}: until this is fixed, chantbot applies the most restrictive setting in place of " \
           f"each wrong part: " + "; ".join(parts)


def build(data: Mapping[str, Any]) -> RepoConfig:
    """A RepoConfig from validated data."""
    default = RepoConfig()
    labels = {family: {**names, **data.get("labels", {}).get(family, {})} for family, names in default.labels.items()}
    branch = data.get("specs_branch", "chant-specs")
    needs_info = data.get("needs_info", {})
    close_after = needs_info.get("close_after", CLOSE_AFTER)
    budget = data.get("budget", {})
    sandbox = data.get("sandbox", {})
    return RepoConfig(
        labels=labels,
        stages=dict(data.get("stages", {})),
        commands=dict(data.get("commands", {})),
        model=data.get("model"),
        specs_branch=None if branch is False else ("chant-specs" if branch is True else branch),
        close_duplicates=bool(data.get("close_duplicates", False)),
        daily_usd=float(budget["daily_usd"]) if "daily_usd" in budget else None,
        additional_labels=tuple(dict.fromkeys(data.get("labels", {}).get("additional", []))),
        remind_after=int(needs_info.get("remind_after", REMIND_AFTER)),
        close_after=None if close_after is False else int(close_after),
        gate=str(data.get("gate", GATE)),
        sandbox_setup=sandbox.get("setup"),
        sandbox_test=sandbox.get("test"),
        sandbox_timeout=float(sandbox.get("timeout", SANDBOX_TIMEOUT)),
        sandbox_runs=int(sandbox.get("runs", SANDBOX_RUNS)),
        auto_per_author=int(budget.get("auto_per_author", AUTO_PER_AUTHOR)),
        retriage_debounce=float(needs_info.get("debounce", RETRIAGE_DEBOUNCE)),
        max_retriage=int(needs_info.get("max_retriage", MAX_RETRIAGE)),
    )
