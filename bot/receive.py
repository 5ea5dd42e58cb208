"""`python -m bot receive EVENT PAYLOAD.json`: one delivery through chantbot in this process, and what it did.

For maintainers debugging a configuration or a prompt (Probot's `receive`): it says where it will act, runs
the delivery against GITHUB_API_URL with the deployment's database (DATABASE_URL) or a scratch one, and lists
every GitHub request.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import aiohttp

from bot import deliveries
from bot.github import WRITE_METHODS, AppCheckFailed
from bot.settings import Settings
from bot.store import Job, Store, open_store

DESCRIPTION = """\
Run one webhook delivery through chantbot in this process and print what it did: the jobs it ran and
the GitHub requests they made (method, path, status). Before it starts, it says where it will act.

GitHub effects are real: chantbot acts on GITHUB_API_URL as the App, as a deployment would (comments,
labels, reactions, closing or reopening issues, spec files committed to the specs branch; for stage
commands, chant/issue-N branches and draft pull requests). Point GITHUB_API_URL at a test installation or
at the simulator (`python -m chantbot_sim.github`) when trying things out.

Database: with DATABASE_URL (in the environment or --env-file), the deployment's own, so issue state and
spec numbers continue from it; the delivery's own job runs here and the jobs it queues (spec commits,
later stage steps) are left to the deployment's workers. Without it, a scratch database that is deleted
afterwards: the jobs it queues run here too (each once, no retries), but spec numbering starts again.

PAYLOAD.json is the body GitHub sends (the Payload tab of a delivery under the App's Advanced settings);
EVENT is its X-GitHub-Event header, e.g. issues or issue_comment."""
WRITES = ("comments, labels, reactions, closing or reopening issues, spec files committed to the specs branch; "
          "for stage commands, chant/issue-N branches and draft pull requests")
MAX_PAYLOAD = 25 * 1024 * 1024
MAX_JOBS = 200  # a delivery that keeps queueing work is stopped here
WAIT_FOR_DUE = 10.0  # jobs due within this many seconds are waited for; later ones are only reported
_EVENT = re.compile(r"[a-z_]{1,64}")


class ReceiveError(Exception):
    """The delivery cannot be run; the message is the one line an operator sees."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("event", metavar="EVENT", help="the event name (X-GitHub-Event), e.g. issues")
    parser.add_argument("payload", metavar="PAYLOAD.json", help="the delivery's JSON body")


def load_payload(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_PAYLOAD + 1)
    except OSError as exc:
        raise ReceiveError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_PAYLOAD:
        raise ReceiveError(f"{path} is over 25 MiB; GitHub never sends such a delivery")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ReceiveError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ReceiveError(f"{path} must hold a JSON object (a webhook payload)")
    return data


@dataclasses.dataclass
class Request:
    method: str
    path: str
    status: int | str


class Recorder:
    """An aiohttp trace that keeps each request's method, path and status (or error)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_end.append(self._end)
        self.trace.on_request_exception.append(self._error)

    async def _end(self, session: Any, context: Any, params: aiohttp.TraceRequestEndParams) -> None:
        self.requests.append(Request(params.method, params.url.path, params.response.status))

    async def _error(self, session: Any, context: Any, params: aiohttp.TraceRequestExceptionParams) -> None:
        self.requests.append(Request(params.method, params.url.path, type(params.exception).__name__))


def describe(job_kind: str, payload: dict[str, Any]) -> str:
    """A job in a few words: its kind and what it is about."""
    if job_kind == "event":
        data = payload.get("data") or {}
        item = data.get("issue") or data.get("pull_request") or {}
        repo = (data.get("repository") or {}).get("full_name", "")
        where = f" on {repo}#{item['number']}" if repo and item.get("number") else f" on {repo}" if repo else ""
        action = f".{data['action']}" if data.get("action") else ""
        return f"event {payload.get('event')}{action}{where}"
    repo = payload.get("repo")
    return f"{job_kind}{f' on {repo}' if isinstance(repo, str) else ''}"


async def run(args: argparse.Namespace, settings: Settings, *, deployment_database: bool = False,
              out: TextIO | None = None) -> int:
    """The command: 0 when every job finished, 1 when one failed. `deployment_database`: DATABASE_URL was given."""
    out = out or sys.stdout
    if not _EVENT.fullmatch(args.event):
        raise ReceiveError(f"EVENT must be a webhook event name such as issues, got {args.event[:60]!r}")
    data = load_payload(args.payload)
    return await receive(settings, args.event, data, out=out, deployment_database=deployment_database)


class _Noting:
    """The deployment's store, noting the jobs this delivery queues (they are left to the deployment's workers)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.queued: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def enqueue(self, kind: str, key: str, payload: dict[str, Any], **options: Any) -> bool:
        queued = await self._store.enqueue(kind, key, payload, **options)
        if queued:
            self.queued.append(describe(kind, payload))
        return queued


async def receive(settings: Settings, event: str, data: dict[str, Any], *, out: TextIO,
                  deployment_database: bool = False) -> int:
    """Say where the delivery will act, run it, print each job and its GitHub requests."""
    from bot.runtime import Runtime

    plan = deliveries.plan(event, data)
    if plan is None:
        action = f" ({data['action']})" if isinstance(data.get("action"), str) else ""
        print(f"chantbot does nothing with {event}{action}: no job; a server would answer 200.", file=out)
        return 0
    recorder = Recorder()
    print(f"receive: {describe(plan.kind, {'event': event, 'data': data})}", file=out)
    print(f"  GitHub: {settings.github_api_url} (GITHUB_API_URL), as App {settings.app_id}. What chantbot does "
          f"there is real: {WRITES}.", file=out)
    with tempfile.TemporaryDirectory(prefix="chantbot-receive-") as scratch:
        if deployment_database:
            print(f"  database: {_without_password(settings.database_url)} (DATABASE_URL, the deployment's): issue "
                  "state and spec numbers continue from it; the jobs this delivery queues are left to the "
                  "deployment's workers.", file=out)
            store = _Noting(open_store(settings.database_url, pool_size=2))
            runtime = Runtime(settings, store=store, http_trace=recorder.trace)
        else:
            print("  database: a scratch one, deleted afterwards (no DATABASE_URL given): issue state starts empty "
                  "and spec numbers start again at 001; give the deployment's DATABASE_URL when chantbot already "
                  "writes specs for this repository.", file=out)
            scratch_settings = dataclasses.replace(settings,
                                                   database_url=f"sqlite:///{Path(scratch) / 'receive.db'}")
            runtime = Runtime(scratch_settings, spec_commit_delay=0.0, http_trace=recorder.trace)
        await runtime.open()
        try:
            await _check_app(runtime)
            delivery_id = f"receive-{uuid.uuid4()}"
            payload = {"event": event, "delivery_id": delivery_id, "data": data}
            if deployment_database:
                job = Job(id=0, kind=plan.kind, key=plan.key, payload=payload, installation_id=plan.installation_id,
                          attempts=0, created_at=time.time())
                failed = 1 if await _run_one(runtime, job, recorder, out) else 0
                later = store.queued
            else:
                await runtime.store.accept_delivery(delivery_id, event, data.get("action"), kind=plan.kind,
                                                    key=plan.key, payload=payload,
                                                    installation_id=plan.installation_id)
                failed = await _run_jobs(runtime, recorder, out)
                waiting = (await runtime.store.queue_depth()).get("queued", 0)
                later = [f"{waiting} job(s) queued for later (a server would run them when due)"] if waiting else []
        finally:
            await runtime.close()
    for line in later:
        print(f"left for later: {line}", file=out)
    writes = sum(1 for request in recorder.requests if request.method in WRITE_METHODS)
    print(f"{len(recorder.requests)} GitHub requests in all, {writes} of them writes.", file=out)
    return 1 if failed else 0


async def _check_app(runtime: Any) -> None:
    try:
        await runtime.ctx.github.identify()
    except AppCheckFailed as exc:
        raise ReceiveError(str(exc)) from None


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    return url.replace(f":{parts.password}@", ":…@", 1)


async def _run_one(runtime: Any, job: Job, recorder: Recorder, out: TextIO) -> str | None:
    """Run one job, printing it and its GitHub requests; why it failed, or None."""
    first, started = len(recorder.requests), time.monotonic()
    error = None
    try:
        await runtime.run_job(job)
    except Exception as exc:  # noqa: BLE001 - reported, and the next job still runs
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    outcome = f"failed: {error}" if error else "done"
    print(f"job {describe(job.kind, job.payload)}: {outcome} ({time.monotonic() - started:.1f} s)", file=out)
    for request in recorder.requests[first:]:
        print(f"  {request.method} {request.path} -> {request.status}", file=out)
    return error


async def _run_jobs(runtime: Any, recorder: Recorder, out: TextIO) -> int:
    """Run every job that is or soon becomes due, once each, printing it and its GitHub requests; how many failed."""
    store, failed, ran = runtime.store, 0, 0
    while ran < MAX_JOBS:
        jobs = await store.claim(1, 600.0)
        if not jobs:
            due = await store.next_due()
            if due is None or due - store.clock() > WAIT_FOR_DUE:
                break
            await asyncio.sleep(max(0.0, due - store.clock()))
            continue
        job, ran = jobs[0], ran + 1
        error = await _run_one(runtime, job, recorder, out)
        if error:
            failed += 1
            await store.bury(job.id, error)
        else:
            await store.finish(job.id)
    else:
        print(f"stopped after {MAX_JOBS} jobs", file=out)
    return failed
