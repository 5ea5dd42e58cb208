"""The stage runner: a run advances one unit of work per job, dispatched on its phase (`state.Phase`): its start,
one model turn, that turn's tools, the sandbox's judgement of what it wrote, publishing (a push, or a hold until a
maintainer's `/ok-to-test`), the wait for the repository's checks, and the effects of its end.

Every turn is stored before its tools run, so a run that a killed worker left behind continues from its
last finished model call; every GitHub effect is idempotent (branch by name, pull request by head, a
commit recorded before its ref moves, comments by marker).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from typing import Any, Awaitable, Callable

from gidgethub import BadRequest
from gidgethub.abc import GitHubAPI

from bot import jobs, modelcalls, prompts, specs, workflow
from bot.context import Context
from bot.issuetext import IssueText
from bot.modelcalls import LLMUnavailable, Usage
from bot.repoconfig import RepoConfig
from bot.services import budget, labelling, specchain
from bot.services import config as configs
from bot.specbranch import build_commit, ensure_branch
from bot.stages import agent, ci, documents, dossier, git, hold, progress, results, sandboxing
from bot.stages.state import ACTIVE, End, Phase, RunState
from bot.stages.tools import Result, Workspace, definitions
from bot.store import Run
from bot.untrusted import defuse

log = logging.getLogger(__name__)

JOB = jobs.STAGE
LLM_ATTEMPTS = 4  # model calls that failed in a row before the run ends failed
LLM_RETRY = (5.0, 30.0, 120.0)
MAX_DIFF = 30_000
NUDGE = "Continue with the tools. When you are done, call submit; nothing counts until you do."


class Conflict(Exception):
    """The run changed under us (another worker advanced it): this step stops without effects."""


def issue_key(repo: str, number: int) -> str:
    return f"{repo}#{number}"


def _rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def issue_of(i: dict[str, Any]) -> IssueText:
    """The issue a run reads (its `issue` record) as triage's type."""
    return IssueText(number=int(i["number"]), title=i["title"], body=i["body"], author=i["author"],
                     author_association=i.get("association", "NONE"), url=i["url"],
                     answers=tuple(i.get("answers") or ()))


def issue_data(issue: dict[str, Any], triaged: dict[str, Any] | None) -> dict[str, Any]:
    """The issue as a run reads it: the text triage read (and the answers a re-triage took in), not what the issue
    says now — an edit after triage that was not triaged again does not reach an agent."""
    now = {"title": str(issue.get("title") or ""), "body": str(issue.get("body") or "")}
    text = {**now, **{k: triaged[k] for k in ("title", "body") if triaged and k in triaged}}
    return {"number": int(issue["number"]), "title": text["title"][:300], "body": text["body"][:20000],
            "author": (issue.get("user") or {}).get("login", ""),
            "association": str(issue.get("author_association") or "NONE"), "url": str(issue.get("html_url") or ""),
            "answers": [str(a)[:4000] for a in (triaged or {}).get("answers") or []][:20]}


async def security_flagged(ctx: Context, repo: str, number: int, config: RepoConfig,
                           labels: set[str] | None = None) -> bool:
    """Whether the issue is handled as a security report: its label, or chantbot's own record of it."""
    if labels is not None and config.label("flags", "security") in labels:
        return True
    return bool((await ctx.store.issue_state(repo, number)).get("security"))


# ---------------------------------------------------------------------------------------------- starting
async def start(ctx: Context, gh: GitHubAPI, *, repo: str, issue: dict[str, Any], stage: str, installation_id: int,
                requested_by: str, config: RepoConfig | None = None, automatic: bool = False) -> str:
    """Start a stage for an issue: its spec, its run (when a model is configured), the workflow comment.

    `automatic`: chantbot starts it on its own (triage's label, or the stage before), which the issue author's
    daily allowance of automatic runs bounds. Returns what happened, in words for a reply."""
    if config is None:
        config, _ = await configs.load(ctx, gh, repo)
    settings = config.stage(stage)
    number = int(issue["number"])
    if issue.get("state", "open") != "open":
        return f"This issue is closed, so chantbot starts no {stage} stage for it."
    if not settings.enabled:
        return f"The {stage} stage is turned off in this repository's `.github/chantbot.yml`."
    if not config.specs_branch:
        return (f"This repository keeps no specs branch (`specs_branch: false`), so chantbot has "
                f"nowhere to record the {stage} stage; nothing was started.")
    if await security_flagged(ctx, repo, number, config, labelling.names(issue)):
        return (f"This issue is marked as a security report (`{config.label('flags', 'security')}`), "
                f"so chantbot runs no stage for it: a {stage} spec on the public specs branch would "
                "repeat the report. Handle it privately, e.g. in a draft security advisory.")
    issue_state = await ctx.store.issue_state(repo, number)
    data = issue_data(issue, issue_state.get("triaged"))
    if ctx.anthropic is None:
        return await _pending(ctx, gh, repo, installation_id, config, data, stage, requested_by)
    busy = [r.stage for r in await ctx.store.runs_for_issue(repo, number) if r.status in ACTIVE]
    if busy:
        other = busy[0]
        return (f"The {other} stage is still running for this issue; "
                + ("it is not started twice." if other == stage else f"start {stage} when it has ended."))
    if automatic and not await budget.take_automatic(ctx, repo, data["author"], config):
        await progress.note(ctx, repo, number, stage, "needs a person",
                            f"not started on its own: the issue's author reached today's "
                            f"{config.auto_per_author} automatic stage runs; `/{stage}` starts it")
        await progress.refresh(ctx, gh, repo, number, config)
        return "Not started: the author's automatic stage runs for today are used up."
    record = await specchain.record(ctx, repo, number, stage, status="pending")
    shapers = list(dict.fromkeys([data["author"], *(issue_state.get("triaged") or {}).get("shapers", [])]))
    state = RunState(issue=data, spec_id=record.spec_id, spec_path=record.path, requested_by=requested_by,
                     shapers=[s for s in shapers if s])
    run = await ctx.store.start_run(repo, number, stage, installation_id, state.dump())
    if run is None:
        return f"The {stage} stage is still running for this issue; it is not started twice."
    await progress.note(ctx, repo, number, stage, None, None)
    await ctx.store.enqueue(JOB, issue_key(repo, number), {"run_id": run.id}, installation_id=installation_id)
    await progress.refresh(ctx, gh, repo, number, config)
    log.info("stage started: %s#%d %s (run %d, by %s)", repo, number, stage, run.id, requested_by)
    return f"Started **{stage}** (spec `{record.spec_id}`); the workflow comment shows its progress."


async def _pending(ctx: Context, gh: GitHubAPI, repo: str, installation_id: int, config: RepoConfig,
                   data: dict[str, Any], stage: str, requested_by: str) -> str:
    """Without a model: the pending spec (and research's evidence dossier), for `chant work <id>`."""
    issue = issue_of(data)
    record, files = await specchain.pending_spec(ctx, gh, repo, issue, stage, config, requested_by=requested_by)
    what = ""
    if stage == "research":
        path, text = await _dossier(ctx, gh, repo, issue, record.spec_id)
        files[path] = text
        what = f" chantbot wrote a dossier of the evidence it found in the repository to `{path}`."
    await specchain.queue_files(ctx, repo, installation_id, config, files)
    extra = f"; evidence dossier: `{_dossier_path(issue.number)}`" if what else ""
    await progress.note(ctx, repo, issue.number, stage, "needs a person",
                        f"needs a model (no ANTHROPIC_API_KEY): run it locally with `chant work {record.spec_id}`"
                        + extra)
    await progress.refresh(ctx, gh, repo, issue.number, config)
    return (f"Wrote the pending {stage} spec `{record.spec_id}`. No model is configured, so no "
            f"agent runs here; a maintainer can run it locally with `chant work {record.spec_id}`." + what)


def _dossier_path(number: int) -> str:
    return f".chant/research/issue-{number}-dossier.md"


async def _dossier(ctx: Context, gh: GitHubAPI, repo: str, issue: IssueText, spec_id: str) -> tuple[str, str]:
    """Research's document when no model is configured: the evidence chantbot can gather by itself."""
    _, commit = await git.base_commit(gh, repo, issue.number)
    snapshot = await ctx.snapshots.get(gh, repo, commit)
    related = await ctx.store.similar_issues(repo, f"{issue.title}\n{issue.body[:2000]}", exclude=issue.number)
    found = await asyncio.to_thread(dossier.gather, issue, snapshot, related)
    found = await dossier.with_history(gh, repo, found)
    return _dossier_path(issue.number), dossier.render(issue, found, spec_id)


async def start_from_label(ctx: Context, gh: GitHubAPI, *, repo: str, number: int, label: str, person: str,
                           installation_id: int, config: RepoConfig) -> str | None:
    """A stage-family label a person added starts its stage when they may run the stage's command.

    None when the label starts nothing for them (a reader's label, or not a stage label)."""
    from bot.commands import permissions, registry
    from bot.services.roles import role_of

    key = {name: key for key, name in config.labels["stage"].items()}.get(label)
    stage = workflow.started_by(key or "")
    if stage is None or not stage.command:
        return None
    minimum = registry.levels(config.commands).get(stage.command, stage.role)
    role = await role_of(ctx, gh, repo, person)
    if not permissions.allowed(minimum, role):
        log.info("%s#%s: %s (%s) added %s, which does not start %s for them", repo, number, person, role, label,
                 stage.name)
        return None
    issue = await gh.getitem(f"/repos/{repo}/issues/{number}")
    return await start(ctx, gh, repo=repo, issue=issue, stage=stage.name, installation_id=installation_id,
                       requested_by=person, config=config)


async def auto_start(ctx: Context, gh: GitHubAPI, payload: dict[str, Any], installation_id: int) -> None:
    """The `stage-auto` job: start the stage if the issue is still open, still labelled, and not yet worked on."""
    repo, number, stage = payload["repo"], int(payload["number"]), payload["stage"]
    issue = await gh.getitem(f"/repos/{repo}/issues/{number}")
    if issue.get("state") != "open" or payload["label"] not in labelling.names(issue):
        return
    if any(run.stage == stage for run in await ctx.store.runs_for_issue(repo, number)):
        return
    config, _ = await configs.load(ctx, gh, repo)
    if config.stage(stage).auto:
        await start(ctx, gh, repo=repo, issue=issue, stage=stage, installation_id=installation_id,
                    requested_by="chantbot", config=config, automatic=True)


async def cancel(ctx: Context, gh: GitHubAPI, repo: str, number: int, config: RepoConfig, reason: str, *,
                 redact: bool = False, installation_id: int | None = None) -> int:
    """End every active run of the issue as cancelled (a security report, a merged or closed pull request).

    `redact`: the specs are rewritten without the issue's text. Returns how many runs were cancelled."""
    cancelled = 0
    for run in await ctx.store.runs_for_issue(repo, number):
        if run.status not in ACTIVE:
            continue
        state = RunState.of(run)
        state.end, state.outcome, state.reason, state.finished = End.CANCELLED, "cancelled", reason, ctx.clock()
        state.phase = Phase.ENDED
        if await ctx.store.save_run(run, status=state.status, data=state.dump(), waiting_sha=None) is not None:
            cancelled += 1
            log.info("stage cancelled: %s#%d %s (run %d): %s", repo, number, run.stage, run.id, reason)
    if redact:
        await specchain.redact_stage_specs(ctx, repo, number, config, installation_id)
    return cancelled


# ---------------------------------------------------------------------------------------------- stepping
class Step:
    """One job's worth of a run: its typed state, the repository's settings, and the means to store it."""

    def __init__(self, ctx: Context, gh: GitHubAPI, run: Run, config: RepoConfig) -> None:
        self.ctx, self.gh, self.run, self.config = ctx, gh, run, config
        self.state = RunState.of(run)
        self.stage = workflow.stage(run.stage)
        self.settings = config.stage(run.stage)

    @property
    def number(self) -> int:
        return self.run.number

    @property
    def repo(self) -> str:
        return self.run.repo

    async def save(self, waiting_sha: str | None = None) -> None:
        saved = await self.ctx.store.save_run(self.run, status=self.state.status, data=self.state.dump(),
                                              waiting_sha=waiting_sha)
        if saved is None:
            raise Conflict(f"run {self.run.id} changed meanwhile")
        self.run = saved

    async def go(self, phase: Phase, *, delay: float = 0.0, waiting_sha: str | None = None,
                 **payload: Any) -> None:
        """Store the run at `phase` and queue its next step (unless it waits for an outside event)."""
        self.state.phase = phase
        await self.save(waiting_sha=waiting_sha)
        if phase not in (Phase.HELD, Phase.CI, Phase.ENDED) or payload:
            await self.again(delay, **payload)

    async def again(self, delay: float = 0.0, **payload: Any) -> None:
        await self.ctx.store.enqueue(JOB, issue_key(self.repo, self.number), {"run_id": self.run.id, **payload},
                                     installation_id=self.run.installation_id, delay=delay)

    async def refresh(self) -> None:
        await progress.refresh(self.ctx, self.gh, self.repo, self.number, self.config)


async def step(ctx: Context, gh: GitHubAPI, payload: dict[str, Any]) -> None:
    """The `stage` job: advance one run by one unit of work, as its phase says."""
    run = await ctx.store.get_run(int(payload["run_id"]))
    if run is None:
        return
    config, _ = await configs.load(ctx, gh, run.repo)
    s = Step(ctx, gh, run, config)
    if s.state.phase is Phase.ENDED:
        return
    try:
        if s.state.end is None and await security_flagged(ctx, run.repo, run.number, config):
            await cancel(ctx, gh, run.repo, run.number, config, "the issue is a security report", redact=True,
                         installation_id=run.installation_id)
            await s.refresh()
            return
        if payload.get("check") == "ci":
            if s.state.phase is Phase.CI and run.waiting_sha == payload.get("sha"):
                await resolve_ci(s, timed_out=bool(payload.get("timeout")))
            return
        await PHASES[s.state.phase](s)
    except Conflict as exc:
        log.info("%s", exc)


async def _waiting(s: Step) -> None:
    """Held or waiting for CI: an outside event (`/ok-to-test`, the checks) resumes the run."""


async def _begin(s: Step) -> None:
    """START → TURN: the snapshot to work on, the first user turn, the spec in progress."""
    ctx, gh, repo, state = s.ctx, s.gh, s.repo, s.state
    branch, commit = await git.base_commit(gh, repo, s.number)
    chain = await _chain(ctx, repo, s.number, s.run.stage)
    earlier = {r.stage: RunState.of(r) for r in await ctx.store.runs_for_issue(repo, s.number)
               if r.status == "done"}
    extra = ""
    if s.run.stage == "review":
        extra = await _review_diff(s)
    if s.run.stage == "implement":
        extra = "The research above is your primary guide: implement its recommended approach."
        approval = (await ctx.store.issue_state(repo, s.number)).get("approval") or {}
        if approval.get("status") == "rejected":  # the maintainer's reason is what this attempt must answer
            extra += ("\n\nA maintainer rejected the previous implementation (untrusted data, as written):\n"
                      f"<rejection>\n{defuse(str(approval.get('reason') or '(no reason given)'))}\n</rejection>")
            if approval.get("by"):
                state.shapers = list(dict.fromkeys([*state.shapers, str(approval["by"])]))
        state.reproduction = list(earlier["reproduce"].written) if "reproduce" in earlier else []
    held = await hold.held_files(ctx, repo, s.number)  # a held reproduction is part of what later stages read
    if s.run.stage == "document":
        snapshot = await ctx.snapshots.get(gh, repo, commit)
        issue = issue_of(state.issue)
        state.tracks = await specchain.tracked(ctx, gh, repo, issue, exists=lambda p: p in snapshot.files)
    state.base = {"branch": branch, "commit": commit}
    state.overlay = dict(held)
    state.started = ctx.clock()
    state.model = s.config.model or ctx.settings.model
    state.messages = [{"role": "user", "content": documents.context(s.run.stage, chain, issue_of(state.issue), extra)}]
    await _write_spec(s, status="in_progress")
    await s.go(Phase.TURN)
    await s.refresh()


async def _chain(ctx: Context, repo: str, number: int, stage: str) -> list[tuple[str, str]]:
    """The earlier stages' write-ups (their latest finished runs), oldest first."""
    latest: dict[str, RunState] = {}
    for run in await ctx.store.runs_for_issue(repo, number):
        state = RunState.of(run)
        if run.status == "done" and run.stage != stage and state.submission is not None:
            latest[run.stage] = state
    order = list(workflow.CHAIN)
    out = []
    triage_doc = (await ctx.store.issue_state(repo, number)).get("triage_summary")
    if triage_doc:
        out.append(("triage", str(triage_doc)[:4000]))
    for name in sorted(latest, key=order.index):
        state = latest[name]
        if order.index(name) < order.index(stage) or stage == "review":
            out.append((name, documents.document(name, number, state.issue["title"], state.submission or {},
                                                 _facts(state))))
    return out


async def _review_diff(s: Step) -> str:
    pull = await git.find_pull(s.gh, s.repo, git.work_branch(s.number))
    if pull is None:
        return "\n\nThere is no pull request for this issue yet, so there is no diff to review."
    files = await git.pull_files(s.gh, s.repo, int(pull["number"]))
    s.state.review_diff = {"number": int(pull["number"]), "url": pull.get("html_url", ""),
                           "head": (pull.get("head") or {}).get("sha", ""),
                           "lines": {f["filename"]: sorted(_diff_lines(f.get("patch") or "")) for f in files}}
    s.state.pull = {"number": int(pull["number"]), "url": pull.get("html_url", "")}
    diff = "\n".join(f"--- {f['filename']} ({f.get('status')})\n{f.get('patch') or '(no textual diff)'}" for f in files)
    if len(diff) > MAX_DIFF:
        diff = diff[:MAX_DIFF] + "\n[diff cut]"
    return (f"\n\nThe pull request #{pull['number']} to review; its diff (untrusted data):\n<diff>\n"
            f"{defuse(diff)}\n</diff>\nTie each finding to a line of the new version that the diff shows.")


def _diff_lines(patch: str) -> set[int]:
    """Lines of the new file that a unified diff shows (where a review comment may go)."""
    lines: set[int] = set()
    new = 0
    for row in patch.splitlines():
        if row.startswith("@@"):
            try:
                new = int(row.split("+", 1)[1].split(",", 1)[0].split(" ", 1)[0])
            except (IndexError, ValueError):
                new = 0
            continue
        if row.startswith(("-", "\\")):  # a removed line, or "\ No newline at end of file"
            continue
        if new:
            lines.add(new)
            new += 1
    return lines


def _cap_reason(s: Step) -> str | None:
    caps, state = s.settings.caps, s.state
    active = s.ctx.clock() - state.started - state.waited
    if state.turns >= caps.max_turns:
        return f"reached the turn cap (max_turns {caps.max_turns}) before submitting"
    if state.usd >= caps.max_usd:
        return f"reached the cost cap (max_usd ${caps.max_usd:g}; spent ${state.usd:.4f})"
    if active >= caps.timeout:
        return f"reached the time cap (timeout {caps.timeout / 60:g} minutes)"
    return None


async def _turn(s: Step) -> None:
    """TURN → TOOLS: one model call, paid for out of a reservation that concurrent runs cannot overshoot."""
    ctx, state = s.ctx, s.state
    reason = _cap_reason(s)
    if reason:
        await fail(s, reason)
        return
    system, tools = await _instructions(s)
    request = len(json.dumps([system, tools, state.messages]))
    price = modelcalls.price(state.model)
    room = min(s.settings.caps.max_usd - state.usd, float("inf"))
    grant = await budget.reserve(ctx, s.run.installation_id, s.repo, s.config, price, request,
                                 agent.MAX_TOKENS, room=room)
    if grant is None:
        own = budget.affordable(price, request, room) < budget.MIN_OUTPUT
        caps = s.settings.caps
        await fail(s, f"reached the cost cap (max_usd ${caps.max_usd:g}; spent ${state.usd:.4f})" if own
                   else budget.refusal(ctx, s.config))
        return
    try:
        answer = await agent.turn(ctx.anthropic, model=state.model, system=system, tools=tools,
                                  messages=state.messages, max_tokens=grant.max_tokens)
    except LLMUnavailable as exc:
        await grant.settle(0.0)
        await _llm_failed(s, str(exc))
        return
    usd = price.cost(answer.usage)
    await grant.settle(usd)
    total = Usage(**state.usage) + answer.usage if state.usage else answer.usage
    state.turns, state.usd, state.usage, state.llm_failures = state.turns + 1, state.usd + usd, _usage(total), 0
    state.messages.append(agent.stored(answer.message))
    ctx.metrics.llm_calls.labels(outcome="ok").inc()
    for kind, value in _usage(answer.usage).items():
        ctx.metrics.llm_tokens.labels(kind=kind).inc(value)
    await s.go(Phase.TOOLS)  # the finished turn is stored before its tools run


def _usage(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cache_read_input_tokens": usage.cache_read_input_tokens,
            "cache_creation_input_tokens": usage.cache_creation_input_tokens}


async def _llm_failed(s: Step, reason: str) -> None:
    s.ctx.metrics.llm_calls.labels(outcome="error").inc()
    s.state.llm_failures += 1
    if s.state.llm_failures >= LLM_ATTEMPTS:
        await fail(s, f"the model could not be reached ({reason}) {s.state.llm_failures} times in a row")
        return
    await s.go(Phase.TURN, delay=LLM_RETRY[min(s.state.llm_failures, len(LLM_RETRY)) - 1])


def _tools_of(s: Step) -> tuple[str, ...]:
    """The stage's tools here: `run_tests` only where a sandbox can run them."""
    return tuple(t for t in s.stage.tools if t != workflow.TEST_TOOL or s.ctx.sandbox is not None)


async def _instructions(s: Step) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The system prompt (chantbot's rules for the stage, then the stage prompt) and the tool definitions."""
    stage = s.run.stage
    # A broken override is the repository's configuration problem, not a failed run.
    prompt, problem = await configs.prompt(s.ctx, s.gh, s.repo, stage)
    if problem and not s.state.prompt_problem:
        s.state.prompt_problem = problem
    _, body = specs.parse_front_matter(s.state.spec_text) if s.state.spec_text else ({}, "")
    title = next((line[2:] for line in body.splitlines() if line.startswith("# ")), f"{stage} issue #{s.number}")
    stage_prompt = prompts.render(prompt, {"project.name": s.repo, "spec.id": s.state.spec_id,
                                           "spec.title": title, "spec.description": body,
                                           "spec.path": s.state.spec_path})
    tools = _tools_of(s)
    tests = ("run_tests runs the repository's tests in a sandbox (no network, nothing of chantbot's): use it"
             if workflow.TEST_TOOL in tools else
             "there is no sandbox here, so you cannot run anything: the repository's CI judges your writes")
    rules = prompts.render(prompts.packaged("runner"), {
        "stage": stage, "tools": ", ".join(tools), "max_turns": str(s.settings.caps.max_turns),
        "writes": ", ".join(s.settings.writes) or "nothing (this stage is read-only)", "tests": tests})
    system = [{"type": "text", "text": rules, "cache_control": {"type": "ephemeral"}},  # alike in every run
              {"type": "text", "text": stage_prompt, "cache_control": {"type": "ephemeral"}}]
    return system, definitions(tools, results.schema(stage), s.stage.submit_help)


async def _workspace(s: Step) -> Workspace:
    snapshot = await s.ctx.snapshots.get(s.gh, s.repo, s.state.base["commit"])
    return Workspace(snapshot, s.settings.writes if s.stage.writes else (), s.state.overlay, only=s.stage.only)


async def _tools(s: Step) -> None:
    """TOOLS → TURN, or JUDGE after a valid `submit`: answer every tool call of the last model turn."""
    last = s.state.messages[-1]
    uses = [b for b in last["content"] if b.get("type") == "tool_use"]
    workspace = await _workspace(s)
    answers: list[dict[str, Any]] = []
    submission = None
    for use in uses:
        if use["name"] == workflow.SUBMIT_TOOL:
            try:
                submission = results.validate(s.run.stage, use.get("input"), workspace.snapshot)
                result = Result("Received. chantbot records your result"
                                + (" and judges your writes." if s.stage.code else "."))
            except results.InvalidSubmission as exc:
                result = Result(f"submit was refused: {exc}. Fix the input and call submit again.", True)
        elif use["name"] == workflow.TEST_TOOL and workflow.TEST_TOOL in _tools_of(s):
            result = await sandboxing.run_tests_tool(s.ctx, s.gh, s.repo, s.state, s.config, workspace,
                                                     use.get("input"))
        else:
            result = workspace.call(use["name"], use.get("input"))
        answers.append({"type": "tool_result", "tool_use_id": use["id"], "content": result.text,
                        "is_error": result.is_error})
    if not answers:
        answers.append({"type": "text", "text": NUDGE})
    s.state.messages.append({"role": "user", "content": answers})
    s.state.overlay = workspace.overlay
    if submission is None:
        await s.go(Phase.TURN)
        return
    s.state.submission = submission.data
    s.state.evidence = [[e.location, e.note, e.exists] for e in submission.evidence]
    if s.run.stage == "document":  # what the documentation tracks: the model's word, kept only where files exist
        s.state.tracks = [t for t in submission.data.get("tracks") or []
                          if isinstance(t, str) and t in workspace.snapshot.files][:20] or s.state.tracks
    await s.go(Phase.JUDGE)


# ---------------------------------------------------------------------------------------------- after submit
async def _judge(s: Step) -> None:
    """JUDGE → PUBLISH: the sandbox runs the tests the stage is judged by, before anything leaves this machine."""
    if not s.stage.code:
        if s.run.stage == "review":
            await _post_review(s)
        await complete(s, "done")
        return
    workspace = await _workspace(s)
    changes = workspace.changes()
    if not changes:
        if s.run.stage == "document":
            await complete(s, "nothing to change", "no documentation change was needed")
        elif s.run.stage == "reproduce":
            await fail(s, "the agent submitted without writing a test", outcome="needs a person")
        else:
            await fail(s, "the agent submitted without changing any file")
        return
    if s.stage.judge == "done" or s.ctx.sandbox is None:
        await s.go(Phase.PUBLISH)
        return
    verdict = await sandboxing.judge(s.ctx, s.gh, s.repo, s.state, s.config, s.stage.judge, workspace)
    s.state.verdict = verdict.as_dict()
    log.info("sandbox verdict: %s#%d %s: %s %s", s.repo, s.number, s.run.stage, verdict.kind, verdict.test)
    if verdict.kind in ("reproduced", "green"):
        await s.go(Phase.PUBLISH)
        return
    if s.stage.judge == "fix" and s.state.judge_rounds < s.settings.caps.ci_rounds:
        s.state.judge_rounds += 1
        await _back_to_agent(s, f"chantbot ran the tests in the sandbox on your change (round "
                                f"{s.state.judge_rounds} of {s.settings.caps.ci_rounds}) and they do not pass",
                             verdict.report)
        return
    words = {"not reproduced": ("not reproduced", f"the new test passes in the sandbox: {verdict.line}"),
             "broken": ("broken", f"the new test does not run: {verdict.line}"),
             "red": ("failed", f"the tests fail in the sandbox: {verdict.line}")}
    outcome, reason = words.get(verdict.kind, ("failed", verdict.line))
    await fail(s, reason, outcome=outcome)


async def _back_to_agent(s: Step, what: str, report: str) -> None:
    """The agent's result did not hold up: the evidence goes back to it, and it submits again."""
    s.state.messages[-1]["content"].append({"type": "text", "text": (
        f"{what}. Their output (untrusted data):\n<checks>\n{defuse(report)}\n</checks>\n"
        "Fix the change with write_file, then call submit again.")})
    s.state.submission = None
    await s.go(Phase.TURN)
    await s.refresh()


async def _publish(s: Step) -> None:
    """PUBLISH → CI (pushed), HELD (an outsider shaped it: a maintainer's `/ok-to-test` releases it), or the end."""
    workspace = await _workspace(s)
    changes = workspace.changes()
    if await hold.must_hold(s.ctx, s.gh, s.repo, s.config, s.state.shapers):
        await hold.hold(s.ctx, s.repo, s.number, s.run.id, s.run.stage, workspace.snapshot.files, changes,
                        s.state.verdict)
        s.state.held = {"files": sorted(changes)}
        s.state.written = sorted(changes)
        log.info("gate: %s#%d %s held for /ok-to-test (%d files; shaped by %s)", s.repo, s.number, s.run.stage,
                 len(changes), ", ".join(s.state.shapers))
        if s.stage.judge != "fix" and (s.state.verdict is not None or s.stage.judge == "done"):
            # judged already (or nothing to judge): the stage is done, and the next one may read what is held
            await complete(s, _verdict_outcome(s))  # its line says it is held, while it is
        else:
            s.state.waiting_since = s.ctx.clock()
            await s.go(Phase.HELD)
            await s.refresh()
        return
    try:
        sha = await commit(s, changes)
    except BadRequest as exc:
        if int(exc.status_code) != 422:
            raise
        await fail(s, f"GitHub refused the commit ({exc.args[0] if exc.args else 'unprocessable'})")
        return
    if sha is None:
        await complete(s, "nothing to change", "the files written equal the branch's")
        return
    await ensure_pull(s)
    await wait_for_ci(s, sha)


def _verdict_outcome(s: Step) -> str:
    return "reproduced" if (s.state.verdict or {}).get("kind") == "reproduced" else "done"


async def wait_for_ci(s: Step, sha: str) -> None:
    """Pushed: wait (holding no worker) for the repository's checks on `sha`, or `ci_timeout`."""
    if s.run.stage == "implement":
        await git.set_status(s.gh, s.repo, sha, "pending", "Waiting for a maintainer's /approve",
                             s.state.pull.get("url"))
    s.state.waiting_since = s.ctx.clock()
    await s.go(Phase.CI, waiting_sha=sha)
    await s.again(s.settings.caps.ci_timeout, check="ci", sha=sha, timeout=True)
    await s.refresh()


async def commit(s: Step, changes: dict[str, str]) -> str | None:
    """Commit the run's writes onto the issue's branch (once: a retry finds its own commit)."""
    repo, branch, state = s.repo, git.work_branch(s.number), s.state
    pending = state.pending_commit
    message = (f"chant({state.spec_id}): {s.run.stage} issue #{s.number}\n\n"
               f"Written by chantbot's {s.run.stage} stage; see the spec {state.spec_path} on the specs branch.")
    for _ in range(3):
        if pending is None:
            parent = await ensure_branch(s.gh, repo, branch, start=state.base["commit"])
            sha = await build_commit(s.gh, repo, parent, changes, message)
            if sha is None:
                return None
            pending = {"sha": sha, "parent": parent}
            state.pending_commit = pending
            await s.save(waiting_sha=s.run.waiting_sha)
        outcome = await git.push(s.gh, repo, branch, pending["sha"], pending["parent"])
        if outcome in ("pushed", "already"):
            state.commits = [*state.commits, pending["sha"]]
            state.written = sorted(set(state.written) | set(changes))
            state.pending_commit = None
            await s.save(waiting_sha=s.run.waiting_sha)
            log.info("pushed: %s %s %s (%s)", repo, branch, pending["sha"][:7], s.run.stage)
            return pending["sha"]
        pending = None  # the branch moved: build again on its new head
        state.pending_commit = None
    raise RuntimeError(f"{repo}:{branch} kept moving while chantbot pushed")


async def ensure_pull(s: Step) -> None:
    repo = s.repo
    fixes = any(r.stage == "implement" and RunState.of(r).commits
                for r in await s.ctx.store.runs_for_issue(repo, s.number)) or s.run.stage == "implement"
    links = await specchain.spec_links(s.ctx, repo, s.number, s.config, s.state.issue["url"])
    from bot.stages import view

    pull = await git.ensure_pull(s.gh, repo, git.work_branch(s.number),
                                 title=view.pull_title(s.number, s.state.issue["title"]),
                                 body=view.pull_body(s.number, spec_links=links, fixes=fixes),
                                 known=s.state.pull.get("number"))
    s.state.pull = {"number": int(pull["number"]), "url": pull.get("html_url", "")}
    await s.save(waiting_sha=s.run.waiting_sha)


async def _post_review(s: Step) -> None:
    """One pull-request review (event COMMENT) with the findings as line comments; a re-review replaces it."""
    from bot.stages import view

    pull = s.state.review_diff
    if not pull:
        return
    repo, number = s.repo, pull["number"]
    submission = s.state.submission or {}
    findings = (submission.get("findings") or [])[:results.MAX_FINDINGS]
    placeable = [f for f in findings if int(f["line"]) in set(pull["lines"].get(f["path"], []))]
    existing = None
    async for review in s.gh.getiter(f"/repos/{repo}/pulls/{number}/reviews?per_page=100"):
        if view.REVIEW_MARKER in (review.get("body") or "") and (review.get("user") or {}).get("type") == "Bot":
            existing = review
    # A re-review edits chantbot's one review, so every finding goes into its body then.
    loose = findings if existing is not None else [f for f in findings if f not in placeable]
    body = "\n\n".join([view.REVIEW_MARKER, "**chantbot review** (independent of the implementation run; "
                        "advisory: approval is a maintainer's `/approve`)",
                        documents.prose(submission.get("summary"), 3000)]
                       + [f"- `{documents.line(f['path'], 200)}` line {int(f['line'])}: {documents.line(f['body'], 600)}"
                          for f in loose])
    if existing is not None:
        await s.gh.put(f"/repos/{repo}/pulls/{number}/reviews/{existing['id']}", data={"body": body})
        s.state.review_id = existing["id"]
        return
    data: dict[str, Any] = {"body": body, "event": "COMMENT",
                            "comments": [{"path": f["path"], "line": int(f["line"]), "side": "RIGHT",
                                          "body": documents.prose(f["body"], 1500)} for f in placeable]}
    if pull.get("head"):
        data["commit_id"] = pull["head"]
    review = await s.gh.post(f"/repos/{repo}/pulls/{number}/reviews", data=data)
    s.state.review_id = review.get("id")
    await s.save()


# ---------------------------------------------------------------------------------------------- the gate
async def ok_to_test(ctx: Context, gh: GitHubAPI, repo: str, number: int, actor: str, config: RepoConfig) -> str:
    """`/ok-to-test`: push the issue's held batches to its branch, open or update the draft pull request, and let
    CI run and judge them. Each later batch needs its own `/ok-to-test`."""
    held = await hold.batches(ctx, repo, number)
    if not held:
        return "Nothing is held for this issue: chantbot has no unreleased commits here."
    runs = {r.id: r for r in await ctx.store.runs_for_issue(repo, number)}
    pushed = []
    for batch in held:
        run = runs.get(int(batch["run_id"]))
        if run is None:
            await hold.released(ctx, repo, number, int(batch["batch"]), actor)
            continue
        s = Step(ctx, gh, run, config)
        if s.state.end is None and s.state.phase is not Phase.HELD:
            continue  # not yet judged: released with the next /ok-to-test
        s.state.base = {"branch": git.work_branch(number), "commit": await _branch_head(gh, repo, number)}
        sha = await commit(s, dict(batch["files"]))
        await hold.released(ctx, repo, number, int(batch["batch"]), actor)
        s.state.held = None
        if sha is None:  # the branch holds these files already
            if s.state.end is None:
                await complete(s, "nothing to change", "the held files equal the branch's")
            else:
                await s.save(waiting_sha=s.run.waiting_sha)
            continue
        await ensure_pull(s)
        pushed.append(f"{batch['stage']} ({sha[:7]})")
        log.info("gate: %s#%d batch %s released by %s: %s", repo, number, batch["batch"], actor, sha[:7])
        if s.state.end is None:  # a held implementation completes once CI has judged it
            s.state.waited += ctx.clock() - (s.state.waiting_since or ctx.clock())
            await wait_for_ci(s, sha)
        else:  # done already: its spec records the commit, its line who released it
            s.state.reason = f"released by {actor} with `/ok-to-test`: the repository's CI runs on {sha[:7]}"
            await _write_spec(s, status=s.state.end.value)
            await s.save(waiting_sha=None)
    await progress.refresh(ctx, gh, repo, number, config)
    if not pushed:
        return "Nothing held here was ready to release; the workflow comment shows what is held."
    return (f"Released to `{git.work_branch(number)}`: {', '.join(pushed)}. The draft pull request is up to date and "
            "the repository's CI runs on it now. Later commits of chantbot's need their own `/ok-to-test`.")


async def _branch_head(gh: GitHubAPI, repo: str, number: int) -> str:
    _, sha = await git.base_commit(gh, repo, number)
    return sha


# ---------------------------------------------------------------------------------------------- CI
async def on_checks(ctx: Context, repo: str, sha: str) -> int:
    """A commit's checks finished (a `check_suite`/`check_run` delivery): resume the runs waiting for them."""
    waiting = await ctx.store.runs_waiting_for(repo, sha)
    for run in waiting:
        await ctx.store.enqueue(JOB, issue_key(repo, run.number), {"run_id": run.id, "check": "ci", "sha": sha},
                                installation_id=run.installation_id)
    return len(waiting)


async def resolve_ci(s: Step, *, timed_out: bool) -> None:
    """CI → the end (or TURN for another round of implement): the repository's checks judge the pushed commit."""
    sha = s.run.waiting_sha or ""
    runs = await git.check_runs(s.gh, s.repo, sha)
    verdict = ci.verdict(runs)
    state = s.state
    if verdict in ("none", "pending"):
        if not timed_out:
            return
        state.ci = f"no checks finished on {sha[:7]} within {s.settings.caps.ci_timeout / 60:g} minutes"
        await fail(s, state.ci, outcome="unverified")
        return
    state.waited += s.ctx.clock() - (state.waiting_since or s.ctx.clock())
    state.waiting_since = None
    state.ci = f"{verdict} on {sha[:7]} ({ci.names(runs)})"
    state.ci_url = next((r.url for r in ci.failing(runs)), runs[0].url if runs else "")
    log.info("CI verdict: %s#%d %s: %s", s.repo, s.number, s.run.stage, state.ci)
    if s.stage.judge == "reproduction":
        if verdict == "failed":
            await complete(s, "reproduced")
        else:
            await fail(s, "the repository's checks pass with the new test", outcome="not reproduced")
        return
    if verdict == "passed":
        await complete(s, "done")
        return
    if s.stage.judge == "fix" and state.judge_rounds < s.settings.caps.ci_rounds:
        state.judge_rounds += 1
        state.base = {"branch": git.work_branch(s.number), "commit": sha}
        state.overlay = {}
        await _back_to_agent(s, f"The repository's checks failed on your commit {sha[:7]} (round "
                                f"{state.judge_rounds} of {s.settings.caps.ci_rounds})",
                             ci.failure_report(ci.failing(runs)))
        return
    await fail(s, f"the repository's checks failed: {ci.names(ci.failing(runs))}"
               + (f" after {s.settings.caps.ci_rounds} more round(s)" if s.stage.judge == "fix" else ""))


# ---------------------------------------------------------------------------------------------- endings
def _facts(state: RunState, reason: str | None = None) -> documents.Facts:
    verdict = state.verdict or {}
    said = (f"{verdict.get('test') or 'the tests'}: {verdict.get('line', '')}".strip(": ")
            if verdict else "")
    if verdict.get("kind") == "reproduced":
        said = f"The new test fails in the sandbox for the reported reason: {said}"
    elif verdict.get("kind") == "green":
        said = "The reproduction passes in the sandbox and every test that passed before still passes"
    return documents.Facts(outcome=state.outcome or "done", written=tuple(sorted(set(state.written))),
                           commits=tuple(state.commits), reproduction=tuple(state.reproduction), ci=state.ci,
                           pull=f"#{state.pull['number']}" if state.pull.get("number") else "",
                           turns=state.turns, usd=state.usd, reason=state.reason if reason is None else reason,
                           evidence=tuple((e[0], e[1], bool(e[2])) for e in state.evidence), verdict=said)


async def complete(s: Step, outcome: str, reason: str = "") -> None:
    """The run ended as it should: spec, document, labels, the comment, and the next stage."""
    await _end(s, End.COMPLETED, outcome, reason)


async def fail(s: Step, reason: str, *, outcome: str = "failed") -> None:
    """The run ended without its result: the spec says so, and the comment says why and how to retry."""
    await _end(s, End.FAILED, outcome, reason)


async def _end(s: Step, end: End, outcome: str, reason: str) -> None:
    state = s.state
    state.end, state.outcome, state.reason, state.finished = end, outcome, reason, s.ctx.clock()
    files = {}
    output = s.stage.output_path(s.number)
    if end is End.COMPLETED and output and state.submission:
        files[output] = documents.document(s.run.stage, s.number, state.issue["title"], state.submission,
                                           _facts(state))
    await _write_spec(s, status=end.value, extra=files)
    log.info("stage ended: %s#%d %s %s: %s (%s; %d turns, $%.4f)", s.repo, s.number, s.run.stage, end.value,
             outcome, reason or "-", state.turns, state.usd)
    await s.go(Phase.EFFECTS)


async def _effects(s: Step) -> None:
    """EFFECTS → ENDED: its label, the workflow comment, the next stage (each idempotent)."""
    state = s.state
    if state.end is End.COMPLETED and s.stage.done_label:
        release = (s.config.label("stage", s.stage.start_label),) if s.stage.start_label else ()
        await labelling.relabel(s.ctx, s.gh, s.repo, s.number, s.config,
                                {"stage": s.config.label("stage", s.stage.done_label)}, by_person=False,
                                release=release)
    await s.refresh()
    if state.end is End.COMPLETED:
        await _next(s)
    await s.go(Phase.ENDED, waiting_sha=None)


async def _next(s: Step) -> None:
    """The stage that follows on its own (research after a reproduction, review after implement, document after a
    review of a change in behaviour), when `auto` is on for it."""
    implement = next((RunState.of(r) for r in reversed(await s.ctx.store.runs_for_issue(s.repo, s.number))
                      if r.stage == "implement" and r.status == "done"), None)
    changed = results.behaviour_changed(implement.submission if implement else None, s.state.submission)
    follow = workflow.follow(s.run.stage, behaviour_changed=changed)
    if follow is None:
        return
    settings = s.config.stage(follow)
    if not (settings.enabled and settings.auto):
        return
    issue = await s.gh.getitem(f"/repos/{s.repo}/issues/{s.number}")
    await start(s.ctx, s.gh, repo=s.repo, issue=issue, stage=follow, installation_id=s.run.installation_id,
                requested_by="chantbot", config=s.config, automatic=True)


# ---------------------------------------------------------------------------------------------- the spec
async def _write_spec(s: Step, *, status: str, extra: dict[str, str] | None = None) -> None:
    ctx, state, stage = s.ctx, s.state, s.run.stage
    record = await ctx.store.spec_for(s.repo, s.number, stage)
    if record is None:
        return
    done = status in ("completed", "failed", "cancelled")
    finished_at = _rfc3339(state.finished or ctx.clock()) if done else None
    submission = state.submission or {}
    facts = _facts(state) if done else None
    progress_ = specs.Progress(
        status=status, model=state.model if done else None,
        completed_at=finished_at if status == "completed" else None,
        commits=tuple(state.commits),
        output=documents.agent_output(stage, submission, facts, at=finished_at or "") if facts else None,
        criteria=tuple(documents.criteria(stage, submission, facts, s.stage.output_path(s.number)))
        if facts and status == "completed" else None,
        release_notes=documents.prose(submission.get("release_notes"), 2000)
        if "release_notes" in s.stage.output_fields and submission.get("release_notes") else None,
        tracks=tuple(state.tracks))
    text = await specchain.stage_spec_text(ctx, s.repo, issue_of(state.issue), stage, record, requested_by=state.requested_by,
                                           progress=progress_)
    state.spec_text = text
    await specchain.set_status(ctx, s.repo, s.number, record, status)
    await specchain.queue_files(ctx, s.repo, s.run.installation_id, s.config, {record.path: text, **(extra or {})})


PHASES: dict[Phase, Callable[[Step], Awaitable[None]]] = {
    Phase.START: _begin, Phase.TURN: _turn, Phase.TOOLS: _tools, Phase.JUDGE: _judge, Phase.PUBLISH: _publish,
    Phase.HELD: _waiting, Phase.CI: _waiting, Phase.EFFECTS: _effects,
}
