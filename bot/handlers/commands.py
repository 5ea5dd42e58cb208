"""Slash commands in issue comments: parse, check who may run them, act, and always answer."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from typing import Any

from gidgethub import BadRequest, routing, sansio
from gidgethub.abc import GitHubAPI

from bot import comment as comments
from bot import failures, issueops, labels, workflow
from bot.commands import parser, permissions, registry
from bot.commands.parser import Command
from bot.context import Context
from bot.stages import gate, runner
from bot.handlers.triage import load_config, repo_of, spec_url, triage_issue
from bot.repoconfig import RepoConfig
from bot.routing import is_bot
from bot.sanitize import code_span
from bot.store import Job

log = logging.getLogger(__name__)
router = routing.Router()

RETRIAGE_LIMIT = 3  # re-triages by command per issue per hour: each one costs a model call
RETRIAGE_WINDOW = 3600.0


async def role_of(ctx: Context, gh: GitHubAPI, repo: str, login: str) -> str:
    """The user's role on the repository from the collaborator-permission endpoint, cached a few minutes."""
    cached = ctx.repos.role(repo, login)
    if cached is not None:
        return cached
    try:
        data = await gh.getitem(f"/repos/{repo}/collaborators/{login}/permission")
        role = permissions.normalize(data.get("role_name"), data.get("permission"))
    except BadRequest as exc:
        if int(exc.status_code) not in (403, 404):
            raise
        role = "none"
    ctx.repos.remember_role(repo, login, role)
    return role


class Reply:
    """The lines of one answer to one comment."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def say(self, command: Command, text: str) -> None:
        self.parts.append(f"> {code_span(command.line, 120)}\n\n{text}")


async def relabel(ctx: Context, gh: GitHubAPI, repo: str, issue: dict[str, Any], config: RepoConfig,
                  want: dict[str, str], *, release: tuple[str, ...] = ()) -> None:
    state = await ctx.store.issue_state(repo, issue["number"])
    # The delivery's labels may be stale (another command ran since): decide on the issue as it is now.
    current = [label["name"] async for label in gh.getiter(f"/repos/{repo}/issues/{issue['number']}/labels")]
    plan = labels.plan(current, state.get("owned_labels", []), want, config, override_people=True, release=release)
    await ctx.repos.ensure_labels(gh, repo, list(plan.add), config)
    await issueops.apply_labels(gh, repo, issue["number"], plan)
    issue["labels"] = [{"name": n} for n in (set(current) | set(plan.add)) - set(plan.remove)]
    # A label set by a maintainer's command is the maintainer's decision: re-triage leaves it alone.
    state["owned_labels"] = sorted(set(state.get("owned_labels", [])) - set(plan.remove) - set(plan.add))
    await ctx.store.save_issue_state(repo, issue["number"], state)


async def status_text(ctx: Context, repo: str, issue: dict[str, Any], config: RepoConfig) -> str:
    records = await ctx.store.specs(repo, int(issue["number"]))
    if not records:
        return "No specs yet for this issue."
    rows = ["| stage | spec | status |", "| --- | --- | --- |"]
    for r in records:
        link = spec_url(issue.get("html_url", ""), config, r.path)
        rows.append(f"| {r.stage} | [`{r.spec_id}`]({link}) | {r.status} |" if link
                    else f"| {r.stage} | `{r.spec_id}` | {r.status} |")
    return "Spec chain: " + " → ".join(r.stage for r in records) + "\n\n" + "\n".join(rows)


async def execute(ctx: Context, gh: GitHubAPI, event: sansio.Event, command: Command, args: list[str],
                  config: RepoConfig, reply: Reply, job: Job, *, actor: str) -> None:
    """Run one permitted, well-formed command on behalf of `actor`."""
    repo, issue = repo_of(event), event.data["issue"]
    number = int(issue["number"])
    installation_id = int(event.data["installation"]["id"])
    name = command.name
    if name == "help":
        reply.say(command, registry.help_text(config.commands))
    elif name == "status":
        reply.say(command, await status_text(ctx, repo, issue, config))
    elif name in ("retriage", "triage"):
        await retriage(ctx, gh, repo, number, int(event.data["comment"]["id"]), reply, command,
                       installation_id=installation_id, attempt=job.attempts + 1)
    elif name in ("kind", "priority", "severity"):
        family = {"kind": "category"}.get(name, name)
        await relabel(ctx, gh, repo, issue, config, {family: config.label(family, args[0])})
    elif name == "label":
        family = config.family_of(args[0])
        if family is None:
            reply.say(command, f"{code_span(args[0], 50)} is not one of this repository's chantbot "
                               "labels, so chantbot will not apply it. `/help` lists the vocabulary commands.")
            return
        await relabel(ctx, gh, repo, issue, config, {family: args[0]})
    elif name == "unlabel":
        present = {label["name"] for label in issue.get("labels", [])}
        if args[0] in present:
            await issueops.apply_labels(gh, repo, number, labels.LabelPlan((), (args[0],), frozenset()))
    elif name == "duplicate":
        await relabel(ctx, gh, repo, issue, config, {"category": config.label("category", "duplicate"),
                                                     "stage": config.label("stage", "deferred")})
        reply.say(command, f"Marked as a duplicate of #{args[0]}. The issue stays open until a maintainer closes it.")
    elif name in ("defer", "needs-info"):
        key = "deferred" if name == "defer" else "needs-info"
        await relabel(ctx, gh, repo, issue, config, {"stage": config.label("stage", key)})
    elif name == "close":
        reason = "not_planned" if any(w in " ".join(args).lower() for w in ("not planned", "wontfix", "won't",
                                                                             "duplicate", "stale")) else "completed"
        await gh.patch(f"/repos/{repo}/issues/{number}", data={"state": "closed", "state_reason": reason})
    elif name == "reopen":
        await gh.patch(f"/repos/{repo}/issues/{number}", data={"state": "open"})
    elif name in workflow.AGENT_STAGES:
        started = await runner.start(ctx, gh, repo=repo, issue=await gh.getitem(f"/repos/{repo}/issues/{number}"),
                                     stage=name, installation_id=installation_id, requested_by=actor, config=config)
        reply.say(command, started.text)
    elif name in ("approve", "reject"):
        reply.say(command, await gate.decide(ctx, gh, repo, number, actor, approve=name == "approve",
                                             reason=" ".join(args), config=config))
    elif name == "release-notes":
        reply.say(command, await gate.release_notes(ctx, gh, repo, number, args[0], actor, config))


def reply_marker(comment_id: int, commands: list[Command]) -> str:
    digest = hashlib.sha1("\n".join(c.line for c in commands).encode()).hexdigest()[:8]
    return comments.marker_for(f"reply-{comment_id}-{digest}")


def retriage_wait(runs: dict[str, float], comment_id: int, now: float) -> float:
    """Seconds until the issue may be re-triaged by command again (0: now), given earlier runs by comment id.

    The comment being handled is allowed again (a retried job re-runs its own command).
    """
    recent = sorted(at for cid, at in runs.items() if now - at < RETRIAGE_WINDOW and cid != str(comment_id))
    if len(recent) < RETRIAGE_LIMIT:
        return 0.0
    return recent[len(recent) - RETRIAGE_LIMIT] + RETRIAGE_WINDOW - now


async def retriage(ctx: Context, gh: GitHubAPI, repo: str, number: int, comment_id: int, reply: Reply,
                   command: Command, *, installation_id: int, attempt: int) -> None:
    """Re-triage on a command, at most RETRIAGE_LIMIT times an hour per issue: each one is a model call."""
    state = await ctx.store.issue_state(repo, number)
    now = ctx.clock()
    runs = {cid: at for cid, at in (state.get("retriaged") or {}).items() if now - at < RETRIAGE_WINDOW}
    wait = retriage_wait(runs, comment_id, now)
    if wait > 0:
        reply.say(command, f"Not run: this issue was re-triaged {RETRIAGE_LIMIT} times in the last hour, the most "
                           f"chantbot does. Try again in {math.ceil(wait / 60)} minute(s).")
        return
    runs.setdefault(str(comment_id), now)
    state["retriaged"] = runs
    await ctx.store.save_issue_state(repo, number, state)
    await triage_issue(ctx, gh, repo, number, installation_id=installation_id, attempt=attempt)


async def handle(ctx: Context, gh: GitHubAPI, event: sansio.Event, job: Job, found: list[Command]) -> None:
    repo, issue, comment = repo_of(event), event.data["issue"], event.data["comment"]
    # Whoever made the command appear acts: the editor of an edited comment, whose comment it may not be.
    # When editor and author differ, a command runs only if both may run it.
    actor, author = event.data["sender"]["login"], comment["user"]["login"]
    people = [actor] if actor == author else [actor, author]
    config, problems = await load_config(ctx, gh, repo)
    levels = registry.levels(config.commands)
    reply = Reply()
    roles: dict[str, str] = {}
    accepted = False
    runnable = parser.once_each(found)
    repeated = len(found) - len(runnable)
    runnable, ignored = runnable[:parser.MAX_PER_COMMENT], runnable[parser.MAX_PER_COMMENT:]
    for command in runnable:
        spec = registry.spec_for(command.name)
        if spec is None:
            guess = registry.suggest(command.name)
            reply.say(command, f"chantbot has no command {code_span('/' + command.name, 40)}."
                               + (f" Did you mean `/{guess}`?" if guess else "") + " `/help` lists the commands.")
            continue
        minimum = levels.get(spec.name, spec.min_role)
        if minimum != "anyone":
            for person in people:
                if person not in roles:
                    roles[person] = await role_of(ctx, gh, repo, person)
        refused = [p for p in people if not permissions.allowed(minimum, roles.get(p, "none"),
                                                                is_author=p == issue["user"]["login"],
                                                                author_may=spec.author_may)]
        if refused:
            reply.say(command, refusal(spec.name, permissions.describe(minimum, author_may=spec.author_may),
                                       people, roles))
            continue
        args, error = registry.check_args(spec, command.args)
        if error:
            reply.say(command, f"Not run: {error} Usage: `{spec.usage}`.")
            continue
        if not accepted:
            await issueops.react(gh, repo, int(comment["id"]), "eyes")
            accepted = True
        try:
            await execute(ctx, gh, event, command, args, config, reply, job, actor=actor)
        except BadRequest as exc:
            if failures.is_permanent(exc) and int(exc.status_code) != 422:
                raise  # the issue itself is gone: nothing to answer
            reply.say(command, f"Failed: {failures.describe(exc)} Post the command again in a new comment to retry.")
    if repeated and reply.parts:  # said only alongside other answers: a repeat alone needs no reply
        reply.parts.append(f"Repeated commands ran once each ({repeated} repeat(s) skipped).")
    if ignored:
        reply.parts.append(f"{len(ignored)} more command(s) in this comment were not run: chantbot runs at most "
                           f"{parser.MAX_PER_COMMENT} commands from one comment. Post the others in a new comment.")
    if problems:
        reply.parts.append(comments.config_problem_lines(problems))
    if reply.parts:
        marker = reply_marker(int(comment["id"]), found)
        body = comments.fit_parts(marker, reply.parts)
        await issueops.upsert_comment(gh, repo, int(issue["number"]), marker, body,
                                      known_id=None, may_exist=job.attempts > 1)
    elif accepted:
        await issueops.react(gh, repo, int(comment["id"]), "+1")


def refusal(name: str, who: str, people: list[str], roles: dict[str, str]) -> str:
    """Why a command did not run, naming each person's access (as code: a reply pings nobody)."""
    if len(people) == 1:
        return f"Not run: only {who} may run `/{name}`; your access here is {roles.get(people[0], 'none')}."
    actor, author = people
    return (f"Not run: only {who} may run `/{name}`. It was added by {code_span(actor, 40)}'s edit of "
            f"{code_span(author, 40)}'s comment, and a command added by an edit runs only if both may run it "
            f"(access here: {code_span(actor, 40)} {roles.get(actor, 'none')}, "
            f"{code_span(author, 40)} {roles.get(author, 'none')}).")


@router.register("issue_comment", action="created")
@router.register("issue_comment", action="edited")
async def on_comment(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, job: Job, **kwargs: Any) -> None:
    comment = event.data["comment"]
    if is_bot(comment.get("user")) or event.data["issue"].get("pull_request"):
        return
    if event.data["action"] == "edited":
        old = (event.data.get("changes") or {}).get("body", {}).get("from")
        found = await asyncio.to_thread(parser.added, old or "", comment.get("body") or "") if old is not None else []
    else:
        found = await asyncio.to_thread(parser.parse, comment.get("body") or "")
    if found:
        await handle(ctx, gh, event, job, found)
