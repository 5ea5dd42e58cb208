"""chantbot in this process against the built-in simulator, for `demo` and `try`: start it, wait, show comments."""

from __future__ import annotations

import asyncio
import contextlib
import re
import textwrap
import time
from typing import AsyncIterator

from aiohttp import web

from bot.runtime import Runtime
from chantbot_sim.github import GitHubSimulator

MARKER_OPEN, MARKER_CLOSE = "<!-- chantbot:", "-->"
ACTIVE = ("queued", "running")  # a run still working here; "waiting_ci" waits for CI or for a person


async def idle(runtime: Runtime, timeout: float = 60.0) -> None:
    """Until no job runs or is due within a minute (a stage's CI timeout waits far in the future)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        depth = await runtime.store.queue_depth()
        due = await runtime.store.next_due()
        if not depth.get("running") and (due is None or due > time.time() + 60):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("chantbot did not finish within the time allowed")


async def settle(sim: GitHubSimulator, runtime: Runtime, repo: str, number: int, timeout: float) -> None:
    """Until the issue's stage runs have ended: CI done, webhooks delivered, chantbot idle."""
    deadline = time.monotonic() + timeout
    while True:
        await sim.ci_idle(timeout)
        await idle(runtime, timeout)
        runs = await runtime.store.runs_for_issue(repo, number)
        if not any(run.status in ("queued", "running", "waiting_ci") for run in runs):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the stages did not end within the time allowed")
        await asyncio.sleep(0.2)


async def quiet(sim: GitHubSimulator, runtime: Runtime, repo: str, number: int, timeout: float) -> None:
    """Until nothing more happens by itself: CI done and delivered, chantbot idle, no run of the issue working.
    A run held for `/ok-to-test`, or waiting for CI that will not come, waits for a person: this returns."""
    deadline = time.monotonic() + timeout
    while True:
        delivered = len(sim.deliveries)
        await sim.ci_idle(timeout)
        await idle(runtime, timeout)
        await sim.ci_idle(timeout)
        runs = await runtime.store.runs_for_issue(repo, number)
        if len(sim.deliveries) == delivered and not any(run.status in ACTIVE for run in runs):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("chantbot did not settle within the time allowed")
        await asyncio.sleep(0.1)


def rule(title: str) -> str:
    return f"\n{'=' * 100}\n{title}\n{'=' * 100}"


def collapsed(body: str) -> str:
    """A comment as GitHub first shows it: a collapsed section shows only its summary."""
    return re.sub(r"<details><summary>(.*?)</summary>.*?</details>", r"▸ \1 (collapsed)", body, flags=re.S).strip()


def shown(body: str) -> str:
    """A comment as GitHub shows it, set off from the surrounding lines."""
    return textwrap.indent(collapsed(body), "    │ ", lambda line: True)


def unmarked(body: str) -> str:
    """`body` without chantbot's hidden `<!-- chantbot:… -->` markers (GitHub does not show them)."""
    out, at = [], 0
    while (start := body.find(MARKER_OPEN, at)) >= 0:
        end = body.find(MARKER_CLOSE, start + len(MARKER_OPEN))
        if end < 0:
            break
        out.append(body[at:start])
        at = end + len(MARKER_CLOSE)
        if body.startswith("\n", at) and (start == 0 or body[start - 1] == "\n"):
            at += 1  # a marker on a line of its own leaves no empty line
    out.append(body[at:])
    return "".join(out)


def unfolded(body: str) -> str:
    """A comment with its collapsed sections opened (their summary, then their contents), markers removed."""
    text = unmarked(body).replace("<details><summary>", "▾ ").replace("</summary>", "\n")
    return text.replace("</details>", "").strip()


def framed(text: str) -> str:
    """Text shown as a person sees it, set off from the surrounding lines."""
    return textwrap.indent(text, "    │ ", lambda line: True)


@contextlib.asynccontextmanager
async def running(sim: GitHubSimulator, runtime: Runtime, secret: str, *,
                  ci_timeout: float | None = 60.0) -> AsyncIterator[str]:
    """Open `runtime` and serve it (web and workers, on a free port) for `sim`, whose CI reports to it (each run
    at most `ci_timeout` seconds; None: no CI); yields the webhook URL, and stops it on exit."""
    await runtime.open()
    runner = web.AppRunner(runtime.web_app(with_workers=True), shutdown_timeout=1.0)
    try:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhook"
        if ci_timeout is not None:
            sim.enable_ci(url, secret, timeout=ci_timeout)
        yield url
    finally:
        await runner.cleanup()
        await runtime.close()
