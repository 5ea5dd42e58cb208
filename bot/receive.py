"""`python -m bot receive EVENT PAYLOAD.json`: one delivery through chantbot in this process, and what it did.

For maintainers debugging a configuration or a prompt (Probot's `receive`): the delivery is stored in
a scratch database (never the deployment's queue), its jobs and the jobs they queue run to completion
once each against GITHUB_API_URL, and every GitHub request is listed.
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

import aiohttp

from bot import deliveries
from bot.settings import Settings

DESCRIPTION = """\
Run one webhook delivery through chantbot in this process and print what it did: the jobs it ran and
the GitHub requests they made (method, path, status). The delivery goes through a scratch database,
not DATABASE_URL's, and each job runs once (no retries). GitHub effects are real: point GITHUB_API_URL
at a test installation or the simulator (`python -m chantbot_sim.github`) when trying things out.

PAYLOAD.json is the body GitHub sends (the Payload tab of a delivery under the App's Advanced settings);
EVENT is its X-GitHub-Event header, e.g. issues or issue_comment."""
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


async def run(args: argparse.Namespace, settings: Settings, *, out: TextIO | None = None) -> int:
    """The command: 0 when every job finished, 1 when one failed."""
    out = out or sys.stdout
    if not _EVENT.fullmatch(args.event):
        raise ReceiveError(f"EVENT must be a webhook event name such as issues, got {args.event[:60]!r}")
    data = load_payload(args.payload)
    return await receive(settings, args.event, data, out=out)


async def receive(settings: Settings, event: str, data: dict[str, Any], *, out: TextIO) -> int:
    """Store the delivery in a scratch database, run its jobs, print each job and its GitHub requests."""
    from bot.runtime import Runtime

    plan = deliveries.plan(event, data)
    if plan is None:
        action = f" ({data['action']})" if isinstance(data.get("action"), str) else ""
        print(f"chantbot does nothing with {event}{action}: no job; a server would answer 200.", file=out)
        return 0
    recorder = Recorder()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="chantbot-receive-") as scratch:
        scratch_settings = dataclasses.replace(settings, database_url=f"sqlite:///{Path(scratch) / 'receive.db'}")
        runtime = Runtime(scratch_settings, spec_commit_delay=0.0, http_trace=recorder.trace)
        await runtime.open()
        try:
            delivery_id = f"receive-{uuid.uuid4()}"
            await runtime.store.accept_delivery(delivery_id, event, data.get("action"), kind=plan.kind, key=plan.key,
                                                payload={"event": event, "delivery_id": delivery_id, "data": data},
                                                installation_id=plan.installation_id)
            failed = await _run_jobs(runtime, recorder, out)
            later = (await runtime.store.queue_depth()).get("queued", 0)
        finally:
            await runtime.close()
    if later:
        print(f"{later} job(s) queued for later were not run (a server would run them when due).", file=out)
    print(f"{len(recorder.requests)} GitHub requests in all.", file=out)
    return 1 if failed else 0


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
        first = len(recorder.requests)
        started = time.monotonic()
        try:
            await runtime.run_job(job)
        except Exception as exc:  # noqa: BLE001 - reported, and the next job still runs
            failed += 1
            await store.bury(job.id, f"{type(exc).__name__}: {exc}")
            outcome = f"failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        else:
            await store.finish(job.id)
            outcome = "done"
        print(f"job {describe(job.kind, job.payload)}: {outcome} ({time.monotonic() - started:.1f} s)", file=out)
        for request in recorder.requests[first:]:
            print(f"  {request.method} {request.path} -> {request.status}", file=out)
    else:
        print(f"stopped after {MAX_JOBS} jobs", file=out)
    return failed
