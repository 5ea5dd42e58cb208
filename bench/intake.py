"""Intake benchmark: signed deliveries/s that 1 and 2 `python -m bot web` processes store durably, on SQLite
and on PostgreSQL, against 1 and 2 bare aiohttp processes answering the same requests on the same machine in the
same run; p50/p99 latency for each. Deliveries alternate between the processes, as behind a load balancer.

    python bench/intake.py [--deliveries 2000] [--senders 32] [--postgres postgresql://postgres@127.0.0.1/postgres]

PostgreSQL runs use a fresh database each, created on the --postgres server and dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import AsyncIterator

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_bare(port: int) -> None:
    """The baseline: read the body, answer 202. No verification, no storage."""
    async def webhook(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"message": "stored"}, status=202)

    app = web.Application(client_max_size=25 * 1024 * 1024)
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/healthz", lambda r: web.json_response({"status": "ok"}))
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def payload(number: int) -> bytes:
    """An issues.opened delivery with a stack trace in its body (about 2 KB)."""
    user = {"login": f"reporter{number}", "id": number, "type": "User", "site_admin": False,
            "html_url": f"https://github.com/reporter{number}"}
    issue = {"number": number, "title": f"Crash when saving widget {number}", "state": "open", "user": user,
             "body": "Steps to reproduce:\n1. open\n2. save\n\n```\nTraceback (most recent call last):\n"
                     + "  File \"core.py\", line 9, in save\n" * 40 + "KeyError: 'size'\n```\n",
             "labels": [], "comments": 0, "author_association": "NONE",
             "html_url": f"https://github.com/acme/widgets/issues/{number}",
             "url": f"https://api.github.com/repos/acme/widgets/issues/{number}"}
    repo = {"full_name": "acme/widgets", "name": "widgets", "owner": {"login": "acme"}, "private": False,
            "default_branch": "main", "url": "https://api.github.com/repos/acme/widgets"}
    return json.dumps({"action": "opened", "issue": issue, "repository": repo, "installation": {"id": 1},
                       "sender": user}).encode()


def headers(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-GitHub-Event": "issues", "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


async def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def blast(urls: list[str], bodies: list[bytes], senders: int) -> tuple[float, list[float], int]:
    """Send every body with `senders` concurrent senders, body i to urls[i % len(urls)];
    (deliveries/s, latencies ms, non-2xx count)."""
    queue = list(enumerate(bodies))
    latencies: list[float] = []
    failures = 0

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        while queue:
            i, body = queue.pop()
            t0 = time.perf_counter()
            async with session.post(urls[i % len(urls)], data=body, headers=headers(body)) as resp:
                await resp.read()
                failures += not 200 <= resp.status < 300
            latencies.append((time.perf_counter() - t0) * 1000)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=senders)) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(sender(session) for _ in range(senders)))
        elapsed = time.perf_counter() - t0
    return len(bodies) / elapsed, latencies, failures


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def measure(argv: list[str], env: dict[str, str], processes: int, bodies: list[bytes],
                  senders: int) -> tuple[float, list[float], int]:
    """Start `processes` copies of argv (each on its own PORT), warm up, then measure."""
    ports = [free_port() for _ in range(processes)]
    procs = []
    for port in ports:
        command = [a.replace("{port}", str(port)) for a in argv]
        procs.append(subprocess.Popen(command, env={**env, "PORT": str(port)}, cwd=ROOT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        for port in ports:
            await wait_ready(f"http://127.0.0.1:{port}/healthz")
        urls = [f"http://127.0.0.1:{port}/webhook" for port in ports]
        await blast(urls, bodies[:200], senders)  # warm-up
        return await blast(urls, bodies[200:], senders)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


@contextlib.asynccontextmanager
async def postgres_database(server: str) -> AsyncIterator[str | None]:
    """A fresh database on `server` (dropped after), or None when no server answers."""
    import asyncpg

    name = f"chantbot_bench_{uuid.uuid4().hex[:10]}"
    try:
        conn = await asyncpg.connect(server, timeout=5)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
        print(f"  (PostgreSQL at {server} does not answer: {exc}; its rows are left out)")
        yield None
        return
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        yield f"{server.rsplit('/', 1)[0]}/{name}"
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def main(deliveries: int, senders: int, postgres: str) -> None:
    bodies = [payload(n) for n in range(1, deliveries + 201)]
    print(f"intake benchmark: {deliveries} signed issues.opened deliveries (~{len(bodies[0]) // 1024} KB), "
          f"{senders} concurrent senders, {os.cpu_count()} cores")
    key = subprocess.run(["openssl", "genrsa", "2048"], capture_output=True, text=True).stdout
    bot_env = {**os.environ, "HOST": "127.0.0.1", "GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": key,
               "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_API_URL": "http://127.0.0.1:9"}
    bare_argv = [sys.executable, __file__, "--serve-bare", "{port}"]
    web_argv = [sys.executable, "-m", "bot", "web"]
    results: list[tuple[str, tuple[float, list[float], int]]] = []
    for processes in (1, 2):
        results.append((f"bare aiohttp x{processes} (answers 202, stores nothing)",
                        await measure(bare_argv, dict(os.environ), processes, bodies, senders)))
        with tempfile.TemporaryDirectory(prefix="chantbot-bench-") as tmp:
            env = {**bot_env, "DATABASE_URL": f"sqlite:///{tmp}/bench.db"}
            results.append((f"chantbot web x{processes} on SQLite (one file, WAL)",
                            await measure(web_argv, env, processes, bodies, senders)))
        async with postgres_database(postgres) as url:
            if url:
                env = {**bot_env, "DATABASE_URL": url}
                results.append((f"chantbot web x{processes} on PostgreSQL",
                                await measure(web_argv, env, processes, bodies, senders)))
    base = results[0][1][0]
    for name, (rate, lat, bad) in results:
        if name.startswith("bare"):  # each chantbot row is set against bare aiohttp with as many processes
            base = rate
        print(f"  {name:<52} {rate:8.1f} deliveries/s ({rate / base:4.2f} of bare), p50 {percentile(lat, .5):6.1f} ms, "
              f"p99 {percentile(lat, .99):6.1f} ms, non-2xx {bad}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=32)
    parser.add_argument("--postgres", default=os.environ.get("CHANTBOT_BENCH_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="a PostgreSQL server on which the bench may create a database (dropped after)")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
    else:
        asyncio.run(main(args.deliveries, args.senders, args.postgres))
