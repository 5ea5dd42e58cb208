"""Shared fixtures: an App key pair, the GitHub simulator, the fake Messages API, and a running chantbot."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestServer

from chantbot_sim.messages import FakeMessagesAPI
from bot.runtime import Runtime
from bot.settings import Settings
from chantbot_sim.github import GitHubSimulator, app_key_pair
from bot.store import open_store
from bot.writelimit import parse_write_limits
from tests.databases import _databases, database_url, postgres_url  # noqa: F401 (fixtures for every test)

REPO = "acme/widgets"
INSTALLATION = 4242
APP_ID = 777
SECRET = "test-secret"
PEOPLE = {"maint": "maintain", "writer": "write", "triager": "triage", "admin": "admin", "outsider": "none"}
FILES = {"README.md": "# widgets\n", "src/widgets/core.py": "class Widget:\n    pass\n"}


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_pem: str


@pytest.fixture(scope="session")
def app_key() -> KeyPair:
    return KeyPair(*app_key_pair())


class ManualClock:
    """A clock that moves only when a test moves it."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def simulator(app_key: KeyPair) -> GitHubSimulator:
    sim = GitHubSimulator(app_id=APP_ID, public_key_pem=app_key.public_pem, app_slug="chantbot")
    sim.add_repo(REPO, files=dict(FILES), collaborators=dict(PEOPLE))
    sim.add_installation(INSTALLATION, "acme", [REPO])
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def fake_llm() -> FakeMessagesAPI:
    fake = FakeMessagesAPI()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def fake(clock: ManualClock) -> FakeMessagesAPI:
    """The fake Messages API on a manual clock (prompt-cache lifetimes move only when a test moves them)."""
    api = FakeMessagesAPI(clock=clock)
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
async def client(fake: FakeMessagesAPI) -> Any:
    """The real anthropic SDK pointed at `fake`."""
    import anthropic

    sdk = anthropic.AsyncAnthropic(api_key="test", base_url=fake.base_url, max_retries=0)
    yield sdk
    await sdk.close()


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll `check` until it returns something truthy (work finishing, not time passing)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


class Bot:
    """chantbot running in-process (web and workers) against the simulator."""

    def __init__(self, runtime: Runtime, server: TestServer, sim: GitHubSimulator,
                 clock: Callable[[], float] = time.time) -> None:
        self.runtime, self.server, self.sim, self.clock = runtime, server, sim, clock

    @property
    def url(self) -> str:
        return str(self.server.make_url("/webhook"))

    async def deliver(self, event: str, payload: dict, **kwargs: Any) -> int:
        return await self.sim.deliver(self.url, SECRET, event, payload, **kwargs)

    async def open_issue(self, title: str, body: str, *, user: str = "reporter", labels: tuple[str, ...] = ()) -> int:
        issue = self.sim.add_issue(REPO, title=title, body=body, user=user, labels=labels)
        assert await self.deliver("issues", self.sim.issue_payload("opened", REPO, issue["number"])) == 202
        return int(issue["number"])

    async def comment(self, number: int, body: str, *, user: str) -> dict:
        comment = self.sim.add_comment(REPO, number, body=body, user=user)
        status = await self.deliver("issue_comment", self.sim.comment_payload("created", REPO, number, comment["id"]))
        assert status in (200, 202)
        return comment

    async def idle(self, timeout: float = 15.0) -> None:
        """Wait until no job is running or due soon (a stage's CI timeout may wait, far in the future)."""
        async def done() -> bool:
            depth = await self.runtime.store.queue_depth()
            due = await self.runtime.store.next_due()
            return not depth.get("running") and (due is None or due > self.clock() + 60)
        await eventually(done, timeout)

    async def triaged(self, number: int) -> list[dict]:
        """Wait until chantbot has commented on the issue and has nothing left to do; its comments."""
        await eventually(lambda: self.bot_comments(number))
        await self.idle()
        return self.bot_comments(number)

    def bot_comments(self, number: int) -> list[dict]:
        return self.sim.comments(REPO, number, bot_only=True)


def bot_settings(sim: GitHubSimulator, key: KeyPair, db: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(port=0, host="127.0.0.1", app_id=str(APP_ID), private_key=key.private_pem,
                                  webhook_secrets=(SECRET,), github_api_url=sim.base_url,
                                  database_url=f"sqlite:///{db}", concurrency=4,
                                  write_limits=parse_write_limits("1000/s"))
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def start_bot(simulator: GitHubSimulator, app_key: KeyPair, tmp_path: Path) -> Callable[..., Awaitable[Bot]]:
    """Start chantbot in-process; keyword arguments override its settings (and `llm=` its triager).

    `clock`: chantbot's time (its decisions and its job queue's), e.g. a ManualClock a test moves.
    """
    started: list[tuple[Runtime, TestServer]] = []

    async def start(*, llm: object = None, agent_client: object = None, spec_commit_delay: float = 0.0,
                    job_lease: float = 15.0, clock: Callable[[], float] | None = None, **overrides: Any) -> Bot:
        settings = bot_settings(simulator, app_key, tmp_path / "bot.db", **overrides)
        store = open_store(settings.database_url, clock=clock) if clock is not None else None
        runtime = Runtime(settings, store=store, llm=llm, agent_client=agent_client,
                          spec_commit_delay=spec_commit_delay, job_lease=job_lease)
        await runtime.open()
        if clock is not None:
            assert runtime.ctx is not None
            runtime.ctx.clock = clock
        server = TestServer(runtime.web_app(with_workers=True), host="127.0.0.1")
        await server.start_server()
        started.append((runtime, server))
        return Bot(runtime, server, simulator, clock or time.time)

    yield start
    for runtime, server in reversed(started):
        await server.close()
        await runtime.close()
        for client in (getattr(runtime.llm, "client", None), runtime.agent_client):  # the test's own clients
            if hasattr(client, "close"):
                await client.close()
