"""What each stage's agent submits: the `submit` schema, validation of the untrusted input, evidence checks
(pure). Everything the model says is bounded here before anything else reads it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from bot import workflow
from bot.stages.tools import Snapshot

MAX_FINDINGS = workflow.MAX_FINDINGS


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
    """The stage's `submit` input schema (its definition in the workflow)."""
    found = workflow.stage(stage).submit
    if found is None:
        raise KeyError(f"the {stage} stage has no agent")
    return found


def validate(stage: str, data: Any, snapshot: Snapshot | None = None) -> Submission:
    """The submission, or InvalidSubmission with a short reason the model can act on."""
    validator = jsonschema.Draft202012Validator(schema(stage))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path) or "input"
        raise InvalidSubmission(f"{where}: {errors[0].message[:200]}")
    evidence: tuple[Evidence, ...] = ()
    if workflow.Section("Evidence", "evidence", "evidence") in workflow.stage(stage).sections and snapshot is not None:
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
