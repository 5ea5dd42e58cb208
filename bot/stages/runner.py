"""The stage runner: a run advances one model turn per job, commits its writes to the issue's branch, waits
for the repository's checks without holding a worker, and ends with its spec, document, labels and the
workflow comment updated.

Every turn is stored before its tools run, so a run that a killed worker left behind continues from its
last finished model call; every GitHub effect is idempotent (branch by name, pull request by head, a
commit only when the tree differs, comments by marker).
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import logging
from typing import Any

from gidgethub.abc import GitHubAPI

from bot import issueops, jobs, modelcalls, prompts, specs, workflow
from bot.issuetext import IssueText
from bot.context import Context
from bot.modelcalls import LLMUnavailable, Usage
from bot.untrusted import defuse
from bot.repoconfig import RepoConfig
from bot.services import config as configs
from bot.services import labelling, specchain
from bot.specbranch import build_commit, ensure_branch
from bot.stages import agent, ci, documents, dossier, git, results, view
from bot.stages.dossier import named_paths
from bot.stages.tools import Result, Workspace
from bot.store import Run

log = logging.getLogger(__name__)

JOB = jobs.STAGE
AUTO_JOB = jobs.STAGE_AUTO
ACTIVE = ("queued", "running", "waiting_ci")
LLM_ATTEMPTS = 4  # model calls that failed in a row before the run ends failed
LLM_RETRY = (5.0, 30.0, 120.0)
MAX_DIFF = 30_000
NUDGE = "Continue with the tools. When you are done, call submit; nothing counts until you do."


class Conflict(Exception):
    """The run changed under us (another worker advanced it): this step stops without effects."""


def issue_key(repo: str, number: int) -> str:
    return f"{repo}#{number}"


def _now(ctx: Context) -> float:
    return ctx.clock()


def _rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).date().isoformat()


def issue_of(data: dict[str, Any]) -> IssueText:
    i = data["issue"]
    return IssueText(number=int(i["number"]), title=i["title"], body=i["body"], author=i["author"],
                     author_association=i.get("association", "NONE"), url=i["url"])


def issue_data(issue: dict[str, Any]) -> dict[str, Any]:
    return {"number": int(issue["number"]), "title": str(issue.get("title") or "")[:300],
            "body": str(issue.get("body") or "")[:20000], "author": (issue.get("user") or {}).get("login", ""),
            "association": str(issue.get("author_association") or "NONE"), "url": str(issue.get("html_url") or "")}


# ---------------------------------------------------------------------------------------------- starting
async def start(ctx: Context, gh: GitHubAPI, *, repo: str, issue: dict[str, Any], stage: str, installation_id: int,
                requested_by: str, config: RepoConfig | None = None) -> str:
    """Start a stage for an issue: its spec, its run (when a model is configured), the workflow comment.

    Returns what happened, in words for a reply."""
    if config is None:
        config, _ = await configs.load(ctx, gh, repo)
    settings = config.stage(stage)
    number = int(issue["number"])
    if not settings.enabled:
        return f"The {stage} stage is turned off in this repository's `.github/chantbot.yml`."
    if not config.specs_branch:
        return (f"This repository keeps no specs branch (`specs_branch: false`), so chantbot has "
                f"nowhere to record the {stage} stage; nothing was started.")
    if config.label("flags", "security") in labelling.names(issue):
        return (f"This issue is marked as a security report (`{config.label('flags', 'security')}`), "
                f"so chantbot runs no stage for it: a {stage} spec on the public specs branch would "
                "repeat the report. Handle it privately, e.g. in a draft security advisory.")
    record = await specchain.record(ctx, repo, number, stage, status="pending")
    data = {"issue": issue_data(issue), "spec_id": record.spec_id, "spec_path": record.path,
            "requested_by": requested_by}
    if ctx.anthropic is None:
        if stage == "document":
            data["documents"] = await specchain.tracked(ctx, gh, repo, issue_of(data))
        extra, what = {}, ""
        if stage == "research":
            path, text = await _dossier(ctx, gh, repo, issue_of(data), record.spec_id)
            extra[path] = text
            what = f" chantbot wrote a dossier of the evidence it found in the repository to `{path}`."
        await _write_spec(ctx, repo, installation_id, config, data, stage, status="pending", extra=extra)
        await _note(ctx, repo, number, stage, "needs a person",
                    f"needs a model (no ANTHROPIC_API_KEY): run it locally with `chant work {record.spec_id}`"
                    + (f"; evidence dossier: `{next(iter(extra))}`" if extra else ""))
        await refresh_comment(ctx, gh, repo, number, config)
        return (f"Wrote the pending {stage} spec `{record.spec_id}`. No model is configured, so no "
                f"agent runs here; a maintainer can run it locally with `chant work {record.spec_id}`." + what)
    busy = [r.stage for r in await ctx.store.runs_for_issue(repo, number) if r.status in ACTIVE]
    run = None if busy else await ctx.store.start_run(repo, number, stage, installation_id, data)
    if run is None:
        other = busy[0] if busy else stage
        return (f"The {other} stage is still running for this issue; "
                + ("it is not started twice." if other == stage else f"start {stage} when it has ended."))
    await _note(ctx, repo, number, stage, None, None)
    await ctx.store.enqueue(JOB, issue_key(repo, number), {"run_id": run.id}, installation_id=installation_id)
    await refresh_comment(ctx, gh, repo, number, config)
    return f"Started **{stage}** (spec `{record.spec_id}`); the workflow comment shows its progress."


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
                    requested_by="chantbot", config=config)


async def _dossier(ctx: Context, gh: GitHubAPI, repo: str, issue: IssueText, spec_id: str) -> tuple[str, str]:
    """Research's document when no model is configured: the evidence chantbot can gather by itself."""
    _, commit = await git.base_commit(gh, repo, issue.number)
    snapshot = await ctx.snapshots.get(gh, repo, commit)
    related = await ctx.store.similar_issues(repo, f"{issue.title}\n{issue.body[:2000]}", exclude=issue.number)
    found = await asyncio.to_thread(dossier.gather, issue, snapshot, related)
    found = await dossier.with_history(gh, repo, found)
    return f".chant/research/issue-{issue.number}-dossier.md", dossier.render(issue, found, spec_id)


async def _note(ctx: Context, repo: str, number: int, stage: str, state: str | None, detail: str | None) -> None:
    """A stage's line in the workflow comment when no run stands behind it (e.g. it needs a model)."""
    issue_state = await ctx.store.issue_state(repo, number)
    notes = issue_state.setdefault("stage_notes", {})
    if state is None:
        if notes.pop(stage, None) is None:
            return
    else:
        notes[stage] = {"state": state, "detail": detail or ""}
    await ctx.store.save_issue_state(repo, number, issue_state)


# ---------------------------------------------------------------------------------------------- stepping
class Step:
    """One job's worth of a run: a mutable copy of its checkpoint and the means to store it."""

    def __init__(self, ctx: Context, gh: GitHubAPI, run: Run, config: RepoConfig) -> None:
        self.ctx, self.gh, self.run, self.config = ctx, gh, run, config
        self.data: dict[str, Any] = dict(run.data)
        self.stage = workflow.stage(run.stage)
        self.settings = config.stage(run.stage)

    @property
    def number(self) -> int:
        return self.run.number

    async def save(self, status: str, waiting_sha: str | None = None) -> None:
        saved = await self.ctx.store.save_run(self.run, status=status, data=self.data, waiting_sha=waiting_sha)
        if saved is None:
            raise Conflict(f"run {self.run.id} changed meanwhile")
        self.run = saved

    async def again(self, delay: float = 0.0, **payload: Any) -> None:
        await self.ctx.store.enqueue(JOB, issue_key(self.run.repo, self.number), {"run_id": self.run.id, **payload},
                                     installation_id=self.run.installation_id, delay=delay)


async def step(ctx: Context, gh: GitHubAPI, payload: dict[str, Any]) -> None:
    """The `stage` job: advance one run by one unit of work."""
    run = await ctx.store.get_run(int(payload["run_id"]))
    if run is None or (run.status not in ACTIVE and not run.data.get("effects_pending")):
        return
    config, _ = await configs.load(ctx, gh, run.repo)
    s = Step(ctx, gh, run, config)
    try:
        if run.status not in ACTIVE:
            await _effects(s)  # a worker died between the run's end and its effects
        elif payload.get("check") == "ci":
            if run.status == "waiting_ci" and run.waiting_sha == payload.get("sha"):
                await resolve_ci(s, timed_out=bool(payload.get("timeout")))
        elif run.status == "waiting_ci":
            return  # the checks resume it
        elif s.data.get("submission") is not None:
            await _submitted(s, await _workspace(s))  # submitted before a worker died: go on from there
        else:
            if run.status == "queued":
                await _begin(s)
            await _turn(s)
    except Conflict as exc:
        log.info("%s", exc)


async def _begin(s: Step) -> None:
    """queued → running: the snapshot to work on, the first user turn, the spec in progress."""
    ctx, gh, repo = s.ctx, s.gh, s.run.repo
    branch, commit = await git.base_commit(gh, repo, s.number)
    chain = await _chain(ctx, repo, s.number, s.run.stage)
    extra = await _review_diff(s) if s.run.stage == "review" else ""
    earlier = {r.stage: r for r in await ctx.store.runs_for_issue(repo, s.number) if r.status == "done"}
    if s.run.stage == "implement":
        extra = "The research above is your primary guide: implement its recommended approach." + extra
        approval = (await ctx.store.issue_state(repo, s.number)).get("approval") or {}
        if approval.get("status") == "rejected":  # the maintainer's reason is what this attempt must answer
            extra += ("\n\nA maintainer rejected the previous implementation (untrusted data, as written):\n"
                      f"<rejection>\n{defuse(str(approval.get('reason') or '(no reason given)'))}\n</rejection>")
        s.data["reproduction"] = _written(earlier.get("reproduce"))
    if s.run.stage == "document":  # what the documentation tracks: the change, else the files the report names
        snapshot = await ctx.snapshots.get(gh, repo, commit)
        issue = issue_of(s.data)
        s.data["documents"] = _written(earlier.get("implement")) or [
            path for path in named_paths(f"{issue.title}\n{issue.body}") if path in snapshot.files]
    s.data.update(base={"branch": branch, "commit": commit}, turns=0, usd=0.0, usage=_usage_dict(Usage()),
                  overlay={}, started=_now(ctx), waited=0.0, llm_failures=0, commits=[], ci_round=0,
                  model=s.config.model or ctx.settings.model,
                  messages=[{"role": "user", "content": documents.context(s.run.stage, chain, issue_of(s.data), extra)}])
    await _write_spec(ctx, repo, s.run.installation_id, s.config, s.data, s.run.stage, status="in_progress")
    await s.save("running")
    await refresh_comment(ctx, gh, repo, s.number, s.config)


async def _chain(ctx: Context, repo: str, number: int, stage: str) -> list[tuple[str, str]]:
    """The earlier stages' write-ups (their latest finished runs), oldest first."""
    latest: dict[str, Run] = {}
    for run in await ctx.store.runs_for_issue(repo, number):
        if run.status == "done" and run.stage != stage and run.data.get("submission") is not None:
            latest[run.stage] = run
    order = list(workflow.CHAIN)
    out = []
    triage_doc = (await ctx.store.issue_state(repo, number)).get("triage_summary")
    if triage_doc:
        out.append(("triage", str(triage_doc)[:4000]))
    for name in sorted(latest, key=order.index):
        run = latest[name]
        if order.index(name) < order.index(stage) or stage == "review":
            out.append((name, documents.document(name, number, run.data["issue"]["title"], run.data["submission"],
                                                 _facts(run.data, run.data.get("outcome", "done")))))
    return out


async def _review_diff(s: Step) -> str:
    pull = await git.find_pull(s.gh, s.run.repo, git.work_branch(s.number))
    if pull is None:
        return "\n\nThere is no pull request for this issue yet, so there is no diff to review."
    files = await git.pull_files(s.gh, s.run.repo, int(pull["number"]))
    s.data["pull"] = {"number": int(pull["number"]), "url": pull.get("html_url", ""),
                      "head": (pull.get("head") or {}).get("sha", ""),
                      "lines": {f["filename"]: sorted(_diff_lines(f.get("patch") or "")) for f in files}}
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


def _written(run: Run | None) -> list[str]:
    """The files a finished run committed."""
    return list((run.data.get("written") if run else None) or [])


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cache_read_input_tokens": usage.cache_read_input_tokens,
            "cache_creation_input_tokens": usage.cache_creation_input_tokens}


def _cap_reason(s: Step, spent_today: float, budget: float) -> str | None:
    caps, data = s.settings.caps, s.data
    active = _now(s.ctx) - data["started"] - data.get("waited", 0.0)
    if data["turns"] >= caps.max_turns:
        return f"reached the turn cap (max_turns {caps.max_turns}) before submitting"
    if data["usd"] >= caps.max_usd:
        return f"reached the cost cap (max_usd ${caps.max_usd:g}; spent ${data['usd']:.4f})"
    if active >= caps.timeout:
        return f"reached the time cap (timeout {caps.timeout / 60:g} minutes)"
    if spent_today >= budget:
        return f"the installation's daily budget is spent (budget.daily_usd ${budget:g})"
    return None


async def _turn(s: Step) -> None:
    """One model call (unless the last one's tools are still to run), then its tool calls."""
    ctx, messages = s.ctx, s.data["messages"]
    if messages[-1]["role"] == "user":
        day = _day(_now(ctx))
        reason = _cap_reason(s, await ctx.store.spend(s.run.installation_id, day), s.config.daily_usd)
        if reason:
            await fail(s, reason)
            return
        system, tools = await _instructions(s)
        try:
            answer = await agent.turn(ctx.anthropic, model=s.data["model"], system=system, tools=tools,
                                      messages=messages)
        except LLMUnavailable as exc:
            await _llm_failed(s, str(exc))
            return
        usd = modelcalls.price(s.data["model"]).cost(answer.usage)
        total = Usage(**s.data["usage"]) + answer.usage
        s.data.update(turns=s.data["turns"] + 1, usd=s.data["usd"] + usd, usage=_usage_dict(total), llm_failures=0)
        messages.append(agent.stored(answer.message))
        ctx.metrics.llm_calls.labels(outcome="ok").inc()
        for kind, value in _usage_dict(answer.usage).items():
            ctx.metrics.llm_tokens.labels(kind=kind).inc(value)
        await ctx.store.add_spend(s.run.installation_id, day, usd)
        await s.save("running")  # the finished turn is stored before anything else happens
    await _tools(s)


async def _llm_failed(s: Step, reason: str) -> None:
    s.ctx.metrics.llm_calls.labels(outcome="error").inc()
    failures = s.data.get("llm_failures", 0) + 1
    s.data["llm_failures"] = failures
    if failures >= LLM_ATTEMPTS:
        await fail(s, f"the model could not be reached ({reason}) {failures} times in a row")
        return
    await s.save("running")
    await s.again(LLM_RETRY[min(failures, len(LLM_RETRY)) - 1])


async def _instructions(s: Step) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The system prompt (chantbot's rules for the stage, then the stage prompt) and the tool definitions."""
    stage = s.run.stage
    # A broken override is the repository's configuration problem, not a failed run.
    prompt, problem = await configs.prompt(s.ctx, s.gh, s.run.repo, stage)
    if problem and not s.data.get("prompt_problem"):
        s.data["prompt_problem"] = problem
    spec_text = s.data.get("spec_text", "")
    _, body = specs.parse_front_matter(spec_text) if spec_text else ({}, "")
    title = next((line[2:] for line in body.splitlines() if line.startswith("# ")), f"{stage} issue #{s.number}")
    stage_prompt = prompts.render(prompt, {"project.name": s.run.repo, "spec.id": s.data["spec_id"],
                                           "spec.title": title, "spec.description": body,
                                           "spec.path": s.data["spec_path"]})
    rules = prompts.render(prompts.packaged("runner"), {
        "stage": stage, "tools": ", ".join(s.stage.tools), "max_turns": str(s.settings.caps.max_turns),
        "writes": ", ".join(s.settings.writes) or "nothing (this stage is read-only)"})
    system = [{"type": "text", "text": rules, "cache_control": {"type": "ephemeral"}},  # alike in every run
              {"type": "text", "text": stage_prompt, "cache_control": {"type": "ephemeral"}}]
    from bot.stages.tools import definitions

    return system, definitions(s.stage.tools, results.schema(stage), results.HELP[stage])


async def _workspace(s: Step) -> Workspace:
    snapshot = await s.ctx.snapshots.get(s.gh, s.run.repo, s.data["base"]["commit"])
    return Workspace(snapshot, s.settings.writes if s.stage.writes else (), s.data["overlay"])


async def _tools(s: Step) -> None:
    """Answer every tool call of the last model turn; a valid `submit` ends the agent's part of the run."""
    last = s.data["messages"][-1]
    uses = [b for b in last["content"] if b.get("type") == "tool_use"]
    workspace = await _workspace(s)
    answers: list[dict[str, Any]] = []
    submission = None
    for use in uses:
        if use["name"] == workflow.SUBMIT_TOOL:
            try:
                submission = results.validate(s.run.stage, use.get("input"), workspace.snapshot)
                result = Result("Received. chantbot records your result"
                                + (" and commits your writes; the repository's CI judges them."
                                   if s.stage.code else "."))
            except results.InvalidSubmission as exc:
                result = Result(f"submit was refused: {exc}. Fix the input and call submit again.", True)
        else:
            result = workspace.call(use["name"], use.get("input"))
        answers.append({"type": "tool_result", "tool_use_id": use["id"], "content": result.text,
                        "is_error": result.is_error})
    if not answers:
        answers.append({"type": "text", "text": NUDGE})
    s.data["messages"].append({"role": "user", "content": answers})
    s.data["overlay"] = workspace.overlay
    if submission is None:
        await s.save("running")
        await s.again()
        return
    s.data["submission"] = submission.data
    s.data["evidence"] = [[e.location, e.note, e.exists] for e in submission.evidence]
    if s.run.stage == "document":  # what the documentation tracks: the model's word, kept only where files exist
        s.data["tracks_verified"] = [t for t in submission.data.get("tracks") or []
                                     if isinstance(t, str) and t in workspace.snapshot.files][:20]
    await s.save("running")
    await _submitted(s, workspace)


# ---------------------------------------------------------------------------------------------- after submit
async def _submitted(s: Step, workspace: Workspace) -> None:
    stage = s.run.stage
    if not s.stage.code:
        if stage == "review":
            await _post_review(s)
        await complete(s, "done")
        return
    changes = workspace.changes()
    if not changes:
        if stage == "document":
            await complete(s, "nothing to change", "no documentation change was needed")
        elif stage == "reproduce":
            await fail(s, "the agent submitted without writing a test", state="needs a person")
        else:
            await fail(s, "the agent submitted without changing any file")
        return
    sha = await _commit(s, changes)
    if sha is None:
        await complete(s, "nothing to change", "the files written equal the branch's")
        return
    await _ensure_pull(s)
    if stage == "implement":
        await git.set_status(s.gh, s.run.repo, sha, "pending", "Waiting for a maintainer's /approve",
                             s.data.get("pull", {}).get("url"))
    s.data["waiting_since"] = _now(s.ctx)
    await s.save("waiting_ci", waiting_sha=sha)
    await s.again(s.settings.caps.ci_timeout, check="ci", sha=sha, timeout=True)
    await refresh_comment(s.ctx, s.gh, s.run.repo, s.number, s.config)


async def _commit(s: Step, changes: dict[str, str]) -> str | None:
    """Commit the run's writes onto the issue's branch (once: a retry finds its own commit)."""
    repo, branch = s.run.repo, git.work_branch(s.number)
    pending = s.data.get("pending_commit")
    message = (f"chant({s.data['spec_id']}): {s.run.stage} issue #{s.number}\n\n"
               f"Written by chantbot's {s.run.stage} stage; see the spec {s.data['spec_path']} on the specs branch.")
    for _ in range(3):
        if pending is None:
            parent = await ensure_branch(s.gh, repo, branch, start=s.data["base"]["commit"])
            sha = await build_commit(s.gh, repo, parent, changes, message)
            if sha is None:
                return None
            pending = {"sha": sha, "parent": parent}
            s.data["pending_commit"] = pending
            await s.save("running")
        outcome = await git.push(s.gh, repo, branch, pending["sha"], pending["parent"])
        if outcome in ("pushed", "already"):
            s.data["commits"] = s.data.get("commits", []) + [pending["sha"]]
            s.data["written"] = sorted(set(s.data.get("written") or []) | set(changes))
            s.data.pop("pending_commit", None)
            await s.save("running")
            return pending["sha"]
        pending = None  # the branch moved: build again on its new head
        s.data.pop("pending_commit", None)
    raise RuntimeError(f"{repo}:{branch} kept moving while chantbot pushed")


async def _ensure_pull(s: Step) -> None:
    repo = s.run.repo
    fixes = any(r.stage == "implement" and r.data.get("commits")
                for r in await s.ctx.store.runs_for_issue(repo, s.number)) or s.run.stage == "implement"
    links = await _spec_links(s.ctx, repo, s.number, s.config, s.data["issue"]["url"])
    pull = await git.ensure_pull(s.gh, repo, git.work_branch(s.number),
                                 title=view.pull_title(s.number, s.data["issue"]["title"]),
                                 body=view.pull_body(s.number, spec_links=links, fixes=fixes),
                                 known=(s.data.get("pull") or {}).get("number"))
    s.data["pull"] = {**s.data.get("pull", {}), "number": int(pull["number"]), "url": pull.get("html_url", "")}
    await s.save("running")


async def _spec_links(ctx: Context, repo: str, number: int, config: RepoConfig, issue_url: str) -> list[tuple[str, str]]:
    out = []
    for record in await ctx.store.specs(repo, number):
        url = specchain.url(issue_url, config, record.path) or ""
        out.append((f"{record.stage}: {record.spec_id}", url))
    return out


async def _post_review(s: Step) -> None:
    """One pull-request review (event COMMENT) with the findings as line comments; a re-review replaces it."""
    pull = s.data.get("pull")
    if not pull:
        return
    repo, number = s.run.repo, pull["number"]
    findings = (s.data["submission"].get("findings") or [])[:results.MAX_FINDINGS]
    placeable = [f for f in findings if int(f["line"]) in set(pull["lines"].get(f["path"], []))]
    existing = None
    async for review in s.gh.getiter(f"/repos/{repo}/pulls/{number}/reviews?per_page=100"):
        if view.REVIEW_MARKER in (review.get("body") or "") and (review.get("user") or {}).get("type") == "Bot":
            existing = review
    # A re-review edits chantbot's one review, so every finding goes into its body then.
    loose = findings if existing is not None else [f for f in findings if f not in placeable]
    body = "\n\n".join([view.REVIEW_MARKER, "**chantbot review** (independent of the implementation run; "
                        "advisory: approval is a maintainer's `/approve`)",
                        documents.prose(s.data["submission"].get("summary"), 3000)]
                       + [f"- `{documents.line(f['path'], 200)}` line {int(f['line'])}: {documents.line(f['body'], 600)}"
                          for f in loose])
    if existing is not None:
        await s.gh.put(f"/repos/{repo}/pulls/{number}/reviews/{existing['id']}", data={"body": body})
        s.data["review_id"] = existing["id"]
        return
    data: dict[str, Any] = {"body": body, "event": "COMMENT",
                            "comments": [{"path": f["path"], "line": int(f["line"]), "side": "RIGHT",
                                          "body": documents.prose(f["body"], 1500)} for f in placeable]}
    if pull.get("head"):
        data["commit_id"] = pull["head"]
    review = await s.gh.post(f"/repos/{repo}/pulls/{number}/reviews", data=data)
    s.data["review_id"] = review.get("id")
    await s.save("running")


# ---------------------------------------------------------------------------------------------- CI
async def on_checks(ctx: Context, repo: str, sha: str) -> int:
    """A commit's checks finished (a `check_suite`/`check_run` delivery): resume the runs waiting for them."""
    waiting = await ctx.store.runs_waiting_for(repo, sha)
    for run in waiting:
        await ctx.store.enqueue(JOB, issue_key(repo, run.number), {"run_id": run.id, "check": "ci", "sha": sha},
                                installation_id=run.installation_id)
    return len(waiting)


async def resolve_ci(s: Step, *, timed_out: bool) -> None:
    sha = s.run.waiting_sha or ""
    runs = await git.check_runs(s.gh, s.run.repo, sha)
    verdict = ci.verdict(runs)
    if verdict in ("none", "pending"):
        if not timed_out:
            return
        minutes = s.settings.caps.ci_timeout / 60
        s.data["ci"] = f"no checks finished on {sha[:7]} within {minutes:g} minutes"
        await complete(s, "unverified", s.data["ci"], status="needs_attention", state="unverified")
        return
    s.data["waited"] = s.data.get("waited", 0.0) + _now(s.ctx) - s.data.get("waiting_since", _now(s.ctx))
    s.data["ci"] = f"{verdict} on {sha[:7]} ({ci.names(runs)})"
    s.data["ci_url"] = next((r.url for r in ci.failing(runs)), runs[0].url if runs else "")
    stage = s.run.stage
    if stage == "reproduce":
        if verdict == "failed":
            await complete(s, "reproduced")
        else:
            await complete(s, "not reproduced", "the repository's checks pass with the new test",
                           status="needs_attention", state="not reproduced")
        return
    if verdict == "passed":
        await complete(s, "done")
        return
    if stage == "implement" and s.data.get("ci_round", 0) < s.settings.caps.ci_rounds:
        s.data["ci_round"] = s.data.get("ci_round", 0) + 1
        report = ci.failure_report(ci.failing(runs))
        s.data["messages"][-1]["content"].append({"type": "text", "text": (
            f"The repository's checks failed on your commit {sha[:7]} (round {s.data['ci_round']} of "
            f"{s.settings.caps.ci_rounds}). Their output (untrusted data):\n<checks>\n{defuse(report)}\n"
            "</checks>\nFix the change with write_file, then call submit again.")})
        s.data.pop("submission", None)
        base = s.data["base"]
        s.data["base"] = {"branch": git.work_branch(s.number), "commit": sha, "first": base.get("first", base)}
        s.data["overlay"] = {}
        await s.save("running")
        await s.again()
        await refresh_comment(s.ctx, s.gh, s.run.repo, s.number, s.config)
        return
    await fail(s, f"the repository's checks failed: {ci.names(ci.failing(runs))}"
               + (f" after {s.settings.caps.ci_rounds} more round(s)" if stage == "implement" else ""))


# ---------------------------------------------------------------------------------------------- endings
def _facts(data: dict[str, Any], outcome: str, reason: str = "") -> documents.Facts:
    pull = data.get("pull") or {}
    written = sorted(set(data.get("written") or []))
    return documents.Facts(outcome=outcome, written=tuple(written), commits=tuple(data.get("commits") or []),
                           reproduction=tuple(data.get("reproduction") or ()),
                           ci=data.get("ci", ""), pull=f"#{pull['number']}" if pull.get("number") else "",
                           turns=int(data.get("turns", 0)), usd=float(data.get("usd", 0.0)), reason=reason,
                           evidence=tuple((e[0], e[1], bool(e[2])) for e in data.get("evidence") or []))


async def complete(s: Step, outcome: str, reason: str = "", *, status: str = "completed",
                   state: str | None = None) -> None:
    """The run ended as it should: spec, document, labels, the comment, and the next stage."""
    ctx, repo, stage = s.ctx, s.run.repo, s.run.stage
    s.data.update(outcome=outcome, reason=reason, finished=_now(ctx), state=state or outcome)
    facts = _facts(s.data, outcome, reason)
    submission = s.data.get("submission") or {}
    files = {}
    output = s.stage.output_path(s.number)
    if output and submission:
        files[output] = documents.document(stage, s.number, s.data["issue"]["title"], submission, facts)
    await _write_spec(ctx, repo, s.run.installation_id, s.config, s.data, stage, status=status, facts=facts,
                      extra=files)
    s.data["effects_pending"] = True
    await s.save("done" if status == "completed" else "failed")
    await _effects(s)


async def _effects(s: Step) -> None:
    """After a run's end is stored: its label, the workflow comment, the next stage (each idempotent)."""
    if s.run.status == "done" and s.stage.done_label:
        await labelling.relabel(s.ctx, s.gh, s.run.repo, s.number, s.config,
                                {"stage": s.config.label("stage", s.stage.done_label)}, by_person=False)
    await refresh_comment(s.ctx, s.gh, s.run.repo, s.number, s.config)
    if s.run.status == "done":
        await _next(s)
    s.data["effects_pending"] = False
    await s.save(s.run.status, waiting_sha=s.run.waiting_sha)


async def fail(s: Step, reason: str, *, state: str = "failed") -> None:
    """The run ended without its result: the spec says so, and the comment says why and how to retry."""
    s.data.update(outcome="failed", reason=reason, finished=_now(s.ctx), state=state)
    await _write_spec(s.ctx, s.run.repo, s.run.installation_id, s.config, s.data, s.run.stage, status="failed",
                      facts=_facts(s.data, "failed", reason))
    s.data["effects_pending"] = True
    await s.save("failed")
    await _effects(s)


async def _next(s: Step) -> None:
    """The stage that follows on its own: research after a reproduction, review after implement, document
    after a review of a change in behaviour — each only when `auto` is on for it."""
    follow = {"reproduce": "research", "implement": "review"}.get(s.run.stage)
    if s.run.stage == "review":
        implement = next((r for r in reversed(await s.ctx.store.runs_for_issue(s.run.repo, s.number))
                          if r.stage == "implement" and r.status == "done"), None)
        if results.behaviour_changed((implement.data.get("submission") if implement else None),
                                     s.data.get("submission")):
            follow = "document"
    if follow is None:
        return
    settings = s.config.stage(follow)
    if not (settings.enabled and settings.auto):
        return
    issue = {"number": s.number, "title": s.data["issue"]["title"], "body": s.data["issue"]["body"],
             "user": {"login": s.data["issue"]["author"]}, "html_url": s.data["issue"]["url"],
             "author_association": s.data["issue"].get("association", "NONE")}
    await start(s.ctx, s.gh, repo=s.run.repo, issue=issue, stage=follow, installation_id=s.run.installation_id,
                requested_by="chantbot", config=s.config)


# ---------------------------------------------------------------------------------------------- specs and comment
async def _write_spec(ctx: Context, repo: str, installation_id: int, config: RepoConfig, data: dict[str, Any],
                      stage: str, *, status: str, facts: documents.Facts | None = None,
                      extra: dict[str, str] | None = None) -> None:
    number = int(data["issue"]["number"])
    record = await ctx.store.spec_for(repo, number, stage)
    if record is None:
        return
    chain = [r for r in await ctx.store.specs(repo, number) if r.stage != stage]
    order = list(workflow.CHAIN)
    before = [r for r in chain if r.stage in order and stage in order and order.index(r.stage) < order.index(stage)]
    informed = [r.path for r in before][-2:] or [data["issue"]["url"]]
    done = status in ("completed", "failed", "needs_attention")
    finished_at = _rfc3339(data.get("finished", ctx.clock())) if done else None
    submission = data.get("submission") or {}
    progress = specs.Progress(
        status=status, model=data.get("model") if done else None,
        completed_at=finished_at if status == "completed" else None,
        commits=tuple(data.get("commits") or ()),
        output=documents.agent_output(stage, submission, facts, at=finished_at or "") if facts else None,
        criteria=tuple(documents.criteria(stage, submission, facts, workflow.stage(stage).output_path(number)))
        if facts and status == "completed" else None,
        release_notes=documents.prose(submission.get("release_notes"), 2000)
        if stage == "implement" and submission.get("release_notes") else None,
        tracks=tuple(data.get("documents") or ()) or tuple(data.get("tracks_verified") or ()),
    )
    text = specs.stage_spec(stage, spec_id=record.spec_id, issue=issue_of(data), informed_by=informed,
                            depends_on=[r.spec_id for r in before][-2:],
                            requested_by=data.get("requested_by"), progress=progress)
    data["spec_text"] = text
    await specchain.set_status(ctx, repo, number, record, status)
    await specchain.queue_files(ctx, repo, installation_id, config, {record.path: text, **(extra or {})})


_STATE = {"queued": "queued", "running": "running", "waiting_ci": "waiting for CI"}


async def _rows(ctx: Context, repo: str, number: int, config: RepoConfig,
                issue_state: dict[str, Any]) -> list[view.Row]:
    """Each stage's line: its latest run, or a note when no run stands behind it."""
    latest: dict[str, Run] = {}
    for run in await ctx.store.runs_for_issue(repo, number):
        latest[run.stage] = run
    rows = []
    for stage, run in latest.items():
        data = run.data
        url = data.get("issue", {}).get("url", "")
        links = []
        if data.get("spec_path"):
            links.append(("spec", specchain.url(url, config, data["spec_path"]) or ""))
        output = workflow.stage(stage).output_path(number)
        if output and run.status == "done" and data.get("submission"):
            links.append(("document", specchain.url(url, config, output) or ""))
        if (data.get("pull") or {}).get("url"):
            links.append((f"PR #{data['pull']['number']}", data["pull"]["url"]))
        if data.get("ci_url"):
            links.append(("CI", data["ci_url"]))
        if run.status in _STATE:
            state, detail = _STATE[run.status], data.get("prompt_problem", "")
            if run.status == "waiting_ci":
                detail = f"checks on {str(run.waiting_sha)[:7]}"
        elif run.status == "done":
            state, detail = data.get("state") or "done", data.get("reason", "")
        elif run.status == "cancelled":
            state, detail = "cancelled", data.get("reason", "")
        else:
            state = data.get("state") or "failed"
            detail = f"{data.get('reason', '')}. To retry, comment `/{workflow.stage(stage).command}`."
        rows.append(view.Row(stage, state, detail, tuple(links), int(data.get("turns", 0)),
                             float(data.get("usd", 0.0))))
    for stage, note in (issue_state.get("stage_notes") or {}).items():
        if stage not in latest:
            rows.append(view.Row(stage, note["state"], note.get("detail", "")))
    return rows


async def status_table(ctx: Context, repo: str, number: int, config: RepoConfig, issue_url: str) -> str:
    """`/status`: the spec chain with each spec's status, and the stages as the workflow comment shows them."""
    lines = ["| stage | spec | status |", "| --- | --- | --- |"]
    for record in await ctx.store.specs(repo, number):
        link = specchain.url(issue_url, config, record.path)
        spec = f"[`{record.spec_id}`]({link})" if link else f"`{record.spec_id}`"
        lines.append(f"| {record.stage} | {spec} | {record.status} |")
    rows = await _rows(ctx, repo, number, config, await ctx.store.issue_state(repo, number))
    if rows:
        lines += ["", view.stage_table(rows)]
    return "\n".join(lines)


async def refresh_comment(ctx: Context, gh: GitHubAPI, repo: str, number: int, config: RepoConfig) -> None:
    """Edit the issue's one workflow comment (posted the first time) to show every stage as it is now."""
    issue_state = await ctx.store.issue_state(repo, number)
    rows = await _rows(ctx, repo, number, config, issue_state)
    if not rows:
        return
    body = view.workflow_comment(rows, footer=view.footer(issue_state.get("approval"), issue_state.get("chain")))
    digest = hashlib.sha1(body.encode()).hexdigest()
    if issue_state.get("workflow_comment_id") and issue_state.get("workflow_comment_sha") == digest:
        return  # unchanged: no write
    issue_state["workflow_comment_sha"] = digest
    issue_state["workflow_comment_id"] = await issueops.upsert_comment(
        gh, repo, number, view.WORKFLOW_MARKER, body, known_id=issue_state.get("workflow_comment_id"),
        may_exist=True)
    await ctx.store.save_issue_state(repo, number, issue_state)
