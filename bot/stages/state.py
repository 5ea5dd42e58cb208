"""A stage run's checkpoint, typed: the phase it resumes at, how it ended, and what it has done so far (pure).

A run is stored as JSON after every unit of work; any worker reads it back with `RunState.load` and continues
from its phase. The store's coarse status (queued, running, waiting_ci, done, failed, cancelled) follows from
the phase and the ending, so there is one vocabulary for where a run is and one for how it ended.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any


class Phase(str, enum.Enum):
    """Where a run resumes."""

    START = "start"  # queued: the base commit, the first user turn, the spec in progress
    TURN = "turn"  # the conversation ends with a user turn: ask the model
    TOOLS = "tools"  # the conversation ends with the model's turn: answer its tool calls
    JUDGE = "judge"  # submitted: the sandbox judges the writes before anything leaves chantbot's machine
    PUBLISH = "publish"  # judged: commit and push the writes, or hold them for a maintainer
    HELD = "held"  # commits held until a maintainer's `/ok-to-test`; the run's result waits for CI after that
    CI = "ci"  # pushed: waiting for the repository's checks on `waiting_sha`
    EFFECTS = "effects"  # ended and stored: its label, the workflow comment and the next stage are still to do
    ENDED = "ended"


class End(str, enum.Enum):
    """How a run ended. The spec's status says the same: completed, failed or cancelled."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


STORE_STATUS = {Phase.START: "queued", Phase.TURN: "running", Phase.TOOLS: "running", Phase.JUDGE: "running",
                Phase.PUBLISH: "running", Phase.HELD: "waiting_ci", Phase.CI: "waiting_ci"}
ENDED_STATUS = {End.COMPLETED: "done", End.FAILED: "failed", End.CANCELLED: "cancelled"}
ACTIVE = ("queued", "running", "waiting_ci")  # store statuses of a run that has not ended


@dataclass
class RunState:
    """Everything one run has done, in the order it happens."""

    issue: dict[str, Any]  # number, title, body, author, association, url, answers: the issue as triaged
    spec_id: str
    spec_path: str
    requested_by: str = ""
    shapers: list[str] = field(default_factory=list)  # whose words reached the agent (the gate checks them)
    phase: Phase = Phase.START
    end: End | None = None
    outcome: str = ""  # the result in words: reproduced, not reproduced, broken, green, done, unverified, …
    reason: str = ""  # why it ended so (chantbot's words)
    # The work.
    model: str = ""
    base: dict[str, Any] = field(default_factory=dict)  # {"branch", "commit"}: what the agent reads
    messages: list[dict[str, Any]] = field(default_factory=list)
    overlay: dict[str, str] = field(default_factory=dict)  # the run's writes, path → text
    submission: dict[str, Any] | None = None
    evidence: list[list[Any]] = field(default_factory=list)  # [location, note, exists]
    tracks: list[str] = field(default_factory=list)  # what a documentation spec tracks (chant's `tracks`)
    reproduction: list[str] = field(default_factory=list)  # the reproduction's test files (implement)
    review_diff: dict[str, Any] | None = None  # the pull request a review reads: number, url, head, lines
    review_id: int | None = None
    # Spending.
    turns: int = 0
    usd: float = 0.0
    usage: dict[str, int] = field(default_factory=dict)
    started: float = 0.0
    waited: float = 0.0  # seconds spent waiting for CI or a maintainer (not counted against the time cap)
    waiting_since: float | None = None
    llm_failures: int = 0
    test_runs: int = 0  # run_tests calls
    setup_commit: str = ""  # the default branch's head whose files the sandbox's setup is made from
    # The sandbox's judgement of the writes.
    verdict: dict[str, Any] | None = None  # {"kind", "test", "line"}
    judge_rounds: int = 0  # submissions sent back to the agent after a failed verdict or failed checks
    # Publishing.
    pending_commit: dict[str, str] | None = None  # built, not yet pushed: {"sha", "parent"}
    commits: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)  # every file the run committed
    held: dict[str, Any] | None = None  # {"batch": n, "files": {...}}: held for `/ok-to-test`
    pull: dict[str, Any] = field(default_factory=dict)  # {"number", "url"}
    ci: str = ""
    ci_url: str = ""
    # Bookkeeping.
    finished: float | None = None
    spec_text: str = ""
    prompt_problem: str = ""

    @classmethod
    def load(cls, data: dict[str, Any]) -> "RunState":
        """The state stored as `data` (unknown keys are ignored, missing ones take their defaults)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in names}
        if "phase" in values:
            values["phase"] = Phase(values["phase"])
        if values.get("end") is not None:
            values["end"] = End(values["end"])
        return cls(**values)

    @classmethod
    def of(cls, run: Any) -> "RunState":
        """A stored run's state. A run stored before runs had a phase (an untyped checkpoint) is read by its
        store status: ended runs keep how they ended, a run waiting for CI keeps waiting, and an unfinished one
        goes on from its last stored turn."""
        data = dict(run.data)
        if "phase" not in data:
            data.update(_legacy(run.status, data))
        return cls.load(data)

    def dump(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["phase"] = self.phase.value
        data["end"] = self.end.value if self.end else None
        return data

    @property
    def status(self) -> str:
        """The store's status for this state."""
        if self.end is not None:
            return ENDED_STATUS[self.end]
        return STORE_STATUS[self.phase]

    @property
    def number(self) -> int:
        return int(self.issue["number"])


def _legacy(status: str, data: dict[str, Any]) -> dict[str, Any]:
    """Phase, ending and pull request of a checkpoint written before the typed state (pure)."""
    out: dict[str, Any] = {"outcome": str(data.get("state") or data.get("outcome") or ""),
                           "pull": data.get("pull") if isinstance(data.get("pull"), dict) else {}}
    ended = {"done": End.COMPLETED, "failed": End.FAILED, "cancelled": End.CANCELLED}.get(status)
    if ended is not None:
        out.update(end=ended.value, phase=(Phase.EFFECTS if data.get("effects_pending") else Phase.ENDED).value)
    elif status == "waiting_ci":
        out["phase"] = Phase.CI.value
    elif status == "queued" or not data.get("messages"):
        out["phase"] = Phase.START.value
    elif data.get("submission") is not None:
        out["phase"] = Phase.JUDGE.value
    else:
        out["phase"] = (Phase.TURN if data["messages"][-1].get("role") == "user" else Phase.TOOLS).value
    return out
