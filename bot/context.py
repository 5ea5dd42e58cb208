"""What handlers are given: the store, the GitHub App, the triagers and caches (built once per process)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from bot.classifier import LocalTriager, rules_only
from bot.freshissues import FreshIssues
from bot.github import GitHubApp
from bot.issueops import RepoCache
from bot.metrics import Metrics
from bot.settings import Settings
from bot.store import Store

if TYPE_CHECKING:
    from bot.llm import ClaudeTriager

log = logging.getLogger(__name__)

TRIAGER_KEY = "local-triager"  # repo_meta key of the learned model and the history size it learned from


def _fresh(trained: int, size: int) -> bool:
    """Whether a model learned from `trained` labelled issues still serves a history of `size`."""
    return trained == size or size < trained * 1.1 + 5


def _stored(value: str) -> tuple[int, LocalTriager]:
    data = json.loads(value)
    return int(data["history"]), LocalTriager.from_dict(data["model"])


def _learn(history: list[tuple[str, str, str]], size: int) -> tuple[LocalTriager, str]:
    triager = LocalTriager.from_history(history)
    return triager, json.dumps({"history": size, "model": triager.to_dict()}, separators=(",", ":"))


@dataclass
class Context:
    """Shared by every handler of one chantbot process."""

    store: Store
    github: GitHubApp
    settings: Settings
    metrics: Metrics
    llm: "ClaudeTriager | None" = None
    anthropic: Any = None  # the Messages API client stage agents use; None: no model is configured
    snapshots: Any = None  # the stage runner's cache of repository snapshots (made in the runtime's wiring)
    sandbox: Any = None  # where agents' tests run (bot.sandbox); None: nothing runs on this machine
    repos: RepoCache = field(default_factory=RepoCache)
    fresh: FreshIssues = field(default_factory=FreshIssues)  # issues as they are now, read once for many triages
    clock: Callable[[], float] = time.time
    spec_commit_delay: float = 2.0  # seconds spec files wait, so that a burst's files share one commit
    spec_commits_put_off: dict[str, float] = field(default_factory=dict)  # repository: since when (this process)
    indexed: set[str] = field(default_factory=set)  # repositories whose history index is queued or done (seen here)
    _triagers: dict[str, tuple[int, LocalTriager]] = field(default_factory=dict)

    async def local_triager(self, repo: str) -> LocalTriager:
        """The repository's local triager: learned once its labelled history has grown by a tenth, and stored,
        so that a restart reads what it learned instead of learning again."""
        size = await self.store.history_size(repo)
        cached = self._triagers.get(repo)
        if cached and _fresh(cached[0], size):
            return cached[1]
        if not size:
            self._triagers[repo] = (0, rules_only())
            return self._triagers[repo][1]
        if cached is None and (value := await self.store.repo_meta(repo, TRIAGER_KEY)):
            try:
                # Reading and training are seconds of pure Python on a large history: a thread keeps the
                # event loop answering.
                trained, triager = await asyncio.to_thread(_stored, value)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("%s: the stored local triager is unusable (%s); learning again", repo, exc)
            else:
                if _fresh(trained, size):
                    self._triagers[repo] = (trained, triager)
                    return triager
        triager, value = await asyncio.to_thread(_learn, await self.store.history(repo), size)
        await self.store.set_repo_meta(repo, TRIAGER_KEY, value)
        self._triagers[repo] = (size, triager)
        return triager
