"""The worker: claims jobs under a lease, runs them, retries failures with backoff, reports dead jobs.

At-least-once: a worker that dies leaves its jobs leased; when the lease runs out another worker
claims them again. Handlers make every GitHub effect idempotent, so a re-run looks like one run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from bot.metrics import Metrics
from bot.store import Job, Store

log = logging.getLogger(__name__)

RETRY_DELAYS = (2.0, 10.0, 30.0, 120.0)  # after attempts 1..4; the 5th failure is final
LEASE = 15.0
DRAIN_SECONDS = 25.0
DAY = 86400.0
PRUNE_EVERY = 3600.0

Runner = Callable[[Job], Awaitable[None]]
Reporter = Callable[[Job, BaseException], Awaitable[None]]  # tells the issue a job failed
Judge = Callable[[BaseException], bool]  # permanent: retrying cannot help; internal: a bug (log its traceback)


@dataclass(frozen=True)
class Retention:
    """How long finished work is kept (seconds): deliveries, done jobs, committed files, finished runs; and
    jobs that failed for good (kept for the operator until requeued or this old)."""

    finished: float
    dead: float


def retry_delay(attempts: int) -> float | None:
    """Seconds before the next attempt after `attempts` failed ones; None when the job is dead."""
    return RETRY_DELAYS[attempts - 1] if attempts <= len(RETRY_DELAYS) else None


class Worker:
    """Runs up to `concurrency` jobs at once until asked to stop, then drains."""

    def __init__(self, store: Store, run: Runner, *, concurrency: int, metrics: Metrics,
                 on_dead: Reporter | None = None, on_retry: Reporter | None = None,
                 permanent: Judge = lambda exc: False, internal: Judge = lambda exc: True,
                 lease: float = LEASE, poll: float = 0.5,
                 retention: Retention | None = None, prune_every: float = PRUNE_EVERY) -> None:
        self.store, self.run_job, self.concurrency, self.metrics = store, run, concurrency, metrics
        self.on_dead, self.on_retry, self.permanent, self.internal = on_dead, on_retry, permanent, internal
        self.lease, self.poll = lease, poll
        self.retention, self.prune_every = retention, prune_every
        self._wake = asyncio.Event()
        self._running: dict[asyncio.Task, Job] = {}
        self._stopping = False

    def notify(self) -> None:
        """New work was stored: look now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Claim and run jobs until stop() is called; prune old work on a schedule meanwhile."""
        pruning = asyncio.create_task(self._prune_on_schedule()) if self.retention else None
        try:
            await self._claim_and_run()
        finally:
            if pruning is not None:
                pruning.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pruning

    async def prune(self) -> dict[str, int]:
        """Delete work older than the retention (every worker process does this; deleting twice is harmless)."""
        assert self.retention is not None
        now = self.store.clock()
        counts = await self.store.prune(finished_before=now - self.retention.finished,
                                        dead_before=now - self.retention.dead)
        if any(counts.values()):
            log.info("pruned old work: %s", ", ".join(f"{n} {what}" for what, n in counts.items() if n))
        return counts

    async def _prune_on_schedule(self) -> None:
        while True:
            try:
                await self.prune()
            except Exception:  # noqa: BLE001 - pruning again in an hour is soon enough
                log.exception("could not prune old work")
            await asyncio.sleep(self.prune_every)

    async def _claim_and_run(self) -> None:
        while not self._stopping:
            free = self.concurrency - len(self._running)
            jobs: list[Job] = []
            if free > 0:
                try:
                    jobs = await self.store.claim(free, self.lease,
                                                  exclude_keys={job.key for job in self._running.values()})
                except Exception:  # noqa: BLE001 - a database hiccup must not end the worker
                    log.exception("could not claim jobs")
            for job in jobs:
                task = asyncio.create_task(self._attempt(job))
                self._running[task] = job
                task.add_done_callback(self._running.pop)
            if not jobs or len(self._running) >= self.concurrency:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll)
                except asyncio.TimeoutError:
                    pass

    async def stop(self, grace: float = DRAIN_SECONDS) -> None:
        """Stop claiming and let running jobs finish for up to `grace` seconds (their leases cover the rest)."""
        self._stopping = True
        self._wake.set()
        pending = list(self._running)
        if pending:
            done, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=1)

    async def _heartbeat(self, job: Job) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            await self.store.extend(job.id, self.lease)

    async def _attempt(self, job: Job) -> None:
        beat = asyncio.create_task(self._heartbeat(job))
        try:
            await self.run_job(job)
        except asyncio.CancelledError:
            raise  # shutdown: the lease runs out and the job is claimed again
        except Exception as exc:  # noqa: BLE001 - every failure is retried or reported
            await self._failed(job, exc)
        else:
            await self.store.finish(job.id)
            self.metrics.jobs.labels(kind=job.kind, outcome="done").inc()
            self.metrics.job_seconds.labels(kind=job.kind).observe(max(0.0, time.time() - job.created_at))
        finally:
            beat.cancel()
            self._wake.set()

    async def _failed(self, job: Job, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"[:500]
        delay = None if self.permanent(exc) else retry_delay(job.attempts)
        if delay is None:
            log.error("job %s (%s) failed for good after %d attempt(s): %s", job.id, job.key, job.attempts, error,
                      exc_info=exc if self.internal(exc) else None)
            await self.store.bury(job.id, error)
            self.metrics.jobs.labels(kind=job.kind, outcome="dead").inc()
            if self.on_dead:
                await self._report(self.on_dead, job, exc)
            return
        log.warning("job %s (%s) attempt %d failed: %s; retrying in %.0f s", job.id, job.key, job.attempts,
                    error, delay, exc_info=exc if self.internal(exc) else None)
        await self.store.retry_later(job.id, error, delay)
        self.metrics.jobs.labels(kind=job.kind, outcome="retry").inc()
        if self.on_retry and job.attempts == 1:
            await self._report(self.on_retry, job, exc)

    @staticmethod
    async def _report(reporter: Reporter, job: Job, exc: BaseException) -> None:
        try:
            await reporter(job, exc)
        except Exception:  # noqa: BLE001 - reporting is best effort; the job is already recorded
            log.exception("could not report job %s on GitHub", job.id)
