"""Repository files chantbot reads (config, prompt overrides): parsed once per blob SHA, never decoded past a limit."""

from __future__ import annotations

import aiohttp
import pytest

from bot import repoconfig
from bot.github import GitHubApp
from bot.issueops import FILE_TTL, RepoCache
from bot.metrics import Metrics
from bot.writelimit import WritePacer, parse_write_limits
from tests.conftest import APP_ID, INSTALLATION, REPO, ManualClock

PATH = repoconfig.CONFIG_PATH


@pytest.fixture
async def gh(simulator, app_key):
    async with aiohttp.ClientSession() as session:
        app = GitHubApp(session=session, app_id=str(APP_ID), private_key=app_key.private_pem,
                        base_url=simulator.base_url, pacer=WritePacer(parse_write_limits("1000/s")), metrics=Metrics())
        yield await app.client(INSTALLATION)


def reads(simulator) -> list[int]:
    return [r["status"] for r in simulator.requests if r["path"].endswith("/contents/.github/chantbot.yml")]


async def test_a_file_is_parsed_and_validated_once_per_blob_sha(simulator, gh):
    clock = ManualClock()
    cache = RepoCache(clock=clock)
    parsed: list[str] = []

    def parse(found):
        parsed.append(found.sha)
        return repoconfig.parse(found.text)

    simulator.set_file(REPO, PATH, "stages: {document: false}\n")
    first = cache.parsed("config", await cache.file(gh, REPO, PATH), parse)
    clock.now += FILE_TTL + 1  # the text is asked for again (GitHub answers 304), the parse is not redone
    again = cache.parsed("config", await cache.file(gh, REPO, PATH), parse)
    assert again is first and len(parsed) == 1 and reads(simulator) == [200, 304]
    simulator.set_file(REPO, PATH, "stages: {document: true}\n")
    clock.now += FILE_TTL + 1
    changed = cache.parsed("config", await cache.file(gh, REPO, PATH), parse)
    assert len(parsed) == 2 and parsed[0] != parsed[1] and changed[0].stages["document"] is True


async def test_a_file_over_the_limit_is_never_decoded(simulator, gh):
    simulator.set_file(REPO, PATH, "# padding\n" * 10_000)
    found = await RepoCache().file(gh, REPO, PATH)
    assert found.text is None and found.size == 100_000 and found.sha
