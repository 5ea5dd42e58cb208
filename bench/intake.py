"""Intake benchmark: signed deliveries/s that `python -m bot web` stores durably, against a bare aiohttp
app answering the same requests on the same machine in the same run; p50/p99 latency for both.

    python bench/intake.py [--deliveries 2000] [--senders 32]
"""

from __future__ import annotations

import argparse
import asyncio
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


async def blast(url: str, bodies: list[bytes], senders: int) -> tuple[float, list[float], int]:
    """Send every body with `senders` concurrent senders; (deliveries/s, latencies ms, non-2xx count)."""
    queue = list(bodies)
    latencies: list[float] = []
    failures = 0

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        while queue:
            body = queue.pop()
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers(body)) as resp:
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


async def measure(name: str, argv: list[str], env: dict[str, str], port: int, bodies: list[bytes],
                  senders: int) -> tuple[float, list[float], int]:
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_ready(f"http://127.0.0.1:{port}/healthz")
        await blast(f"http://127.0.0.1:{port}/webhook", bodies[:200], senders)  # warm-up
        return await blast(f"http://127.0.0.1:{port}/webhook", bodies[200:], senders)
    finally:
        proc.terminate()
        proc.wait(30)


async def main(deliveries: int, senders: int) -> None:
    bodies = [payload(n) for n in range(1, deliveries + 201)]
    with tempfile.TemporaryDirectory(prefix="chantbot-bench-") as tmp:
        bare_port, bot_port = free_port(), free_port()
        bare = await measure("bare", [sys.executable, __file__, "--serve-bare", str(bare_port)], dict(os.environ),
                             bare_port, bodies, senders)
        key = subprocess.run(["openssl", "genrsa", "2048"], capture_output=True, text=True).stdout
        env = {**os.environ, "PORT": str(bot_port), "HOST": "127.0.0.1", "GITHUB_APP_ID": "1",
               "GITHUB_PRIVATE_KEY": key, "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_API_URL": "http://127.0.0.1:9",
               "DATABASE_URL": f"sqlite:///{tmp}/bench.db"}
        bot = await measure("chantbot", [sys.executable, "-m", "bot", "web"], env, bot_port, bodies, senders)
    print(f"intake benchmark: {deliveries} signed issues.opened deliveries (~{len(bodies[0]) // 1024} KB), "
          f"{senders} concurrent senders, {os.cpu_count()} cores")
    for name, (rate, lat, bad) in (("bare aiohttp (answers 202, stores nothing)", bare),
                                   ("chantbot web (verifies, stores in SQLite WAL)", bot)):
        print(f"  {name}: {rate:8.1f} deliveries/s, p50 {percentile(lat, .5):6.1f} ms, "
              f"p99 {percentile(lat, .99):6.1f} ms, non-2xx {bad}")
    print(f"  ratio chantbot/bare: {bot[0] / bare[0]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=32)
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
    else:
        asyncio.run(main(args.deliveries, args.senders))
