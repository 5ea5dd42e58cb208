"""Sandbox benchmark: what one `run_tests` call costs on the demo repository against running the same pytest
directly in the same tree (side by side, interleaved, median of several), and what a cached setup costs.

    python bench/sandbox.py [--runs 9]

Goals: a run_tests call at most max(150 ms more, 1.5×) the direct run; a cached setup under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bot import demo
from bot.sandbox import DEFAULT_TEST, find
from bot.sandbox.tree import lay_out
from chantbot_sim.github import GitHubSimulator, app_key_pair

SETUP = 'python3 -m venv --without-pip "$CHANT_ENV"'  # real work, and no network needed


def demo_archive() -> bytes:
    """The demo repository's default branch as the simulator serves it (GitHub's tarball shape)."""
    _, public = app_key_pair()
    sim = GitHubSimulator(app_id=demo.APP_ID, public_key_pem=public, app_slug="chantbot")
    sim.add_repo(demo.REPO, files=dict(demo.FILES), collaborators=dict(demo.PEOPLE))
    repo = sim.find_repo(demo.REPO)
    sha = repo.git.resolve("main")
    assert sha is not None
    return repo.git.archive(sha, f"acme-widgets-{sha[:7]}")


async def direct(folder: str) -> float:
    """The baseline: the same test command, with chantbot's interpreter, in an already laid-out tree."""
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "CHANT_JUNIT": os.path.join(folder, "junit.xml")}
    command = DEFAULT_TEST.replace("python3", sys.executable).replace("{paths}", "")
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_shell(command, cwd=os.path.join(folder, "repo"), env=env,
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    await proc.wait()
    return time.perf_counter() - started


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as folder:
        sandbox, why = find(None, cache=cache)
        if sandbox is None:
            print(f"no sandbox here: {why}")
            return
        print(sandbox.describe())
        archive = demo_archive()
        lay_out(archive, {}, os.path.join(folder, "repo"))
        first = await sandbox.run_tests(archive, {}, DEFAULT_TEST)  # warm both (page cache, bytecode)
        await direct(folder)
        assert first.outcomes, first.render()  # the demo repository has its bug: one test fails
        boxed, plain = [], []
        for _ in range(runs):
            started = time.perf_counter()
            await sandbox.run_tests(archive, {}, DEFAULT_TEST)
            boxed.append(time.perf_counter() - started)
            plain.append(await direct(folder))
        b, p = statistics.median(boxed), statistics.median(plain)
        goal = max(p + 0.150, 1.5 * p)
        print(f"run_tests on the demo repository ({len(first.outcomes)} test, {runs} runs, medians):")
        print(f"  pytest directly   {p * 1000:7.1f} ms   (range {min(plain) * 1000:.0f}–{max(plain) * 1000:.0f} ms)")
        print(f"  in the sandbox    {b * 1000:7.1f} ms   (range {min(boxed) * 1000:.0f}–{max(boxed) * 1000:.0f} ms; {(b - p) * 1000:+.1f} ms, ×{b / p:.2f}; "
              f"goal ≤ {goal * 1000:.0f} ms: {'met' if b <= goal else 'MISSED'})")

        started = time.perf_counter()
        made = await sandbox.setup(archive, SETUP, timeout=120)
        made_in = time.perf_counter() - started
        assert made.ran and made.status == 0, made.output
        cached = []
        for _ in range(runs):
            started = time.perf_counter()
            again = await sandbox.setup(archive, SETUP, timeout=120)
            cached.append(time.perf_counter() - started)
            assert not again.ran
        c = statistics.median(cached)
        print(f"setup ({SETUP!r}): first {made_in * 1000:.0f} ms; cached {c * 1000:.1f} ms median "
              f"(goal < 100 ms: {'met' if c < 0.100 else 'MISSED'})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    asyncio.run(main(parser.parse_args().runs))
