"""Slash commands in issue comments: parse, check who may run them, act, and always answer."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from gidgethub import BadRequest, routing, sansio
from gidgethub.abc import GitHubAPI

from bot import comment as comments
from bot import issueops, labels, workflow
from bot.commands import parser, permissions, registry
from bot.commands.parser import Command
from bot.context import Context
from bot.stages import gate, runner
from bot.handlers.triage import load_config, repo_of, spec_url, triage_issue
from bot.repoconfig import RepoConfig
from bot.routing import is_bot
from bot.sanitize import neutralize, one_line
from bot.store import Job

log = logging.getLogger(__name__)
router = routing.Router()


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
        quoted = one_line(command.line, 120).replace("`", "'")
        self.parts.append(f"> `{quoted}`\n\n{text}")


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
                  config: RepoConfig, reply: Reply, job: Job) -> None:
    """Run one permitted, well-formed command."""
    repo, issue = repo_of(event), event.data["issue"]
    number, actor = int(issue["number"]), event.data["comment"]["user"]["login"]
    installation_id = int(event.data["installation"]["id"])
    name = command.name
    if name == "help":
        reply.say(command, registry.help_text(config.commands))
    elif name == "status":
        reply.say(command, await status_text(ctx, repo, issue, config))
    elif name in ("retriage", "triage"):
        await triage_issue(ctx, gh, repo, number, installation_id=installation_id, attempt=job.attempts + 1)
    elif name in ("kind", "priority", "severity"):
        family = {"kind": "category"}.get(name, name)
        await relabel(ctx, gh, repo, issue, config, {family: config.label(family, args[0])})
    elif name == "label":
        family = config.family_of(args[0])
        if family is None:
            reply.say(command, f"`{neutralize(one_line(args[0], 50))}` is not one of this repository's chantbot "
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


async def handle(ctx: Context, gh: GitHubAPI, event: sansio.Event, job: Job, found: list[Command]) -> None:
    repo, issue, comment = repo_of(event), event.data["issue"], event.data["comment"]
    actor = comment["user"]["login"]
    is_author = actor == issue["user"]["login"]
    config, problems = await load_config(ctx, gh, repo)
    levels = registry.levels(config.commands)
    reply = Reply()
    role: str | None = None
    accepted = False
    for command in found:
        spec = registry.spec_for(command.name)
        if spec is None:
            guess = registry.suggest(command.name)
            reply.say(command, f"chantbot has no command `/{neutralize(one_line(command.name, 40))}`."
                               + (f" Did you mean `/{guess}`?" if guess else "") + " `/help` lists the commands.")
            continue
        minimum = levels.get(spec.name, spec.min_role)
        if minimum != "anyone" and role is None:
            role = await role_of(ctx, gh, repo, actor)
        if not permissions.allowed(minimum, role or "none", is_author=is_author, author_may=spec.author_may):
            who = permissions.describe(minimum, author_may=spec.author_may)
            reply.say(command, f"Not run: only {who} may run `/{spec.name}`; your access here is {role or 'none'}.")
            continue
        args, error = registry.check_args(spec, command.args)
        if error:
            reply.say(command, f"Not run: {error} Usage: `{spec.usage}`.")
            continue
        if not accepted:
            await issueops.react(gh, repo, int(comment["id"]), "eyes")
            accepted = True
        try:
            await execute(ctx, gh, event, command, args, config, reply, job)
        except BadRequest as exc:
            reply.say(command, f"Failed: GitHub answered {exc.status_code} ({one_line(str(exc), 120)}). "
                               "Post the command again in a new comment to retry.")
    if problems:
        reply.parts.append(comments.config_problem_lines(problems))
    if reply.parts:
        body = reply_marker(int(comment["id"]), found) + "\n" + "\n\n".join(reply.parts)
        await issueops.upsert_comment(gh, repo, int(issue["number"]), reply_marker(int(comment["id"]), found), body,
                                      known_id=None, may_exist=job.attempts > 1)
    elif accepted:
        await issueops.react(gh, repo, int(comment["id"]), "+1")


@router.register("issue_comment", action="created")
@router.register("issue_comment", action="edited")
async def on_comment(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, job: Job, **kwargs: Any) -> None:
    comment = event.data["comment"]
    if is_bot(comment.get("user")) or event.data["issue"].get("pull_request"):
        return
    if event.data["action"] == "edited":
        old = (event.data.get("changes") or {}).get("body", {}).get("from")
        found = parser.added(old or "", comment.get("body") or "") if old is not None else []
    else:
        found = parser.parse(comment.get("body") or "")
    if found:
        await handle(ctx, gh, event, job, found)
