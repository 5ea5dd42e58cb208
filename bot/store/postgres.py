"""The scale-out store: PostgreSQL through an asyncpg pool, shared by every `web` and `worker` process.

Jobs are claimed with `FOR UPDATE SKIP LOCKED`, and a partial unique index keeps one running job
per key across all processes. Intake commits deliveries in groups and wakes workers with
`NOTIFY`; each process listens on its own connection and polls as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any, Callable, Iterable, Sequence

import asyncpg

from bot.issuetext import Candidate
from bot.store import (HOLD_KINDS, RUN_COLUMNS, RUN_STATUSES, Job, OutboxFile, Run, SpecRecord, StoreError,
                       fts_words, scrub_issue_text, storable)
from bot.store import migrations
from bot.writelimit import WriteLimit, admit, count_from_answer, reserve

log = logging.getLogger(__name__)

CHANNEL = "chantbot_jobs"
MIGRATION_LOCK = 0x636861_6E74  # pg_advisory_lock key held while one process migrates
CONNECT_TIMEOUT = 10.0
CLAIM_TRIES = 3
COMMITTERS = 3  # groups of deliveries committing at once, per process
JOB_COLUMNS = "id, kind, key, payload, installation_id, attempts, created_at"

ACCEPT = """
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
        WITH ORDINALITY AS t(id, event, action, kind, key, payload, installation_id, ord)),
firsts AS (SELECT DISTINCT ON (id) * FROM input ORDER BY id, ord),
new AS (
    INSERT INTO deliveries (id, event, action, received_at)
    SELECT id, event, action, $8 FROM firsts
    ON CONFLICT (id) DO NOTHING RETURNING id),
queued AS (
    INSERT INTO jobs (kind, key, payload, installation_id, run_after, created_at)
    SELECT kind, key, payload, installation_id, $8, $8 FROM firsts WHERE id IN (SELECT id FROM new) ORDER BY ord
    RETURNING 1)
SELECT id, pg_notify('chantbot_jobs', '')::text FROM new
"""

CLAIM_PICK = """
SELECT id, key FROM jobs j
WHERE status IN ('queued', 'running')
  AND ((status = 'queued' AND run_after <= $1) OR (status = 'running' AND lease_until < $1))
  AND NOT (key = ANY($2::text[]))
  AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.key = j.key AND r.status = 'running' AND r.id <> j.id)
ORDER BY run_after, id
LIMIT $3
FOR UPDATE SKIP LOCKED
"""

CLAIM_TAKE = f"""
UPDATE jobs SET status = 'running', lease_until = $2, attempts = attempts + 1
WHERE id = ANY($1::bigint[]) AND (status = 'queued' OR (status = 'running' AND lease_until < $3))
RETURNING {JOB_COLUMNS}
"""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT:.0f} s"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _run(row: asyncpg.Record) -> Run:
    return Run(int(row["id"]), row["repo"], int(row["number"]), row["stage"], int(row["installation_id"]),
               row["status"], row["waiting_sha"], json.loads(row["data"]), int(row["version"]),
               float(row["created_at"]), float(row["updated_at"]))


def _job(row: asyncpg.Record) -> Job:
    return Job(int(row["id"]), row["kind"], row["key"], json.loads(row["payload"]), row["installation_id"],
               int(row["attempts"]), float(row["created_at"]))


class PostgresStore:
    """PostgreSQL behind a connection pool; every method is one short transaction."""

    backend = "postgres"

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time, pool_size: int = 10) -> None:
        self.url = url
        self.clock = clock
        self.pool_size = max(2, pool_size)
        self._pool: asyncpg.Pool | None = None
        self._arrivals: list[tuple[tuple, asyncio.Future]] = []
        self._committers: set[asyncio.Task] = set()
        self._wakers: list[Callable[[], None]] = []
        self._listener: asyncio.Task | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("the store is not open")
        return self._pool

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self.pool_size,
                                                   timeout=CONNECT_TIMEOUT, command_timeout=60)
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL ({_reason(exc)})") from None
        try:
            await self._migrate()
        except (asyncpg.PostgresError, OSError) as exc:
            await self.close()
            raise StoreError(f"cannot prepare the database ({_reason(exc)})") from None

    async def _migrate(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            try:
                await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                                   "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
                applied = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                for migration in migrations.load("postgres"):
                    if migration.version in applied:
                        continue
                    async with conn.transaction():
                        await conn.execute(migration.sql)
                        await conn.execute("INSERT INTO schema_migrations (version, name, applied_at) "
                                           "VALUES ($1, $2, $3)", migration.version, migration.name, time.time())
                    log.info("database: applied migration %04d %s", migration.version, migration.name)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)

    async def schema_version(self) -> int:
        return int(await self.pool.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))

    async def close(self) -> None:
        if self._committers:
            await asyncio.wait(self._committers, timeout=5)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), 10)
            except asyncio.TimeoutError:
                pool.terminate()

    async def ping(self) -> bool:
        try:
            return await self.pool.fetchval("SELECT 1") == 1
        except Exception:  # noqa: BLE001 - any failure means "not healthy"
            return False

    async def probe(self) -> str | None:
        try:
            await self.pool.execute("UPDATE health SET at = $1 WHERE id = 1", self.clock())
            return None
        except Exception as exc:  # noqa: BLE001 - any failure means "cannot write"
            return f"cannot write: {_reason(exc)[:200]}"

    # ------------------------------------------------------------------ waking workers
    def listen(self, wake: Callable[[], None]) -> None:
        self._wakers.append(wake)
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        """Keep one connection listening; reconnect after a loss (workers poll meanwhile)."""
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn: lost.set())
                await conn.add_listener(CHANNEL, self._notified)
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - polling covers the gap
                log.warning("database: not listening for new work (%s); polling until reconnected", _reason(exc))
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)
            await asyncio.sleep(1.0)

    def _notified(self, *_args: Any) -> None:
        for wake in self._wakers:
            wake()

    # ------------------------------------------------------------------ deliveries and jobs
    async def accept_delivery(self, delivery_id: str, event: str, action: str | None, *, kind: str, key: str,
                              payload: dict[str, Any], installation_id: int | None) -> bool:
        """Store a delivery and queue its job atomically (group commit, one statement per group).

        While a group waits for its commit, the next one gathers and may commit alongside (up to
        COMMITTERS at once), so the database's own group commit overlaps their WAL flushes.
        """
        done = asyncio.get_running_loop().create_future()
        self._arrivals.append(((delivery_id, event, action, kind, key, json.dumps(payload), installation_id), done))
        if len(self._committers) < COMMITTERS:
            task = asyncio.create_task(self._commit_arrivals())
            self._committers.add(task)
            task.add_done_callback(self._committers.discard)
        return await done

    async def _commit_arrivals(self) -> None:
        while self._arrivals:
            batch, self._arrivals = self._arrivals[:500], self._arrivals[500:]
            rows = [row for row, _ in batch]
            try:
                columns = list(zip(*rows))
                inserted = {r[0] for r in await self.pool.fetch(ACCEPT, *columns, self.clock())}
            except Exception as exc:  # noqa: BLE001 - every waiting delivery learns of the failure
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for row, done in batch:  # the first of several copies of one id in a batch is the new one
                if not done.done():
                    done.set_result(row[0] in inserted)
                inserted.discard(row[0])

    async def enqueue(self, kind: str, key: str, payload: dict[str, Any], *, installation_id: int | None,
                      delay: float = 0.0, unique: bool = False) -> bool:
        now = self.clock()
        guard = ("WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE kind = $1 AND key = $2 AND status = 'queued')"
                 if unique else "")
        notify = ", pg_notify('chantbot_jobs', '')::text" if delay <= 0 else ""
        row = await self.pool.fetchrow(
            f"INSERT INTO jobs (kind, key, payload, installation_id, run_after, created_at) "
            f"SELECT $1, $2, $3, $4, $5, $6 {guard} RETURNING id{notify}",
            kind, key, json.dumps(payload), installation_id, now + delay, now)
        return row is not None

    async def claim(self, limit: int, lease: float, *, exclude_keys: Iterable[str] = ()) -> list[Job]:
        excluded = list(exclude_keys)
        for _ in range(CLAIM_TRIES):
            now = self.clock()
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    rows = await conn.fetch(CLAIM_PICK, now, excluded, limit * 4)
                    chosen: dict[str, int] = {}
                    for row in rows:
                        if row["key"] not in chosen and len(chosen) < limit:
                            chosen[row["key"]] = row["id"]
                    if not chosen:
                        return []
                    claimed = await conn.fetch(CLAIM_TAKE, list(chosen.values()), now + lease, now)
                return sorted((_job(r) for r in claimed), key=lambda job: job.id)
            except asyncpg.UniqueViolationError:
                continue  # another process took a job of one of these keys meanwhile: look again
        return []

    async def extend(self, job_id: int, lease: float) -> None:
        await self.pool.execute("UPDATE jobs SET lease_until = $1 WHERE id = $2 AND status = 'running'",
                                self.clock() + lease, job_id)

    async def finish(self, job_id: int) -> None:
        await self.pool.execute("UPDATE jobs SET status = 'done', finished_at = $1, lease_until = NULL WHERE id = $2",
                                self.clock(), job_id)

    async def retry_later(self, job_id: int, error: str, delay: float) -> None:
        await self.pool.execute("UPDATE jobs SET status = 'queued', run_after = $1, lease_until = NULL, "
                                "last_error = $2 WHERE id = $3", self.clock() + delay, storable(error[:2000]), job_id)

    async def bury(self, job_id: int, error: str) -> None:
        await self.pool.execute("UPDATE jobs SET status = 'dead', finished_at = $1, lease_until = NULL, "
                                "last_error = $2 WHERE id = $3", self.clock(), storable(error[:2000]), job_id)

    async def requeue_dead(self, key: str | None = None) -> int:
        sql = ("UPDATE jobs SET status = 'queued', attempts = 0, run_after = $1, finished_at = NULL "
               "WHERE status = 'dead'")
        args: tuple = (self.clock(),)
        if key is not None:
            sql, args = sql + " AND key = $2", (*args, key)
        result = await self.pool.execute(sql, *args)
        count = int(result.split()[-1])
        if count:
            await self.pool.execute("SELECT pg_notify('chantbot_jobs', '')")
        return count

    async def queue_depth(self) -> dict[str, int]:
        rows = await self.pool.fetch("SELECT status, COUNT(*) FROM jobs WHERE status IN ('queued', 'running', 'dead') "
                                     "GROUP BY status")
        return {r[0]: int(r[1]) for r in rows}

    async def jobs_under_way(self, kind: str, key_prefix: str) -> int:
        return int(await self.pool.fetchval(
            "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running') AND kind = $1 AND starts_with(key, $2) "
            "AND (status = 'running' OR run_after <= $3)", kind, key_prefix, self.clock()))

    async def next_due(self) -> float | None:
        return await self.pool.fetchval("SELECT MIN(CASE WHEN status = 'queued' THEN run_after ELSE lease_until END) "
                                        "FROM jobs WHERE status IN ('queued', 'running')")

    # ------------------------------------------------------------------ retention
    async def prune(self, *, finished_before: float, dead_before: float) -> dict[str, int]:
        day = time.strftime("%Y-%m-%d", time.gmtime(finished_before))
        statements = {
            "deliveries": ("DELETE FROM deliveries WHERE received_at < $1", finished_before),
            "jobs": ("DELETE FROM jobs WHERE status = 'done' AND finished_at < $1", finished_before),
            "dead_jobs": ("DELETE FROM jobs WHERE status = 'dead' AND finished_at < $1", dead_before),
            "outbox": ("DELETE FROM outbox WHERE committed = 1 AND committed_at < $1", finished_before),
            "runs": ("DELETE FROM runs WHERE status IN ('done', 'failed', 'cancelled') AND updated_at < $1",
                     finished_before),
            "spend": ("DELETE FROM spend WHERE day < $1", day),
        }
        counts = {}
        async with self.pool.acquire() as conn, conn.transaction():
            for name, (sql, arg) in statements.items():
                counts[name] = int((await conn.execute(sql, arg)).split()[-1])
        return counts

    async def forget_issue(self, repo: str, number: int) -> None:
        key = f"{repo}#{number}"
        async with self.pool.acquire() as conn, conn.transaction():
            for table in ("issue_index", "issue_state", "runs"):
                await conn.execute(f"DELETE FROM {table} WHERE repo = $1 AND number = $2", repo, number)
            await conn.execute("DELETE FROM jobs WHERE key = $1 AND status != 'running'", key)
            for row in await conn.fetch("SELECT id, payload FROM jobs WHERE key = $1 FOR UPDATE", key):
                await conn.execute("UPDATE jobs SET payload = $1 WHERE id = $2",
                                   json.dumps(scrub_issue_text(json.loads(row["payload"]))), row["id"])

    # ------------------------------------------------------------------ per-issue state
    async def issue_state(self, repo: str, number: int) -> dict[str, Any]:
        data = await self.pool.fetchval("SELECT data FROM issue_state WHERE repo = $1 AND number = $2", repo, number)
        return json.loads(data) if data else {}

    async def issue_states(self, repo: str, numbers: Iterable[int]) -> dict[int, dict[str, Any]]:
        wanted = sorted({int(n) for n in numbers})
        if not wanted:
            return {}
        rows = await self.pool.fetch("SELECT number, data FROM issue_state WHERE repo = $1 AND number = ANY($2)",
                                     repo, wanted)
        return {int(r["number"]): json.loads(r["data"]) for r in rows}

    async def save_issue_state(self, repo: str, number: int, data: dict[str, Any]) -> None:
        await self.pool.execute("INSERT INTO issue_state (repo, number, data) VALUES ($1, $2, $3) "
                                "ON CONFLICT (repo, number) DO UPDATE SET data = excluded.data",
                                repo, number, json.dumps(data))

    # ------------------------------------------------------------------ the issue index
    async def index_issue(self, repo: str, number: int, title: str, body: str, state: str,
                          category: str | None) -> None:
        await self.index_issues(repo, [(number, title, body, state, category)])

    async def index_issues(self, repo: str, rows: Sequence[tuple[int, str, str, str, str | None]]) -> None:
        await self.pool.executemany(
            "INSERT INTO issue_index (repo, number, title, body, state, category) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (repo, number) DO UPDATE SET "
            "title = excluded.title, body = excluded.body, state = excluded.state, "
            "category = COALESCE(excluded.category, issue_index.category) "
            "WHERE (issue_index.title, issue_index.body, issue_index.state) IS DISTINCT FROM "
            "(excluded.title, excluded.body, excluded.state) OR (excluded.category IS NOT NULL "
            "AND excluded.category IS DISTINCT FROM issue_index.category)",  # no rewrite of the same
            [(repo, number, storable(title), storable(body[:20000]), state, category)
             for number, title, body, state, category in rows])

    async def similar_issues(self, repo: str, text: str, *, exclude: int, limit: int = 5) -> list[Candidate]:
        """Full-text candidates for duplicates, best first (ts_rank, title weighted 4:1 over body)."""
        words = fts_words(text)
        if not words:
            return []
        rows = await self.pool.fetch(
            "SELECT number, title, left(body, 1000) AS body, state, "
            "ts_rank('{0, 0, 0.25, 1.0}', tsv, q) AS rank "
            "FROM issue_index, to_tsquery('english', $1) AS q "
            "WHERE repo = $2 AND number <> $3 AND tsv @@ q ORDER BY rank DESC, number DESC LIMIT $4",
            " | ".join(f"'{w}'" for w in words), repo, exclude, limit)
        return [Candidate(number=int(r["number"]), title=r["title"], body=r["body"], state=r["state"],
                          score=float(r["rank"])) for r in rows]

    async def history(self, repo: str, *, limit: int = 5000) -> list[tuple[str, str, str]]:
        rows = await self.pool.fetch("SELECT title, body, category FROM issue_index WHERE repo = $1 "
                                     "AND category IS NOT NULL ORDER BY number DESC LIMIT $2", repo, limit)
        return [(r[0], r[1], r[2]) for r in rows]

    async def history_size(self, repo: str) -> int:
        return int(await self.pool.fetchval("SELECT COUNT(*) FROM issue_index WHERE repo = $1 "
                                            "AND category IS NOT NULL", repo))

    async def repo_meta(self, repo: str, key: str) -> str | None:
        return await self.pool.fetchval("SELECT value FROM repo_meta WHERE repo = $1 AND key = $2", repo, key)

    async def set_repo_meta(self, repo: str, key: str, value: str) -> None:
        await self.pool.execute("INSERT INTO repo_meta (repo, key, value) VALUES ($1, $2, $3) "
                                "ON CONFLICT (repo, key) DO UPDATE SET value = excluded.value", repo, key, value)

    # ------------------------------------------------------------------ specs
    async def next_spec_seq(self, repo: str, day: str) -> int:
        return int(await self.pool.fetchval("INSERT INTO spec_seq (repo, day, seq) VALUES ($1, $2, 1) "
                                            "ON CONFLICT (repo, day) DO UPDATE SET seq = spec_seq.seq + 1 "
                                            "RETURNING seq", repo, day))

    async def spec_for(self, repo: str, number: int, stage: str) -> SpecRecord | None:
        row = await self.pool.fetchrow("SELECT stage, spec_id, path, status FROM specs WHERE repo = $1 "
                                       "AND number = $2 AND stage = $3", repo, number, stage)
        return SpecRecord(*row) if row else None

    async def specs(self, repo: str, number: int) -> list[SpecRecord]:
        rows = await self.pool.fetch("SELECT stage, spec_id, path, status FROM specs WHERE repo = $1 AND number = $2 "
                                     "ORDER BY created_at", repo, number)
        return [SpecRecord(*r) for r in rows]

    async def record_spec(self, repo: str, number: int, record: SpecRecord) -> None:
        await self.pool.execute("INSERT INTO specs (repo, number, stage, spec_id, path, status, created_at) "
                                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (repo, number, stage) DO UPDATE "
                                "SET status = excluded.status", repo, number, record.stage, record.spec_id,
                                record.path, record.status, self.clock())

    async def queue_files(self, repo: str, installation_id: int, branch: str, files: dict[str, str]) -> None:
        await self.pool.executemany("INSERT INTO outbox (repo, installation_id, branch, path, content) "
                                    "VALUES ($1, $2, $3, $4, $5)",
                                    [(repo, installation_id, branch, p, storable(c)) for p, c in files.items()])

    async def pending_files(self, repo: str) -> list[OutboxFile]:
        rows = await self.pool.fetch("SELECT id, path, content, branch FROM outbox WHERE repo = $1 AND committed = 0 "
                                     "ORDER BY id", repo)
        return [OutboxFile(*r) for r in rows]

    async def mark_committed(self, ids: Iterable[int]) -> None:
        await self.pool.execute("UPDATE outbox SET committed = 1, committed_at = $1 WHERE id = ANY($2::bigint[])",
                                self.clock(), list(ids))

    # ------------------------------------------------------------------ stage runs and spend
    async def start_run(self, repo: str, number: int, stage: str, installation_id: int,
                        data: dict[str, Any]) -> Run | None:
        now = self.clock()
        row = await self.pool.fetchrow(
            f"INSERT INTO runs (repo, number, stage, installation_id, status, data, created_at, updated_at) "
            f"VALUES ($1, $2, $3, $4, 'queued', $5, $6, $6) ON CONFLICT DO NOTHING RETURNING {RUN_COLUMNS}",
            repo, number, stage, installation_id, json.dumps(data), now)
        return _run(row) if row else None

    async def get_run(self, run_id: int) -> Run | None:
        row = await self.pool.fetchrow(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = $1", run_id)
        return _run(row) if row else None

    async def save_run(self, run: Run, *, status: str, data: dict[str, Any], waiting_sha: str | None) -> Run | None:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        try:
            row = await self.pool.fetchrow(
                f"UPDATE runs SET status = $1, data = $2, waiting_sha = $3, version = version + 1, updated_at = $4 "
                f"WHERE id = $5 AND version = $6 RETURNING {RUN_COLUMNS}",
                status, json.dumps(data), waiting_sha, self.clock(), run.id, run.version)
        except asyncpg.UniqueViolationError:  # made active again while another run of the stage is active
            return None
        return _run(row) if row else None

    async def runs_for_issue(self, repo: str, number: int) -> list[Run]:
        rows = await self.pool.fetch(f"SELECT {RUN_COLUMNS} FROM runs WHERE repo = $1 AND number = $2 ORDER BY id",
                                     repo, number)
        return [_run(r) for r in rows]

    async def runs_waiting_for(self, repo: str, sha: str) -> list[Run]:
        rows = await self.pool.fetch(f"SELECT {RUN_COLUMNS} FROM runs WHERE repo = $1 AND waiting_sha = $2 "
                                     "AND status = 'waiting_ci' ORDER BY id", repo, sha)
        return [_run(r) for r in rows]

    async def add_spend(self, installation_id: int, day: str, usd: float) -> float:
        return (await self.add_spends(installation_id, [day], usd))[0]

    async def spend(self, installation_id: int, day: str) -> float:
        return (await self.spends(installation_id, [day]))[0]

    async def spends(self, installation_id: int, days: Sequence[str]) -> list[float]:
        rows = await self.pool.fetch("SELECT day, usd FROM spend WHERE installation_id = $1 AND day = ANY($2::text[])",
                                     installation_id, list(days))
        got = {r[0]: float(r[1]) for r in rows}
        return [got.get(day, 0.0) for day in days]

    async def add_spends(self, installation_id: int, days: Sequence[str], usd: float) -> list[float]:
        async with self.pool.acquire() as conn, conn.transaction():
            return [float(await conn.fetchval("INSERT INTO spend (installation_id, day, usd) VALUES ($1, $2, $3) "
                                              "ON CONFLICT (installation_id, day) DO UPDATE "
                                              "SET usd = spend.usd + excluded.usd RETURNING usd",
                                              installation_id, day, float(usd)))
                    for day in days]

    # ------------------------------------------------------------------ GitHub's limits
    async def reserve_write(self, installation_id: int, limits: tuple[WriteLimit, ...], margin: float) -> float:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(  # takes the installation's row lock: reservations queue here
                "INSERT INTO github_limits (installation_id) VALUES ($1) ON CONFLICT (installation_id) "
                "DO UPDATE SET installation_id = excluded.installation_id RETURNING stamps, writes_until",
                installation_id)
            at, kept = reserve(list(row["stamps"]), limits, self.clock(), margin, float(row["writes_until"]))
            await conn.execute("UPDATE github_limits SET stamps = $2 WHERE installation_id = $1", installation_id, kept)
        return at

    async def admit_write(self, installation_id: int, limits: tuple[WriteLimit, ...], margin: float,
                          flying: Sequence[float] = ()) -> tuple[float, float]:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO github_limits (installation_id) VALUES ($1) ON CONFLICT (installation_id) "
                "DO UPDATE SET installation_id = excluded.installation_id RETURNING sent, writes_until",
                installation_id)
            now = self.clock()
            wait, kept = admit(list(row["sent"]), limits, now, margin, float(row["writes_until"]), flying)
            if wait <= 0:
                await conn.execute("UPDATE github_limits SET sent = $2 WHERE installation_id = $1", installation_id,
                                   kept)
        return (wait, 0.0) if wait > 0 else (0.0, now)

    async def answered(self, installation_id: int, admitted: float, at: float) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT sent FROM github_limits WHERE installation_id = $1 FOR UPDATE",
                                      installation_id)
            if row is not None:
                await conn.execute("UPDATE github_limits SET sent = $2 WHERE installation_id = $1", installation_id,
                                   count_from_answer(list(row["sent"]), admitted, at))

    async def hold(self, installation_id: int, kind: str, until: float) -> None:
        if kind not in HOLD_KINDS:
            raise ValueError(f"unknown hold {kind!r}")
        column = f"{kind}_until"
        await self.pool.execute(f"INSERT INTO github_limits (installation_id, {column}) VALUES ($1, $2) "
                                f"ON CONFLICT (installation_id) DO UPDATE "
                                f"SET {column} = GREATEST(github_limits.{column}, excluded.{column})",
                                installation_id, float(until))

    async def holds(self, installation_id: int) -> dict[str, float]:
        row = await self.pool.fetchrow("SELECT writes_until, requests_until, tokens_until FROM github_limits "
                                       "WHERE installation_id = $1", installation_id)
        if not row:
            return {}
        return {kind: float(value) for kind, value in zip(("writes", "requests", "tokens"), row) if value}

    # ------------------------------------------------------------------ copying (python -m bot migrate)
    async def read_rows(self, table: str, columns: tuple[str, ...], order: str, offset: int,
                        limit: int) -> list[tuple]:
        rows = await self.pool.fetch(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order} "
                                     f"LIMIT $1 OFFSET $2", limit, offset)
        return [tuple(r) for r in rows]

    async def write_rows(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        async with self.pool.acquire() as conn:
            await conn.copy_records_to_table(table, records=rows, columns=list(columns))
            if table in ("jobs", "outbox", "runs"):  # new rows' ids follow the copied ones
                await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                   f"GREATEST((SELECT MAX(id) FROM {table}), 1))")

    async def row_count(self, table: str) -> int:
        return int(await self.pool.fetchval(f"SELECT COUNT(*) FROM {table}"))
