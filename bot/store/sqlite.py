"""The embedded store: SQLite in WAL mode behind one connection per process.

Several processes may share the file (`web` plus `worker`s on one machine): every read-then-write
runs under `BEGIN IMMEDIATE`, which takes SQLite's write lock first, so two processes never
claim the same job or the same write slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import sqlite3
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, TypeVar

import aiosqlite

from bot.assessment import Candidate
from bot.store import (HOLD_KINDS, RUN_COLUMNS, RUN_STATUSES, Job, OutboxFile, Run, SpecRecord, StoreError,
                       fts_words, scrub_issue_text, storable)
from bot.store import migrations
from bot.writelimit import WriteLimit, reserve

T = TypeVar("T")
FINISHED_RUNS = "('done', 'failed', 'cancelled')"


def _serialized(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """One statement group at a time on the shared connection, so transactions never interleave."""

    @functools.wraps(method)
    async def wrapper(self: "SqliteStore", *args: Any, **kwargs: Any) -> T:
        async with self._lock:
            return await method(self, *args, **kwargs)

    return wrapper


def _run(row: Any) -> Run:
    return Run(int(row[0]), row[1], int(row[2]), row[3], int(row[4]), row[5], row[6], json.loads(row[7]),
               int(row[8]), float(row[9]), float(row[10]))


class SqliteStore:
    """SQLite in WAL mode behind one connection; every method is one short transaction."""

    backend = "sqlite"

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
        try:
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA synchronous=NORMAL")
            await self._db.execute("PRAGMA busy_timeout=5000")
            await self._migrate()
        except sqlite3.Error as exc:
            await self.close()
            raise StoreError(str(exc)) from None

    async def _migrate(self) -> None:
        async with self._write() as db:
            await db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                             "name TEXT NOT NULL, applied_at REAL NOT NULL)")
            async with db.execute("SELECT version FROM schema_migrations") as cur:
                applied = {row[0] for row in await cur.fetchall()}
            for migration in migrations.load("sqlite"):
                if migration.version in applied:
                    continue
                for statement in migrations.statements(migration.sql):
                    await db.execute(statement)
                await db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                                 (migration.version, migration.name, time.time()))

    async def schema_version(self) -> int:
        async with self.db.execute("SELECT MAX(version) FROM schema_migrations") as cur:
            row = await cur.fetchone()
        return int(row[0] or 0)

    async def close(self) -> None:
        if self._committer is not None and not self._committer.done():
            await asyncio.wait([self._committer], timeout=5)
        if self._db is not None:
            await self._db.close()
            self._db = None

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """A transaction holding SQLite's write lock from its first statement (other processes wait)."""
        db = self.db
        await db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        await db.execute("COMMIT")

    @_serialized
    async def ping(self) -> bool:
        try:
            async with self.db.execute("SELECT 1") as cur:
                return (await cur.fetchone()) == (1,)
        except Exception:  # noqa: BLE001 - any failure means "not healthy"
            return False

    @_serialized
    async def probe(self) -> str | None:
        try:
            async with self._write() as db:
                await db.execute("UPDATE health SET at = ? WHERE id = 1", (self.clock(),))
            return None
        except Exception as exc:  # noqa: BLE001 - any failure means "cannot write"
            return f"cannot write: {str(exc)[:200]}"

    def listen(self, wake: Callable[[], None]) -> None:
        """SQLite cannot tell other processes; `serve` wakes its own workers, other processes poll."""

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
        async with self._write() as db:
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
        return fresh

    @_serialized
    async def enqueue(self, kind: str, key: str, payload: dict[str, Any], *, installation_id: int | None,
                      delay: float = 0.0, unique: bool = False) -> bool:
        """Queue a job; with `unique`, not when a job of that kind and key is already waiting."""
        now = self.clock()
        async with self._write() as db:
            if unique:
                async with db.execute("SELECT 1 FROM jobs WHERE kind = ? AND key = ? AND status = 'queued'",
                                      (kind, key)) as cur:
                    if await cur.fetchone():
                        return False
            await db.execute("INSERT INTO jobs (kind, key, payload, installation_id, run_after, created_at) "
                             "VALUES (?, ?, ?, ?, ?, ?)",
                             (kind, key, json.dumps(payload), installation_id, now + delay, now))
        return True

    @_serialized
    async def claim(self, limit: int, lease: float, *, exclude_keys: Iterable[str] = ()) -> list[Job]:
        """Lease up to `limit` ready jobs (queued and due, or running with an expired lease), oldest first,
        at most one per key, and none whose key has a job under a live lease (in any process)."""
        now = self.clock()
        excluded = list(exclude_keys)
        placeholders = ",".join("?" * len(excluded)) or "''"
        async with self._write() as db:
            # A job whose lease ran out goes first: it is still 'running' and holds its key.
            async with db.execute(
                    f"""SELECT id, key FROM jobs
                        WHERE ((status = 'queued' AND run_after <= ?) OR (status = 'running' AND lease_until < ?))
                          AND key NOT IN (SELECT key FROM jobs WHERE status = 'running' AND lease_until >= ?)
                          AND key NOT IN ({placeholders})
                        ORDER BY status = 'queued', run_after, id LIMIT ?""",
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
            async with db.execute(
                    f"""UPDATE jobs SET status = 'running', lease_until = ?, attempts = attempts + 1
                        WHERE id IN ({marks})
                          AND (status = 'queued' OR (status = 'running' AND lease_until < ?))
                        RETURNING id, kind, key, payload, installation_id, attempts, created_at""",
                    (now + lease, *ids, now)) as cur:
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
        sql = "UPDATE jobs SET status = 'queued', attempts = 0, run_after = ?, finished_at = NULL WHERE status = 'dead'"
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

    # ------------------------------------------------------------------ retention
    @_serialized
    async def prune(self, *, finished_before: float, dead_before: float) -> dict[str, int]:
        day = time.strftime("%Y-%m-%d", time.gmtime(finished_before))
        statements = {
            "deliveries": ("DELETE FROM deliveries WHERE received_at < ?", (finished_before,)),
            "jobs": ("DELETE FROM jobs WHERE status = 'done' AND finished_at < ?", (finished_before,)),
            "dead_jobs": ("DELETE FROM jobs WHERE status = 'dead' AND finished_at < ?", (dead_before,)),
            "outbox": ("DELETE FROM outbox WHERE committed = 1 AND committed_at < ?", (finished_before,)),
            "runs": (f"DELETE FROM runs WHERE status IN {FINISHED_RUNS} AND updated_at < ?", (finished_before,)),
            "spend": ("DELETE FROM spend WHERE day < ?", (day,)),
        }
        counts = {}
        async with self._write() as db:
            for name, (sql, args) in statements.items():
                cur = await db.execute(sql, args)
                counts[name] = cur.rowcount
        return counts

    @_serialized
    async def forget_issue(self, repo: str, number: int) -> None:
        key = f"{repo}#{number}"
        async with self._write() as db:
            for table in ("issue_index", "issue_state", "runs"):
                await db.execute(f"DELETE FROM {table} WHERE repo = ? AND number = ?", (repo, number))
            await db.execute("DELETE FROM issue_fts WHERE repo = ? AND number = ?", (repo, number))
            await db.execute("DELETE FROM jobs WHERE key = ? AND status != 'running'", (key,))
            async with db.execute("SELECT id, payload FROM jobs WHERE key = ?", (key,)) as cur:
                running = await cur.fetchall()
            for job_id, payload in running:
                await db.execute("UPDATE jobs SET payload = ? WHERE id = ?",
                                 (json.dumps(scrub_issue_text(json.loads(payload))), job_id))

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
        title, body = storable(title), storable(body[:20000])
        async with self._write() as db:
            await db.execute("INSERT INTO issue_index (repo, number, title, body, state, category) "
                             "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (repo, number) DO UPDATE SET "
                             "title = excluded.title, body = excluded.body, state = excluded.state, "
                             "category = COALESCE(excluded.category, issue_index.category)",
                             (repo, number, title, body, state, category))
            await db.execute("DELETE FROM issue_fts WHERE repo = ? AND number = ?", (repo, number))
            await db.execute("INSERT INTO issue_fts (repo, number, title, body) VALUES (?, ?, ?, ?)",
                             (repo, number, title, body))

    @_serialized
    async def similar_issues(self, repo: str, text: str, *, exclude: int, limit: int = 5) -> list[Candidate]:
        """Full-text candidates for duplicates, best first (bm25, title weighted up)."""
        query = " OR ".join(f'"{w}"' for w in fts_words(text))
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
        now = self.clock()
        await self.db.executemany("UPDATE outbox SET committed = 1, committed_at = ? WHERE id = ?",
                                  [(now, i) for i in ids])

    # ------------------------------------------------------------------ stage runs and spend
    @_serialized
    async def start_run(self, repo: str, number: int, stage: str, installation_id: int,
                        data: dict[str, Any]) -> Run | None:
        now = self.clock()
        async with self.db.execute(
                f"INSERT OR IGNORE INTO runs (repo, number, stage, installation_id, status, data, created_at, "
                f"updated_at) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?) RETURNING {RUN_COLUMNS}",
                (repo, number, stage, installation_id, json.dumps(data), now, now)) as cur:
            row = await cur.fetchone()
        return _run(row) if row else None

    @_serialized
    async def get_run(self, run_id: int) -> Run | None:
        async with self.db.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)) as cur:
            row = await cur.fetchone()
        return _run(row) if row else None

    @_serialized
    async def save_run(self, run: Run, *, status: str, data: dict[str, Any], waiting_sha: str | None) -> Run | None:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        try:
            async with self.db.execute(
                    f"UPDATE runs SET status = ?, data = ?, waiting_sha = ?, version = version + 1, updated_at = ? "
                    f"WHERE id = ? AND version = ? RETURNING {RUN_COLUMNS}",
                    (status, json.dumps(data), waiting_sha, self.clock(), run.id, run.version)) as cur:
                row = await cur.fetchone()
        except sqlite3.IntegrityError:  # made active again while another run of the stage is active
            return None
        return _run(row) if row else None

    @_serialized
    async def runs_for_issue(self, repo: str, number: int) -> list[Run]:
        async with self.db.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE repo = ? AND number = ? ORDER BY id",
                                   (repo, number)) as cur:
            return [_run(r) for r in await cur.fetchall()]

    @_serialized
    async def runs_waiting_for(self, repo: str, sha: str) -> list[Run]:
        async with self.db.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE repo = ? AND waiting_sha = ? "
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

    # ------------------------------------------------------------------ GitHub's limits
    @_serialized
    async def reserve_write(self, installation_id: int, limits: tuple[WriteLimit, ...], margin: float) -> float:
        async with self._write() as db:
            async with db.execute("SELECT stamps, writes_until FROM github_limits WHERE installation_id = ?",
                                  (installation_id,)) as cur:
                row = await cur.fetchone()
            stamps, blocked = (json.loads(row[0]), row[1]) if row else ([], 0.0)
            at, kept = reserve(stamps, limits, self.clock(), margin, blocked)
            await db.execute("INSERT INTO github_limits (installation_id, stamps) VALUES (?, ?) "
                             "ON CONFLICT (installation_id) DO UPDATE SET stamps = excluded.stamps",
                             (installation_id, json.dumps(kept)))
        return at

    @_serialized
    async def hold(self, installation_id: int, kind: str, until: float) -> None:
        if kind not in HOLD_KINDS:
            raise ValueError(f"unknown hold {kind!r}")
        column = f"{kind}_until"
        await self.db.execute(f"INSERT INTO github_limits (installation_id, {column}) VALUES (?, ?) "
                              f"ON CONFLICT (installation_id) DO UPDATE SET {column} = MAX({column}, excluded.{column})",
                              (installation_id, until))

    @_serialized
    async def holds(self, installation_id: int) -> dict[str, float]:
        async with self.db.execute("SELECT writes_until, requests_until, tokens_until FROM github_limits "
                                   "WHERE installation_id = ?", (installation_id,)) as cur:
            row = await cur.fetchone()
        if not row:
            return {}
        return {kind: value for kind, value in zip(("writes", "requests", "tokens"), row) if value}

    # ------------------------------------------------------------------ copying (python -m bot migrate)
    @_serialized
    async def read_rows(self, table: str, columns: tuple[str, ...], order: str, offset: int,
                        limit: int) -> list[tuple]:
        async with self.db.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order} LIMIT ? OFFSET ?",
                                   (limit, offset)) as cur:
            return [tuple(r) for r in await cur.fetchall()]

    @_serialized
    async def write_rows(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        marks = ", ".join("?" * len(columns))
        async with self._write() as db:
            await db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
            if table == "issue_index":
                at = columns.index
                await db.executemany("INSERT INTO issue_fts (repo, number, title, body) VALUES (?, ?, ?, ?)",
                                     [(r[at("repo")], r[at("number")], r[at("title")], r[at("body")]) for r in rows])

    @_serialized
    async def row_count(self, table: str) -> int:
        async with self.db.execute(f"SELECT COUNT(*) FROM {table}") as cur:
            row = await cur.fetchone()
        return int(row[0])


__all__ = ["SqliteStore"]
