"""The reporter's side of triage: their answers since the triage (acknowledged at once, re-triaged after a quiet
period, a few times a day), one reminder and then closing when the questions go unanswered (a scheduled sweep,
idempotent and paced like every write), and reopening when the reporter answers after all."""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any

from gidgethub.abc import GitHubAPI

from bot import comment as comments
from bot import followup, issueops, jobs
from bot.context import Context
from bot.questions import MAX_ANSWERS
from bot.repoconfig import RepoConfig
from bot.services import config as configs

log = logging.getLogger(__name__)

DAY = 86_400.0
SWEEP_EVERY = 6 * 3600.0  # at most this long between two sweeps of a repository whose issues wait for answers
MIN_SWEEP_DELAY = 60.0
MAX_COMMENTS_READ = 300  # comments of one issue read for the reporter's answers
MAX_SWEPT = 500  # issues one sweep looks at
REMINDER_MARKER = comments.marker_for(comments.REMINDER_PURPOSE)
NO_ANSWER_MARKER = comments.marker_for(comments.NO_ANSWER_PURPOSE)
RETRIAGE_LIMIT_MARKER = comments.marker_for(comments.RETRIAGE_LIMIT_PURPOSE)


async def answers(gh: GitHubAPI, repo: str, number: int, author: str, *,
                  after_comment: int | None) -> tuple[str, ...]:
    """The reporter's comments after chantbot's triage comment, oldest first (all of the reporter's when that
    comment is unknown or gone); each cut to what analysis reads."""
    everything: list[str] = []
    since: list[str] = []
    seen = after_comment is None
    read = 0
    async for comment in gh.getiter(f"/repos/{repo}/issues/{number}/comments?per_page=100"):
        read += 1
        if read > MAX_COMMENTS_READ:
            break
        if comment.get("id") == after_comment:
            seen = True
            continue
        user = comment.get("user") or {}
        body = str(comment.get("body") or "")[:MAX_ANSWERS]
        if user.get("login") != author or user.get("type") == "Bot" or not body.strip():
            continue
        everything.append(body)
        if seen:
            since.append(body)
    return tuple(since if after_comment is None or seen else everything)


async def acknowledge(ctx: Context, gh: GitHubAPI, repo: str, number: int, installation_id: int,
                      config: RepoConfig, *, comment_id: int | None) -> None:
    """The reporter answered (comment `comment_id`, or an edit of the issue's body when None): an `eyes` reaction
    says so at once, and a re-triage follows once `needs_info.debounce` seconds pass without another answer, at
    most `needs_info.max_retriage` a day; past that, a reply says the answer waits for a maintainer's
    `/retriage`. Nothing before the first triage, which reads the issue as it is then."""
    state = await ctx.store.issue_state(repo, number)
    if not state.get("triaged_at"):
        return
    record, waits = followup.answered(state.get("retriage"), ctx.clock(), limit=config.max_retriage)
    state["retriage"] = record
    await ctx.store.save_issue_state(repo, number, state)
    if comment_id is not None:
        await issueops.react(gh, repo, comment_id, "eyes")
    else:
        await issueops.react_to_issue(gh, repo, number, "eyes")
    if waits:
        await ctx.store.enqueue(jobs.RETRIAGE, f"{repo}#{number}", {"repo": repo, "number": number},
                                installation_id=installation_id, delay=config.retriage_debounce, unique=True)
        return
    record["limit_comment_id"] = await issueops.upsert_comment(
        gh, repo, number, RETRIAGE_LIMIT_MARKER, comments.retriage_limit_comment(len(record["runs"])),
        known_id=record.get("limit_comment_id"), may_exist=True)
    await ctx.store.save_issue_state(repo, number, state)
    log.info("%s#%d: the reporter's answer waits for /retriage (%d re-triages today)", repo, number,
             len(record["runs"]))


def start_waiting(state: dict[str, Any], now: float) -> None:
    """The issue now waits for the reporter's answers: its clock starts again (no reminder yet)."""
    state["needs_info"] = {"since": now}


async def schedule_sweep(ctx: Context, repo: str, installation_id: int, config: RepoConfig) -> None:
    """Sweep the repository's waiting issues once the first reminder can be due (or sooner, at most every few
    hours); a sweep already queued stands."""
    delay = min(config.remind_after * DAY, SWEEP_EVERY)
    await ctx.store.enqueue(jobs.NEEDS_INFO, f"needs-info:{repo}", {"repo": repo}, installation_id=installation_id,
                            delay=delay, unique=True)


async def sweep(ctx: Context, gh: GitHubAPI, repo: str, installation_id: int) -> None:
    """The `needs-info` job: remind, then close, each open issue still waiting for its reporter's answers.

    Every effect is idempotent (a comment by marker, a close that is already done), so a sweep that runs
    twice, or dies halfway, ends as one sweep. It schedules the next sweep while issues are waiting.
    """
    config, _ = await configs.load(ctx, gh, repo)
    label = config.label("stage", "needs-info")
    now = ctx.clock()
    upcoming = now + SWEEP_EVERY
    waiting = 0
    query = urllib.parse.urlencode({"state": "open", "labels": label, "per_page": 100})
    async for issue in gh.getiter(f"/repos/{repo}/issues?{query}"):
        if issue.get("pull_request"):
            continue
        waiting += 1
        due = await _follow_up(ctx, gh, repo, int(issue["number"]), config, now)
        if due is not None:
            upcoming = min(upcoming, due)
        if waiting >= MAX_SWEPT:
            break
    if waiting:
        await ctx.store.enqueue(jobs.NEEDS_INFO, f"needs-info:{repo}", {"repo": repo},
                                installation_id=installation_id, delay=max(upcoming - now, MIN_SWEEP_DELAY),
                                unique=True)
    log.info("%s: swept %d issue(s) waiting for answers", repo, waiting)


async def _follow_up(ctx: Context, gh: GitHubAPI, repo: str, number: int, config: RepoConfig,
                     now: float) -> float | None:
    """Remind or close one waiting issue when its time has come; when the next step is due (None: never)."""
    state = await ctx.store.issue_state(repo, number)
    info = state.get("needs_info")
    if not isinstance(info, dict) or "since" not in info:  # labelled by hand before chantbot saw it: from now
        start_waiting(state, now)
        await ctx.store.save_issue_state(repo, number, state)
        info = state["needs_info"]
    if not info.get("reminded"):
        due = info["since"] + config.remind_after * DAY
        if now < due:
            return due
        info["reminder_id"] = await issueops.upsert_comment(
            gh, repo, number, REMINDER_MARKER, comments.reminder_comment(config.close_after),
            known_id=info.get("reminder_id"), may_exist=True)
        info["reminded"] = now
        await ctx.store.save_issue_state(repo, number, state)
        return now + config.close_after * DAY if config.close_after else None
    if config.close_after is None:
        return None
    due = info["reminded"] + config.close_after * DAY
    if now < due:
        return due
    waited = round((now - info["since"]) / DAY)
    info["closed_note_id"] = await issueops.upsert_comment(
        gh, repo, number, NO_ANSWER_MARKER, comments.no_answer_comment(waited),
        known_id=info.get("closed_note_id"), may_exist=True)
    await gh.patch(f"/repos/{repo}/issues/{number}", data={"state": "closed", "state_reason": "not_planned"})
    info["closed"] = now
    await ctx.store.save_issue_state(repo, number, state)
    log.info("%s#%d closed: no answer in %d days", repo, number, waited)
    return None


async def reopen(ctx: Context, gh: GitHubAPI, repo: str, issue: dict[str, Any]) -> bool:
    """Reopen an issue chantbot closed for want of answers, now that its reporter has answered; False when
    chantbot did not close it that way (a person's close stands)."""
    number = int(issue["number"])
    state = await ctx.store.issue_state(repo, number)
    info = state.get("needs_info")
    if not (isinstance(info, dict) and info.get("closed")) or issue.get("state_reason") != "not_planned":
        return False
    await gh.patch(f"/repos/{repo}/issues/{number}", data={"state": "open"})
    start_waiting(state, ctx.clock())
    await ctx.store.save_issue_state(repo, number, state)
    log.info("%s#%d reopened: the reporter answered", repo, number)
    return True
