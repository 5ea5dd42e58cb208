"""What people see of a run's progress: the workflow comment (one per issue, edited in place), `/status`, and a
stage's note when no run stands behind it (e.g. it needs a model)."""

from __future__ import annotations

import hashlib
from typing import Any

from gidgethub.abc import GitHubAPI

from bot import issueops, workflow
from bot.context import Context
from bot.repoconfig import RepoConfig
from bot.services import specchain
from bot.stages import view
from bot.stages.state import End, Phase, RunState
from bot.store import Run

_STATE = {Phase.START: "queued", Phase.TURN: "running", Phase.TOOLS: "running", Phase.JUDGE: "running tests",
          Phase.PUBLISH: "running", Phase.CI: "waiting for CI"}


async def note(ctx: Context, repo: str, number: int, stage: str, state: str | None, detail: str | None) -> None:
    """A stage's line in the workflow comment when no run stands behind it (None: remove the note)."""
    issue_state = await ctx.store.issue_state(repo, number)
    notes = issue_state.setdefault("stage_notes", {})
    if state is None:
        if notes.pop(stage, None) is None:
            return
    else:
        notes[stage] = {"state": state, "detail": detail or ""}
    await ctx.store.save_issue_state(repo, number, issue_state)


def row(run: Run, config: RepoConfig, number: int) -> view.Row:
    """One stage's line, from its latest run."""
    state = RunState.of(run)
    url = state.issue.get("url", "")
    links = []
    if state.spec_path:
        links.append(("spec", specchain.url(url, config, state.spec_path) or ""))
    output = workflow.stage(run.stage).output_path(number)
    if output and state.end is End.COMPLETED and state.submission:
        links.append(("document", specchain.url(url, config, output) or ""))
    if state.pull.get("url"):
        links.append((f"PR #{state.pull['number']}", state.pull["url"]))
    if state.ci_url:
        links.append(("CI", state.ci_url))
    held = view.held_detail(state.verdict) if state.held else ""
    if state.end is None:
        if state.phase is Phase.HELD:
            label, detail = "held", held
        else:
            label, detail = _STATE.get(state.phase, "running"), state.prompt_problem
            if state.phase is Phase.CI:
                detail = f"checks on {str(run.waiting_sha)[:7]}"
    elif state.end is End.COMPLETED:
        label, detail = state.outcome or "done", "; ".join(p for p in (state.reason, held) if p)
    elif state.end is End.CANCELLED:
        label, detail = "cancelled", state.reason
    else:
        label = state.outcome or "failed"
        detail = f"{state.reason}. To retry, comment `/{workflow.stage(run.stage).command}`."
    return view.Row(run.stage, label, detail, tuple(links), state.turns, state.usd)


async def rows(ctx: Context, repo: str, number: int, config: RepoConfig, issue_state: dict[str, Any]) -> list[view.Row]:
    """Each stage's line: its latest run, or a note when no run stands behind it."""
    latest: dict[str, Run] = {}
    for run in await ctx.store.runs_for_issue(repo, number):
        latest[run.stage] = run
    found = [row(run, config, number) for run in latest.values()]
    for stage, noted in (issue_state.get("stage_notes") or {}).items():
        if stage not in latest:
            found.append(view.Row(stage, noted["state"], noted.get("detail", "")))
    return found


async def status_table(ctx: Context, repo: str, number: int, config: RepoConfig, issue_url: str) -> str:
    """`/status`: the spec chain with each spec's status, and the stages as the workflow comment shows them."""
    lines = ["| stage | spec | status |", "| --- | --- | --- |"]
    for record in await ctx.store.specs(repo, number):
        link = specchain.url(issue_url, config, record.path)
        spec = f"[`{record.spec_id}`]({link})" if link else f"`{record.spec_id}`"
        lines.append(f"| {record.stage} | {spec} | {record.status} |")
    issue_state = await ctx.store.issue_state(repo, number)
    found = await rows(ctx, repo, number, config, issue_state)
    if found:
        lines += ["", view.stage_table(found)]
    spent = sum(r.usd for r in found)
    if spent:
        lines += ["", f"Model spend on this issue's stages so far: ${spent:.4f}."]
    return "\n".join(lines)


async def refresh(ctx: Context, gh: GitHubAPI, repo: str, number: int, config: RepoConfig) -> None:
    """Edit the issue's one workflow comment (posted the first time) to show every stage as it is now."""
    issue_state = await ctx.store.issue_state(repo, number)
    found = await rows(ctx, repo, number, config, issue_state)
    if not found:
        return
    body = view.workflow_comment(found, footer=view.footer(issue_state.get("approval"), issue_state.get("chain")),
                                 held=view.held_block(issue_state.get("held") or []))
    digest = hashlib.sha1(body.encode()).hexdigest()
    if issue_state.get("workflow_comment_id") and issue_state.get("workflow_comment_sha") == digest:
        return  # unchanged: no write
    issue_state["workflow_comment_sha"] = digest
    issue_state["workflow_comment_id"] = await issueops.upsert_comment(
        gh, repo, number, view.WORKFLOW_MARKER, body, known_id=issue_state.get("workflow_comment_id"),
        may_exist=True)
    await ctx.store.save_issue_state(repo, number, issue_state)
