"""Simulated CI, as a GitHub App sees GitHub Actions: a check suite per new branch head that really runs pytest."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

import aiohttp

from chantbot_sim.github.model import CheckRun, CheckSuite, Repo
from chantbot_sim.github.world import World

RUN_NAME = "test"
PARALLEL = 2  # pytest runs at once
TITLE_LIMIT = 200
SUMMARY_LIMIT = 4_000
TEXT_LIMIT = 60_000
# (event, payload) -> HTTP status; raises when the delivery does not get through
Deliver = Callable[[str, dict], Awaitable[int]]


@dataclass(frozen=True)
class TestOutcome:
    conclusion: str  # success, failure or timed_out
    title: str
    summary: str
    text: str


def write_tree(root: Path, files: dict[str, bytes]) -> list[str]:
    """Write files under `root`; returns the paths skipped because they would land outside it."""
    base, skipped = root.resolve(), []
    for path, data in files.items():
        target = (root / path).resolve()
        if not target.is_relative_to(base) or target == base:
            skipped.append(path)
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        except OSError:  # a file where the tree wants a folder, or the reverse
            skipped.append(path)
    return skipped


def _tail(text: str, limit: int) -> str:
    """The end of `text`, at most `limit` characters, starting at a line."""
    if len(text) <= limit:
        return text
    cut = text[-limit:]
    return cut[cut.find("\n") + 1:] if "\n" in cut else cut


async def run_pytest(files: dict[str, bytes], *, timeout: float, python: str = sys.executable) -> TestOutcome:
    """Write the files to a temporary folder and run `python -m pytest -q` there, in its own process group,
    killed after `timeout` seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != "PYTHONPATH"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # A repository's CI has its own environment, not chantbot's test plugins (which also cost seconds to load).
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    with tempfile.TemporaryDirectory(prefix="chantbot-ci-") as folder:
        checkout, log_path = Path(folder) / "checkout", Path(folder) / "pytest.log"
        checkout.mkdir()
        write_tree(checkout, files)
        with open(log_path, "wb") as log:
            process = await asyncio.create_subprocess_exec(
                python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=checkout, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            timed_out = False
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except asyncio.TimeoutError:
                timed_out = True
            finally:
                if process.returncode is None:
                    try:
                        os.killpg(process.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    await process.wait()
        with open(log_path, "rb") as log:
            log.seek(max(0, log_path.stat().st_size - TEXT_LIMIT * 4))
            output = _tail(log.read().decode("utf-8", "replace"), TEXT_LIMIT)
    lines = [line.strip(" =") for line in output.splitlines() if line.strip(" =")]
    if timed_out:
        conclusion, title = "timed_out", f"pytest did not finish within {timeout:g} s"
    else:
        conclusion = "success" if process.returncode == 0 else "failure"
        title = lines[-1] if lines else f"pytest exited with status {process.returncode}"
    return TestOutcome(conclusion, title[:TITLE_LIMIT], _tail(output, SUMMARY_LIMIT), output)


@dataclass
class CISettings:
    ignore: re.Pattern[str]
    timeout: float
    hold: bool


class SimulatedCI:
    """Check suites for new branch heads, run two at a time, then delivered through `deliver`."""

    def __init__(self, world: World, deliver: Deliver) -> None:
        self.world, self.deliver = world, deliver
        self.settings: CISettings | None = None
        self.held: list[tuple[Repo, CheckSuite]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(PARALLEL)

    def enable(self, *, ignore: str, timeout: float, hold: bool) -> None:
        self.settings = CISettings(re.compile(ignore), timeout, hold)

    def head_moved(self, repo: Repo, branch: str, sha: str, before: str | None, actor: str) -> None:
        """A new suite for a branch's new head: unless CI is off, the branch ignored or the commit has one."""
        settings = self.settings
        if settings is None or settings.ignore.search(branch):
            return
        if any(suite.head_sha == sha for suite in repo.check_suites.values()):
            return
        now = self.world.clock()
        suite = CheckSuite(self.world.next_id(), sha, branch, before, actor, now, now)
        run = CheckRun(self.world.next_id(), suite.id, sha, RUN_NAME)
        suite.run_ids.append(run.id)
        repo.check_suites[suite.id], repo.check_runs[run.id] = suite, run
        if settings.hold:
            self.held.append((repo, suite))
        else:
            self._start(repo, suite)

    def hold(self) -> None:
        if self.settings is not None:
            self.settings.hold = True

    def release(self) -> None:
        """Stop holding: every held suite starts."""
        if self.settings is not None:
            self.settings.hold = False
        held, self.held = self.held, []
        for repo, suite in held:
            self._start(repo, suite)

    async def idle(self, timeout: float) -> None:
        """Wait until every started suite is completed and delivered; an error when some are held."""
        async def drain() -> None:
            while self._tasks:
                await asyncio.gather(*self._tasks)
        await asyncio.wait_for(drain(), timeout)
        if self.held:
            raise RuntimeError(f"{len(self.held)} check suite(s) held: release_ci() starts them")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _start(self, repo: Repo, suite: CheckSuite) -> None:
        task = asyncio.get_running_loop().create_task(self._run(repo, suite))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, repo: Repo, suite: CheckSuite) -> None:
        run = repo.check_runs[suite.run_ids[0]]
        settings = self.settings
        assert settings is not None
        async with self._slots:
            run.started = suite.updated = self.world.clock()
            run.status = suite.status = "in_progress"
            files = {path: repo.git.blobs[sha] for path, sha in repo.git.files_at(suite.head_sha).items()}
            outcome = await run_pytest(files, timeout=settings.timeout)
        run.completed = suite.updated = self.world.clock()
        run.status = suite.status = "completed"
        run.conclusion = suite.conclusion = outcome.conclusion
        run.title, run.summary, run.text = outcome.title, outcome.summary, outcome.text
        await self._send("check_run", self.world.check_run_payload(repo.full_name, run.id))
        await self._send("check_suite", self.world.check_suite_payload(repo.full_name, suite.id))

    async def _send(self, event: str, payload: dict) -> None:
        try:
            await self.deliver(event, payload)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
            pass  # GitHub does not retry a failed delivery; the simulator's delivery log keeps it
