"""Triage events: new and reopened issues are triaged; substantial edits and reporters' answers re-triaged (an
early one a little later); a reporter's answer reopens an issue closed for want of it; people's category labels
and closed issues teach the local triager."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gidgethub import routing, sansio
from gidgethub.abc import GitHubAPI

from bot import jobs
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

FOLLOW_UP_INTERVAL = 600.0  # at most one re-triage per issue per 10 minutes from follow-ups


@router.register("issues", action="opened")
@router.register("issues", action="reopened")
async def on_opened(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, job: Job, **kwargs: Any) -> None:
    await triage_issue(ctx, gh, repo_of(event), int(event.data["issue"]["number"]),
                       installation_id=int(event.data["installation"]["id"]), attempt=job.attempts)


def substantial_edit(old: str, new: str) -> bool:
    """An edit worth a re-triage: the body grew or changed by a fair amount (pure)."""
    if old == new:
        return False
    added = abs(len(new) - len(old))
    return added >= 80 or added >= 0.3 * max(len(old), 1)


async def follow_up(ctx: Context, gh: GitHubAPI, repo: str, number: int, installation_id: int, *,
                    attempt: int = 1) -> None:
    """Re-triage after the reporter's answer or edit: now, or once FOLLOW_UP_INTERVAL has passed since the last
    triage (a delayed job: an early answer is read then, never dropped)."""
    state = await ctx.store.issue_state(repo, number)
    if not state.get("triaged_at"):
        return  # the first triage has not run yet, and it will read the issue as it is then
    wait = state["triaged_at"] + FOLLOW_UP_INTERVAL - ctx.clock()
    if wait > 0:
        await ctx.store.enqueue(jobs.RETRIAGE, f"{repo}#{number}", {"repo": repo, "number": number},
                                installation_id=installation_id, delay=wait, unique=True)
        return
    await triage_issue(ctx, gh, repo, number, installation_id=installation_id, attempt=attempt)


async def deferred(ctx: Context, gh: GitHubAPI, payload: dict[str, Any], installation_id: int) -> None:
    """The `retriage` job: the re-triage an early answer waited for."""
    await triage_issue(ctx, gh, payload["repo"], int(payload["number"]), installation_id=installation_id, attempt=2)


@router.register("issues", action="edited")
async def on_edited(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, job: Job, **kwargs: Any) -> None:
    old = (event.data.get("changes") or {}).get("body", {}).get("from")
    if old is None or not substantial_edit(old, event.data["issue"].get("body") or ""):
        return
    await follow_up(ctx, gh, repo_of(event), int(event.data["issue"]["number"]),
                    int(event.data["installation"]["id"]), attempt=job.attempts)


@router.register("issue_comment", action="created")
async def on_reporter_answer(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, job: Job,
                             **kwargs: Any) -> None:
    """The reporter's comment: reopen an issue chantbot closed for want of their answers, and re-triage; re-triage
    when the issue waits for their answers (a comment holding commands is left to the commands, `/retriage`
    among them)."""
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
    await follow_up(ctx, gh, repo, number, installation_id, attempt=job.attempts)


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
