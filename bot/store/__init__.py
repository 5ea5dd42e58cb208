"""The durable store: the interface both backends implement, its records, and `open_store(DATABASE_URL)`.

SQLite (WAL, one file) is the embedded default; PostgreSQL is the store every `web` and `worker`
process of a scale-out deployment shares. Only `bot/store/` holds SQL.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol, Sequence
from urllib.parse import urlsplit, urlunsplit

from bot.issuetext import Candidate
from bot.writelimit import WriteLimit

RUN_ACTIVE = ("queued", "running", "waiting_ci")
RUN_STATUSES = frozenset(RUN_ACTIVE + ("done", "failed", "cancelled"))
HOLD_KINDS = frozenset({"writes", "requests", "tokens"})  # see Store.hold
RUN_COLUMNS = "id, repo, number, stage, installation_id, status, waiting_sha, data, version, created_at, updated_at"


@dataclass(frozen=True)
class Job:
    """A unit of work: an event to dispatch, or a follow-up chantbot scheduled for itself."""

    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    installation_id: int | None
    attempts: int
    created_at: float


@dataclass(frozen=True)
class SpecRecord:
    stage: str
    spec_id: str
    path: str
    status: str


@dataclass(frozen=True)
class OutboxFile:
    id: int
    path: str
    content: str
    branch: str


@dataclass(frozen=True)
class Run:
    """One stage run of one issue, with its checkpoint; any worker can continue it."""

    id: int
    repo: str
    number: int
    stage: str
    installation_id: int
    status: str  # queued | running | waiting_ci | done | failed | cancelled
    waiting_sha: str | None  # head commit whose checks the run waits for
    data: dict[str, Any]  # the run's checkpoint (JSON)
    version: int
    created_at: float
    updated_at: float


class StoreError(Exception):
    """The database could not be used; the message is one line an operator can act on."""


class Store(Protocol):
    """What chantbot keeps durably. Every method is one short transaction unless it says otherwise."""

    clock: Callable[[], float]

    # lifecycle and health
    async def open(self) -> None:
        """Connect and apply pending schema migrations (one process at a time)."""

    async def close(self) -> None: ...
    async def schema_version(self) -> int:
        """The newest migration applied."""

    async def ping(self) -> bool:
        """The database answers a read."""

    async def probe(self) -> str | None:
        """None when the store can write (a write in a tiny table), else why not, in a few words."""

    def listen(self, wake: Callable[[], None]) -> None:
        """Call `wake` when any process stores new work (best effort; workers also poll)."""

    # deliveries and the job queue
    async def accept_delivery(self, delivery_id: str, event: str, action: str | None, *, kind: str, key: str,
                              payload: dict[str, Any], installation_id: int | None) -> bool:
        """Store a delivery and queue its job atomically (group commit); False for a delivery id seen before."""

    async def enqueue(self, kind: str, key: str, payload: dict[str, Any], *, installation_id: int | None,
                      delay: float = 0.0, unique: bool = False) -> bool:
        """Queue a job; with `unique`, not when a job of that kind and key is already waiting."""

    async def claim(self, limit: int, lease: float, *, exclude_keys: Iterable[str] = ()) -> list[Job]:
        """Lease up to `limit` due jobs atomically: never one another process holds, at most one per key
        across all processes."""

    async def extend(self, job_id: int, lease: float) -> None: ...
    async def finish(self, job_id: int) -> None: ...
    async def retry_later(self, job_id: int, error: str, delay: float) -> None: ...
    async def bury(self, job_id: int, error: str) -> None:
        """Keep a job that failed for good (dead), for the operator to inspect or requeue."""

    async def requeue_dead(self, key: str | None = None) -> int: ...
    async def queue_depth(self) -> dict[str, int]:
        """Jobs not done, by status."""

    async def next_due(self) -> float | None:
        """When the earliest waiting job becomes due (None: nothing waiting)."""

    async def jobs_under_way(self, kind: str, key_prefix: str) -> int:
        """How many jobs of `kind` whose key starts with `key_prefix` are running or due."""

    # retention
    async def prune(self, *, finished_before: float, dead_before: float) -> dict[str, int]:
        """Delete finished work older than the cut-offs; how many rows of each kind went."""

    async def forget_issue(self, repo: str, number: int) -> None:
        """Drop everything holding an issue's text (it was deleted on GitHub)."""

    # per-issue state
    async def issue_state(self, repo: str, number: int) -> dict[str, Any]: ...
    async def issue_states(self, repo: str, numbers: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Several issues' state in one query (an issue without any is left out)."""
    async def save_issue_state(self, repo: str, number: int, data: dict[str, Any]) -> None: ...

    # the issue index (duplicates, the local triager's history)
    async def index_issue(self, repo: str, number: int, title: str, body: str, state: str,
                          category: str | None) -> None: ...
    async def index_issues(self, repo: str, rows: Sequence[tuple[int, str, str, str, str | None]]) -> None:
        """index_issue for many (number, title, body, state, category) at once, in one transaction."""
    async def similar_issues(self, repo: str, text: str, *, exclude: int, limit: int = 5) -> list[Candidate]:
        """Full-text candidates for duplicates, best first, title weighted up."""

    async def history(self, repo: str, *, limit: int = 5000) -> list[tuple[str, str, str]]:
        """(title, body, category) of the repository's labelled issues, newest first."""

    async def history_size(self, repo: str) -> int: ...

    # repository metadata
    async def repo_meta(self, repo: str, key: str) -> str | None: ...
    async def set_repo_meta(self, repo: str, key: str, value: str) -> None: ...

    # specs and the outbox of files for the specs branch
    async def next_spec_seq(self, repo: str, day: str) -> int: ...
    async def spec_for(self, repo: str, number: int, stage: str) -> SpecRecord | None: ...
    async def specs(self, repo: str, number: int) -> list[SpecRecord]: ...
    async def record_spec(self, repo: str, number: int, record: SpecRecord) -> None: ...
    async def queue_files(self, repo: str, installation_id: int, branch: str, files: dict[str, str]) -> None: ...
    async def pending_files(self, repo: str) -> list[OutboxFile]: ...
    async def mark_committed(self, ids: Iterable[int]) -> None: ...

    # stage runs and model spend
    async def start_run(self, repo: str, number: int, stage: str, installation_id: int,
                        data: dict[str, Any]) -> Run | None:
        """A new queued run; None while an active run of that stage exists for the issue."""

    async def get_run(self, run_id: int) -> Run | None: ...
    async def save_run(self, run: Run, *, status: str, data: dict[str, Any], waiting_sha: str | None) -> Run | None:
        """The run with version+1, only if `run.version` is still current (else None)."""

    async def runs_for_issue(self, repo: str, number: int) -> list[Run]:
        """Oldest first."""

    async def runs_waiting_for(self, repo: str, sha: str) -> list[Run]:
        """Runs in waiting_ci whose waiting_sha is `sha`."""

    async def add_spend(self, installation_id: int, day: str, usd: float) -> float:
        """Add to the day's spend; the day's total after adding."""

    async def spend(self, installation_id: int, day: str) -> float: ...
    async def spends(self, installation_id: int, days: Sequence[str]) -> list[float]:
        """The spend of each of `days` (budget keys), in one round trip."""

    async def add_spends(self, installation_id: int, days: Sequence[str], usd: float) -> list[float]:
        """Add `usd` to each of `days` in one transaction; their totals after adding."""

    # GitHub's limits, shared by every process
    async def reserve_write(self, installation_id: int, limits: tuple[WriteLimit, ...], margin: float) -> float:
        """Reserve the installation's next write slot under every limit and hold; its time (store clock)."""

    async def admit_write(self, installation_id: int, limits: tuple[WriteLimit, ...], margin: float,
                          flying: Sequence[float] = ()) -> tuple[float, float]:
        """(0, its stamp) when a write may be sent now (and count it as sent now), else (the seconds to wait, 0);
        `flying`: the caller's admitted writes not answered yet (see writelimit.admit)."""

    async def answered(self, installation_id: int, admitted: float, at: float) -> None:
        """Count the write admitted as `admitted` from its answer at `at` instead."""

    async def hold(self, installation_id: int, kind: str, until: float) -> None:
        """Record (never shorten) a hold: `writes` or `requests` not before `until`; `tokens` minted before
        `until` are refused."""

    async def holds(self, installation_id: int) -> dict[str, float]:
        """The installation's holds by kind (absent: none)."""

    # copying between databases (python -m bot migrate --from --to)
    async def read_rows(self, table: str, columns: tuple[str, ...], order: str, offset: int,
                        limit: int) -> list[tuple]: ...
    async def write_rows(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None: ...
    async def row_count(self, table: str) -> int: ...


def fts_words(text: str, limit: int = 24) -> list[str]:
    """The distinct searchable words of `text` (ASCII words of 3+ characters, common words left out)."""
    # 24 distinct words are all a query uses; the first few thousand characters hold them.
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z0-9_]{2,}", text[:4000].lower()) if w not in _STOP]
    return list(dict.fromkeys(words))[:limit]


_STOP = frozenset("""the and for with that this from have has not are was were but can when what how why
which into there their then than also just like use using used get got does did its it's you your they them
would could should will shall may might been being any all some our out about after before over under more
most such only own same very too where while here issue bug please thanks thank""".split())


def storable(text: str) -> str:
    """Text both databases accept: no NUL characters, no lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def scrub_issue_text(payload: dict[str, Any]) -> dict[str, Any]:
    """A stored delivery without the issue's and comment's text (the issue was deleted)."""
    data = payload.get("data")
    if isinstance(data, dict):
        for part in ("issue", "comment", "changes"):
            value = data.get(part)
            if isinstance(value, dict):
                for field in ("title", "body"):
                    value.pop(field, None)
    return payload


def redact(url: str) -> str:
    """The URL with its password shown as ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def open_store(database_url: str, *, clock: Callable[[], float] = time.time, pool_size: int = 10) -> Store:
    """The store for DATABASE_URL (not yet opened)."""
    if database_url.startswith("sqlite:///"):
        return SqliteStore(database_url[len("sqlite:///"):] or ":memory:", clock=clock)
    if database_url.startswith(("postgresql://", "postgres://")):
        from bot.store.postgres import PostgresStore

        return PostgresStore(database_url, clock=clock, pool_size=pool_size)
    raise StoreError(f"DATABASE_URL {redact(database_url)} is neither sqlite:///PATH nor postgresql://…")


from bot.store.sqlite import SqliteStore  # noqa: E402  (the embedded default; it imports the records above)

__all__ = ["Candidate", "Job", "OutboxFile", "Run", "SpecRecord", "SqliteStore", "Store", "StoreError", "open_store"]
