"""Stage events: a person's stage label starts its stage; finished checks resume the runs waiting for them."""

from __future__ import annotations

from typing import Any

from gidgethub import routing as gh_routing
from gidgethub import sansio
from gidgethub.abc import GitHubAPI

from bot import deliveries
from bot.context import Context
from bot.services import config as configs
from bot.stages import gate, runner

router = gh_routing.Router()


@router.register("issues", action="labeled")
async def on_stage_label(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, **kwargs: Any) -> None:
    """A stage label starts its stage when the person who added it may run the stage's command."""
    data = event.data
    sender = (data.get("sender") or {}).get("login", "")
    if deliveries.is_bot(data.get("sender")) or not sender:
        return  # chantbot's own labels start stages from where chantbot set them
    repo = data["repository"]["full_name"]
    config, _ = await configs.load(ctx, gh, repo)
    await runner.start_from_label(ctx, gh, repo=repo, number=int(data["issue"]["number"]),
                                  label=(data.get("label") or {}).get("name", ""), person=sender,
                                  installation_id=int(data["installation"]["id"]), config=config)


@router.register("check_suite", action="completed")
async def on_check_suite(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, **kwargs: Any) -> None:
    suite = event.data.get("check_suite") or {}
    if suite.get("head_sha"):
        await runner.on_checks(ctx, event.data["repository"]["full_name"], suite["head_sha"])


@router.register("check_run", action="completed")
async def on_check_run(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, **kwargs: Any) -> None:
    run = event.data.get("check_run") or {}
    if run.get("head_sha"):
        await runner.on_checks(ctx, event.data["repository"]["full_name"], run["head_sha"])


@router.register("pull_request", action="opened")
@router.register("pull_request", action="reopened")
@router.register("pull_request", action="synchronize")
async def on_pull_push(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, **kwargs: Any) -> None:
    """New commits on an issue's pull request make an earlier approval void; anyone else's pull request gets
    `chantbot/approval` success, so that the check can be required without blocking people's own changes."""
    pull = event.data.get("pull_request") or {}
    head = (pull.get("head") or {}).get("sha")
    repo = event.data["repository"]["full_name"]
    number = deliveries.work_issue("pull_request", event.data)
    if number is None:
        await gate.on_other_pull(ctx, gh, repo, pull)
    elif head and event.data.get("action") == "synchronize":
        config, _ = await configs.load(ctx, gh, repo)
        await gate.on_push(ctx, gh, repo, number, head, config)


@router.register("pull_request", action="closed")
async def on_pull_closed(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, **kwargs: Any) -> None:
    """A merge completes the issue's chain; a close without merge abandons it."""
    number = deliveries.work_issue("pull_request", event.data)
    pull = event.data.get("pull_request") or {}
    if number:
        repo = event.data["repository"]["full_name"]
        config, _ = await configs.load(ctx, gh, repo)
        await gate.on_closed(ctx, gh, repo, number, merged=bool(pull.get("merged")), pull=pull, config=config)
