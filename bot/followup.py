"""When a reporter's answers are re-triaged: once a quiet period has merged a burst of them, at most a few times a
day per issue (pure)."""

from __future__ import annotations

from typing import Any, Mapping

DAY = 86_400.0


def recent(runs: Any, now: float) -> list[float]:
    """The re-triages of the last day, oldest first (anything unreadable in the record is dropped)."""
    if not isinstance(runs, list):
        return []
    return sorted(float(at) for at in runs if isinstance(at, (int, float)) and 0 <= now - at < DAY)


def answered(record: Mapping[str, Any] | None, now: float, *, limit: int) -> tuple[dict[str, Any], bool]:
    """The issue's record after an answer at `now`, and whether a re-triage waits for it.

    An answer joins a re-triage already waiting (a burst makes one); otherwise it starts one while fewer
    than `limit` ran in the last day. False: the day's count is spent, the answer waits for a person.
    """
    record = dict(record or {})
    runs = recent(record.get("runs"), now)
    pending = bool(record.get("pending")) or len(runs) < limit
    return {**record, "runs": runs, "answered_at": now, "pending": pending}, pending


def due(record: Mapping[str, Any] | None, debounce: float) -> float | None:
    """When the waiting re-triage is due: `debounce` seconds after the last answer; None when none waits."""
    if not record or not record.get("pending"):
        return None
    return float(record.get("answered_at") or 0.0) + debounce


def ran(record: Mapping[str, Any] | None, now: float, *, counted: bool = True) -> dict[str, Any]:
    """The record once the waiting re-triage has run at `now`; not `counted` when a triage since the last
    answer had read it already."""
    record = dict(record or {})
    runs = recent(record.get("runs"), now) + ([now] if counted else [])
    return {**record, "runs": runs, "pending": False}


def read_since(record: Mapping[str, Any] | None, triaged_at: float | None) -> bool:
    """Whether a triage after the last answer has read it already (a person's `/retriage`, say)."""
    answered_at = (record or {}).get("answered_at")
    return bool(triaged_at and answered_at is not None and triaged_at > answered_at)
