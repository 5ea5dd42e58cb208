"""The durable store and job queue: deliveries, jobs with leases, the issue index, per-issue state.

This is the only module with SQL. `open_store(url)` picks the backend from DATABASE_URL; SQLite
(WAL) is the embedded default.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, TypeVar

import aiosqlite

from bot.assessment import Candidate

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY, event TEXT NOT NULL, action TEXT, received_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, key TEXT NOT NULL, payload TEXT NOT NULL,
    installation_id INTEGER, status TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT NULL DEFAULT 0,
    run_after REAL NOT NULL, lease_until REAL, last_error TEXT, created_at REAL NOT NULL, finished_at REAL);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (status, run_after);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs (key, status);
CREATE TABLE IF NOT EXISTS issue_state (
    repo TEXT NOT NULL, number INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (repo, number));
CREATE TABLE IF NOT EXISTS issue_index (
    repo TEXT NOT NULL, number INTEGER NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL,
    state TEXT NOT NULL, category TEXT, PRIMARY KEY (repo, number));
CREATE VIRTUAL TABLE IF NOT EXISTS issue_fts USING fts5(repo UNINDEXED, number UNINDEXED, title, body);
CREATE TABLE IF NOT EXISTS spec_seq (repo TEXT NOT NULL, day TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (repo, day));
CREATE TABLE IF NOT EXISTS specs (
    repo TEXT NOT NULL, number INTEGER NOT NULL, stage TEXT NOT NULL, spec_id TEXT NOT NULL,
    path TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (repo, number, stage));
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, repo TEXT NOT NULL, installation_id INTEGER NOT NULL,
    branch TEXT NOT NULL, path TEXT NOT NULL, content TEXT NOT NULL, committed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS repo_meta (repo TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (repo, key));
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, repo TEXT NOT NULL, number INTEGER NOT NULL, stage TEXT NOT NULL,
    installation_id INTEGER NOT NULL, status TEXT NOT NULL, waiting_sha TEXT, data TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS runs_active ON runs (repo, number, stage)
    WHERE status IN ('queued', 'running', 'waiting_ci');
CREATE INDEX IF NOT EXISTS runs_waiting ON runs (repo, waiting_sha) WHERE status = 'waiting_ci';
CREATE TABLE IF NOT EXISTS spend (installation_id INTEGER NOT NULL, day TEXT NOT NULL, usd REAL NOT NULL,
    PRIMARY KEY (installation_id, day));
"""


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
    """A stage run: its state, the commit it waits for, and its checkpoint."""

    id: int
    repo: str
    number: int
    stage: str
    installation_id: int
    status: str  # queued | running | waiting_ci | done | failed | cancelled
    waiting_sha: str | None
    data: dict[str, Any]
    version: int
    created_at: float
    updated_at: float


_RUN_COLUMNS = "id, repo, number, stage, installation_id, status, waiting_sha, data, version, created_at, updated_at"


def _run(row: Any) -> Run:
    return Run(row[0], row[1], row[2], row[3], row[4], row[5], row[6], json.loads(row[7]), row[8], row[9], row[10])


class StoreError(Exception):
    """The database could not be used."""


def _fts_query(text: str) -> str:
    # 24 distinct words are all the query uses; the first few thousand characters hold them.
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z0-9_]{2,}", text[:4000].lower()) if w not in _STOP][:24]
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


_STOP = frozenset("""the and for with that this from have has not are was were but can when what how why
which into there their then than also just like use using used get got does did its it's you your they them
would could should will shall may might been being any all some our out about after before over under more
most such only own same very too where while here issue bug please thanks thank""".split())


T = TypeVar("T")


def _serialized(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """One statement group at a time on the shared connection, so transactions never interleave."""

    @functools.wraps(method)
    async def wrapper(self: "SqliteStore", *args: Any, **kwargs: Any) -> T:
        async with self._lock:
            return await method(self, *args, **kwargs)

    return wrapper


class SqliteStore:
    """SQLite in WAL mode behind one connection; every method is one short transaction."""

    def __init__(self, path: str, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._arrivals: list[tuple[tuple, asyncio.Future]] = []
        self._committer: asyncio.Task | None = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("the store is not open")
        return self._db

    async def open(self) -> None:
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._db.execute("PRAGMA busy_timeout=5000")
        await self._db.executescript(SCHEMA)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @_serialized
    async def ping(self) -> bool:
        try:
            async with self.db.execute("SELECT 1") as cur:
                return (await cur.fetchone()) == (1,)
        except Exception:  # noqa: BLE001 - any failure means "not healthy"
            return False

    # ------------------------------------------------------------------ deliveries and jobs
    async def accept_delivery(self, delivery_id: str, event: str, action: str | None, *, kind: str, key: str,
                              payload: dict[str, Any], installation_id: int | None) -> bool:
        """Store a delivery and queue its job atomically; False when the delivery id was seen before.

        Deliveries that arrive together are committed together (group commit): one transaction
        for a burst instead of one per delivery, and each caller still returns only once its
        delivery is durable.
        """
        done = asyncio.get_running_loop().create_future()
        self._arrivals.append(((delivery_id, event, action, kind, key, json.dumps(payload), installation_id), done))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_arrivals())
        return await done

    async def _commit_arrivals(self) -> None:
        while self._arrivals:
            batch, self._arrivals = self._arrivals[:500], self._arrivals[500:]
            try:
                async with self._lock:
                    stored = await self._store_batch([row for row, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every waiting delivery learns of the failure
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for (row, done), new in zip(batch, stored):
                if not done.done():
                    done.set_result(new)

    async def _store_batch(self, rows: list[tuple]) -> list[bool]:
        now = self.clock()
        db = self.db
        await db.execute("BEGIN IMMEDIATE")
        try:
            values = ",".join("(?, ?, ?, ?)" for _ in rows)
            async with db.execute(f"INSERT OR IGNORE INTO deliveries (id, event, action, received_at) VALUES {values} "
                                  "RETURNING id", [v for r in rows for v in (r[0], r[1], r[2], now)]) as cur:
                inserted = {row[0] for row in await cur.fetchall()}
            fresh: list[bool] = []
            for row in rows:  # the first of several copies of one id in a batch is the new one
                fresh.append(row[0] in inserted)
                inserted.discard(row[0])
            await db.executemany("INSERT INTO jobs (kind, key, payload, installation_id, run_after, created_at) "
                                 "VALUES (?, ?, ?, ?, ?, ?)",
                                 [(r[3], r[4], r[5], r[6], now, now) for r, new in zip(rows, fresh) if new])
            await db.execute("COMMIT")
            return fresh
        except BaseException:
            await db.execute("ROLLBACK")
            raise

    @_serialized
    async def enqueue(self, kind: str, key: str, payload: dict[str, Any], *, installation_id: int | None,
                      delay: float = 0.0, unique: bool = False) -> bool:
        """Queue a job; with `unique`, not when a job of that kind and key is already waiting."""
        now = self.clock()
        if unique:
            async with self.db.execute("SELECT 1 FROM jobs WHERE kind = ? AND key = ? AND status = 'queued'",
                                       (kind, key)) as cur:
                if await cur.fetchone():
                    return False
        await self.db.execute("INSERT INTO jobs (kind, key, payload, installation_id, run_after, created_at) "
                              "VALUES (?, ?, ?, ?, ?, ?)",
                              (kind, key, json.dumps(payload), installation_id, now + delay, now))
        return True

    @_serialized
    async def claim(self, limit: int, lease: float, *, exclude_keys: Iterable[str] = ()) -> list[Job]:
        """Lease up to `limit` ready jobs (queued and due, or running with an expired lease), oldest first,
        at most one per key, and none whose key has a job under a live lease."""
        now = self.clock()
        excluded = list(exclude_keys)
        placeholders = ",".join("?" * len(excluded)) or "''"
        async with self.db.execute(
                f"""SELECT id, key FROM jobs
                    WHERE ((status = 'queued' AND run_after <= ?) OR (status = 'running' AND lease_until < ?))
                      AND key NOT IN (SELECT key FROM jobs WHERE status = 'running' AND lease_until >= ?)
                      AND key NOT IN ({placeholders})
                    ORDER BY run_after, id LIMIT ?""",
                (now, now, now, *excluded, limit * 4)) as cur:
            rows = await cur.fetchall()
        chosen: dict[str, int] = {}
        for job_id, key in rows:
            if key not in chosen and len(chosen) < limit:
                chosen[key] = job_id
        if not chosen:
            return []
        ids = list(chosen.values())
        marks = ",".join("?" * len(ids))
        async with self.db.execute(
                f"""UPDATE jobs SET status = 'running', lease_until = ?, attempts = attempts + 1
                    WHERE id IN ({marks})
                    RETURNING id, kind, key, payload, installation_id, attempts, created_at""",
                (now + lease, *ids)) as cur:
            claimed = await cur.fetchall()
        return [Job(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6]) for r in sorted(claimed)]

    @_serialized
    async def extend(self, job_id: int, lease: float) -> None:
        await self.db.execute("UPDATE jobs SET lease_until = ? WHERE id = ? AND status = 'running'",
                              (self.clock() + lease, job_id))

    @_serialized
    async def finish(self, job_id: int) -> None:
        await self.db.execute("UPDATE jobs SET status = 'done', finished_at = ?, lease_until = NULL WHERE id = ?",
                              (self.clock(), job_id))

    @_serialized
    async def retry_later(self, job_id: int, error: str, delay: float) -> None:
        await self.db.execute("UPDATE jobs SET status = 'queued', run_after = ?, lease_until = NULL, "
                              "last_error = ? WHERE id = ?", (self.clock() + delay, error[:2000], job_id))

    @_serialized
    async def bury(self, job_id: int, error: str) -> None:
        """Keep a job that failed for good, for the operator to inspect or requeue."""
        await self.db.execute("UPDATE jobs SET status = 'dead', finished_at = ?, lease_until = NULL, "
                              "last_error = ? WHERE id = ?", (self.clock(), error[:2000], job_id))

    @_serialized
    async def requeue_dead(self, key: str | None = None) -> int:
        sql = "UPDATE jobs SET status = 'queued', attempts = 0, run_after = ? WHERE status = 'dead'"
        args: tuple = (self.clock(),)
        if key is not None:
            sql, args = sql + " AND key = ?", (*args, key)
        cur = await self.db.execute(sql, args)
        return cur.rowcount

    @_serialized
    async def queue_depth(self) -> dict[str, int]:
        async with self.db.execute("SELECT status, COUNT(*) FROM jobs WHERE status != 'done' GROUP BY status") as cur:
            return {status: count for status, count in await cur.fetchall()}

    @_serialized
    async def next_due(self) -> float | None:
        """When the earliest waiting job becomes due (None: nothing waiting)."""
        async with self.db.execute("SELECT MIN(CASE WHEN status = 'queued' THEN run_after ELSE lease_until END) "
                                   "FROM jobs WHERE status IN ('queued', 'running')") as cur:
            row = await cur.fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------------ per-issue state
    @_serialized
    async def issue_state(self, repo: str, number: int) -> dict[str, Any]:
        async with self.db.execute("SELECT data FROM issue_state WHERE repo = ? AND number = ?",
                                   (repo, number)) as cur:
            row = await cur.fetchone()
        return json.loads(row[0]) if row else {}

    @_serialized
    async def save_issue_state(self, repo: str, number: int, data: dict[str, Any]) -> None:
        await self.db.execute("INSERT INTO issue_state (repo, number, data) VALUES (?, ?, ?) "
                              "ON CONFLICT (repo, number) DO UPDATE SET data = excluded.data",
                              (repo, number, json.dumps(data)))

    # ------------------------------------------------------------------ the issue index
    @_serialized
    async def index_issue(self, repo: str, number: int, title: str, body: str, state: str,
                          category: str | None) -> None:
        db = self.db
        await db.execute("BEGIN IMMEDIATE")
        try:
            await db.execute("INSERT INTO issue_index (repo, number, title, body, state, category) "
                             "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (repo, number) DO UPDATE SET "
                             "title = excluded.title, body = excluded.body, state = excluded.state, "
                             "category = COALESCE(excluded.category, issue_index.category)",
                             (repo, number, title, body[:20000], state, category))
            await db.execute("DELETE FROM issue_fts WHERE repo = ? AND number = ?", (repo, number))
            await db.execute("INSERT INTO issue_fts (repo, number, title, body) VALUES (?, ?, ?, ?)",
                             (repo, number, title, body[:20000]))
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise

    @_serialized
    async def similar_issues(self, repo: str, text: str, *, exclude: int, limit: int = 5) -> list[Candidate]:
        """Full-text candidates for duplicates, best first (bm25, title weighted up)."""
        query = _fts_query(text)
        if not query:
            return []
        async with self.db.execute(
                "SELECT f.number, i.title, i.body, i.state, bm25(issue_fts, 0, 0, 4.0, 1.0) AS rank "
                "FROM issue_fts f JOIN issue_index i ON i.repo = f.repo AND i.number = f.number "
                "WHERE issue_fts MATCH ? AND f.repo = ? AND f.number != ? ORDER BY rank LIMIT ?",
                (query, repo, exclude, limit)) as cur:
            rows = await cur.fetchall()
        return [Candidate(number=int(r[0]), title=r[1], body=r[2][:1000], state=r[3], score=-float(r[4]))
                for r in rows]

    @_serialized
    async def history(self, repo: str, *, limit: int = 5000) -> list[tuple[str, str, str]]:
        """(title, body, category) of the repository's labelled issues, newest first."""
        async with self.db.execute("SELECT title, body, category FROM issue_index WHERE repo = ? "
                                   "AND category IS NOT NULL ORDER BY number DESC LIMIT ?", (repo, limit)) as cur:
            return [(r[0], r[1], r[2]) for r in await cur.fetchall()]

    @_serialized
    async def history_size(self, repo: str) -> int:
        async with self.db.execute("SELECT COUNT(*) FROM issue_index WHERE repo = ? AND category IS NOT NULL",
                                   (repo,)) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    @_serialized
    async def repo_meta(self, repo: str, key: str) -> str | None:
        async with self.db.execute("SELECT value FROM repo_meta WHERE repo = ? AND key = ?", (repo, key)) as cur:
            row = await cur.fetchone()
        return row[0] if row else None

    @_serialized
    async def set_repo_meta(self, repo: str, key: str, value: str) -> None:
        await self.db.execute("INSERT INTO repo_meta (repo, key, value) VALUES (?, ?, ?) ON CONFLICT (repo, key) "
                              "DO UPDATE SET value = excluded.value", (repo, key, value))

    # ------------------------------------------------------------------ specs
    @_serialized
    async def next_spec_seq(self, repo: str, day: str) -> int:
        async with self.db.execute("INSERT INTO spec_seq (repo, day, seq) VALUES (?, ?, 1) ON CONFLICT (repo, day) "
                                   "DO UPDATE SET seq = seq + 1 RETURNING seq", (repo, day)) as cur:
            row = await cur.fetchone()
        return int(row[0])

    @_serialized
    async def spec_for(self, repo: str, number: int, stage: str) -> SpecRecord | None:
        async with self.db.execute("SELECT stage, spec_id, path, status FROM specs WHERE repo = ? AND number = ? "
                                   "AND stage = ?", (repo, number, stage)) as cur:
            row = await cur.fetchone()
        return SpecRecord(*row) if row else None

    @_serialized
    async def specs(self, repo: str, number: int) -> list[SpecRecord]:
        async with self.db.execute("SELECT stage, spec_id, path, status FROM specs WHERE repo = ? AND number = ? "
                                   "ORDER BY created_at", (repo, number)) as cur:
            return [SpecRecord(*r) for r in await cur.fetchall()]

    @_serialized
    async def record_spec(self, repo: str, number: int, record: SpecRecord) -> None:
        await self.db.execute("INSERT INTO specs (repo, number, stage, spec_id, path, status, created_at) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repo, number, stage) DO UPDATE SET "
                              "status = excluded.status",
                              (repo, number, record.stage, record.spec_id, record.path, record.status, self.clock()))

    @_serialized
    async def queue_files(self, repo: str, installation_id: int, branch: str, files: dict[str, str]) -> None:
        """Files waiting to be committed to the specs branch (several issues' go into one commit)."""
        await self.db.executemany("INSERT INTO outbox (repo, installation_id, branch, path, content) "
                                  "VALUES (?, ?, ?, ?, ?)",
                                  [(repo, installation_id, branch, p, c) for p, c in files.items()])

    @_serialized
    async def pending_files(self, repo: str) -> list[OutboxFile]:
        async with self.db.execute("SELECT id, path, content, branch FROM outbox WHERE repo = ? AND committed = 0 "
                                   "ORDER BY id", (repo,)) as cur:
            return [OutboxFile(*r) for r in await cur.fetchall()]

    @_serialized
    async def mark_committed(self, ids: Iterable[int]) -> None:
        await self.db.executemany("UPDATE outbox SET committed = 1 WHERE id = ?", [(i,) for i in ids])

    # ------------------------------------------------------------------ stage runs
    @_serialized
    async def start_run(self, repo: str, number: int, stage: str, installation_id: int,
                        data: dict[str, Any]) -> Run | None:
        now = self.clock()
        try:
            async with self.db.execute(
                    f"INSERT INTO runs (repo, number, stage, installation_id, status, data, created_at, updated_at) "
                    f"VALUES (?, ?, ?, ?, 'queued', ?, ?, ?) RETURNING {_RUN_COLUMNS}",
                    (repo, number, stage, installation_id, json.dumps(data), now, now)) as cur:
                return _run(await cur.fetchone())
        except aiosqlite.IntegrityError:
            return None

    @_serialized
    async def get_run(self, run_id: int) -> Run | None:
        async with self.db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)) as cur:
            row = await cur.fetchone()
        return _run(row) if row else None

    @_serialized
    async def save_run(self, run: Run, *, status: str, data: dict[str, Any], waiting_sha: str | None) -> Run | None:
        async with self.db.execute(
                f"UPDATE runs SET status = ?, data = ?, waiting_sha = ?, version = version + 1, updated_at = ? "
                f"WHERE id = ? AND version = ? RETURNING {_RUN_COLUMNS}",
                (status, json.dumps(data), waiting_sha, self.clock(), run.id, run.version)) as cur:
            row = await cur.fetchone()
        return _run(row) if row else None

    @_serialized
    async def runs_for_issue(self, repo: str, number: int) -> list[Run]:
        async with self.db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE repo = ? AND number = ? ORDER BY id",
                                   (repo, number)) as cur:
            return [_run(r) for r in await cur.fetchall()]

    @_serialized
    async def runs_waiting_for(self, repo: str, sha: str) -> list[Run]:
        async with self.db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE repo = ? AND waiting_sha = ? "
                                   "AND status = 'waiting_ci' ORDER BY id", (repo, sha)) as cur:
            return [_run(r) for r in await cur.fetchall()]

    @_serialized
    async def add_spend(self, installation_id: int, day: str, usd: float) -> float:
        async with self.db.execute("INSERT INTO spend (installation_id, day, usd) VALUES (?, ?, ?) "
                                   "ON CONFLICT (installation_id, day) DO UPDATE SET usd = usd + excluded.usd "
                                   "RETURNING usd", (installation_id, day, usd)) as cur:
            row = await cur.fetchone()
        return float(row[0])

    @_serialized
    async def spend(self, installation_id: int, day: str) -> float:
        async with self.db.execute("SELECT usd FROM spend WHERE installation_id = ? AND day = ?",
                                   (installation_id, day)) as cur:
            row = await cur.fetchone()
        return float(row[0]) if row else 0.0


Store = SqliteStore


def open_store(database_url: str, *, clock: Callable[[], float] = time.time) -> SqliteStore:
    """The store for DATABASE_URL (not yet opened)."""
    if database_url.startswith("sqlite:///"):
        return SqliteStore(database_url[len("sqlite:///"):] or ":memory:", clock=clock)
    raise StoreError(f"DATABASE_URL {database_url.split(':', 1)[0]}:… is not supported yet; use sqlite:///PATH")
