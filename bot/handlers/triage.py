"""Triage events: new and reopened issues are triaged; substantial edits and reporters' answers acknowledged at
once and re-triaged after a quiet period; a reporter's answer reopens an issue closed for want of it; people's
category labels and closed issues teach the local triager."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gidgethub import routing, sansio
from gidgethub.abc import GitHubAPI

from bot import followup, jobs
from bot.commands import parser
from bot.context import Context
from bot.deliveries import is_bot
from bot.services import config as configs
from bot.services import reporter
from bot.services.issues import issue_text, repo_of
from bot.services.triage import triage_issue
from bot.store import Job

log = logging.getLogger(__name__)
router = routing.Router()


@router.register("issues", action="opened")
@router.register("issues", action="reopened")
async def on_opened(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, job: Job, **kwargs: Any) -> None:
    await triage_issue(ctx, gh, repo_of(event), int(event.data["issue"]["number"]),
                       installation_id=int(event.data["installation"]["id"]), attempt=job.attempts,
                       delivered=event.data["issue"])


def substantial_edit(old: str, new: str) -> bool:
    """An edit worth a re-triage: the body grew or changed by a fair amount (pure)."""
    if old == new:
        return False
    added = abs(len(new) - len(old))
    return added >= 80 or added >= 0.3 * max(len(old), 1)


async def deferred(ctx: Context, gh: GitHubAPI, payload: dict[str, Any], installation_id: int) -> None:
    """The `retriage` job: the re-triage the reporter's answers wait for, once they have been quiet for
    `needs_info.debounce` seconds (a later answer moves it); none when a triage has read them since."""
    repo, number = payload["repo"], int(payload["number"])
    state = await ctx.store.issue_state(repo, number)
    record = state.get("retriage")
    if not isinstance(record, dict) or not record.get("pending"):
        return
    if followup.read_since(record, state.get("triaged_at")):
        state["retriage"] = followup.ran(record, ctx.clock(), counted=False)
        await ctx.store.save_issue_state(repo, number, state)
        return
    config, _ = await configs.load(ctx, gh, repo)
    due = followup.due(record, config.retriage_debounce) or 0.0
    if due > ctx.clock():
        await ctx.store.enqueue(jobs.RETRIAGE, f"{repo}#{number}", payload, installation_id=installation_id,
                                delay=due - ctx.clock(), unique=True)
        return
    triaged = await triage_issue(ctx, gh, repo, number, installation_id=installation_id, attempt=2)
    state = await ctx.store.issue_state(repo, number)  # the triage saved its own findings
    state["retriage"] = followup.ran(state.get("retriage"), ctx.clock(), counted=triaged)
    await ctx.store.save_issue_state(repo, number, state)


@router.register("issues", action="edited")
async def on_edited(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, job: Job, **kwargs: Any) -> None:
    old = (event.data.get("changes") or {}).get("body", {}).get("from")
    if old is None or not substantial_edit(old, event.data["issue"].get("body") or ""):
        return
    repo = repo_of(event)
    config, _ = await configs.load(ctx, gh, repo)
    await reporter.acknowledge(ctx, gh, repo, int(event.data["issue"]["number"]), int(event.data["installation"]["id"]),
                               config, comment_id=None)


@router.register("issue_comment", action="created")
async def on_reporter_answer(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, job: Job,
                             **kwargs: Any) -> None:
    """The reporter's comment: reopen an issue chantbot closed for want of their answers, and re-triage; when the
    issue waits for their answers, acknowledge it and re-triage once they are quiet (a comment holding commands
    is left to the commands, `/retriage` among them)."""
    issue, comment = event.data["issue"], event.data["comment"]
    if comment["user"]["login"] != issue["user"]["login"] or is_bot(comment.get("user")) or issue.get("pull_request"):
        return
    repo, number, installation_id = repo_of(event), int(issue["number"]), int(event.data["installation"]["id"])
    if issue.get("state") == "closed":
        if await reporter.reopen(ctx, gh, repo, issue):
            await triage_issue(ctx, gh, repo, number, installation_id=installation_id, attempt=2)
        return
    if await asyncio.to_thread(parser.parse, comment.get("body") or ""):
        return
    config, _ = await configs.load(ctx, gh, repo)
    if config.label("stage", "needs-info") not in {label["name"] for label in issue.get("labels", [])}:
        return
    await reporter.acknowledge(ctx, gh, repo, number, installation_id, config, comment_id=int(comment["id"]))


@router.register("issues", action="labeled")
async def on_labeled(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, **kwargs: Any) -> None:
    """A person's category label teaches the local triager; a person's `needs-info` starts the wait for the
    reporter's answers (other stage labels are the stage runner's)."""
    repo, issue_json, name = repo_of(event), event.data["issue"], event.data["label"]["name"]
    config, _ = await configs.load(ctx, gh, repo)
    if name == config.label("stage", "needs-info") and not is_bot(event.data.get("sender")):
        number = int(issue_json["number"])
        state = await ctx.store.issue_state(repo, number)
        reporter.start_waiting(state, ctx.clock())
        await ctx.store.save_issue_state(repo, number, state)
        await reporter.schedule_sweep(ctx, repo, int(event.data["installation"]["id"]), config)
        return
    category = {v: k for k, v in config.labels["category"].items()}.get(name)
    if category and category != "duplicate":
        issue = issue_text(issue_json)
        await ctx.store.index_issue(repo, issue.number, issue.title, issue.body, issue_json.get("state", "open"),
                                    category)


@router.register("issues", action="closed")
async def on_closed(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, **kwargs: Any) -> None:
    """A closed issue joins the labelled history the local triager learns from."""
    repo, issue_json = repo_of(event), event.data["issue"]
    config, _ = await configs.load(ctx, gh, repo)
    names = {label["name"] for label in issue_json.get("labels", [])}
    category = next((key for key, name in config.labels["category"].items() if name in names and key != "duplicate"),
                    None)
    issue = issue_text(issue_json)
    await ctx.store.index_issue(repo, issue.number, issue.title, issue.body, "closed", category)
