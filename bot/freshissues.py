"""Issues as GitHub has them now, read once for many triages of a repository.

A triage assesses an issue as its delivery had it, then decides what to write on the issue as it
is now: a person may have labelled or closed it while the model was thinking. When several
triages of one repository are under way, one read of the repository's open issues, least
recently updated first since the oldest of those triages' issues
(`GET /repos/{repo}/issues?state=open&sort=updated&direction=asc&since=…`), answers every one of
them that asks within FRESH seconds of it: their issues lead that list, as nothing has touched
them since they were opened or last changed. An issue not on the page (closed meanwhile, or
pushed back by other updates) is read on its own, and so is the issue of a triage under way
alone. Whatever the page says, it is never older than FRESH seconds when a triage acts on it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from gidgethub.abc import GitHubAPI

log = logging.getLogger(__name__)

FRESH = 1.0  # seconds a shared read answers for
PAGE = 100  # issues a shared read asks for (GitHub's largest page)
EXPECTED_FOR = 600.0  # seconds a triage's expected read holds `since` back (a triage failing midway asks never)
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")  # GitHub's updated_at, as `since` takes it


@dataclass
class _Read:
    started: float
    listed: asyncio.Task[dict[int, dict[str, Any]]]


class FreshIssues:
    """One process's shared reads of the issues its triages are about to write on."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._expected: dict[str, dict[int, tuple[str, float]]] = collections.defaultdict(dict)
        self._reads: dict[str, _Read] = {}

    def expect(self, repo: str, issue: dict[str, Any]) -> None:
        """A triage of `issue` (as it was read or delivered) is under way and will ask for it as it is now."""
        now = self.clock()
        expected = self._expected[repo]
        for number in [n for n, (_, at) in expected.items() if now - at > EXPECTED_FOR]:
            del expected[number]
        stamp = str(issue.get("updated_at") or "")
        expected[int(issue["number"])] = (stamp if _STAMP.fullmatch(stamp) else "", now)

    async def issue(self, gh: GitHubAPI, repo: str, number: int) -> dict[str, Any]:
        """The issue as GitHub has it now (or had it at most FRESH seconds ago)."""
        expected = self._expected.get(repo, {})
        mine = expected.pop(number, None)
        now = self.clock()
        for stale in [r for r, old in self._reads.items() if now - old.started > FRESH and old.listed.done()]:
            del self._reads[stale]  # a page is held no longer than it can answer
        read = self._reads.get(repo)
        if read is None or now - read.started > FRESH:
            if not expected:  # no other triage of this repository is under way: read the issue alone
                return await _one(gh, repo, number)
            stamps = [stamp for stamp, _ in [*expected.values(), *([mine] if mine else [])]]
            since = min(stamps) if all(stamps) else ""
            read = _Read(now, asyncio.create_task(_listed(gh, repo, since)))
            read.listed.add_done_callback(lambda task: task.cancelled() or task.exception())  # seen, if unawaited
            self._reads[repo] = read
        try:
            listed = await asyncio.shield(read.listed)
        except Exception as exc:  # noqa: BLE001 - the issue's own read says what is wrong, if anything is
            log.info("%s: the shared read of open issues failed (%s); reading #%d alone", repo, exc, number)
            listed = {}
        found = listed.get(number)
        return found if found is not None else await _one(gh, repo, number)


async def _one(gh: GitHubAPI, repo: str, number: int) -> dict[str, Any]:
    return await gh.getitem(f"/repos/{repo}/issues/{number}")


async def _listed(gh: GitHubAPI, repo: str, since: str) -> dict[int, dict[str, Any]]:
    """The first page of open issues least recently updated since `since` (all open issues without it)."""
    query = f"state=open&sort=updated&direction=asc&per_page={PAGE}" + (f"&since={since}" if since else "")
    page = await gh.getitem(f"/repos/{repo}/issues?{query}")
    return {int(item["number"]): item for item in page if isinstance(item, dict) and "number" in item
            and not item.get("pull_request")}
