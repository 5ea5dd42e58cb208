"""Commits spec files to the specs branch with the Git data API: one commit for many files."""

from __future__ import annotations

import urllib.parse

from gidgethub import BadRequest
from gidgethub.abc import GitHubAPI


async def head_of(gh: GitHubAPI, repo: str, branch: str) -> str | None:
    """The branch's head commit, or None when there is no such branch."""
    try:
        ref = await gh.getitem(f"/repos/{repo}/git/ref/heads/{urllib.parse.quote(branch)}")
    except BadRequest as exc:
        if int(exc.status_code) == 404:
            return None
        raise
    return ref["object"]["sha"]


async def ensure_branch(gh: GitHubAPI, repo: str, branch: str, *, start: str | None = None) -> str:
    """The branch's head commit, creating the branch at `start` (default: the default branch's head) when missing."""
    sha = await head_of(gh, repo, branch)
    if sha is not None:
        return sha
    base = start
    if base is None:
        default = (await gh.getitem(f"/repos/{repo}"))["default_branch"]
        base = await head_of(gh, repo, default)
        if base is None:
            raise RuntimeError(f"{repo} has no {default} branch to start {branch} from")
    try:
        await gh.post(f"/repos/{repo}/git/refs", data={"ref": f"refs/heads/{branch}", "sha": base})
    except BadRequest as exc:
        if int(exc.status_code) != 422:  # 422: created meanwhile
            raise
        return await head_of(gh, repo, branch) or base
    return base


async def build_commit(gh: GitHubAPI, repo: str, parent: str, files: dict[str, str], message: str) -> str | None:
    """A commit of `files` on top of `parent` (on no branch yet); None when the tree would not change.

    Two writes however many files: a tree with inline contents, and the commit.
    """
    parent_tree = (await gh.getitem(f"/repos/{repo}/git/commits/{parent}"))["tree"]["sha"]
    tree = await gh.post(f"/repos/{repo}/git/trees", data={
        "base_tree": parent_tree,
        "tree": [{"path": path, "mode": "100644", "type": "blob", "content": text}
                 for path, text in sorted(files.items())]})
    if tree["sha"] == parent_tree:
        return None
    commit = await gh.post(f"/repos/{repo}/git/commits",
                           data={"message": message, "tree": tree["sha"], "parents": [parent]})
    return commit["sha"]


async def commit_files(gh: GitHubAPI, repo: str, branch: str, files: dict[str, str], message: str) -> str | None:
    """Write `files` onto `branch` in one commit; returns the new commit sha (None when nothing changed).

    Three writes however many files: a tree with inline contents, a commit, and the ref update.
    """
    for _ in range(3):
        head = await ensure_branch(gh, repo, branch)
        commit = await build_commit(gh, repo, head, files, message)
        if commit is None:
            return None
        try:
            await gh.patch(f"/repos/{repo}/git/refs/heads/{urllib.parse.quote(branch)}",
                           data={"sha": commit, "force": False})
            return commit
        except BadRequest as exc:
            if int(exc.status_code) != 422:  # 422: the branch moved under us; build on the new head
                raise
    raise RuntimeError(f"{repo}:{branch} kept moving; the spec files stay queued")
