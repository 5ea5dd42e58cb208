"""Repository events: a push to the default branch records its new head, so every process drops its cached
configuration and prompt overrides at its next job (`RepoCache.heads`)."""

from __future__ import annotations

import logging
from typing import Any

from gidgethub import routing, sansio
from gidgethub.abc import GitHubAPI

from bot.context import Context

log = logging.getLogger(__name__)
router = routing.Router()

DEFAULT_HEAD = "default_head"  # the repository meta key holding the default branch's head, as the last push said


@router.register("push")
async def on_push(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, **kwargs: Any) -> None:
    """The default branch moved (intake queues only those pushes): record its head."""
    repo = event.data["repository"]["full_name"]
    await ctx.store.set_repo_meta(repo, DEFAULT_HEAD, str(event.data["after"])[:64])
    log.info("%s: the default branch moved to %s; its configuration is read again from the next job on", repo,
             str(event.data["after"])[:7])
