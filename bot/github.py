"""The GitHub adapter: App authentication, cached installation tokens, paced writes and retries."""

from __future__ import annotations

import asyncio
import collections
import contextvars
import datetime
import email.utils
import http
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import aiohttp
from gidgethub import (BadRequest, GitHubBroken, HTTPException, RateLimitExceeded, RedirectionException, apps,
                       sansio)
from gidgethub import aiohttp as gh_aiohttp

from bot import failures
from bot.metrics import Metrics
from bot.writelimit import WritePacer

log = logging.getLogger(__name__)

USER_AGENT = "chantbot"
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
TOKEN_REFRESH_MARGIN = 300.0  # refresh installation tokens 5 minutes before they expire
MAX_ATTEMPTS = 5
MAX_WAIT = 120.0  # never sleep longer than this inside one request; the job retries later instead
CHECK_TIMEOUT = 15.0  # seconds the start-up check waits for GitHub


class AppCheckFailed(Exception):
    """GitHub refused the App's identity, or GITHUB_API_URL is not GitHub's API; the message is one line."""


def _retry_after(headers: Any) -> float | None:
    value = (headers or {}).get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


def is_secondary_limit(exc: HTTPException) -> bool:
    """A 403/429 that asks us to slow down (GitHub's secondary limits)."""
    if exc.status_code not in (403, 429):
        return False
    text = " ".join(str(a) for a in exc.args).lower()
    return _retry_after(exc.headers) is not None or "secondary rate limit" in text or "abuse" in text


def backoff(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential backoff with jitter for the `attempt`-th failure (1-based)."""
    return min(cap, base * 2 ** (attempt - 1)) * (0.75 + 0.5 * random.random())


# The ledger's stamp of the write this task is about to send (GitHubClient.manage_rate_limit sets it, _request
# tells the pacer when the write was answered).
_admitted: contextvars.ContextVar[float | None] = contextvars.ContextVar("admitted", default=None)


class GitHubClient(gh_aiohttp.GitHubAPI):
    """gidgethub's aiohttp client for one installation, with chantbot's limits applied in the client."""

    def __init__(self, session: aiohttp.ClientSession, *, installation_id: int, token: str, base_url: str,
                 pacer: WritePacer, metrics: Metrics, cache: Any = None) -> None:
        super().__init__(session, USER_AGENT, oauth_token=token, base_url=base_url, cache=cache)
        self.installation_id = installation_id
        self.pacer = pacer
        self.metrics = metrics
        self.writes = 0

    async def manage_rate_limit(self, *, method: str, url: str) -> None:
        if method in WRITE_METHODS:
            _admitted.set(await self.pacer.acquire(self.installation_id))
            self.writes += 1
        held = await self.pacer.request_delay(self.installation_id)  # another process saw the budget spent
        if 0 < held <= MAX_WAIT:
            log.warning("primary rate limit spent (seen by another process); waiting %.0f s", held)
            await self.sleep(held)
        limit = self.rate_limit
        if limit is not None and limit.remaining <= 0:
            await self.pacer.hold_requests(self.installation_id, limit.reset_datetime.timestamp())
            wait = (limit.reset_datetime - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
            if 0 < wait <= MAX_WAIT:
                log.warning("primary rate limit exhausted; waiting %.0f s", wait)
                await self.sleep(wait)

    async def _request(self, method: str, url: str, headers: Any, body: bytes = b"") -> tuple[int, Any, bytes]:
        admitted = _admitted.get() if method in WRITE_METHODS else None
        _admitted.set(None)
        try:
            status, resp_headers, data = await super()._request(method, url, headers, body)
        finally:
            if admitted is not None:
                await self.pacer.done(self.installation_id, admitted)
        self.metrics.github_calls.labels(method=method, outcome=str(status // 100) + "xx").inc()
        return status, resp_headers, data

    async def download(self, path: str, *, limit: int) -> bytes:
        """The body of a GET that GitHub answers with a redirect to a download (a tarball), at most `limit` bytes.

        The token goes to GitHub only: the redirect's own URL is authorised by GitHub's signature in it.
        """
        url = sansio.format_url(path, {}, base_url=self.base_url)
        headers = sansio.create_headers(self.requester, accept="application/vnd.github+json",
                                        oauth_token=self.oauth_token)
        async with self._session.get(url, headers=headers, allow_redirects=False) as response:
            self.metrics.github_calls.labels(method="GET", outcome=str(response.status // 100) + "xx").inc()
            if response.status not in (301, 302, 303, 307, 308):
                body = await response.read()
                if response.status == 200:
                    return body[:limit]
                sansio.decipher_response(response.status, response.headers, body)  # raises the right error
                raise BadRequest(http.HTTPStatus(response.status))
            location = response.headers["Location"]
        async with self._session.get(location, headers={"User-Agent": USER_AGENT}) as response:
            response.raise_for_status()
            body = await response.content.read(limit + 1)
        if len(body) > limit:
            raise ValueError(f"the download is larger than {limit} bytes")
        return body

    async def handle_rate_limit_error(self, *, method: str, url: str, exception: HTTPException,
                                      attempt: int) -> bool:
        setattr(exception, failures.REQUEST, (method, url))  # so a failure report can say which step failed
        if attempt >= MAX_ATTEMPTS:
            return False
        if isinstance(exception, RateLimitExceeded):
            reset = exception.rate_limit.reset_datetime if exception.rate_limit else None
            wait = (reset - datetime.datetime.now(datetime.timezone.utc)).total_seconds() if reset else 60.0
            await self.pacer.hold_requests(self.installation_id, time.time() + wait)
        elif isinstance(exception, BadRequest) and is_secondary_limit(exception):
            wait = _retry_after(exception.headers) or 60.0 * attempt
            await self.pacer.push_back(self.installation_id, wait)
        elif isinstance(exception, GitHubBroken):
            wait = backoff(attempt)
        else:
            return False
        if wait > MAX_WAIT:
            return False
        log.info("GitHub answered %s to %s %s; retrying in %.1f s", exception.status_code, method, url, wait)
        await self.sleep(wait)
        return True


@dataclass
class _Token:
    value: str
    expires: float
    minted: float


@dataclass
class GitHubApp:
    """The App's identity: mints installation tokens and hands out clients that share limits and caches."""

    session: aiohttp.ClientSession
    app_id: str
    private_key: str
    base_url: str
    pacer: WritePacer
    metrics: Metrics
    clock: Callable[[], float] = time.time
    _tokens: dict[int, _Token] = field(default_factory=dict)
    _locks: dict[int, asyncio.Lock] = field(default_factory=lambda: collections.defaultdict(asyncio.Lock))
    _caches: dict[int, collections.OrderedDict] = field(default_factory=dict)

    def _app_client(self) -> gh_aiohttp.GitHubAPI:
        return gh_aiohttp.GitHubAPI(self.session, USER_AGENT, base_url=self.base_url)

    async def identify(self) -> dict[str, Any]:
        """The App as GitHub knows it (`GET /app` with the App's JWT), checked once at start-up.

        A key that is not the App's, or an address that is not GitHub's API, raises AppCheckFailed with
        what to fix; GitHub failing or limiting on its side (5xx, 403, 429) raises gidgethub's error.
        """
        where = f"{self.base_url.rstrip('/')}/app"
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                app = await self._app_client().getitem(
                    "/app", jwt=apps.get_jwt(app_id=self.app_id, private_key=self.private_key))
        except (BadRequest, RedirectionException) as exc:
            status, said = int(exc.status_code), " ".join(str(exc).split())[:120]
            if status in (403, 429):  # GitHub's rate limits: not the operator's mistake (the caller warns)
                raise
            if status == 401:
                raise AppCheckFailed(
                    f"GitHub refused the App's credentials (GET {where} answered 401 {said}): the private key "
                    f"(GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH) is not a key of App {self.app_id} "
                    "(GITHUB_APP_ID), or this machine's clock is off by more than a minute") from None
            raise AppCheckFailed(f"GET {where} answered {status} {said}: GITHUB_API_URL is not GitHub's REST "
                                 "API (GitHub Enterprise Server: https://HOST/api/v3)") from None
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            reason = " ".join((str(exc) or type(exc).__name__).split())[:160]
            if isinstance(exc, asyncio.TimeoutError):
                reason = f"no answer within {CHECK_TIMEOUT:.0f} s"
            raise AppCheckFailed(f"GitHub does not answer at {self.base_url} (GITHUB_API_URL): {reason}") from None
        except ValueError:  # a body that is not JSON: some other web server
            raise AppCheckFailed(f"GET {where} did not answer JSON: GITHUB_API_URL is not GitHub's REST API") \
                from None
        if not isinstance(app, dict) or str(app.get("id")) != str(self.app_id):
            raise AppCheckFailed(f"GET {where} did not answer with App {self.app_id}: GITHUB_API_URL is not "
                                 "GitHub's REST API")
        return app

    async def token(self, installation_id: int) -> str:
        """An installation token, cached until 5 minutes before it expires or until any process saw it refused."""
        async with self._locks[installation_id]:
            cached = self._tokens.get(installation_id)
            if (cached and cached.expires - TOKEN_REFRESH_MARGIN > self.clock()
                    and cached.minted > await self.pacer.tokens_revoked_at(installation_id)):
                return cached.value
            minted = self.clock()
            for attempt in range(1, MAX_ATTEMPTS + 1):
                try:
                    data = await apps.get_installation_access_token(
                        self._app_client(), installation_id=str(installation_id), app_id=self.app_id,
                        private_key=self.private_key)
                    break
                except GitHubBroken:
                    if attempt == MAX_ATTEMPTS:
                        raise
                    await asyncio.sleep(backoff(attempt))
            expires = datetime.datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00")).timestamp()
            self._tokens[installation_id] = _Token(data["token"], expires, minted)
            return data["token"]

    async def revoke_token(self, installation_id: int) -> None:
        """GitHub refused the installation's token (401): every process mints a new one."""
        self._tokens.pop(installation_id, None)
        await self.pacer.revoke_tokens(installation_id)

    async def client(self, installation_id: int) -> GitHubClient:
        cache = self._caches.setdefault(installation_id, _LRU(512))
        return GitHubClient(self.session, installation_id=installation_id, token=await self.token(installation_id),
                            base_url=self.base_url, pacer=self.pacer, metrics=self.metrics,
                            cache=cache)


class _LRU(collections.OrderedDict):
    """A bounded ETag cache for gidgethub (it only needs item get and set)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        self.move_to_end(key)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)
