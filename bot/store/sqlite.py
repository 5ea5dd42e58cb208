"""The embedded store: SQLite in WAL mode, one connection per process, on a thread of its own.

Each store method runs as one call on that thread (every statement of it, and its transaction),
so the event loop pays one hand-over per method rather than one per statement. Full-text search,
a read that takes milliseconds, runs on a second, read-only connection and thread: WAL lets it read
while the first one writes, so no job claim or write slot waits behind a search. Several
processes may share the file (`web` plus `worker`s on one machine): every read-then-write runs
under `BEGIN IMMEDIATE`, which takes SQLite's write lock first, so two processes never claim the
same job or the same write slot.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import sqlite3
import time
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from bot.issuetext import Candidate
from bot.store import (HOLD_KINDS, RUN_COLUMNS, RUN_STATUSES, Job, OutboxFile, Run, SpecRecord, StoreError,
                       fts_words, scrub_issue_text, storable)
from bot.store import migrations
from bot.writelimit import WriteLimit, admit, count_from_answer, reserve

T = TypeVar("T")
FINISHED_RUNS = "('done', 'failed', 'cancelled')"


def _run(row: Any) -> Run:
    return Run(int(row[0]), row[1], int(row[2]), row[3], int(row[4]), row[5], row[6], json.loads(row[7]),
               int(row[8]), float(row[9]), float(row[10]))


@contextlib.contextmanager
def _write(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A transaction holding SQLite's write lock from its first statement (other processes wait)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class SqliteStore:
    """SQLite in WAL mode behind one connection on one thread; every method is one short transaction."""

    backend = "sqlite"

    def __init__(self, path: str, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._db: sqlite3.Connection | None = None
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        self._searcher: tuple[concurrent.futures.ThreadPoolExecutor, sqlite3.Connection] | None = None
        self._arrivals: list[tuple[tuple, asyncio.Future]] = []
        self._committer: asyncio.Task | None = None

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` on the store's thread; the unit of work of every method."""
        if self._thread is None or self._db is None:
            raise StoreError("the store is not open")
        db = self._db
        result = await asyncio.get_running_loop().run_in_executor(self._thread, fn, db)
        if isinstance(result, sqlite3.Cursor):
            # A cursor freed on this thread resets its statement while the store's thread is using
            # the connection: SQLite answers that with "bad parameter or other API misuse".
            raise TypeError("a store call returned a cursor; return its rows or its rowcount")
        return result

    async def search(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run the read `fn(connection)` on the search thread (the store's own one for a database in memory,
        which a second connection would not see)."""
        if self._searcher is None:
            return await self.call(fn)
        thread, db = self._searcher
        return await asyncio.get_running_loop().run_in_executor(thread, fn, db)

    async def open(self) -> None:
        self._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")

        def connect() -> sqlite3.Connection:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            return db

        def connect_reader() -> sqlite3.Connection:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA query_only=ON")
            db.execute("PRAGMA busy_timeout=5000")
            return db

        try:
            self._db = await asyncio.get_running_loop().run_in_executor(self._thread, connect)
            await self.call(self._migrate)
            if self.path != ":memory:":
                searcher = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-search")
                self._searcher = (searcher, await asyncio.get_running_loop().run_in_executor(searcher,
                                                                                             connect_reader))
        except sqlite3.Error as exc:
            await self.close()
            raise StoreError(str(exc)) from None

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        with _write(db):
            db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                       "name TEXT NOT NULL, applied_at REAL NOT NULL)")
            applied = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
            for migration in migrations.load("sqlite"):
                if migration.version in applied:
                    continue
                for statement in migrations.statements(migration.sql):
                    db.execute(statement)
                db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                           (migration.version, migration.name, time.time()))

    async def schema_version(self) -> int:
        return await self.call(lambda db: int(db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]
                                              or 0))

    async def close(self) -> None:
        if self._committer is not None and not self._committer.done():
            await asyncio.wait([self._committer], timeout=5)
        thread, db = self._thread, self._db
        self._thread, self._db = None, None
        if self._searcher is not None:
            searcher, reader = self._searcher
            self._searcher = None
            await asyncio.get_running_loop().run_in_executor(searcher, reader.close)
            searcher.shutdown(wait=True)
        if thread is not None:
            if db is not None:
                await asyncio.get_running_loop().run_in_executor(thread, db.close)
            thread.shutdown(wait=True)

    async def ping(self) -> bool:
        try:
            return await self.call(lambda db: db.execute("SELECT 1").fetchone() == (1,))
        except Exception:  # noqa: BLE001 - any failure means "not healthy"
            return False

    async def probe(self) -> str | None:
        now = self.clock()

        def write(db: sqlite3.Connection) -> None:
            with _write(db):
                db.execute("UPDATE health SET at = ? WHERE id = 1", (now,))

        try:
            await self.call(write)
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
                stored = await self.call(functools.partial(self._store_batch, [row for row, _ in batch],
                                                           self.clock()))
            except Exception as exc:  # noqa: BLE001 - every waiting delivery learns of the failure
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for (row, done), new in zip(batch, stored):
                if not done.done():
                    done.set_result(new)

    @staticmethod
    def _store_batch(rows: list[tuple], now: float, db: sqlite3.Connection) -> list[bool]:
        with _write(db):
            values = ",".join("(?, ?, ?, ?)" for _ in rows)
            inserted = {row[0] for row in db.execute(
                f"INSERT OR IGNORE INTO deliveries (id, event, action, received_at) VALUES {values} RETURNING id",
                [v for r in rows for v in (r[0], r[1], r[2], now)]).fetchall()}
            fresh: list[bool] = []
            for row in rows:  # the first of several copies of one id in a batch is the new one
                fresh.append(row[0] in inserted)
                inserted.discard(row[0])
            db.executemany("INSERT INTO jobs (kind, key, payload, installation_id, run_after, created_at) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           [(r[3], r[4], r[5], r[6], now, now) for r, new in zip(rows, fresh) if new])
        return fresh

    async def enqueue(self, kind: str, key: str, payload: dict[str, Any], *, installation_id: int | None,
                      delay: float = 0.0, unique: bool = False) -> bool:
        """Queue a job; with `unique`, not when a job of that kind and key is already waiting."""
        now, text = self.clock(), json.dumps(payload)

        def insert(db: sqlite3.Connection) -> bool:
            with _write(db):
                if unique and db.execute("SELECT 1 FROM jobs WHERE kind = ? AND key = ? AND status = 'queued'",
                                         (kind, key)).fetchone():
                    return False
                db.execute("INSERT INTO jobs (kind, key, payload, installation_id, run_after, created_at) "
                           "VALUES (?, ?, ?, ?, ?, ?)", (kind, key, text, installation_id, now + delay, now))
            return True

        return await self.call(insert)

    async def claim(self, limit: int, lease: float, *, exclude_keys: Iterable[str] = ()) -> list[Job]:
        """Lease up to `limit` ready jobs (queued and due, or running with an expired lease), oldest first,
        at most one per key, and none whose key has a job under a live lease (in any process)."""
        now = self.clock()
        excluded = list(exclude_keys)
        placeholders = ",".join("?" * len(excluded)) or "''"

        def take(db: sqlite3.Connection) -> list[tuple]:
            with _write(db):
                # A running job holds its key; once its lease runs out, only that job may be taken again.
                # Queued and expired jobs are read apart, each along an index, and merged here: one query
                # with an OR read every job the table holds, finished ones included (3 ms a claim in a burst).
                rows = []
                for ready in ("status = 'queued' AND run_after <= ?", "status = 'running' AND lease_until < ?"):
                    rows += db.execute(
                        f"""SELECT run_after, id, key FROM jobs j WHERE {ready}
                              AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.key = j.key AND r.status = 'running'
                                              AND r.id != j.id)
                              AND key NOT IN ({placeholders})
                            ORDER BY run_after, id LIMIT ?""",
                        (now, *excluded, limit * 4)).fetchall()
                rows = [(job_id, key) for _, job_id, key in sorted(rows)[:limit * 4]]
                chosen: dict[str, int] = {}
                for job_id, key in rows:
                    if key not in chosen and len(chosen) < limit:
                        chosen[key] = job_id
                if not chosen:
                    return []
                ids = list(chosen.values())
                return db.execute(
                    f"""UPDATE jobs SET status = 'running', lease_until = ?, attempts = attempts + 1
                        WHERE id IN ({",".join("?" * len(ids))})
                          AND (status = 'queued' OR (status = 'running' AND lease_until < ?))
                        RETURNING id, kind, key, payload, installation_id, attempts, created_at""",
                    (now + lease, *ids, now)).fetchall()

        claimed = await self.call(take)
        return [Job(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6]) for r in sorted(claimed)]

    async def _execute(self, sql: str, args: tuple = ()) -> int:
        """One statement (autocommit); how many rows it changed."""
        return await self.call(lambda db: db.execute(sql, args).rowcount)

    async def _fetchone(self, sql: str, args: tuple = ()) -> tuple | None:
        rows = await self._fetchall(sql, args)  # to the end: an INSERT … RETURNING is then complete
        return rows[0] if rows else None

    async def _fetchall(self, sql: str, args: tuple = ()) -> list[tuple]:
        return await self.call(lambda db: db.execute(sql, args).fetchall())

    async def extend(self, job_id: int, lease: float) -> None:
        await self._execute("UPDATE jobs SET lease_until = ? WHERE id = ? AND status = 'running'",
                            (self.clock() + lease, job_id))

    async def finish(self, job_id: int) -> None:
        await self._execute("UPDATE jobs SET status = 'done', finished_at = ?, lease_until = NULL WHERE id = ?",
                            (self.clock(), job_id))

    async def retry_later(self, job_id: int, error: str, delay: float) -> None:
        await self._execute("UPDATE jobs SET status = 'queued', run_after = ?, lease_until = NULL, last_error = ? "
                            "WHERE id = ?", (self.clock() + delay, error[:2000], job_id))

    async def bury(self, job_id: int, error: str) -> None:
        """Keep a job that failed for good, for the operator to inspect or requeue."""
        await self._execute("UPDATE jobs SET status = 'dead', finished_at = ?, lease_until = NULL, last_error = ? "
                            "WHERE id = ?", (self.clock(), error[:2000], job_id))

    async def requeue_dead(self, key: str | None = None) -> int:
        sql = "UPDATE jobs SET status = 'queued', attempts = 0, run_after = ?, finished_at = NULL WHERE status = 'dead'"
        args: tuple = (self.clock(),)
        if key is not None:
            sql, args = sql + " AND key = ?", (*args, key)
        return await self._execute(sql, args)

    async def queue_depth(self) -> dict[str, int]:
        rows = await self._fetchall("SELECT status, COUNT(*) FROM jobs WHERE status IN ('queued', 'running', 'dead') "
                                    "GROUP BY status")
        return {status: count for status, count in rows}

    async def jobs_under_way(self, kind: str, key_prefix: str) -> int:
        row = await self._fetchone("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running') AND kind = ? "
                                   "AND substr(key, 1, ?) = ? AND (status = 'running' OR run_after <= ?)",
                                   (kind, len(key_prefix), key_prefix, self.clock()))
        return int(row[0]) if row else 0

    async def next_due(self) -> float | None:
        """When the earliest waiting job becomes due (None: nothing waiting)."""
        row = await self._fetchone("SELECT MIN(CASE WHEN status = 'queued' THEN run_after ELSE lease_until END) "
                                   "FROM jobs WHERE status IN ('queued', 'running')")
        return row[0] if row else None

    # ------------------------------------------------------------------ retention
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

        def delete(db: sqlite3.Connection) -> dict[str, int]:
            with _write(db):
                return {name: db.execute(sql, args).rowcount for name, (sql, args) in statements.items()}

        return await self.call(delete)

    async def forget_issue(self, repo: str, number: int) -> None:
        key = f"{repo}#{number}"

        def forget(db: sqlite3.Connection) -> None:
            with _write(db):
                for table in ("issue_index", "issue_state", "runs", "issue_fts"):
                    db.execute(f"DELETE FROM {table} WHERE repo = ? AND number = ?", (repo, number))
                db.execute("DELETE FROM jobs WHERE key = ? AND status != 'running'", (key,))
                for job_id, payload in db.execute("SELECT id, payload FROM jobs WHERE key = ?", (key,)).fetchall():
                    db.execute("UPDATE jobs SET payload = ? WHERE id = ?",
                               (json.dumps(scrub_issue_text(json.loads(payload))), job_id))

        await self.call(forget)

    # ------------------------------------------------------------------ per-issue state
    async def issue_state(self, repo: str, number: int) -> dict[str, Any]:
        row = await self._fetchone("SELECT data FROM issue_state WHERE repo = ? AND number = ?", (repo, number))
        return json.loads(row[0]) if row else {}

    async def issue_states(self, repo: str, numbers: Iterable[int]) -> dict[int, dict[str, Any]]:
        wanted = sorted({int(n) for n in numbers})
        if not wanted:
            return {}
        rows = await self._fetchall(f"SELECT number, data FROM issue_state WHERE repo = ? AND number IN "
                                    f"({','.join('?' * len(wanted))})", (repo, *wanted))
        return {int(number): json.loads(data) for number, data in rows}

    async def save_issue_state(self, repo: str, number: int, data: dict[str, Any]) -> None:
        await self._execute("INSERT INTO issue_state (repo, number, data) VALUES (?, ?, ?) "
                            "ON CONFLICT (repo, number) DO UPDATE SET data = excluded.data",
                            (repo, number, json.dumps(data)))

    # ------------------------------------------------------------------ the issue index
    async def index_issue(self, repo: str, number: int, title: str, body: str, state: str,
                          category: str | None) -> None:
        await self.index_issues(repo, [(number, title, body, state, category)])

    async def index_issues(self, repo: str, rows: Sequence[tuple[int, str, str, str, str | None]]) -> None:
        clean = [(number, storable(title), storable(body[:20000]), state, category)
                 for number, title, body, state, category in rows]

        def index(db: sqlite3.Connection) -> None:
            with _write(db):
                for number, title, body, state, category in clean:
                    self._index_one(db, repo, number, title, body, state, category)

        await self.call(index)

    @staticmethod
    def _index_one(db: sqlite3.Connection, repo: str, number: int, title: str, body: str, state: str,
                   category: str | None) -> None:
        known = db.execute("SELECT title, body FROM issue_index WHERE repo = ? AND number = ?",
                           (repo, number)).fetchone()
        db.execute("INSERT INTO issue_index (repo, number, title, body, state, category) "
                   "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (repo, number) DO UPDATE SET "
                   "title = excluded.title, body = excluded.body, state = excluded.state, "
                   "category = COALESCE(excluded.category, issue_index.category)",
                   (repo, number, title, body, state, category))
        if known == (title, body):
            return  # the full-text index already holds this text (rewriting it is most of the cost)
        db.execute("DELETE FROM issue_fts WHERE repo = ? AND number = ?", (repo, number))
        db.execute("INSERT INTO issue_fts (repo, number, title, body) VALUES (?, ?, ?, ?)",
                   (repo, number, title, body))

    async def similar_issues(self, repo: str, text: str, *, exclude: int, limit: int = 5) -> list[Candidate]:
        """Full-text candidates for duplicates, best first (bm25, title weighted up)."""
        query = " OR ".join(f'"{w}"' for w in fts_words(text))
        if not query:
            return []
        # Ranked by FTS5's own rank column (bm25 with these weights) and joined to the texts only for the
        # best few: a query's words match most of the index, and this is 1.5 times faster than bm25()
        # over a join of them all, for the same candidates.
        rows = await self.search(lambda db: db.execute(
            "SELECT f.number, i.title, i.body, i.state, f.rank FROM (SELECT number, rank FROM issue_fts "
            "WHERE issue_fts MATCH ? AND rank MATCH 'bm25(0, 0, 4.0, 1.0)' AND repo = ? AND number != ? "
            "ORDER BY rank LIMIT ?) f JOIN issue_index i ON i.repo = ? AND i.number = f.number ORDER BY f.rank",
            (query, repo, exclude, limit, repo)).fetchall())
        return [Candidate(number=int(r[0]), title=r[1], body=r[2][:1000], state=r[3], score=-float(r[4]))
                for r in rows]

    async def history(self, repo: str, *, limit: int = 5000) -> list[tuple[str, str, str]]:
        """(title, body, category) of the repository's labelled issues, newest first."""
        rows = await self._fetchall("SELECT title, body, category FROM issue_index WHERE repo = ? "
                                    "AND category IS NOT NULL ORDER BY number DESC LIMIT ?", (repo, limit))
        return [(r[0], r[1], r[2]) for r in rows]

    async def history_size(self, repo: str) -> int:
        row = await self._fetchone("SELECT COUNT(*) FROM issue_index WHERE repo = ? AND category IS NOT NULL",
                                   (repo,))
        return int(row[0]) if row else 0

    async def repo_meta(self, repo: str, key: str) -> str | None:
        row = await self._fetchone("SELECT value FROM repo_meta WHERE repo = ? AND key = ?", (repo, key))
        return row[0] if row else None

    async def set_repo_meta(self, repo: str, key: str, value: str) -> None:
        await self._execute("INSERT INTO repo_meta (repo, key, value) VALUES (?, ?, ?) ON CONFLICT (repo, key) "
                            "DO UPDATE SET value = excluded.value", (repo, key, value))

    # ------------------------------------------------------------------ specs
    async def next_spec_seq(self, repo: str, day: str) -> int:
        row = await self._fetchone("INSERT INTO spec_seq (repo, day, seq) VALUES (?, ?, 1) ON CONFLICT (repo, day) "
                                   "DO UPDATE SET seq = seq + 1 RETURNING seq", (repo, day))
        return int(row[0])  # type: ignore[index]

    async def spec_for(self, repo: str, number: int, stage: str) -> SpecRecord | None:
        row = await self._fetchone("SELECT stage, spec_id, path, status FROM specs WHERE repo = ? AND number = ? "
                                   "AND stage = ?", (repo, number, stage))
        return SpecRecord(*row) if row else None

    async def specs(self, repo: str, number: int) -> list[SpecRecord]:
        rows = await self._fetchall("SELECT stage, spec_id, path, status FROM specs WHERE repo = ? AND number = ? "
                                    "ORDER BY created_at", (repo, number))
        return [SpecRecord(*r) for r in rows]

    async def record_spec(self, repo: str, number: int, record: SpecRecord) -> None:
        await self._execute("INSERT INTO specs (repo, number, stage, spec_id, path, status, created_at) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repo, number, stage) DO UPDATE SET "
                            "status = excluded.status",
                            (repo, number, record.stage, record.spec_id, record.path, record.status, self.clock()))

    async def queue_files(self, repo: str, installation_id: int, branch: str, files: dict[str, str]) -> None:
        """Files waiting to be committed to the specs branch (several issues' go into one commit)."""
        rows = [(repo, installation_id, branch, p, c) for p, c in files.items()]
        await self.call(lambda db: db.executemany("INSERT INTO outbox (repo, installation_id, branch, path, content) "
                                                  "VALUES (?, ?, ?, ?, ?)", rows).rowcount)

    async def pending_files(self, repo: str) -> list[OutboxFile]:
        rows = await self._fetchall("SELECT id, path, content, branch FROM outbox WHERE repo = ? AND committed = 0 "
                                    "ORDER BY id", (repo,))
        return [OutboxFile(*r) for r in rows]

    async def mark_committed(self, ids: Iterable[int]) -> None:
        rows = [(self.clock(), i) for i in ids]
        await self.call(lambda db: db.executemany("UPDATE outbox SET committed = 1, committed_at = ? WHERE id = ?",
                                                  rows).rowcount)

    # ------------------------------------------------------------------ stage runs and spend
    async def start_run(self, repo: str, number: int, stage: str, installation_id: int,
                        data: dict[str, Any]) -> Run | None:
        now = self.clock()
        row = await self._fetchone(
            f"INSERT OR IGNORE INTO runs (repo, number, stage, installation_id, status, data, created_at, updated_at) "
            f"VALUES (?, ?, ?, ?, 'queued', ?, ?, ?) RETURNING {RUN_COLUMNS}",
            (repo, number, stage, installation_id, json.dumps(data), now, now))
        return _run(row) if row else None

    async def get_run(self, run_id: int) -> Run | None:
        row = await self._fetchone(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return _run(row) if row else None

    async def save_run(self, run: Run, *, status: str, data: dict[str, Any], waiting_sha: str | None) -> Run | None:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        try:
            row = await self._fetchone(
                f"UPDATE runs SET status = ?, data = ?, waiting_sha = ?, version = version + 1, updated_at = ? "
                f"WHERE id = ? AND version = ? RETURNING {RUN_COLUMNS}",
                (status, json.dumps(data), waiting_sha, self.clock(), run.id, run.version))
        except sqlite3.IntegrityError:  # made active again while another run of the stage is active
            return None
        return _run(row) if row else None

    async def runs_for_issue(self, repo: str, number: int) -> list[Run]:
        rows = await self._fetchall(f"SELECT {RUN_COLUMNS} FROM runs WHERE repo = ? AND number = ? ORDER BY id",
                                    (repo, number))
        return [_run(r) for r in rows]

    async def runs_waiting_for(self, repo: str, sha: str) -> list[Run]:
        rows = await self._fetchall(f"SELECT {RUN_COLUMNS} FROM runs WHERE repo = ? AND waiting_sha = ? "
                                    "AND status = 'waiting_ci' ORDER BY id", (repo, sha))
        return [_run(r) for r in rows]

    async def add_spend(self, installation_id: int, day: str, usd: float) -> float:
        return (await self.add_spends(installation_id, [day], usd))[0]

    async def spend(self, installation_id: int, day: str) -> float:
        return (await self.spends(installation_id, [day]))[0]

    async def spends(self, installation_id: int, days: Sequence[str]) -> list[float]:
        marks = ",".join("?" * len(days)) or "''"
        got = dict(await self._fetchall(f"SELECT day, usd FROM spend WHERE installation_id = ? AND day IN ({marks})",
                                        (installation_id, *days)))
        return [float(got.get(day, 0.0)) for day in days]

    async def add_spends(self, installation_id: int, days: Sequence[str], usd: float) -> list[float]:
        def add(db: sqlite3.Connection) -> list[float]:
            with _write(db):
                return [float(db.execute("INSERT INTO spend (installation_id, day, usd) VALUES (?, ?, ?) "
                                         "ON CONFLICT (installation_id, day) DO UPDATE SET usd = usd + excluded.usd "
                                         "RETURNING usd", (installation_id, day, usd)).fetchone()[0])
                        for day in days]

        return await self.call(add)

    # ------------------------------------------------------------------ GitHub's limits
    async def reserve_write(self, installation_id: int, limits: tuple[WriteLimit, ...], margin: float) -> float:
        def take_slot(db: sqlite3.Connection) -> float:
            with _write(db):
                row = db.execute("SELECT stamps, writes_until FROM github_limits WHERE installation_id = ?",
                                 (installation_id,)).fetchone()
                stamps, blocked = (json.loads(row[0]), row[1]) if row else ([], 0.0)
                at, kept = reserve(stamps, limits, self.clock(), margin, blocked)
                db.execute("INSERT INTO github_limits (installation_id, stamps) VALUES (?, ?) "
                           "ON CONFLICT (installation_id) DO UPDATE SET stamps = excluded.stamps",
                           (installation_id, json.dumps(kept)))
            return at

        return await self.call(take_slot)

    async def admit_write(self, installation_id: int, limits: tuple[WriteLimit, ...], margin: float,
                          flying: Sequence[float] = ()) -> tuple[float, float]:
        def check(db: sqlite3.Connection) -> tuple[float, float]:
            with _write(db):
                row = db.execute("SELECT sent, writes_until FROM github_limits WHERE installation_id = ?",
                                 (installation_id,)).fetchone()
                sent, blocked = (json.loads(row[0]), row[1]) if row else ([], 0.0)
                now = self.clock()
                wait, kept = admit(sent, limits, now, margin, blocked, flying)
                if wait <= 0:
                    db.execute("INSERT INTO github_limits (installation_id, sent) VALUES (?, ?) "
                               "ON CONFLICT (installation_id) DO UPDATE SET sent = excluded.sent",
                               (installation_id, json.dumps(kept)))
            return (wait, 0.0) if wait > 0 else (0.0, now)

        return await self.call(check)

    async def answered(self, installation_id: int, admitted: float, at: float) -> None:
        def move(db: sqlite3.Connection) -> None:
            with _write(db):
                row = db.execute("SELECT sent FROM github_limits WHERE installation_id = ?",
                                 (installation_id,)).fetchone()
                if row:
                    db.execute("UPDATE github_limits SET sent = ? WHERE installation_id = ?",
                               (json.dumps(count_from_answer(json.loads(row[0]), admitted, at)), installation_id))

        await self.call(move)

    async def hold(self, installation_id: int, kind: str, until: float) -> None:
        if kind not in HOLD_KINDS:
            raise ValueError(f"unknown hold {kind!r}")
        column = f"{kind}_until"
        await self._execute(f"INSERT INTO github_limits (installation_id, {column}) VALUES (?, ?) "
                            f"ON CONFLICT (installation_id) DO UPDATE SET {column} = MAX({column}, excluded.{column})",
                            (installation_id, until))

    async def holds(self, installation_id: int) -> dict[str, float]:
        row = await self._fetchone("SELECT writes_until, requests_until, tokens_until FROM github_limits "
                                   "WHERE installation_id = ?", (installation_id,))
        if not row:
            return {}
        return {kind: value for kind, value in zip(("writes", "requests", "tokens"), row) if value}

    # ------------------------------------------------------------------ copying (python -m bot migrate)
    async def read_rows(self, table: str, columns: tuple[str, ...], order: str, offset: int,
                        limit: int) -> list[tuple]:
        rows = await self._fetchall(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order} LIMIT ? OFFSET ?",
                                    (limit, offset))
        return [tuple(r) for r in rows]

    async def write_rows(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        marks = ", ".join("?" * len(columns))

        def insert(db: sqlite3.Connection) -> None:
            with _write(db):
                db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
                if table == "issue_index":
                    at = columns.index
                    db.executemany("INSERT INTO issue_fts (repo, number, title, body) VALUES (?, ?, ?, ?)",
                                   [(r[at("repo")], r[at("number")], r[at("title")], r[at("body")]) for r in rows])

        await self.call(insert)

    async def row_count(self, table: str) -> int:
        row = await self._fetchone(f"SELECT COUNT(*) FROM {table}")
        return int(row[0])  # type: ignore[index]


__all__ = ["SqliteStore"]
