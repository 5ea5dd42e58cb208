"""The GitHub adapter against the simulator: tokens cached, limits honoured in the client."""

import time

import aiohttp
import pytest

from bot.github import GitHubApp
from bot.metrics import Metrics
from bot.writelimit import WritePacer, parse_write_limits
from tests.conftest import APP_ID, INSTALLATION, REPO, ManualClock


@pytest.fixture
async def app(simulator, app_key):
    async with aiohttp.ClientSession() as session:
        yield GitHubApp(session=session, app_id=str(APP_ID), private_key=app_key.private_pem,
                        base_url=simulator.base_url, pacer=WritePacer(parse_write_limits("1000/s")),
                        metrics=Metrics())


def record_sleeps(gh) -> list[float]:
    """Make the client's waits instant, and remember how long each would have been."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    gh.sleep = sleep
    return slept


def token_requests(sim):
    return [r for r in sim.requests if r["path"].endswith("/access_tokens")]


async def test_installation_token_is_cached_until_near_expiry(app, simulator):
    clock = ManualClock(time.time())
    app.clock = clock
    first = await app.token(INSTALLATION)
    assert await app.token(INSTALLATION) == first and len(token_requests(simulator)) == 1
    expires = max(t.expires for t in app._tokens.values())
    clock.now = expires - 299  # inside the five-minute margin
    await app.token(INSTALLATION)
    assert len(token_requests(simulator)) == 2


async def test_secondary_limit_403_is_waited_out_then_succeeds(app, simulator):
    clock = ManualClock()
    paced: list[float] = []

    async def pacer_sleep(seconds: float) -> None:  # the pacer's waits pass on a manual clock, instantly
        paced.append(seconds)
        clock.now += seconds

    app.pacer = WritePacer(parse_write_limits("1000/s"), clock=clock, sleep=pacer_sleep)
    gh = await app.client(INSTALLATION)
    slept = record_sleeps(gh)
    issue = simulator.add_issue(REPO, title="t", body="b", user="u")
    simulator.fail("POST", r"/comments$", status=403, headers={"retry-after": "7"})
    created = await gh.post(f"/repos/{REPO}/issues/{issue['number']}/comments", data={"body": "hello"})
    assert created["body"] == "hello" and slept == [7.0]  # waited as long as GitHub asked, then retried once
    assert paced == [pytest.approx(7.0)]  # and no write for the installation went out before then
    assert len(simulator.comments(REPO, issue["number"])) == 1
    posts = [r for r in simulator.requests if r["method"] == "POST" and r["path"].endswith("/comments")]
    assert [r["status"] for r in posts] == [403, 201]


async def test_server_errors_are_retried_with_backoff(app, simulator):
    gh = await app.client(INSTALLATION)
    slept = record_sleeps(gh)
    simulator.fail("GET", rf"/repos/{REPO}$", status=502, times=2)
    repo = await gh.getitem(f"/repos/{REPO}")
    assert repo["full_name"] == REPO and len(slept) == 2


async def test_file_reads_use_etags(app, simulator):
    gh = await app.client(INSTALLATION)
    await gh.getitem(f"/repos/{REPO}/contents/README.md")
    gh2 = await app.client(INSTALLATION)  # the cache is per installation, shared by clients
    await gh2.getitem(f"/repos/{REPO}/contents/README.md")
    statuses = [r["status"] for r in simulator.requests if r["path"].endswith("README.md")]
    assert statuses == [200, 304]


async def test_writes_never_exceed_the_configured_limit(simulator, app_key):
    simulator.write_limits = [(5, 1.0)]
    async with aiohttp.ClientSession() as session:
        app = GitHubApp(session=session, app_id=str(APP_ID), private_key=app_key.private_pem,
                        base_url=simulator.base_url, pacer=WritePacer(parse_write_limits("5/s")), metrics=Metrics())
        gh = await app.client(INSTALLATION)
        issue = simulator.add_issue(REPO, title="t", body="b", user="u")
        for i in range(12):
            await gh.post(f"/repos/{REPO}/issues/{issue['number']}/comments", data={"body": str(i)})
    assert simulator.violations["secondary"] == 0
    assert len(simulator.comments(REPO, issue["number"])) == 12
