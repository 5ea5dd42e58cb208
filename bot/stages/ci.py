"""CI as the judge (pure): the verdict of a commit's check runs, and the failing output an agent gets back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

PASSING = frozenset({"success", "neutral", "skipped"})
MAX_REPORT = 6000  # characters of failing check output sent back to the agent
MAX_PART = 2000


@dataclass(frozen=True)
class CheckRun:
    """One check run of a commit, as GitHub reports it."""

    name: str
    status: str
    conclusion: str | None
    title: str = ""
    summary: str = ""
    text: str = ""
    url: str = ""

    @classmethod
    def of(cls, data: dict[str, Any]) -> "CheckRun":
        output = data.get("output") or {}
        return cls(name=str(data.get("name") or "check")[:100], status=str(data.get("status") or ""),
                   conclusion=data.get("conclusion"), title=str(output.get("title") or "")[:MAX_PART],
                   summary=str(output.get("summary") or "")[:MAX_PART * 2],
                   text=str(output.get("text") or "")[:MAX_PART * 2], url=str(data.get("html_url") or "")[:500])

    @property
    def passed(self) -> bool:
        return self.status == "completed" and self.conclusion in PASSING


def verdict(runs: Iterable[CheckRun]) -> str:
    """`none` (no checks yet), `pending` (some still running), `passed` or `failed`."""
    runs = list(runs)
    if not runs:
        return "none"
    if any(run.status != "completed" for run in runs):
        return "pending"
    return "passed" if all(run.passed for run in runs) else "failed"


def failing(runs: Iterable[CheckRun]) -> list[CheckRun]:
    return [run for run in runs if run.status == "completed" and not run.passed]


def failure_report(runs: Iterable[CheckRun], limit: int = MAX_REPORT) -> str:
    """The failing checks' names, titles and output, bounded, for the agent's next round."""
    parts = []
    for run in failing(runs):
        body = "\n".join(p for p in (run.title, run.summary, run.text) if p)
        parts.append(f"### {run.name}: {run.conclusion}\n{body[:MAX_PART]}")
    report = "\n\n".join(parts) or "(the checks failed without output)"
    return report if len(report) <= limit else report[:limit] + "\n[output cut]"


def names(runs: Iterable[CheckRun]) -> str:
    return ", ".join(f"{run.name} ({run.conclusion})" for run in runs) or "none"
