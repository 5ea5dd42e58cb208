"""The web half: `POST /webhook` stores verified deliveries before answering; health and metrics."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Awaitable, Callable, Mapping

from aiohttp import web
from gidgethub import ValidationFailure, sansio

from bot import deliveries
from bot.metrics import Metrics
from bot.store import Store

log = logging.getLogger(__name__)

MAX_BODY = 25 * 1024 * 1024  # GitHub never sends more than 25 MB

_SIGNATURE = re.compile(r"sha256=[0-9a-fA-F]{64}")
_DELIVERY_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
KNOWN_EVENTS = frozenset(deliveries.HANDLED) | {"ping"}
REFUSAL_WARNING_EVERY = 60.0  # seconds between two warnings about refused signatures, per process

STORE = web.AppKey("store", Store)
METRICS = web.AppKey("metrics", Metrics)
SECRETS = web.AppKey("secrets", tuple)
NOTIFY = web.AppKey("notify", object)
ABOUT = web.AppKey("about", dict)


class Refusals:
    """Deliveries refused for their signature: one warning a minute naming the likely cause, counting the rest.

    A flood of unsigned requests (anyone can POST) must not flood the log, and a wrong secret must not
    stay silent: an operator sees the first refusal at once and a count of the others.
    """

    def __init__(self, every: float = REFUSAL_WARNING_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self.every, self.clock = every, clock
        self.warned_at: float | None = None
        self.suppressed = 0

    def refused(self, headers: Mapping[str, str]) -> None:
        now = self.clock()
        if self.warned_at is not None and now - self.warned_at < self.every:
            self.suppressed += 1
            return
        more = (f" ({self.suppressed} more refused since the last warning)" if self.suppressed else "")
        self.warned_at, self.suppressed = now, 0
        delivery = headers.get("X-GitHub-Delivery") or ""
        which = f"delivery {delivery}" if _DELIVERY_ID.fullmatch(delivery) else "a delivery"
        if headers.get("X-Hub-Signature-256"):
            log.warning("refused %s (401): its X-Hub-Signature-256 matches none of GITHUB_WEBHOOK_SECRET's secrets; "
                        "the webhook secret on the App's settings page on GitHub likely differs from "
                        "GITHUB_WEBHOOK_SECRET (set the same value in both)%s", which, more)
        else:
            log.warning("refused %s (401): it has no X-Hub-Signature-256 header; the App's webhook on GitHub "
                        "likely has no secret (set it to GITHUB_WEBHOOK_SECRET's value), or the sender is not "
                        "GitHub%s", which, more)


REFUSALS = web.AppKey("refusals", Refusals)


def verify(headers: Mapping[str, str], body: bytes, secrets: tuple[str, ...]) -> bool:
    """True when X-Hub-Signature-256 matches the body under any configured secret (rotation).

    Anything but `sha256=` and 64 hex digits is refused before any comparison: a header with
    non-ASCII characters would make the comparison itself fail.
    """
    signature = headers.get("X-Hub-Signature-256") or ""
    if not _SIGNATURE.fullmatch(signature):
        return False
    for secret in secrets:
        try:
            sansio.validate_event(body, signature=signature, secret=secret)
            return True
        except ValidationFailure:
            continue
    return False


def _answer(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


def event_label(event: str, *, verified: bool) -> str:
    """The metrics label for a delivery's event: only a verified delivery's, and only an event chantbot knows.

    The header is the sender's to choose; labelling by it would let anyone grow /metrics without end.
    """
    if not verified:
        return "unverified"
    return event if event in KNOWN_EVENTS else "other"


async def webhook(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]

    def count(outcome: str, *, verified: bool = True) -> None:
        metrics.deliveries.labels(event=event_label(event, verified=verified), outcome=outcome).inc()

    event = request.headers.get("X-GitHub-Event", "")
    length = request.content_length
    if length is not None and length > MAX_BODY:
        count("too_large", verified=False)
        return _answer(413, "payload over 25 MiB")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        count("too_large", verified=False)
        return _answer(413, "payload over 25 MiB")
    if not verify(request.headers, body, request.app[SECRETS]):
        count("bad_signature", verified=False)
        request.app[REFUSALS].refused(request.headers)
        return _answer(401, "bad or missing X-Hub-Signature-256")
    delivery_id = request.headers.get("X-GitHub-Delivery", "")
    if not event or not delivery_id or len(delivery_id) > 100:
        count("malformed")
        return _answer(400, "missing X-GitHub-Event or X-GitHub-Delivery header")
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        if deliveries.too_deep(data):
            raise ValueError("nested too deeply")
    except (ValueError, RecursionError):
        count("malformed")
        return _answer(400, "body is not a JSON object GitHub would send")
    if event == "ping":
        count("ping")
        return _answer(200, "pong")
    try:
        job = deliveries.plan(event, data)
    except deliveries.Malformed as exc:
        count("malformed")
        return _answer(400, str(exc))
    if job is None:
        count("ignored")
        return _answer(200, "nothing to do")
    stored = await request.app[STORE].accept_delivery(
        delivery_id, event, data.get("action"), kind=job.kind, key=job.key,
        payload={"event": event, "delivery_id": delivery_id, "data": data}, installation_id=job.installation_id)
    if not stored:
        count("duplicate")
        return _answer(200, "delivery seen before")
    count("accepted")
    notify = request.app[NOTIFY]
    if callable(notify):
        notify()
    return _answer(202, "stored")


async def healthz(request: web.Request) -> web.Response:
    """200 while the store answers and can write (a disk that is full, or a read-only database, is a 503)."""
    store = request.app[STORE]
    problem = await store.probe()
    if problem is not None:
        return web.json_response({"status": "unavailable", "database": problem}, status=503)
    try:
        depth = await store.queue_depth()
    except Exception:  # noqa: BLE001 - it could write a moment ago; this is a hiccup, not a verdict
        return web.json_response({"status": "unavailable", "database": "not answering"}, status=503)
    return web.json_response({"status": "ok", "queue": depth, **request.app[ABOUT]})


async def metrics_view(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    try:
        depth = await request.app[STORE].queue_depth()
    except Exception:  # noqa: BLE001 - metrics must answer even when the database does not
        depth = {}
    for status in ("queued", "running", "dead"):
        metrics.queue_depth.labels(status=status).set(depth.get(status, 0))
    return web.Response(body=metrics.render(), content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type": "text/plain; version=0.0.4"})


def create_app(*, store: Store, metrics: Metrics, secrets: tuple[str, ...],
               notify: Callable[[], None] | None = None,
               background: Callable[[web.Application], Awaitable[None]] | None = None,
               receive: bool = True, about: Mapping[str, str] | None = None) -> web.Application:
    """The web application. `background`, when given, is an aiohttp cleanup context (e.g. the workers);
    without `receive`, only /healthz and /metrics (a worker process)."""
    app = web.Application(client_max_size=MAX_BODY)
    app[STORE] = store
    app[METRICS] = metrics
    app[SECRETS] = secrets
    app[NOTIFY] = notify
    app[ABOUT] = dict(about or {})  # what /healthz reports besides the database (e.g. the sandbox in use)
    app[REFUSALS] = Refusals()
    if receive:
        app.router.add_post("/webhook", webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    if background is not None:
        app.cleanup_ctx.append(background)
    return app

