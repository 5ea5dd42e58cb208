"""Drain benchmark: 800 new issues across four installations, triaged by one `web` and 1 or 3 `worker`
processes on a fresh PostgreSQL database (or SQLite), against the GitHub simulator and the fake Messages API.

Each installation may make 80 content-creating requests a second (GitHub's 80 a minute, 60 times faster),
told to chantbot as GITHUB_WRITE_LIMITS=80/s and enforced by the simulator. The write floor is the time
the slowest installation's accepted writes need at that rate; a drain near the floor is paced by GitHub's
limits, not by chantbot. Also: limit violations (must be 0) and the bot processes' CPU per issue.

    python bench/drain.py [--issues-per-installation 200] [--workers 1,3] [--database postgres|sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.intake import free_port, postgres_database, wait_ready  # noqa: E402
from chantbot_sim.messages import FakeMessagesAPI  # noqa: E402
from chantbot_sim.github import GitHubSimulator, app_key_pair  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SECRET = "drain-secret"
INSTALLATIONS = [("acme/widgets", 31337), ("globex/gadgets", 31338), ("initech/reports", 31339),
                 ("umbrella/hive", 31340)]
WRITE_RATE = 80.0  # per installation per second
FILES = {"README.md": "# project\n", "src/core.py": "def parse_size(text):\n    return int(text[:-3])\n"}
WRITES = ("POST", "PATCH", "PUT", "DELETE")

SUBJECTS = ["widget", "exporter", "parser", "config loader", "cache", "CLI", "plugin API", "scheduler",
            "YAML output", "theme engine", "size parser", "logging", "installer", "sync job", "web view"]
KINDS = [
    ("{s} crashes with KeyError on save", "Steps to reproduce:\n1. open the {s}\n2. save\n\n```\nTraceback (most "
     "recent call last):\n  File \"core.py\", line {n}, in save\nKeyError: 'size'\n```\nversion 2.{n}.1"),
    ("Support exporting the {s} to JSON", "It would be nice to add support for the {s} to export JSON, next to the "
     "CSV output. Use case: our tooling reads JSON only."),
    ("How do I configure the {s}?", "I read the docs but could not find how to set the {s} timeout. Is there an "
     "option for it?"),
    ("Typo in the {s} docs", "The documentation page for the {s} says 'recieve' in the second paragraph."),
]


def issue_text(rng: random.Random) -> tuple[str, str]:
    title, body = rng.choice(KINDS)
    subject, n = rng.choice(SUBJECTS), rng.randint(2, 400)
    return title.format(s=subject, n=n), body.format(s=subject, n=n)


def signed(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-GitHub-Event": "issues", "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


def cpu_so_far(proc: subprocess.Popen) -> float:
    """User+system CPU seconds a running process has used (Linux /proc)."""
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(procs: list[subprocess.Popen]) -> float:
    """SIGTERM every process, wait, and return their user+system CPU seconds."""
    cpu = 0.0
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            _, _, usage = os.wait4(proc.pid, 0)
            cpu += usage.ru_utime + usage.ru_stime
        except ChildProcessError:
            pass
    return cpu


def bot_command(role: str, profile: str | None, n: int) -> list[str]:
    """`python -m bot ROLE`, under cProfile (written at exit to PROFILE/ROLEn.prof) when asked."""
    if profile:
        return [sys.executable, "-m", "cProfile", "-o", str(Path(profile) / f"{role}{n}.prof"), "-m", "bot", role]
    return [sys.executable, "-m", "bot", role]


async def drain(workers: int, per_installation: int, database_url: str, concurrency: int,
                profile: str | None = None) -> dict:
    private, public = app_key_pair()
    sim = GitHubSimulator(app_id=1, public_key_pem=public, app_slug="chantbot")
    sim.write_limits = [(int(WRITE_RATE), 1.0)]
    for repo, inst in INSTALLATIONS:
        sim.add_repo(repo, files=dict(FILES), collaborators={"maint": "maintain"})
        sim.add_installation(inst, repo.split("/")[0], [repo])
    await sim.start()
    llm = FakeMessagesAPI()
    await llm.start()
    rng = random.Random(800)
    issues: list[tuple[str, int, int]] = []
    for _ in range(per_installation):
        for repo, inst in INSTALLATIONS:
            title, body = issue_text(rng)
            issues.append((repo, inst, sim.add_issue(repo, title=title, body=body, user=f"reporter{rng.randint(1, 99)}")
                           ["number"]))
    bodies = [json.dumps(sim.issue_payload("opened", repo, number)).encode() for repo, _, number in issues]
    env = {**os.environ, "HOST": "127.0.0.1", "GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": private,
           "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_API_URL": sim.base_url, "ANTHROPIC_API_KEY": "fake-key",
           "ANTHROPIC_BASE_URL": llm.base_url, "GITHUB_WRITE_LIMITS": f"{WRITE_RATE:g}/s",
           "DATABASE_URL": database_url, "BOT_CONCURRENCY": str(concurrency), "LOG_FORMAT": "json"}
    web_port, worker_ports = free_port(), [free_port() for _ in range(workers)]
    logs = tempfile.TemporaryFile()
    procs = [subprocess.Popen(bot_command("web", profile, 1), env={**env, "PORT": str(web_port)}, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=logs)]
    await wait_ready(f"http://127.0.0.1:{web_port}/healthz")  # the web process migrates; then the workers start
    procs += [subprocess.Popen(bot_command("worker", profile, n), env={**env, "PORT": str(port)}, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=logs) for n, port in enumerate(worker_ports, 1)]
    for port in worker_ports:
        await wait_ready(f"http://127.0.0.1:{port}/healthz")
    ours = resource.getrusage(resource.RUSAGE_SELF)
    started = sum(cpu_so_far(proc) for proc in procs)  # start-up (imports, migrations) is not per issue
    try:
        t0 = time.monotonic()
        queue = list(reversed(bodies))
        statuses: list[int] = []

        async def sender(session: aiohttp.ClientSession) -> None:
            while queue:
                body = queue.pop()
                async with session.post(f"http://127.0.0.1:{web_port}/webhook", data=body,
                                        headers=signed(body)) as resp:
                    statuses.append(resp.status)

        async with aiohttp.ClientSession() as session:
            sending = asyncio.gather(*(sender(session) for _ in range(32)))
            pending = set(range(len(issues)))
            deadline = t0 + 900
            while pending and time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                pending = {i for i in pending if not sim.comments(issues[i][0], issues[i][2], bot_only=True)}
            took = time.monotonic() - t0
            await sending
    finally:
        cpu = stop(procs) - started
        mine = resource.getrusage(resource.RUSAGE_SELF)
        await llm.stop()
        await sim.stop()
    accepted = {inst: sum(1 for r in sim.requests if r["installation"] == inst and r["method"] in WRITES
                          and r["status"] is not None and r["status"] < 400) for _, inst in INSTALLATIONS}
    floor = max(accepted.values()) / WRITE_RATE
    return {"workers": workers, "issues": len(issues), "drain": took, "floor": floor, "left": len(pending),
            "not_2xx": sum(1 for s in statuses if not 200 <= s < 300), "violations": dict(sim.violations),
            "requests": len(sim.requests) / len(issues), "writes": sum(accepted.values()) / len(issues),
            "cpu_per_issue_ms": cpu / len(issues) * 1000,
            "fakes_cpu_per_issue_ms": ((mine.ru_utime + mine.ru_stime) - (ours.ru_utime + ours.ru_stime))
            / len(issues) * 1000}


async def main(per_installation: int, worker_counts: list[int], database: str, postgres: str,
               concurrency: int, profile: str | None) -> None:
    total = per_installation * len(INSTALLATIONS)
    print(f"drain benchmark: {total} issues.opened across {len(INSTALLATIONS)} installations, 1 web + N workers "
          f"(BOT_CONCURRENCY={concurrency}) on {database}, writes limited to {WRITE_RATE:g}/s per installation, "
          f"{os.cpu_count()} cores")
    for workers in worker_counts:
        if database == "postgres":
            async with postgres_database(postgres) as url:
                if url is None:
                    return
                result = await drain(workers, per_installation, url, concurrency, profile)
        else:
            with tempfile.TemporaryDirectory(prefix="chantbot-drain-") as tmp:
                result = await drain(workers, per_installation, f"sqlite:///{tmp}/bot.db", concurrency,
                                     profile)
        left = f", {result['left']} NOT TRIAGED" if result["left"] else ""
        print(f"  {workers} worker(s): drain {result['drain']:6.1f} s against a write floor of {result['floor']:5.1f} s "
              f"({result['drain'] / result['floor']:.2f}x){left}; violations {result['violations'] or 0}; "
              f"{result['requests']:.2f} GitHub requests and {result['writes']:.2f} writes per issue; bot CPU "
              f"{result['cpu_per_issue_ms']:.1f} ms per issue (simulator and fake LLM "
              f"{result['fakes_cpu_per_issue_ms']:.1f} ms); deliveries not 2xx: {result['not_2xx']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues-per-installation", type=int, default=200)
    parser.add_argument("--workers", default="1,3", help="comma-separated worker counts to run, one run each")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--concurrency", type=int, default=8, help="BOT_CONCURRENCY of each worker")
    parser.add_argument("--postgres", default=os.environ.get("CHANTBOT_BENCH_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--profile", metavar="DIR", help="run the bot processes under cProfile, writing DIR/*.prof")
    args = parser.parse_args()
    asyncio.run(main(args.issues_per_installation, [int(w) for w in args.workers.split(",")], args.database,
                     args.postgres, args.concurrency, args.profile))
