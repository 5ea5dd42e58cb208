"""Stage-runner benchmark: what each stage run costs against the fake Messages API (model calls, input,
cached and output tokens, dollars) and how long `/reproduce` takes to reach CI's verdict, against the
baseline of running the same pytest directly in the same run; the whole chain's wall time.

    python bench/stages.py [--issues 3] [--sandbox-runs 9]

Then, in the same run, bench/sandbox.py: one `run_tests` call in the sandbox on the demo repository against the
same pytest run directly in the same tree, and a cached setup's cost.

The agents follow the demo's scripts (chantbot's fake Messages API plays them); CI is the simulator's,
which really runs the repository's pytest.
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

from aiohttp import web

from bot import demo
from chantbot_sim.messages import FakeMessagesAPI
from bot.llm import make_client
from bot.runtime import Runtime
from bot.settings import Settings
from chantbot_sim.github import GitHubSimulator, app_key_pair
from chantbot_sim.github.ci import write_tree
from bot.writelimit import parse_write_limits

REPO, SECRET = demo.REPO, demo.SECRET


async def pytest_directly(files: dict[str, str]) -> float:
    """The baseline: the reproduction commit's tests run by pytest in a folder, no GitHub, no chantbot."""
    with tempfile.TemporaryDirectory() as folder:
        write_tree(Path(folder), {path: text.encode() for path, text in files.items()})
        started = time.monotonic()
        env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # as the simulated CI runs it
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                                    cwd=folder, env=env, stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL)
        await proc.wait()
        return time.monotonic() - started


async def main(issues: int) -> None:
    private, public = app_key_pair()
    sim = GitHubSimulator(app_id=demo.APP_ID, public_key_pem=public, app_slug="chantbot")
    sim.write_limits = [(10_000, 60.0)]
    # The demo's configuration with the CI gate open: the bench times the chain through CI (the demo itself
    # shows the gate).
    config = demo.CONFIG.replace("gate: outsiders\n", "gate: never\n")
    assert config != demo.CONFIG, "the demo's configuration no longer names its gate"
    sim.add_repo(REPO, files={**demo.FILES, ".github/chantbot.yml": config}, collaborators=dict(demo.PEOPLE))
    sim.add_installation(demo.INSTALLATION, "acme", [REPO])
    await sim.start()
    fake = FakeMessagesAPI()
    await fake.start()
    for stage, steps in demo.AGENT_SCRIPTS.items():
        fake.agent_script(stage, steps)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(port=0, host="127.0.0.1", app_id=str(demo.APP_ID), private_key=private,
                            webhook_secrets=(SECRET,), github_api_url=sim.base_url, anthropic_api_key=None,
                            database_url=f"sqlite:///{Path(tmp) / 'bench.db'}", concurrency=4,
                            write_limits=parse_write_limits("10000/min"))
        client = make_client(api_key="bench", max_retries=0).with_options(base_url=fake.base_url)
        runtime = Runtime(settings, llm=None, agent_client=client)
        await runtime.open()
        runner = web.AppRunner(runtime.web_app(with_workers=True), shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhook"
        sim.enable_ci(url, SECRET)
        to_verdict, baseline, chain = [], [], []
        by_stage: dict[str, list[dict]] = {}
        try:
            for i in range(issues):
                title, body, user = demo.BUG
                issue = sim.add_issue(REPO, title=f"{title} ({i + 1})", body=body, user=user)
                n = issue["number"]
                await sim.deliver(url, SECRET, "issues", sim.issue_payload("opened", REPO, n))
                await demo._idle(runtime)
                started = time.monotonic()
                await demo._comment(sim, url, n, "maria", "/reproduce")
                while True:  # the reproduce spec's verdict, from CI
                    runs = [r for r in await runtime.store.runs_for_issue(REPO, n) if r.stage == "reproduce"]
                    if runs and runs[-1].status not in ("queued", "running", "waiting_ci"):
                        break
                    await asyncio.sleep(0.02)
                to_verdict.append(time.monotonic() - started)
                baseline.append(await pytest_directly(sim.files(REPO, branch=f"chant/issue-{n}")))
                await demo._settle(sim, runtime, n, 300)
                await demo._comment(sim, url, n, "maria", "/implement")
                await demo._settle(sim, runtime, n, 300)
                chain.append(time.monotonic() - started)
                for run in await runtime.store.runs_for_issue(REPO, n):
                    by_stage.setdefault(run.stage, []).append({**run.data.get("usage", {}), "turns": run.data.get("turns", 0),
                                                               "usd": run.data.get("usd", 0.0), "status": run.status})
        finally:
            await runner.cleanup()
            await runtime.close()
            await fake.stop()
            await sim.stop()
    print(f"stage runs against the fake Messages API ({issues} issues; medians; tokens as the API reported them)")
    print(f"{'stage':<10} {'calls':>5} {'input':>7} {'cached':>7} {'written':>7} {'output':>6} {'$/run':>8}  status")
    for stage, rows in by_stage.items():
        med = {k: statistics.median(r.get(k, 0) for r in rows) for k in
               ("turns", "input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens", "usd")}
        total_in = med["input_tokens"] + med["cache_read_input_tokens"] + med["cache_creation_input_tokens"]
        print(f"{stage:<10} {med['turns']:>5.0f} {total_in:>7.0f} {med['cache_read_input_tokens']:>7.0f} "
              f"{med['cache_creation_input_tokens']:>7.0f} {med['output_tokens']:>6.0f} {med['usd']:>8.4f}  "
              f"{', '.join(sorted({r['status'] for r in rows}))}")
    v, b = statistics.median(to_verdict), statistics.median(baseline)
    print(f"/reproduce to CI's verdict: median {v:.2f} s (min {min(to_verdict):.2f}, max {max(to_verdict):.2f}); "
          f"pytest run directly on the same tree: {b:.2f} s; ratio {v / b:.1f}x")
    print(f"/reproduce to a reviewed fix (reproduce, research, implement, review): median {statistics.median(chain):.2f} s")


async def both(issues: int, sandbox_runs: int) -> None:
    """The stage runs, then the sandbox's cost per run_tests call against pytest run directly (one run)."""
    await main(issues)
    if sandbox_runs:
        import sandbox as sandbox_bench  # bench/sandbox.py, beside this file

        print()
        await sandbox_bench.main(sandbox_runs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issues", type=int, default=3)
    parser.add_argument("--sandbox-runs", type=int, default=9,
                        help="interleaved run_tests/pytest pairs for the sandbox's overhead (0: skip)")
    arguments = parser.parse_args()
    asyncio.run(both(arguments.issues, arguments.sandbox_runs))
