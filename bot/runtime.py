"""Wires one chantbot process: store, GitHub App, triagers, router and workers; runs jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web
from gidgethub import BadRequest, RedirectionException, sansio
from gidgethub.routing import Router

from bot import comment as comments
from bot import failures, intake, jobs
from bot.context import Context
from bot.github import GitHubApp
from bot.handlers import commands, history, repository, stages, triage
from bot.issueops import upsert_comment
from bot.metrics import Metrics
from bot.services import config as configs
from bot.services import reporter, specchain
from bot.services import triage as triaging
from bot.settings import Settings
from bot.stages import runner
from bot.stages.git import SnapshotCache
from bot.store import Job, Store, open_store
from bot.worker import DAY, LEASE, Retention, Worker
from bot.writelimit import WritePacer

if TYPE_CHECKING:
    from bot.github import GitHubClient
    from bot.llm import ClaudeTriager

log = logging.getLogger(__name__)

ROUTER = Router(triage.router, commands.router, history.router, stages.router, repository.router)
FAILURE_MARKER = comments.marker_for("failure")
JobHandler = Callable[[Context, "GitHubClient", Job], Awaitable[None]]


async def dispatch_event(ctx: Context, gh: "GitHubClient", job: Job) -> None:
    """A stored webhook delivery, through every feature's router."""
    event = sansio.Event(job.payload["data"], event=job.payload["event"], delivery_id=job.payload["delivery_id"])
    repo = (event.data.get("repository") or {}).get("full_name")
    if repo and event.event == "issues":
        await history.schedule_index(ctx, repo, int(job.installation_id or 0))
    await ROUTER.dispatch(event, gh, ctx=ctx, job=job)


JOBS: dict[str, JobHandler] = {  # every kind of job, and what runs it
    jobs.EVENT: dispatch_event,
    jobs.COMMIT_SPECS: lambda ctx, gh, job: specchain.commit_pending(ctx, gh, job.payload["repo"],
                                                                     int(job.installation_id or 0)),
    jobs.INDEX_REPO: lambda ctx, gh, job: history.index_repository(ctx, gh, job.payload["repo"]),
    jobs.STAGE: lambda ctx, gh, job: runner.step(ctx, gh, job.payload),
    jobs.STAGE_AUTO: lambda ctx, gh, job: runner.auto_start(ctx, gh, job.payload, int(job.installation_id or 0)),
    jobs.RETRIAGE: lambda ctx, gh, job: triage.deferred(ctx, gh, job.payload, int(job.installation_id or 0)),
    jobs.NEEDS_INFO: lambda ctx, gh, job: reporter.sweep(ctx, gh, job.payload["repo"], int(job.installation_id or 0)),
}


def make_llm(settings: Settings) -> "ClaudeTriager | None":
    """Claude when a key is configured; None means the local triager."""
    if not settings.anthropic_api_key:
        return None
    from bot.llm import ClaudeTriager, make_client

    return ClaudeTriager(make_client(api_key=settings.anthropic_api_key), model=settings.model)


def make_agent_client(settings: Settings) -> object | None:
    """The Messages API client of stage agents (longer answers than triage's, so a longer timeout)."""
    if not settings.anthropic_api_key:
        return None
    from bot.llm import make_client

    return make_client(api_key=settings.anthropic_api_key, timeout=300.0)


class Runtime:
    """Everything a process needs to take deliveries and/or run jobs."""

    def __init__(self, settings: Settings, *, store: Store | None = None, llm: object = "auto",
                 agent_client: object = "auto", sandbox: object = "auto", spec_commit_delay: float = 2.0,
                 job_lease: float = LEASE,
                 http_trace: aiohttp.TraceConfig | None = None) -> None:
        self.settings = settings
        self.http_trace = http_trace  # sees every GitHub request (`python -m bot receive` lists them)
        self.spec_commit_delay = spec_commit_delay
        self.job_lease = job_lease
        self.store = store or open_store(settings.database_url, pool_size=settings.concurrency + 4)
        self.metrics = Metrics()
        self.llm = make_llm(settings) if llm == "auto" else llm
        self.agent_client = make_agent_client(settings) if agent_client == "auto" else agent_client
        # The Messages API clients made here, closed with the runtime (their HTTP sessions).
        self._own_clients = [c for c, made in ((getattr(self.llm, "client", None), llm == "auto"),
                                               (self.agent_client, agent_client == "auto")) if made and c is not None]
        self.sandbox = sandbox  # "auto": CHANTBOT_SANDBOX decides, in open_sandbox()
        self.sandbox_line = ""
        self.session: aiohttp.ClientSession | None = None
        self.ctx: Context | None = None
        self.worker: Worker | None = None

    def open_sandbox(self) -> str:
        """Find the sandbox agents' tests run in; the start-up line that says which. Raises SandboxUnavailable when
        CHANTBOT_SANDBOX=bwrap asks for one that cannot run here."""
        from bot import sandbox

        if self.sandbox == "auto":
            self.sandbox = sandbox.detect(self.settings.sandbox, python=self.settings.sandbox_python)
        self.sandbox_line = sandbox.describe(self.sandbox)  # type: ignore[arg-type]
        return self.sandbox_line

    @property
    def sandbox_kind(self) -> str:
        return getattr(self.sandbox, "kind", "none") if self.sandbox not in (None, "auto") else "none"

    async def open(self) -> None:
        if self.sandbox == "auto":
            self.open_sandbox()
        await self.store.open()
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60),
                                             trace_configs=[self.http_trace] if self.http_trace else None)
        app = GitHubApp(session=self.session, app_id=str(self.settings.app_id), private_key=self.settings.private_key or "",
                        base_url=self.settings.github_api_url,
                        pacer=WritePacer(self.settings.write_limits, self.store), metrics=self.metrics)
        self.ctx = Context(store=self.store, github=app, settings=self.settings, metrics=self.metrics, llm=self.llm,
                           anthropic=self.agent_client, spec_commit_delay=self.spec_commit_delay,
                           snapshots=SnapshotCache(), sandbox=self.sandbox)
        store = self.store
        self.ctx.repos.heads = lambda repo: store.repo_meta(repo, repository.DEFAULT_HEAD)
        self.worker = Worker(self.store, self.run_job, concurrency=self.settings.concurrency, metrics=self.metrics,
                             on_dead=self.report_dead, on_retry=self.report_delay, lease=self.job_lease,
                             permanent=failures.is_permanent, internal=failures.is_internal,
                             retention=Retention(self.settings.retention_days * DAY,
                                                 self.settings.dead_retention_days * DAY))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        for client in self._own_clients:
            await client.close()
        await self.store.close()

    # ------------------------------------------------------------------ jobs
    async def run_job(self, job: Job) -> None:
        ctx = self.ctx
        assert ctx is not None
        try:
            await self._run(ctx, job)
        except (BadRequest, RedirectionException) as exc:
            status = int(exc.status_code)
            if status == 401:  # a revoked or expired token: every process mints a new one
                await ctx.github.revoke_token(int(job.installation_id or 0))
            where = self._issue_of(job) or self._payload_issue(job)
            if status in (301, 404, 410) and where and await self._gone(ctx, job, *where):
                log.info("%s#%d was deleted, transferred or made unreachable; job %s ends here", *where, job.id)
                return
            raise

    @staticmethod
    async def _gone(ctx: Context, job: Job, repo: str, number: int) -> bool:
        """Whether the job's issue no longer exists where the delivery said (deleted, transferred, no access)."""
        gh = await ctx.github.client(int(job.installation_id or 0))
        try:
            await gh.getitem(f"/repos/{repo}/issues/{number}")
        except (BadRequest, RedirectionException) as exc:
            return int(exc.status_code) in (301, 404, 410)
        return False

    async def _run(self, ctx: Context, job: Job) -> None:
        handler = JOBS.get(job.kind)
        if handler is None:
            log.error("unknown job kind %r; dropping job %s", job.kind, job.id)
            return
        await handler(ctx, await ctx.github.client(int(job.installation_id or 0)), job)

    @staticmethod
    def _issue_of(job: Job) -> tuple[str, int] | None:
        data = job.payload.get("data") or {}
        repo, issue = (data.get("repository") or {}).get("full_name"), data.get("issue") or {}
        return (repo, int(issue["number"])) if repo and issue.get("number") else None

    @staticmethod
    def _payload_issue(job: Job) -> tuple[str, int] | None:
        """The issue of a job chantbot queued for itself (`repo` and `number` in its payload)."""
        repo, number = job.payload.get("repo"), job.payload.get("number")
        return (str(repo), int(number)) if repo and number else None

    async def report_delay(self, job: Job, exc: BaseException) -> None:
        """The first attempt at triage failed: show the issue is waiting (`needs-triage`)."""
        where = self._issue_of(job)
        if not where or job.kind != jobs.EVENT or job.payload["data"].get("action") not in ("opened", "reopened"):
            return
        assert self.ctx is not None
        gh = await self.ctx.github.client(int(job.installation_id or 0))
        config, _ = await configs.load(self.ctx, gh, where[0])
        state = await self.store.issue_state(*where)
        if state.get("triaged_at"):
            return
        labels = [label["name"] for label in job.payload["data"]["issue"].get("labels", [])]
        await triaging.mark_waiting(self.ctx, gh, where[0], where[1], config, labels, state)

    async def report_dead(self, job: Job, exc: BaseException) -> None:
        """A job failed for good: say so on the issue, with how to retry."""
        where = self._issue_of(job)
        if not where:
            return
        assert self.ctx is not None
        gh = await self.ctx.github.client(int(job.installation_id or 0))
        action = job.payload["data"].get("action")
        what = "triage this issue" if job.payload["event"] == "issues" else "run a command from a comment here"
        retry = ("comment `/retriage` (the issue's author, or anyone with triage access)"
                 if job.payload["event"] == "issues" else "post the command again in a new comment")
        body = comments.failure_comment(what=what, error=failures.describe(exc), retry=retry)
        state = await self.store.issue_state(*where)
        state["failure_comment_id"] = await upsert_comment(gh, where[0], where[1], FAILURE_MARKER, body,
                                                           known_id=state.get("failure_comment_id"), may_exist=True)
        await self.store.save_issue_state(*where, state)
        log.error("reported the failed %s (%s) on %s#%d", job.payload["event"], action, *where)

    # ------------------------------------------------------------------ process roles
    @contextlib.asynccontextmanager
    async def _workers(self) -> AsyncIterator[None]:
        assert self.worker is not None
        self.store.listen(self.worker.notify)  # other processes' new work wakes this one at once
        task = asyncio.create_task(self.worker.run())
        try:
            yield
        finally:
            await self.worker.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def web_app(self, *, with_workers: bool) -> web.Application:
        async def background(app: web.Application) -> AsyncIterator[None]:
            async with self._workers():
                yield

        assert self.worker is not None
        return intake.create_app(store=self.store, metrics=self.metrics, secrets=self.settings.webhook_secrets,
                                 notify=self.worker.notify if with_workers else None,
                                 background=background if with_workers else None,
                                 about={"sandbox": self.sandbox_kind})

    def status_app(self) -> web.Application:
        """What a worker-only process answers on PORT: /healthz and /metrics."""
        return intake.create_app(store=self.store, metrics=self.metrics, secrets=(), receive=False,
                                 about={"sandbox": self.sandbox_kind})

    async def run_worker_only(self, stop: asyncio.Event) -> None:
        async with self._workers():
            await stop.wait()
