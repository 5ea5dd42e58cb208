"""What handlers are given: the store, the GitHub App, the triagers and caches (built once per process)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from bot.classifier import LocalTriager, rules_only
from bot.github import GitHubApp
from bot.issueops import RepoCache
from bot.metrics import Metrics
from bot.settings import Settings
from bot.store import Store

if TYPE_CHECKING:
    from bot.llm import ClaudeTriager


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
    clock: Callable[[], float] = time.time
    spec_commit_delay: float = 2.0  # seconds spec files wait, so that a burst's files share one commit
    _triagers: dict[str, tuple[int, LocalTriager]] = field(default_factory=dict)

    async def local_triager(self, repo: str) -> LocalTriager:
        """The repository's local triager, rebuilt when its labelled history has grown."""
        size = await self.store.history_size(repo)
        cached = self._triagers.get(repo)
        if cached and (cached[0] == size or size < cached[0] * 1.1 + 5):
            return cached[1]
        # Training is seconds of pure Python on a large history: a thread keeps the event loop answering.
        triager = await asyncio.to_thread(LocalTriager.from_history, await self.store.history(repo)) if size \
            else rules_only()
        self._triagers[repo] = (size, triager)
        return triager
