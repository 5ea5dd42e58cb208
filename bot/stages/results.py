"""What each stage's agent submits: the `submit` schema, validation of the untrusted input, evidence checks
(pure). Everything the model says is bounded here before anything else reads it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from bot.stages.tools import Snapshot

TEXT = 4000  # characters of one free-text field
ITEM = 600  # characters of one list item
MAX_ITEMS = 12
MAX_FINDINGS = 5


def _text(limit: int = TEXT) -> dict[str, Any]:
    return {"type": "string", "maxLength": limit}


def _items(limit: int = ITEM, most: int = MAX_ITEMS) -> dict[str, Any]:
    return {"type": "array", "items": _text(limit), "maxItems": most}


SCHEMAS: dict[str, dict[str, Any]] = {
    "reproduce": {
        "type": "object", "additionalProperties": False,
        "required": ["summary", "expected", "observed"],
        "properties": {"summary": _text(), "expected": _text(ITEM), "observed": _text(ITEM),
                       "command": _text(300), "environment": _text(ITEM)},
    },
    "research": {
        "type": "object", "additionalProperties": False,
        "required": ["summary", "root_cause", "approaches", "recommendation"],
        "properties": {
            "summary": _text(), "root_cause": _text(),
            "evidence": {"type": "array", "maxItems": MAX_ITEMS, "items": {
                "type": "object", "additionalProperties": False, "required": ["location"],
                "properties": {"location": {"type": "string", "maxLength": 320,
                                            "description": "path:line in the repository"},
                               "note": _text(ITEM)}}},
            "affected_components": _items(),
            "approaches": {"type": "array", "minItems": 2, "maxItems": 3, "items": {
                "type": "object", "additionalProperties": False, "required": ["name", "description", "trade_offs"],
                "properties": {"name": _text(200), "description": _text(), "trade_offs": _text()}}},
            "recommendation": _text(), "edge_cases": _items(), "files_to_modify": _items(320),
        },
    },
    "implement": {
        "type": "object", "additionalProperties": False,
        "required": ["summary", "release_notes", "change_type"],
        "properties": {"summary": _text(), "release_notes": _text(2000),
                       "change_type": {"type": "string", "enum": ["fix", "feature", "breaking", "deprecation"]},
                       "tests": _items()},
    },
    "review": {
        "type": "object", "additionalProperties": False,
        "required": ["summary", "reproduction_passes", "edge_cases_covered", "docs_needed"],
        "properties": {
            "summary": _text(),
            "findings": {"type": "array", "maxItems": MAX_FINDINGS, "items": {
                "type": "object", "additionalProperties": False, "required": ["path", "line", "body"],
                "properties": {"path": {"type": "string", "maxLength": 320},
                               "line": {"type": "integer", "minimum": 1},
                               "body": _text(1500)}}},
            "reproduction_passes": {"type": "boolean"}, "edge_cases_covered": {"type": "boolean"},
            "docs_needed": {"type": "boolean"},
        },
    },
    "document": {
        "type": "object", "additionalProperties": False, "required": ["summary"],
        "properties": {"summary": _text(), "tracks": _items(320)},
    },
}

HELP = {
    "reproduce": "Submit the reproduction once your failing test is written with write_file. chantbot commits it "
                 "and the repository's CI judges whether it fails.",
    "research": "Submit the root-cause analysis: cause, evidence as path:line, two or three approaches with "
                "trade-offs, and a recommendation. This ends the run.",
    "implement": "Submit once the fix and its tests are written with write_file: a summary and user-facing "
                 "release notes. chantbot commits your changes and the repository's CI judges them.",
    "review": "Submit the review: at most five findings tied to lines of the diff, most important first.",
    "document": "Submit once the documentation is updated with write_file (or to say that nothing needs changing).",
}


class InvalidSubmission(ValueError):
    """The model's `submit` input does not fit the stage's schema (the reason goes back to the model)."""


@dataclass(frozen=True)
class Evidence:
    location: str
    note: str
    exists: bool


@dataclass(frozen=True)
class Submission:
    """A validated `submit` input, and what chantbot checked of it."""

    stage: str
    data: dict[str, Any]
    evidence: tuple[Evidence, ...] = field(default=())


def schema(stage: str) -> dict[str, Any]:
    return SCHEMAS[stage]


def validate(stage: str, data: Any, snapshot: Snapshot | None = None) -> Submission:
    """The submission, or InvalidSubmission with a short reason the model can act on."""
    validator = jsonschema.Draft202012Validator(SCHEMAS[stage])
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path) or "input"
        raise InvalidSubmission(f"{where}: {errors[0].message[:200]}")
    evidence: tuple[Evidence, ...] = ()
    if stage == "research" and snapshot is not None:
        evidence = tuple(check_evidence(item.get("location", ""), item.get("note", ""), snapshot)
                         for item in data.get("evidence", []))
    return Submission(stage, dict(data), evidence)


_LOCATION = re.compile(r"`?([^\s:`]{1,300}):(\d{1,7})(?:-\d{1,7})?`?")


def check_evidence(location: str, note: str, snapshot: Snapshot) -> Evidence:
    """Whether `path:line` names a line that exists in the snapshot."""
    match = _LOCATION.fullmatch(location.strip()[:320])
    exists = False
    if match:
        lines = snapshot.lines(match.group(1))
        exists = lines is not None and 1 <= int(match.group(2)) <= lines
    return Evidence(location.strip()[:320], note, exists)


def behaviour_changed(implement: dict[str, Any] | None, review: dict[str, Any] | None) -> bool:
    """Whether the change needs documentation: a feature, a breaking change or a deprecation, or a review saying so."""
    kind = (implement or {}).get("change_type")
    return kind in ("feature", "breaking", "deprecation") or bool((review or {}).get("docs_needed"))
