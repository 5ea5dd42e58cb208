"""Repository files chantbot reads (config, prompt overrides): parsed once per blob SHA, never decoded past a limit."""

from __future__ import annotations

import aiohttp
import pytest

from bot import repoconfig
from bot.github import GitHubApp
from bot.issueops import RepoCache
from bot.metrics import Metrics
from bot.writelimit import WritePacer, parse_write_limits
from tests.conftest import APP_ID, INSTALLATION, REPO

PATH = repoconfig.CONFIG_PATH


@pytest.fixture
async def app(simulator, app_key):
    async with aiohttp.ClientSession() as session:
        yield GitHubApp(session=session, app_id=str(APP_ID), private_key=app_key.private_pem,
                        base_url=simulator.base_url, pacer=WritePacer(parse_write_limits("1000/s")), metrics=Metrics())


@pytest.fixture
async def gh(app):
    return await app.client(INSTALLATION)


def reads(simulator) -> list[int]:
    return [r["status"] for r in simulator.requests if r["path"].endswith("/contents/.github/chantbot.yml")]


def recorded_heads(simulator):
    """What the store holds once chantbot handled a push: the default branch's head (here, the simulator's)."""
    async def head(repo: str) -> str:
        return simulator.branch_head(repo, "main")
    return head


async def test_a_file_is_parsed_and_validated_once_per_blob_sha(simulator, app):
    cache = RepoCache(heads=recorded_heads(simulator))
    parsed: list[str] = []

    def parse(found):
        parsed.append(found.sha)
        return repoconfig.parse(found.text)

    simulator.set_file(REPO, PATH, "stages: {document: false}\n")
    first = cache.parsed("config", await cache.file(await app.client(INSTALLATION), REPO, PATH), parse)
    simulator.set_file(REPO, "README.md", "# widgets, again\n")  # the branch moved: the file is asked for again
    again = cache.parsed("config", await cache.file(await app.client(INSTALLATION), REPO, PATH), parse)
    assert again is first and len(parsed) == 1 and reads(simulator) == [200, 304]  # and not parsed again
    simulator.set_file(REPO, PATH, "stages: {document: true}\n")
    changed = cache.parsed("config", await cache.file(await app.client(INSTALLATION), REPO, PATH), parse)
    assert len(parsed) == 2 and parsed[0] != parsed[1] and changed[0].stages["document"] is True


async def test_a_job_learns_that_the_default_branch_moved_without_asking_github(simulator, app):
    pushed: list[str] = []

    async def heads(repo: str) -> str | None:
        return pushed[-1] if pushed else None

    cache = RepoCache(heads=heads)
    simulator.set_file(REPO, PATH, "stages: {document: false}\n")
    for _ in range(3):  # three jobs, each reading the file twice
        gh = await app.client(INSTALLATION)
        for _ in range(2):
            assert (await cache.file(gh, REPO, PATH)).text == "stages: {document: false}\n"
    assert reads(simulator) == [200] and not [r for r in simulator.requests if "/git/ref" in r["path"]]
    simulator.set_file(REPO, PATH, "stages: {document: true}\n")
    pushed.append(simulator.branch_head(REPO, "main"))  # the push delivery was handled
    assert (await cache.file(await app.client(INSTALLATION), REPO, PATH)).text == "stages: {document: true}\n"


async def test_a_file_over_the_limit_is_never_decoded(simulator, gh):
    simulator.set_file(REPO, PATH, "# padding\n" * 10_000)
    found = await RepoCache().file(gh, REPO, PATH)
    assert found.text is None and found.size == 100_000 and found.sha
