"""The simulator's HTTP side: authentication, rate limits, injected faults, ETags, recording, control API."""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import hmac
import http
import json
import math
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import unquote

import aiohttp
import jwt
from aiohttp import web

from chantbot_sim.github.ci import SimulatedCI
from chantbot_sim.github.git import iso
from chantbot_sim.github.manifest import ManifestFlow
from chantbot_sim.github.model import Repo
from chantbot_sim.github.rest import DOCS, REPO_ROUTES, Ctx, GitHubError, paginate
from chantbot_sim.github.rest_code import CODE_ROUTES
from chantbot_sim.github.world import TOKEN_PERMISSIONS, World

SECONDARY_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
PRIMARY_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits"
SECONDARY_MESSAGE = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
                     "If you reach out to GitHub Support for help, please include the request ID {request_id}.")
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
HOUR = 3600.0

AppHandler = Callable[[web.Request, dict[str, str], dict[str, Any] | None], Awaitable[web.Response]]


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., Awaitable[web.Response]]
    auth: str  # "jwt" (App JWT), "token" (installation token) or "any"


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    times: int
    headers: dict[str, str]
    message: str


def _compile(template: str) -> re.Pattern[str]:
    """`{name}` matches one path segment (digits for ids and numbers), `{name*}` the rest of the path."""
    def group(m: re.Match[str]) -> str:
        numeric = m[1] == "number" or m[1].endswith("_id")
        return f"(?P<{m[1]}>{'.+' if m[2] else r'[0-9]+' if numeric else '[^/]+'})"
    return re.compile(re.sub(r"\{(\w+)(\*?)\}", group, template))


def _request_id() -> str:
    return ":".join(secrets.token_hex(n).upper() for n in (2, 3, 3, 4))


def _secondary_message() -> str:
    return SECONDARY_MESSAGE.format(request_id=_request_id())


class GitHubSimulator(World):
    """A stateful GitHub REST API over HTTP, driven by the real gidgethub client."""

    def __init__(self, *, app_id: int, public_key_pem: str | bytes, app_slug: str = "chantbot",
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(app_id=app_id, app_slug=app_slug, clock=clock)
        self.public_key = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
        self.write_limits: list[tuple[int, float]] = [(80, 60.0)]
        self.primary_limit = 5000
        self.token_ttl = 3600.0
        self.requests: list[dict[str, Any]] = []
        self.violations: collections.Counter[str] = collections.Counter()
        self._tokens: dict[str, dict[str, Any]] = {}
        self._budgets: dict[str, list[float]] = {}  # bucket -> [window start, used]
        self._writes: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._faults: list[_Fault] = []
        self._runner: web.AppRunner | None = None
        self.deliveries: list[dict[str, Any]] = []
        self.ci = SimulatedCI(self, self._deliver_ci)
        self._ci_hook: tuple[str, str] | None = None  # (webhook URL, secret) for simulated CI
        app_routes: list[tuple[str, str, AppHandler, str]] = [
            ("POST", "/app/installations/{installation_id}/access_tokens", self._create_token, "jwt"),
            ("GET", "/app", self._get_app, "jwt"),
            ("GET", "/rate_limit", self._rate_limit, "any"),
            ("GET", "/installation/repositories", self._installation_repos, "token"),
        ]
        self._routes = [_Route(m, _compile(p), h, a) for m, p, h, a in app_routes]
        self._routes += [_Route(m, _compile(p), h, "token") for m, p, h in REPO_ROUTES + CODE_ROUTES]
        self.manifests = ManifestFlow(self)  # GitHub's "new App from a manifest" pages and code conversion

    # ------------------------------------------------------------------ serving
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/_sim/state", self._control_seed)
        app.router.add_get("/_sim/state", self._control_state)
        app.router.add_get("/_sim/requests", self._control_requests)
        app.router.add_post("/_sim/ci", self._control_ci)
        app.router.add_get("/_sim/codeload/{token}/{name}", self._download)
        self.manifests.add_routes(app)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.base_url = f"http://{host}:{self._runner.addresses[0][1]}"
        return self.base_url

    async def stop(self) -> None:
        await self.ci.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _dispatch(self, request: web.Request) -> web.Response:
        if not self.base_url:
            self.base_url = str(request.url.origin())
        raw = await request.read()
        path = request.rel_url.raw_path.rstrip("/") or "/"
        rec: dict[str, Any] = {"method": request.method, "path": unquote(path), "query": dict(request.query),
                               "json": _quiet_json(raw), "status": None, "installation": None,
                               "write": False, "limited": None}
        self.requests.append(rec)
        bucket: str | None = None
        try:
            route, params = self._match(request.method, path)
            installation = self._authenticate(request, route.auth)
            bucket = f"installation ID {installation['id']}" if installation else "app"
            rec["installation"] = installation["id"] if installation else None
            resp = await self._serve(request, route, params, raw, installation, bucket, rec)
        except GitHubError as exc:
            resp = exc.response()
        for name, value in self._rate_headers(bucket).items():
            resp.headers.setdefault(name, value)
        rec["status"] = resp.status
        return resp

    async def _serve(self, request: web.Request, route: _Route, params: dict[str, str], raw: bytes,
                     installation: dict[str, Any] | None, bucket: str, rec: dict[str, Any]) -> web.Response:
        if route.handler != self._rate_limit:
            self._charge(bucket, rec)
        if request.method in WRITE_METHODS and installation is not None:
            rec["write"] = True
            self._charge_write(bucket, rec)
        self._apply_fault(request.method, rec["path"])
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            raise GitHubError(400, "Problems parsing JSON")
        if "owner" in params:
            repo = self.repos.get(f"{params['owner']}/{params['repo']}".lower())
            if installation is None or repo is None or not self.covers(installation, repo):
                raise GitHubError(404, "Not Found")  # GitHub hides what the token cannot see
            resp = await route.handler(Ctx(self, request, params, body, self.bot_login, repo))
        else:
            resp = await route.handler(request, params, installation)
        if request.method == "GET" and resp.status == 200 and isinstance(resp.body, bytes):
            etag = f'W/"{hashlib.sha1(resp.body).hexdigest()}"'
            resp.headers["ETag"] = etag
            wanted = [t.strip().removeprefix("W/") for t in request.headers.get("If-None-Match", "").split(",")]
            if etag.removeprefix("W/") in wanted:
                self._budget(bucket)[1] -= 1  # a conditional request that hits is free, as on GitHub
                return web.Response(status=304, headers={"ETag": etag})
        return resp

    def _match(self, method: str, path: str) -> tuple[_Route, dict[str, str]]:
        for route in self._routes:
            found = route.pattern.fullmatch(path)
            if found and route.method == method:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        raise GitHubError(404, "Not Found")

    # ------------------------------------------------------------------ authentication
    def _authenticate(self, request: web.Request, auth: str) -> dict[str, Any] | None:
        """The installation a token belongs to, or None for a verified App JWT."""
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        credential = credential.strip()
        if not credential:
            raise GitHubError(401, "Requires authentication")
        if scheme.lower() not in ("token", "bearer"):
            raise GitHubError(401, "Bad credentials")
        if auth == "jwt" or (auth == "any" and credential.count(".") == 2):
            self._verify_jwt(credential)
            return None
        token = self._tokens.get(credential)
        if token is None or token["expires"] <= self.clock():
            raise GitHubError(401, "Bad credentials")
        return self.installations[token["installation"]]

    def _verify_jwt(self, token: str) -> None:
        # The client dates its JWT by the wall clock, so expiry is checked against the wall clock too.
        try:
            claims = jwt.decode(token, self.public_key, algorithms=["RS256"], leeway=60,
                                options={"require": ["iat", "exp", "iss"]})
        except jwt.PyJWTError:
            raise GitHubError(401, "A JSON web token could not be decoded")
        if str(claims["iss"]) != str(self.app_id):
            raise GitHubError(401, "A JSON web token could not be decoded")
        if claims["exp"] - claims["iat"] > 660:
            raise GitHubError(401, "'Expiration time' claim ('exp') is too far in the future")

    # ------------------------------------------------------------------ rate limits and faults
    def _budget(self, bucket: str) -> list[float]:
        now = self.clock()
        budget = self._budgets.setdefault(bucket, [now, 0])
        if now >= budget[0] + HOUR:
            budget[:] = [now, 0]
        return budget

    def _charge(self, bucket: str, rec: dict[str, Any]) -> None:
        budget = self._budget(bucket)
        if budget[1] >= self.primary_limit:
            self.violations["primary"] += 1
            rec["limited"] = "primary"
            raise GitHubError(403, f"API rate limit exceeded for {bucket}.", headers={"x-ratelimit-remaining": "0"},
                              documentation_url=PRIMARY_DOCS)
        budget[1] += 1

    def _charge_write(self, bucket: str, rec: dict[str, Any]) -> None:
        """GitHub's secondary limit on content-creating requests, as sliding windows per installation."""
        now, stamps = self.clock(), self._writes[bucket]
        longest = max((window for _, window in self.write_limits), default=0.0)
        while stamps and stamps[0] <= now - longest:
            stamps.popleft()
        for allowed, window in self.write_limits:
            recent = [s for s in stamps if s > now - window]
            if len(recent) >= allowed:
                self.violations["secondary"] += 1
                rec["limited"] = "secondary"
                wait = max(1, math.ceil(recent[0] + window - now))
                raise GitHubError(403, _secondary_message(), headers={"retry-after": str(wait)},
                                  documentation_url=SECONDARY_DOCS)
        stamps.append(now)

    def _rate_headers(self, bucket: str | None) -> dict[str, str]:
        start, used = self._budget(bucket or "anonymous")
        limit = self.primary_limit if bucket else 60
        return {"x-ratelimit-limit": str(limit), "x-ratelimit-remaining": str(max(0, limit - int(used))),
                "x-ratelimit-used": str(int(used)), "x-ratelimit-reset": str(int(start + HOUR)),
                "x-ratelimit-resource": "core", "x-github-request-id": _request_id()}

    def fail(self, method: str, path_regex: str, *, status: int, times: int = 1,
             headers: dict[str, str] | None = None, message: str | None = None) -> None:
        """Answer the next `times` requests matching METHOD (or "*") and the path regex with an error.

        The default message is GitHub's for the status: "Server Error" for 5xx, the secondary-limit
        message for 403.
        """
        if message is None:
            message = ("Server Error" if status >= 500 else _secondary_message() if status == 403
                       else http.HTTPStatus(status).phrase)
        self._faults.append(_Fault(method.upper(), re.compile(path_regex), status, times, dict(headers or {}),
                                   message))

    def _apply_fault(self, method: str, path: str) -> None:
        for fault in self._faults:
            if fault.times > 0 and fault.method in ("*", method) and fault.pattern.search(path):
                fault.times -= 1
                docs = SECONDARY_DOCS if "secondary rate limit" in fault.message else DOCS
                raise GitHubError(fault.status, fault.message, headers=fault.headers, documentation_url=docs)

    # ------------------------------------------------------------------ app and installation routes
    async def _create_token(self, request: web.Request, params: dict[str, str],
                            installation: dict[str, Any] | None) -> web.Response:
        found = self.installations.get(int(params["installation_id"]))
        if found is None:
            raise GitHubError(404, "Not Found")
        token = "ghs_" + secrets.token_hex(18)
        expires = self.clock() + self.token_ttl
        self._tokens[token] = {"installation": found["id"], "expires": expires}
        return web.json_response({"token": token, "expires_at": iso(expires), "permissions": dict(TOKEN_PERMISSIONS),
                                  "repository_selection": "selected"}, status=201)

    async def _get_app(self, request: web.Request, params: dict[str, str],
                       installation: dict[str, Any] | None) -> web.Response:
        return web.json_response(self.render_app())

    async def _rate_limit(self, request: web.Request, params: dict[str, str],
                          installation: dict[str, Any] | None) -> web.Response:
        start, used = self._budget(f"installation ID {installation['id']}" if installation else "app")
        core = {"limit": self.primary_limit, "used": int(used), "remaining": max(0, self.primary_limit - int(used)),
                "reset": int(start + HOUR), "resource": "core"}
        return web.json_response({"resources": {"core": core}, "rate": core})

    async def _installation_repos(self, request: web.Request, params: dict[str, str],
                                  installation: dict[str, Any] | None) -> web.Response:
        names = [n.lower() for n in (installation or {}).get("repos", [])]
        repos = [self.render_repo(self.repos[n]) for n in names if n in self.repos]
        page, headers = paginate(self.base_url, request, repos)
        return web.json_response({"total_count": len(repos), "repository_selection": "selected",
                                  "repositories": page}, headers=headers)

    # ------------------------------------------------------------------ webhooks out
    async def deliver(self, url: str, secret: str, event: str, payload: dict, *,
                      delivery_id: str | None = None) -> int:
        """POST a signed webhook delivery to `url` as GitHub does; returns the HTTP status.

        Every delivery is logged in `deliveries` (id, event, action, url, status or error, payload); like
        GitHub, the simulator gives up on an answer after 10 seconds."""
        body = json.dumps(payload).encode()
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        record: dict[str, Any] = {"id": delivery_id or str(uuid.uuid4()), "event": event,
                                  "action": payload.get("action"), "url": url, "status": None, "error": None,
                                  "payload": payload}
        self.deliveries.append(record)
        headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": record["id"],
                   "X-Hub-Signature-256": f"sha256={signature}", "Content-Type": "application/json",
                   "User-Agent": "GitHub-Hookshot/simulator",
                   "X-GitHub-Hook-Installation-Target-Type": "integration",
                   "X-GitHub-Hook-Installation-Target-ID": str(self.app_id)}
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    record["status"] = resp.status
                    return resp.status
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
            raise

    async def redeliver(self, delivery_id: str, url: str, secret: str) -> int:
        """Send a logged delivery again with its original id to the App's (current) webhook URL, as an
        operator does from the App's settings: GitHub itself never retries a failed delivery."""
        record = next(r for r in self.deliveries if r["id"] == delivery_id)
        return await self.deliver(url, secret, record["event"], record["payload"], delivery_id=delivery_id)

    # ------------------------------------------------------------------ simulated CI
    def enable_ci(self, webhook_url: str, secret: str, *, ignore: str = r"^chant-specs$", timeout: float = 60.0,
                  hold: bool = False) -> None:
        """From now on every branch head that moves (git refs, the contents API, `push`, `merge_pull`) on a
        branch not matching `ignore` gets a check suite whose run `test` runs pytest on the commit (at most
        `timeout` seconds), then signed `check_run` and `check_suite` deliveries to `webhook_url`.
        `hold` keeps new suites queued, with nothing run or delivered, until `release_ci()`."""
        self._ci_hook = (webhook_url, secret)
        self.ci.enable(ignore=ignore, timeout=timeout, hold=hold)

    def hold_ci(self) -> None:
        """Keep suites that start from now on queued until `release_ci()`."""
        self.ci.hold()

    def release_ci(self) -> None:
        """Stop holding: the held suites run and are delivered."""
        self.ci.release()

    async def ci_idle(self, timeout: float = 60.0) -> None:
        """Wait until every started check suite is completed and its deliveries sent (RuntimeError if some
        are held)."""
        await self.ci.idle(timeout)

    def head_moved(self, repo: Repo, branch: str, sha: str, before: str | None, actor: str) -> None:
        self.ci.head_moved(repo, branch, sha, before, actor)

    async def _deliver_ci(self, event: str, payload: dict) -> int:
        assert self._ci_hook is not None
        url, secret = self._ci_hook
        return await self.deliver(url, secret, event, payload)

    async def _download(self, request: web.Request) -> web.Response:
        """The codeload side of a tarball link: no API token needed, the link's own token is the key."""
        found = self.downloads.get(request.match_info["token"])
        if found is None or found[2] <= self.clock():
            return web.Response(status=404, text="Not Found")
        full_name, sha, _ = found
        repo = self.find_repo(full_name)
        top = f"{repo.owner}-{repo.name}-{sha[:7]}"
        return web.Response(body=repo.git.archive(sha, top), content_type="application/x-gzip",
                            headers={"Content-Disposition": f"attachment; filename={top}.tar.gz"})

    # ------------------------------------------------------------------ control API (no auth, not recorded)
    async def _control_seed(self, request: web.Request) -> web.Response:
        return web.json_response(self.seed(await request.json()), status=201)

    async def _control_state(self, request: web.Request) -> web.Response:
        return web.json_response({**self.dump(request.query.get("repo")), "violations": dict(self.violations)})

    async def _control_ci(self, request: web.Request) -> web.Response:
        """`{"webhook": {"url", "secret"}, "ignore", "timeout", "hold"}` enables CI; `{"hold": false}` alone
        releases held suites."""
        body = await request.json()
        if "webhook" in body:
            self.enable_ci(body["webhook"]["url"], body["webhook"]["secret"],
                           ignore=body.get("ignore", r"^chant-specs$"), timeout=float(body.get("timeout", 60.0)),
                           hold=bool(body.get("hold", False)))
        elif body.get("hold") is False:
            self.release_ci()
        elif body.get("hold") is True:
            self.hold_ci()
        return web.json_response({"enabled": self.ci.settings is not None, "held": len(self.ci.held)})

    async def _control_requests(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": self.requests, "violations": dict(self.violations)})


def _quiet_json(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", "replace")


async def serve_forever(args: argparse.Namespace) -> None:
    with open(args.public_key, "rb") as fh:
        simulator = GitHubSimulator(app_id=args.app_id, public_key_pem=fh.read(), app_slug=args.app_slug)
    if args.seed:
        with open(args.seed) as fh:
            simulator.seed(json.load(fh))
    url = await simulator.start(args.host, args.port)
    print(f"listening on {url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await simulator.stop()
