"""The stage runner's GitHub effects, each idempotent: the issue's branch, commits through the Git Data API
(never a force update), the draft pull request found by its head branch, commit statuses, check runs."""

from __future__ import annotations

import collections
import urllib.parse
from typing import Any

from gidgethub import BadRequest
from gidgethub.abc import GitHubAPI

from bot.specbranch import ensure_branch, head_of
from bot.stages.ci import CheckRun
from bot.stages.tools import Snapshot, snapshot_from_tarball

MAX_TARBALL = 200 * 1024 * 1024
APPROVAL_CONTEXT = "chantbot/approval"


def work_branch(number: int) -> str:
    return f"chant/issue-{number}"


class SnapshotCache:
    """Snapshots of commits this process has read (a commit's tree never changes), newest kept."""

    def __init__(self, size: int = 6) -> None:
        self.size = size
        self._items: collections.OrderedDict[tuple[str, str], Snapshot] = collections.OrderedDict()

    async def get(self, gh: GitHubAPI, repo: str, commit: str) -> Snapshot:
        key = (repo, commit)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        data = await gh.download(f"/repos/{repo}/tarball/{commit}", limit=MAX_TARBALL)  # type: ignore[attr-defined]
        snapshot = snapshot_from_tarball(commit, data)
        self._items[key] = snapshot
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return snapshot


async def default_branch(gh: GitHubAPI, repo: str) -> str:
    return (await gh.getitem(f"/repos/{repo}"))["default_branch"]


async def base_commit(gh: GitHubAPI, repo: str, number: int) -> tuple[str, str]:
    """(branch, head commit) a run starts from: the issue's branch when it exists, else the default branch."""
    branch = work_branch(number)
    sha = await head_of(gh, repo, branch)
    if sha is not None:
        return branch, sha
    default = await default_branch(gh, repo)
    sha = await head_of(gh, repo, default)
    if sha is None:
        raise RuntimeError(f"{repo} has no {default} branch")
    return default, sha


async def push(gh: GitHubAPI, repo: str, branch: str, commit: str, parent: str) -> str:
    """Move `branch` from `parent` to `commit` (a fast forward; the branch is made from `parent` when missing).

    Returns `pushed`, `already` (the branch is there already) or `moved` (the branch is elsewhere: someone
    pushed meanwhile; the caller rebuilds on the new head).
    """
    head = await head_of(gh, repo, branch)
    if head is None:
        head = await ensure_branch(gh, repo, branch, start=parent)
    if head == commit:
        return "already"
    if head != parent:
        return "moved"
    try:
        await gh.patch(f"/repos/{repo}/git/refs/heads/{urllib.parse.quote(branch)}",
                       data={"sha": commit, "force": False})
    except BadRequest as exc:
        if int(exc.status_code) != 422:
            raise
        return "already" if await head_of(gh, repo, branch) == commit else "moved"
    return "pushed"


async def find_pull(gh: GitHubAPI, repo: str, branch: str) -> dict[str, Any] | None:
    """The open pull request from `branch`, if any."""
    owner = repo.split("/", 1)[0]
    query = urllib.parse.urlencode({"head": f"{owner}:{branch}", "state": "open", "per_page": 10})
    async for pull in gh.getiter(f"/repos/{repo}/pulls?{query}"):
        if (pull.get("head") or {}).get("ref") == branch:
            return pull
    return None


async def ensure_pull(gh: GitHubAPI, repo: str, branch: str, *, title: str, body: str,
                      known: int | None = None) -> dict[str, Any]:
    """The branch's one draft pull request to the default branch: found by its head, made when missing,
    its title and body kept up to date."""
    pull = None
    if known is not None:
        pull = await gh.getitem(f"/repos/{repo}/pulls/{known}")
        if pull.get("state") != "open":
            pull = None
    pull = pull or await find_pull(gh, repo, branch)
    if pull is None:
        try:
            return await gh.post(f"/repos/{repo}/pulls", data={"title": title, "body": body, "head": branch,
                                                               "base": await default_branch(gh, repo),
                                                               "draft": True})
        except BadRequest as exc:
            if int(exc.status_code) != 422:  # 422: one exists already (made meanwhile)
                raise
            pull = await find_pull(gh, repo, branch)
            if pull is None:
                raise
    if pull.get("title") != title or (pull.get("body") or "") != body:
        pull = await gh.patch(f"/repos/{repo}/pulls/{pull['number']}", data={"title": title, "body": body})
    return pull


async def set_status(gh: GitHubAPI, repo: str, sha: str, state: str, description: str,
                     target_url: str | None = None, context: str = APPROVAL_CONTEXT) -> None:
    """Set a commit status unless the latest one of that context already says the same."""
    async for status in gh.getiter(f"/repos/{repo}/commits/{sha}/statuses?per_page=100"):
        if status.get("context") == context:
            if status.get("state") == state and status.get("description") == description:
                return
            break  # newest first: only the latest counts
    data = {"state": state, "description": description[:140], "context": context}
    if target_url:
        data["target_url"] = target_url
    await gh.post(f"/repos/{repo}/statuses/{sha}", data=data)


async def check_runs(gh: GitHubAPI, repo: str, sha: str) -> list[CheckRun]:
    """Every check run of a commit (its latest attempt per name)."""
    runs: dict[str, CheckRun] = {}
    async for run in gh.getiter(f"/repos/{repo}/commits/{sha}/check-runs?filter=latest&per_page=100",
                                iterable_key="check_runs"):
        check = CheckRun.of(run)
        runs.setdefault(check.name, check)
    return list(runs.values())


async def pull_files(gh: GitHubAPI, repo: str, number: int) -> list[dict[str, Any]]:
    """The pull request's changed files with their patches (GitHub lists at most 3000)."""
    return [f async for f in gh.getiter(f"/repos/{repo}/pulls/{number}/files?per_page=100")]
