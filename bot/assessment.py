"""The triage assessment: its vocabulary, its JSON schema, and validation of untrusted output."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CATEGORIES = ("bug", "feature", "documentation", "question", "duplicate")
PRIORITIES = ("critical", "high", "medium", "low")
SEVERITIES = ("blocking", "degraded", "cosmetic")
COMPLETENESS = ("complete", "partial", "insufficient")
RECOMMENDATIONS = ("close", "defer", "needs-info", "needs-reproduction", "ready-for-research")

MAX_QUESTIONS = 5
MAX_TEXT = 600  # characters kept of any free-text field
MAX_ITEM = 240  # characters kept of one question or missing-information item


@dataclass(frozen=True)
class Assessment:
    """What triage concluded about one issue. Every field is inside the vocabulary."""

    category: str
    recommendation: str
    summary: str
    priority: str | None = None
    severity: str | None = None
    completeness: str = "partial"
    missing_information: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()
    duplicate_of: int | None = None
    rationale: str = ""
    triager: str = "local"
    dropped: tuple[str, ...] = field(default=(), compare=False)  # what validation threw away, for logs


def tool_schema() -> dict[str, Any]:
    """JSON schema of the `record_triage` tool input the model must produce."""
    text = {"type": "string", "maxLength": MAX_TEXT}
    items = {"type": "array", "items": {"type": "string", "maxLength": MAX_ITEM}, "maxItems": MAX_QUESTIONS}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["category", "priority", "severity", "completeness", "missing_information",
                     "clarifying_questions", "recommendation", "duplicate_of", "summary", "rationale"],
        "properties": {
            "category": {"type": "string", "enum": list(CATEGORIES)},
            "priority": {"type": "string", "enum": list(PRIORITIES)},
            "severity": {"type": "string", "enum": list(SEVERITIES)},
            "completeness": {"type": "string", "enum": list(COMPLETENESS)},
            "missing_information": items,
            "clarifying_questions": items,
            "recommendation": {"type": "string", "enum": list(RECOMMENDATIONS)},
            "duplicate_of": {"type": ["integer", "null"], "minimum": 1},
            "summary": text,
            "rationale": text,
        },
    }


class InvalidAssessment(ValueError):
    """The output cannot be used at all (no valid category or recommendation)."""


def _clip(value: Any, limit: int) -> str:
    return " ".join(str(value).split())[:limit] if isinstance(value, str) else ""


def _strings(value: Any, dropped: list[str], name: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        if value is not None:
            dropped.append(name)
        return ()
    out = [_clip(v, MAX_ITEM) for v in value if isinstance(v, str) and v.strip()]
    if len(out) != len(value):
        dropped.append(name)
    return tuple(out[:MAX_QUESTIONS])


def _choice(data: dict, key: str, allowed: tuple[str, ...], dropped: list[str]) -> str | None:
    value = data.get(key)
    if isinstance(value, str) and value.strip().lower() in allowed:
        return value.strip().lower()
    if value is not None:
        dropped.append(key)
    return None


def from_output(data: Any, *, candidates: frozenset[int] = frozenset(), triager: str = "llm") -> Assessment:
    """Validate untrusted triage output; anything outside the schema or vocabulary is dropped.

    `candidates` are the issue numbers offered as possible duplicates: a `duplicate_of` outside
    them is dropped, so the model cannot point at an arbitrary issue.
    Raises InvalidAssessment when no usable category or recommendation remains.
    """
    if not isinstance(data, dict):
        raise InvalidAssessment("output is not an object")
    dropped: list[str] = sorted(set(data) - set(tool_schema()["properties"]))
    category = _choice(data, "category", CATEGORIES, dropped)
    recommendation = _choice(data, "recommendation", RECOMMENDATIONS, dropped)
    if category is None or recommendation is None:
        raise InvalidAssessment(f"unusable output (category={data.get('category')!r}, "
                                f"recommendation={data.get('recommendation')!r})")
    duplicate_of = data.get("duplicate_of")
    if not (isinstance(duplicate_of, int) and not isinstance(duplicate_of, bool) and duplicate_of in candidates):
        if duplicate_of is not None:
            dropped.append("duplicate_of")
        duplicate_of = None
    if category == "duplicate" and duplicate_of is None:
        category = "question" if recommendation == "close" else "bug"
        dropped.append("category=duplicate without a known original")
    questions = _strings(data.get("clarifying_questions"), dropped, "clarifying_questions")
    if recommendation == "needs-info" and not questions:
        recommendation = "ready-for-research" if category in ("bug",) else "defer"
        dropped.append("needs-info without questions")
    return Assessment(
        category=category,
        recommendation=recommendation,
        summary=_clip(data.get("summary"), MAX_TEXT),
        priority=_choice(data, "priority", PRIORITIES, dropped),
        severity=_choice(data, "severity", SEVERITIES, dropped),
        completeness=_choice(data, "completeness", COMPLETENESS, dropped) or "partial",
        missing_information=_strings(data.get("missing_information"), dropped, "missing_information"),
        questions=questions,
        duplicate_of=duplicate_of,
        rationale=_clip(data.get("rationale"), MAX_TEXT),
        triager=triager,
        dropped=tuple(dropped),
    )


@dataclass(frozen=True)
class IssueText:
    """The parts of an issue triage reads. All of it is untrusted input."""

    number: int
    title: str
    body: str
    author: str
    author_association: str = "NONE"
    url: str = ""


@dataclass(frozen=True)
class Candidate:
    """A possible duplicate found in the repository's issue index."""

    number: int
    title: str
    body: str = ""
    state: str = "open"
    score: float = 0.0
