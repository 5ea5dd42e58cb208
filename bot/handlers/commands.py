"""Slash commands in issue comments: parse, check who may run them, act, and always answer."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import urllib.parse
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from gidgethub import BadRequest, routing, sansio
from gidgethub.abc import GitHubAPI

from bot import comment as comments
from bot import failures, issueops, labels, workflow
from bot.commands import parser, permissions, registry
from bot.commands.parser import Command
from bot.context import Context
from bot.services import config as configs
from bot.services import labelling
from bot.services.issues import repo_of
from bot.services.roles import role_of
from bot.services import reporter
from bot.services.triage import label_choices, triage_issue
from bot.stages import gate, progress, runner
from bot.repoconfig import RepoConfig
from bot.deliveries import is_bot
from bot.sanitize import code_span
from bot.store import Job

log = logging.getLogger(__name__)
router = routing.Router()

RETRIAGE_LIMIT = 3  # re-triages by command per issue per hour: each one costs a model call
RETRIAGE_WINDOW = 3600.0
SECURITY_OFF_ROLE = "maintain"  # lowering the security flag takes more than raising it


class Reply:
    """The lines of one answer to one comment."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def say(self, command: Command, text: str) -> None:
        self.parts.append(f"> {code_span(command.line, 120)}\n\n{text}")


async def relabel(ctx: Context, gh: GitHubAPI, repo: str, issue: dict[str, Any], config: RepoConfig,
                  want: dict[str, str]) -> None:
    """A maintainer's label command: the labels become the maintainer's (re-triage leaves them alone)."""
    now = await labelling.relabel(ctx, gh, repo, int(issue["number"]), config, want, by_person=True)
    issue["labels"] = [{"name": n} for n in now]


async def status_text(ctx: Context, repo: str, issue: dict[str, Any], config: RepoConfig) -> str:
    records = await ctx.store.specs(repo, int(issue["number"]))
    if not records:
        return "No specs yet for this issue."
    return "Spec chain: " + " → ".join(r.stage for r in records) + "\n\n" + await progress.status_table(
        ctx, repo, int(issue["number"]), config, issue.get("html_url", ""))


@dataclass(frozen=True)
class Call:
    """One permitted, well-formed command about to run: where, by whom, with what."""

    ctx: Context
    gh: GitHubAPI
    event: sansio.Event
    command: Command
    args: list[str]
    config: RepoConfig
    reply: Reply
    job: Job
    actor: str

    @property
    def repo(self) -> str:
        return repo_of(self.event)

    @property
    def issue(self) -> dict[str, Any]:
        return self.event.data["issue"]

    @property
    def number(self) -> int:
        return int(self.issue["number"])

    @property
    def installation_id(self) -> int:
        return int(self.event.data["installation"]["id"])

    def say(self, text: str) -> None:
        self.reply.say(self.command, text)


async def _help(c: Call) -> None:
    c.say(registry.help_text(c.config.commands, labels=label_choices(c.config)))


async def _status(c: Call) -> None:
    c.say(await status_text(c.ctx, c.repo, c.issue, c.config))


async def _retriage(c: Call) -> None:
    await retriage(c.ctx, c.gh, c.repo, c.number, int(c.event.data["comment"]["id"]), c.reply, c.command,
                   installation_id=c.installation_id, attempt=c.job.attempts + 1)


async def _family(c: Call) -> None:
    family = {"kind": "category"}.get(c.command.name, c.command.name)
    await relabel(c.ctx, c.gh, c.repo, c.issue, c.config, {family: c.config.label(family, c.args[0])})


async def _label(c: Call) -> None:
    if labels.gate_label(c.config, c.args[0]) is not None:
        c.say(f"{code_span(c.args[0], 50)} records a maintainer's `/approve` of the implementation, so only chantbot "
              "sets it, when `/approve` turns `chantbot/approval` green; nothing was added. `/approve` is the way.")
        return
    family = c.config.family_of(c.args[0])
    if family is not None:
        await relabel(c.ctx, c.gh, c.repo, c.issue, c.config, {family: c.args[0]})
        await _label_starts_stage(c, family)
        return
    name = c.config.additional(c.args[0])
    if name is None:
        c.say(f"{code_span(c.args[0], 50)} is neither one of this repository's chantbot labels nor one that "
              "`labels.additional` in `.github/chantbot.yml` allows, so chantbot will not apply it. `/help` lists "
              "the labels `/label` takes.")
        return
    try:
        found = await c.gh.getitem(f"/repos/{c.repo}/labels/{urllib.parse.quote(name, safe='')}")
    except BadRequest as exc:
        if int(exc.status_code) != 404:
            raise
        c.say(f"This repository has no label {code_span(name, 50)}, so nothing was added; chantbot does not create "
              "labels outside its vocabulary.")
        return
    await issueops.apply_labels(c.gh, c.repo, c.number, labels.LabelPlan((found["name"],), (), frozenset()))


async def _label_starts_stage(c: Call, family: str) -> None:
    """A stage label set with `/label` starts its stage, as the same label added by that person would."""
    if family != "stage":
        return
    said = await runner.start_from_label(c.ctx, c.gh, repo=c.repo, number=c.number, label=c.args[0], person=c.actor,
                                         installation_id=c.installation_id, config=c.config)
    if said:
        c.say(said)


async def _unlabel(c: Call) -> None:
    if c.args[0] in {label["name"] for label in c.issue.get("labels", [])}:
        await issueops.apply_labels(c.gh, c.repo, c.number, labels.LabelPlan((), (c.args[0],), frozenset()))


async def _duplicate(c: Call) -> None:
    original = int(c.args[0])
    if original == c.number:
        c.say("An issue cannot be a duplicate of itself; nothing was changed.")
        return
    try:
        other = await c.gh.getitem(f"/repos/{c.repo}/issues/{original}")
    except BadRequest as exc:
        if int(exc.status_code) not in (404, 410):
            raise
        c.say(f"There is no issue #{original} in this repository; nothing was changed.")
        return
    if other.get("pull_request"):
        c.say(f"#{original} is a pull request, not an issue; nothing was changed.")
        return
    duplicate = c.config.label("category", "duplicate")
    state = await c.ctx.store.issue_state(c.repo, c.number)
    owned = set(state.get("owned_labels", []))
    current = labelling.names(c.issue)
    theirs = [n for n in current & set(c.config.labels["category"].values()) if n not in owned and n != duplicate]
    if theirs:  # a maintainer chose the category: it stays, and the duplicate label joins it
        await relabel(c.ctx, c.gh, c.repo, c.issue, c.config, {"stage": c.config.label("stage", "deferred")})
        if duplicate not in current:
            await c.ctx.repos.ensure_labels(c.gh, c.repo, [duplicate], c.config)
            await issueops.apply_labels(c.gh, c.repo, c.number, labels.LabelPlan((duplicate,), (), frozenset()))
    else:
        await relabel(c.ctx, c.gh, c.repo, c.issue, c.config, {"category": duplicate,
                                                               "stage": c.config.label("stage", "deferred")})
    c.say(f"Marked as a duplicate of #{original}. The issue stays open until a maintainer closes it.")


async def _stage_label(c: Call) -> None:
    key = "deferred" if c.command.name == "defer" else "needs-info"
    await relabel(c.ctx, c.gh, c.repo, c.issue, c.config, {"stage": c.config.label("stage", key)})
    if key == "needs-info":  # the wait for the reporter's answers starts: one reminder, then closing
        state = await c.ctx.store.issue_state(c.repo, c.number)
        reporter.start_waiting(state, c.ctx.clock())
        await c.ctx.store.save_issue_state(c.repo, c.number, state)
        await reporter.schedule_sweep(c.ctx, c.repo, c.installation_id, c.config)


async def _close(c: Call) -> None:
    words = " ".join(c.args).lower()
    reason = "not_planned" if any(w in words for w in ("not planned", "wontfix", "won't", "duplicate", "stale")) \
        else "completed"
    await c.gh.patch(f"/repos/{c.repo}/issues/{c.number}", data={"state": "closed", "state_reason": reason})


async def _reopen(c: Call) -> None:
    await c.gh.patch(f"/repos/{c.repo}/issues/{c.number}", data={"state": "open"})


async def _assign(c: Call) -> None:
    login = c.args[0] if c.args else c.actor
    try:
        await c.gh.getitem(f"/repos/{c.repo}/assignees/{urllib.parse.quote(login)}")  # 204: may be assigned
    except BadRequest as exc:
        if int(exc.status_code) != 404:
            raise
        c.say(f"{code_span(login, 40)} cannot be assigned to issues in this repository, so the issue was not "
              "assigned.")
        return
    await c.gh.post(f"/repos/{c.repo}/issues/{c.number}/assignees", data={"assignees": [login]})


async def _unassign(c: Call) -> None:
    login = c.args[0] if c.args else c.actor
    assigned = {(a or {}).get("login", "").lower() for a in c.issue.get("assignees") or []}
    if login.lower() not in assigned:
        c.say(f"{code_span(login, 40)} is not assigned to this issue; nothing was changed.")
        return
    await c.gh.delete(f"/repos/{c.repo}/issues/{c.number}/assignees", data={"assignees": [login]})


async def _security(c: Call) -> None:
    if c.args == ["off"]:
        await _security_off(c)
        return
    state = await c.ctx.store.issue_state(c.repo, c.number)
    state["security"] = True
    await c.ctx.store.save_issue_state(c.repo, c.number, state)
    stopped = await runner.cancel(c.ctx, c.gh, c.repo, c.number, c.config, "the issue is a security report",
                                  redact=True, installation_id=c.installation_id)
    triaged = await triage_issue(c.ctx, c.gh, c.repo, c.number, installation_id=c.installation_id,
                                 attempt=c.job.attempts + 1, security=True)
    if not triaged:  # closed, or triage is off: the issue is marked, and the next triage treats it as one
        state = await c.ctx.store.issue_state(c.repo, c.number)
        state["security"] = True
        await c.ctx.store.save_issue_state(c.repo, c.number, state)
    issue = await c.gh.getitem(f"/repos/{c.repo}/issues/{c.number}")
    want = {"flags": c.config.label("flags", "security")}
    if not labelling.names(issue) & {c.config.label("priority", p) for p in ("critical", "high")}:
        want["priority"] = c.config.label("priority", "high")
    await labelling.relabel(c.ctx, c.gh, c.repo, c.number, c.config, want, by_person=True)
    state = await c.ctx.store.issue_state(c.repo, c.number)
    state["security_labels"] = sorted(want.values())  # what `/security off` hands back to triage
    await c.ctx.store.save_issue_state(c.repo, c.number, state)
    done = ["Marked as a security report: the security label, priority high or above, and no stage will run."]
    if stopped:
        done.append(f"The stage run in progress was cancelled ({stopped}).")
    if triaged:
        done.append("The triage comment now asks the reporter to report details privately and asks nothing in "
                    "public.")
        if c.config.specs_branch:
            done.append("The triage spec and document on the specs branch now record only that a security report "
                        "was received, and its pending stage specs are cancelled without the report's text; earlier "
                        "commits of the specs branch still hold what was written before.")
    c.say(" ".join(done))


async def _security_off(c: Call) -> None:
    """A maintainer says the issue is no security report: the flag and what it set go, and triage runs again (no
    model and no detector raises the flag again; `/security` does)."""
    role = await role_of(c.ctx, c.gh, c.repo, c.actor)
    if not permissions.allowed(SECURITY_OFF_ROLE, role):
        c.say(refusal("security off", permissions.describe(SECURITY_OFF_ROLE), [c.actor], {c.actor: role}))
        return
    state = await c.ctx.store.issue_state(c.repo, c.number)
    flag = c.config.label("flags", "security")
    current = labelling.names(await c.gh.getitem(f"/repos/{c.repo}/issues/{c.number}"))
    # Labels `/security` set, or triage set for it, are triage's to decide again.
    handed_back = (set(state.pop("security_labels", [])) & current) - {flag}
    state["owned_labels"] = sorted((set(state.get("owned_labels", [])) | handed_back) - {flag})
    state["security"] = False
    await c.ctx.store.save_issue_state(c.repo, c.number, state)
    if flag in current:
        await issueops.apply_labels(c.gh, c.repo, c.number, labels.LabelPlan((), (flag,), frozenset()))
    triaged = await triage_issue(c.ctx, c.gh, c.repo, c.number, installation_id=c.installation_id,
                                 attempt=c.job.attempts + 1)
    c.say("No longer handled as a security report: the security label is removed"
          + (" and the issue was triaged again on the normal path." if triaged else
             "; the issue was not triaged again (it is closed, or triage is turned off here)."))


async def _stage(c: Call) -> None:
    started = await runner.start(c.ctx, c.gh, repo=c.repo, issue=await c.gh.getitem(f"/repos/{c.repo}/issues/{c.number}"),
                                 stage=c.command.name, installation_id=c.installation_id, requested_by=c.actor,
                                 config=c.config)
    c.say(started)


async def _decide(c: Call) -> None:
    c.say(await gate.decide(c.ctx, c.gh, c.repo, c.number, c.actor, approve=c.command.name == "approve",
                            reason=" ".join(c.args), config=c.config))


async def _ok_to_test(c: Call) -> None:
    c.say(await runner.ok_to_test(c.ctx, c.gh, c.repo, c.number, c.actor, c.config))


async def _release_notes(c: Call) -> None:
    c.say(await gate.release_notes(c.ctx, c.gh, c.repo, c.number, c.args[0], c.actor, c.config))


EFFECTS: dict[str, Callable[[Call], Awaitable[None]]] = {
    "help": _help, "status": _status, "retriage": _retriage, "triage": _retriage,
    "kind": _family, "priority": _family, "severity": _family, "label": _label, "unlabel": _unlabel,
    "duplicate": _duplicate, "defer": _stage_label, "needs-info": _stage_label, "close": _close, "reopen": _reopen,
    "assign": _assign, "unassign": _unassign, "security": _security,
    **{name: _stage for name in workflow.AGENT_STAGES}, "approve": _decide, "reject": _decide,
    "release-notes": _release_notes, "ok-to-test": _ok_to_test,
}


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
    config, problems = await configs.load(ctx, gh, repo)
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
        author_may = registry.author_may(spec, config.commands)
        refused = [p for p in people if not permissions.allowed(minimum, roles.get(p, "none"),
                                                                is_author=p == issue["user"]["login"],
                                                                author_may=author_may)]
        if refused:
            reply.say(command, refusal(spec.name, permissions.describe(minimum, author_may=author_may),
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
            await EFFECTS[spec.name](Call(ctx, gh, event, command, args, config, reply, job, actor))
        except BadRequest as exc:
            if failures.is_permanent(exc) and int(exc.status_code) != 422:
                raise  # the issue itself is gone: nothing to answer
            reply.say(command, f"Failed: {failures.describe(exc)} Post the command again in a new comment to retry.")
    if repeated and reply.parts:  # said only alongside other answers: a repeat alone needs no reply
        reply.parts.append(f"Repeated commands ran once each ({repeated} repeat(s) skipped).")
    if ignored:
        reply.parts.append(f"{len(ignored)} more command(s) in this comment were not run: chantbot runs at most "
                           f"{parser.MAX_PER_COMMENT} commands from one comment. Post the others in a new comment.")
    if problems:  # for maintainers, collapsed: whoever ran the command may be the reporter
        reply.parts.append(comments.config_problem_block(problems))
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
        role = roles.get(people[0], "none")
        have = "you have no access to this repository" if role == "none" else f"you have {role} access here"
        return f"Not run: only {who} may run `/{name}`, and {have}."
    actor, author = people
    return (f"Not run: only {who} may run `/{name}`. It was added by {code_span(actor, 40)}'s edit of "
            f"{code_span(author, 40)}'s comment, and a command added by an edit runs only if both may run it "
            f"(access here: {code_span(actor, 40)} {_role(roles, actor)}, "
            f"{code_span(author, 40)} {_role(roles, author)}).")


def _role(roles: dict[str, str], person: str) -> str:
    role = roles.get(person, "none")
    return "no access" if role == "none" else role


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
