"""Idempotent GitHub effects on issues: one comment per purpose, labels, reactions, repository files."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import urllib.parse
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Hashable, TypeVar

from gidgethub import BadRequest
from gidgethub.abc import GitHubAPI

from bot import labels as labelling
from bot.comment import fit
from bot.labels import LabelPlan
from bot.repoconfig import MAX_BYTES, RepoConfig

T = TypeVar("T")

FILE_TTL = 60.0  # seconds a file is trusted before asking again (a recorded push drops it sooner)
MAX_FILE = MAX_BYTES  # one limit for every repository file chantbot reads (config, prompt overrides)
PARSED_ENTRIES = 256  # parsed files remembered, by blob SHA
LABELS_TTL = 600.0
ROLE_TTL = 300.0  # seconds a person's role on a repository is trusted
MAX_LISTING = 200  # files of one folder remembered


def _status(exc: BadRequest) -> int:
    return int(exc.status_code)


@dataclass(frozen=True)
class RepoFile:
    """A file read from a repository: its text (None when larger than chantbot reads), blob SHA and size."""

    text: str | None
    sha: str
    size: int


async def find_comment(gh: GitHubAPI, repo: str, number: int, marker: str) -> dict[str, Any] | None:
    """The bot comment carrying `marker`, if any (only bot accounts' comments count)."""
    async for comment in gh.getiter(f"/repos/{repo}/issues/{number}/comments?per_page=100"):
        user = comment.get("user") or {}
        if marker in (comment.get("body") or "") and user.get("type") == "Bot":
            return comment
    return None


async def upsert_comment(gh: GitHubAPI, repo: str, number: int, marker: str, body: str, *,
                         known_id: int | None, may_exist: bool) -> int:
    """Edit chantbot's comment for this purpose in place, or post it once; returns its id.

    `may_exist` says whether the issue could already hold it (it has comments, or an earlier
    attempt may have posted it); when False no listing is needed. A body over GitHub's limit is
    shortened rather than refused.
    """
    body = fit(body)
    if known_id is None and may_exist:
        found = await find_comment(gh, repo, number, marker)
        known_id = found["id"] if found else None
    if known_id is not None:
        try:
            await gh.patch(f"/repos/{repo}/issues/comments/{known_id}", data={"body": body})
            return known_id
        except BadRequest as exc:
            if _status(exc) != 404:
                raise
    created = await gh.post(f"/repos/{repo}/issues/{number}/comments", data={"body": body})
    return int(created["id"])


async def apply_labels(gh: GitHubAPI, repo: str, number: int, plan: LabelPlan) -> None:
    """Add in one request, remove one by one (a label already gone is fine)."""
    if plan.add:
        await gh.post(f"/repos/{repo}/issues/{number}/labels", data={"labels": list(plan.add)})
    for name in plan.remove:
        try:
            await gh.delete(f"/repos/{repo}/issues/{number}/labels/{urllib.parse.quote(name, safe='')}")
        except BadRequest as exc:
            if _status(exc) != 404:
                raise


async def react(gh: GitHubAPI, repo: str, comment_id: int, content: str) -> None:
    await gh.post(f"/repos/{repo}/issues/comments/{comment_id}/reactions", data={"content": content})


async def react_to_issue(gh: GitHubAPI, repo: str, number: int, content: str) -> None:
    await gh.post(f"/repos/{repo}/issues/{number}/reactions", data={"content": content})


@dataclass
class RepoCache:
    """What chantbot remembers about repositories between jobs: files, the label set, people's roles."""

    clock: Callable[[], float] = time.monotonic
    _files: dict[tuple[str, str, str], tuple[float, RepoFile | None]] = field(default_factory=dict)
    _parsed: OrderedDict[tuple[str, str], Any] = field(default_factory=OrderedDict)
    _labels: dict[str, tuple[float, set[str]]] = field(default_factory=dict)
    _roles: dict[tuple[str, str], tuple[float, str]] = field(default_factory=dict)
    _repos: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    _listings: dict[tuple[str, str], tuple[float, tuple[str, ...] | None]] = field(default_factory=dict)
    _heads: dict[str, str] = field(default_factory=dict)  # repo -> default branch head the cached files are of
    _checked: weakref.WeakKeyDictionary[GitHubAPI, set[str]] = field(default_factory=weakref.WeakKeyDictionary)
    # Where the default branch's head is recorded when a `push` delivery says it moved (the store, shared by
    # every process); None: no such record, and the files are trusted for FILE_TTL.
    heads: Callable[[str], Awaitable[str | None]] | None = None

    async def _revalidate(self, gh: GitHubAPI, repo: str) -> None:
        """Forget the repository's default-branch files when that branch moved since they were read.

        Once per job (per client), from the head the last `push` delivery recorded: a new `.github/chantbot.yml`
        or prompt override counts from the next job after its push was handled, and asking costs no request to
        GitHub. Without a recorded head (an App that does not get `push` events) the files expire after FILE_TTL.
        """
        checked = self._checked.setdefault(gh, set())
        if repo in checked or self.heads is None:
            return
        checked.add(repo)
        head = await self.heads(repo)
        if head and self._heads.get(repo) != head:
            self._files = {key: hit for key, hit in self._files.items() if key[0] != repo or key[2]}
            self._listings = {key: hit for key, hit in self._listings.items() if key[0] != repo}
        if head:
            self._heads[repo] = head

    _busy: dict[Hashable, tuple[asyncio.Lock, int]] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def _alone(self, key: Hashable) -> AsyncIterator[None]:
        """One look-up per key at a time: jobs that miss the cache together wait for the first one's answer
        instead of each asking GitHub (a burst's triages would all ask at once)."""
        lock, waiting = self._busy.get(key, (asyncio.Lock(), 0))
        self._busy[key] = (lock, waiting + 1)
        try:
            async with lock:
                yield
        finally:
            lock, waiting = self._busy[key]
            if waiting == 1:
                del self._busy[key]
            else:
                self._busy[key] = (lock, waiting - 1)

    async def repository(self, gh: GitHubAPI, repo: str) -> dict[str, Any]:
        """The repository as `GET /repos/{owner}/{repo}` answers it (default branch, `has_discussions`, …)."""
        async with self._alone(("repository", repo)):
            hit = self._repos.get(repo)
            if hit and self.clock() - hit[0] < LABELS_TTL:
                return hit[1]
            data = await gh.getitem(f"/repos/{repo}")
            self._repos[repo] = (self.clock(), data)
            return data

    async def listing(self, gh: GitHubAPI, repo: str, path: str) -> tuple[str, ...] | None:
        """The file paths directly in a folder of the default branch, or None when it is no folder."""
        async with self._alone(("listing", repo, path)):
            return await self._listing(gh, repo, path)

    async def _listing(self, gh: GitHubAPI, repo: str, path: str) -> tuple[str, ...] | None:
        key = (repo, path)
        await self._revalidate(gh, repo)
        hit = self._listings.get(key)
        if hit and self.clock() - hit[0] < FILE_TTL:
            return hit[1]
        try:
            data = await gh.getitem(f"/repos/{repo}/contents/{urllib.parse.quote(path)}")
        except BadRequest as exc:
            if _status(exc) != 404:
                raise
            data = None
        found = tuple(str(entry.get("path") or "") for entry in data if isinstance(entry, dict)
                      and entry.get("type") == "file")[:MAX_LISTING] if isinstance(data, list) else None
        self._listings[key] = (self.clock(), found)
        return found

    def role(self, repo: str, login: str) -> str | None:
        """A role looked up in the last few minutes, if any."""
        hit = self._roles.get((repo, login))
        return hit[1] if hit and self.clock() - hit[0] < ROLE_TTL else None

    def remember_role(self, repo: str, login: str, role: str) -> None:
        self._roles[(repo, login)] = (self.clock(), role)

    async def file(self, gh: GitHubAPI, repo: str, path: str, *, ref: str | None = None) -> RepoFile | None:
        """A file on `ref` (default branch), or None when missing; GETs use ETags.

        A file is cached for FILE_TTL, and a default-branch file no longer once a `push` to that branch was
        handled (checked once per job, without asking GitHub). A file over MAX_FILE bytes comes back without its text: it is never decoded.
        """
        async with self._alone(("file", repo, path, ref or "")):
            return await self._file(gh, repo, path, ref)

    async def _file(self, gh: GitHubAPI, repo: str, path: str, ref: str | None) -> RepoFile | None:
        key = (repo, path, ref or "")
        if not ref:
            await self._revalidate(gh, repo)
        hit = self._files.get(key)
        if hit and self.clock() - hit[0] < FILE_TTL:
            return hit[1]
        url = f"/repos/{repo}/contents/{urllib.parse.quote(path)}" + (f"?ref={urllib.parse.quote(ref)}" if ref else "")
        found: RepoFile | None = None
        try:
            data = await gh.getitem(url)
        except BadRequest as exc:
            if _status(exc) != 404:
                raise
            data = None
        if isinstance(data, dict) and data.get("type") == "file":
            size, sha = int(data.get("size") or 0), str(data.get("sha") or "")
            encoded = str(data.get("content") or "")
            text = None if size > MAX_FILE or len(encoded) > 2 * MAX_FILE else \
                base64.b64decode(encoded).decode("utf-8", "replace")
            found = RepoFile(text, sha, size)
        self._files[key] = (self.clock(), found)
        return found

    def parsed(self, kind: str, found: RepoFile, parse: Callable[[RepoFile], T]) -> T:
        """`parse(found)`, computed once per blob SHA: an unchanged file is never parsed or validated again."""
        key = (kind, found.sha or f"text:{hash(found.text)}")
        if key in self._parsed:
            self._parsed.move_to_end(key)
            return self._parsed[key]
        value = self._parsed[key] = parse(found)
        while len(self._parsed) > PARSED_ENTRIES:
            self._parsed.popitem(last=False)
        return value

    async def ensure_labels(self, gh: GitHubAPI, repo: str, names: list[str], config: RepoConfig) -> None:
        """Create the vocabulary labels the repository lacks, with colour and description."""
        if not names:
            return
        async with self._alone(("labels", repo)):
            await self._ensure_labels(gh, repo, names, config)

    async def _ensure_labels(self, gh: GitHubAPI, repo: str, names: list[str], config: RepoConfig) -> None:
        hit = self._labels.get(repo)
        if hit is None or self.clock() - hit[0] > LABELS_TTL:
            existing = {label["name"] async for label in gh.getiter(f"/repos/{repo}/labels?per_page=100")}
            hit = (self.clock(), existing)
            self._labels[repo] = hit
        known = {name.lower() for name in hit[1]}
        missing = list({name.lower(): name for name in names if name.lower() not in known}.values())

        async def create(name: str) -> None:
            colour, description = labelling.look(config, name)
            try:
                await gh.post(f"/repos/{repo}/labels", data={"name": name, "color": colour,
                                                            "description": description})
            except BadRequest as exc:
                if _status(exc) != 422:  # 422: someone created it meanwhile
                    raise
            hit[1].add(name)

        await asyncio.gather(*(create(name) for name in missing))  # at once: every triage waits for its labels
