"""The triage assessment: its vocabulary, its JSON schema, and validation of untrusted output."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

CATEGORIES = ("bug", "feature", "documentation", "question", "duplicate")
PRIORITIES = ("critical", "high", "medium", "low")
SEVERITIES = ("blocking", "degraded", "cosmetic")
COMPLETENESS = ("complete", "partial", "insufficient")
RECOMMENDATIONS = ("close", "defer", "needs-info", "needs-reproduction", "ready-for-research")
SECURITY = ("none", "general", "vulnerability")

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
    security: bool = False  # a vulnerability reported in public: handled privately, never as a routine bug
    dropped: tuple[str, ...] = field(default=(), compare=False)  # what validation threw away, for logs


def tool_schema() -> dict[str, Any]:
    """JSON schema of the `record_triage` tool input the model must produce."""
    text = {"type": "string", "maxLength": MAX_TEXT}
    items = {"type": "array", "items": {"type": "string", "maxLength": MAX_ITEM}, "maxItems": MAX_QUESTIONS}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["category", "priority", "severity", "completeness", "missing_information",
                     "clarifying_questions", "recommendation", "duplicate_of", "summary", "rationale",
                     "security"],
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
            "security": {"type": "string", "enum": list(SECURITY), "description": (
                "vulnerability: the issue reports a security vulnerability (injection, path traversal, XSS, remote "
                "code execution, an exploitable flaw, a CVE), which is handled privately; general: it is about "
                "security without reporting a vulnerability (a question, a hardening idea); none: neither")},
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
        security=_choice(data, "security", SECURITY, dropped) == "vulnerability",
        dropped=tuple(dropped),
    )


def settle(a: Assessment) -> Assessment:
    """What the workflow makes of an assessment (pure).

    A security report asks the public for nothing, waits for a maintainer and is at least high
    priority; a question is answered, not researched.
    """
    if a.security:
        priority = a.priority if a.priority in ("critical", "high") else "high"
        return replace(a, questions=(), missing_information=(), recommendation="defer", priority=priority)
    if a.category == "question" and a.recommendation in ("needs-reproduction", "ready-for-research"):
        return replace(a, recommendation="defer")
    return a


@dataclass(frozen=True)
class Suggestion:
    """An answer to a question drawn only from the repository's documentation (validated model output)."""

    answer: str
    sources: tuple[str, ...]


MAX_ANSWER = 1500


def suggestion_schema() -> dict[str, Any]:
    """JSON schema of the `suggest_answer` tool input."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["answerable", "answer", "sources"],
        "properties": {
            "answerable": {"type": "boolean"},
            "answer": {"type": "string", "maxLength": MAX_ANSWER},
            "sources": {"type": "array", "maxItems": 5, "items": {"type": "string", "maxLength": 200}},
        },
    }


def suggestion_from_output(data: Any, documents: frozenset[str]) -> Suggestion | None:
    """A suggestion the docs support, or None: not answerable, no answer, or a source that was not offered."""
    if not isinstance(data, dict) or data.get("answerable") is not True:
        return None
    answer = data.get("answer")
    sources = data.get("sources")
    if not isinstance(answer, str) or not answer.strip() or not isinstance(sources, list):
        return None
    cited = tuple(dict.fromkeys(s for s in sources if isinstance(s, str)))
    if not cited or any(s not in documents for s in cited):
        return None
    return Suggestion(answer.strip()[:MAX_ANSWER], cited[:5])
