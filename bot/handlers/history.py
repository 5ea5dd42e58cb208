"""Repository history: index closed issues and their categories so the local triager learns from them."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from gidgethub import routing, sansio
from gidgethub.abc import GitHubAPI

from bot import jobs
from bot.context import Context
from bot.services import config as configs

log = logging.getLogger(__name__)
router = routing.Router()

MAX_INDEXED = 1000  # issues read per repository when it is first indexed
INDEX_BATCH = 10  # issues indexed in one transaction: short, so that the jobs' own store calls get in between
SHARE = 0.25  # of the time while it runs that the index takes (reading pages, indexing): it is background work


async def index_repository(ctx: Context, gh: GitHubAPI, repo: str) -> int:
    """Index the repository's issues (closed ones with their category labels); returns how many."""
    config, _ = await configs.load(ctx, gh, repo)
    by_label = {name: key for key, name in config.labels["category"].items() if key != "duplicate"}
    count = 0
    page: list[tuple[int, str, str, str, str | None]] = []
    working = time.monotonic()
    async for issue in gh.getiter(f"/repos/{repo}/issues?state=all&sort=updated&direction=desc&per_page=100"):
        if issue.get("pull_request"):
            continue
        names = [label["name"] for label in issue.get("labels", [])]
        category = next((by_label[n] for n in names if n in by_label), None) if issue["state"] == "closed" else None
        page.append((int(issue["number"]), issue.get("title") or "", issue.get("body") or "", issue["state"], category))
        count += 1
        if len(page) == INDEX_BATCH:
            await ctx.store.index_issues(repo, page)
            page = []
            working = await _rest(working)
        if count >= MAX_INDEXED:
            break
    if page:
        await ctx.store.index_issues(repo, page)
    await ctx.store.set_repo_meta(repo, "indexed", str(count))
    log.info("%s: indexed %d issues", repo, count)
    return count


async def _rest(working_since: float) -> float:
    """After a batch (reading its page, indexing it), wait so that the index takes its SHARE of the time: the
    jobs under way keep the rest of the process's, the store's and GitHub's (a new installation's first burst
    of triages is not slowed by its thousand issues read and indexed). Returns when the work starts again."""
    await asyncio.sleep((time.monotonic() - working_since) * (1 - SHARE) / SHARE)
    return time.monotonic()


async def schedule_index(ctx: Context, repo: str, installation_id: int) -> None:
    """Index a repository once, in the background (never delays a triage). The repository is marked when its
    index is queued, so the deliveries that arrive while it runs do not queue it again (a burst's first
    seconds read the repository's issues once, not once per job that found it unindexed)."""
    if repo in ctx.indexed:
        return  # once marked, a repository stays marked: no need to ask the store on every delivery
    if await ctx.store.repo_meta(repo, "indexed") is None:
        await ctx.store.set_repo_meta(repo, "indexed", "queued")
        await ctx.store.enqueue(jobs.INDEX_REPO, f"index:{repo}", {"repo": repo}, installation_id=installation_id,
                                unique=True)
    ctx.indexed.add(repo)


def _repositories(data: dict[str, Any]) -> list[str]:
    return [r["full_name"] for r in data.get("repositories") or data.get("repositories_added") or []]


@router.register("installation", action="created")
@router.register("installation_repositories", action="added")
async def on_installed(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, **kwargs: Any) -> None:
    for repo in _repositories(event.data):
        await schedule_index(ctx, repo, int(event.data["installation"]["id"]))


@router.register("issues", action="deleted")
async def on_deleted(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, **kwargs: Any) -> None:
    """An issue deleted on GitHub: keep none of its text (index, state, runs, stored deliveries)."""
    repo = event.data["repository"]["full_name"]
    await ctx.store.forget_issue(repo, int(event.data["issue"]["number"]))
