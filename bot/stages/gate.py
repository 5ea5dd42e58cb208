"""The approval gate and the end of the chain: `/approve` and `/reject` set the commit status
`chantbot/approval` on the pull request's head (a later push makes it pending again), the implementation
spec records who and when; a merge completes the chain, a close without merge abandons it; `/release-notes`
gathers a version's release notes into a draft release."""

from __future__ import annotations

import datetime
from typing import Any

from gidgethub.abc import GitHubAPI

from bot import specs
from bot.context import Context
from bot.repoconfig import RepoConfig
from bot.services import labelling, specchain
from bot.stages import git, hold, progress, release, runner
from bot.store import Run


def _stamp(ctx: Context) -> str:
    return datetime.datetime.fromtimestamp(ctx.clock(), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _implementation(ctx: Context, repo: str, number: int) -> Run | None:
    done = [r for r in await ctx.store.runs_for_issue(repo, number) if r.stage == "implement" and r.status == "done"]
    return done[-1] if done else None


async def _record(ctx: Context, run: Run, config: RepoConfig, text: str) -> None:
    """Store and queue the implementation spec's new text."""
    await ctx.store.save_run(run, status=run.status, data={**run.data, "spec_text": text}, waiting_sha=run.waiting_sha)
    await specchain.queue_files(ctx, run.repo, run.installation_id, config, {run.data["spec_path"]: text})


async def decide(ctx: Context, gh: GitHubAPI, repo: str, number: int, actor: str, *, approve: bool, reason: str,
                 config: RepoConfig) -> str:
    """`/approve` or `/reject`: the status on the pull request's head as it is now, the spec, the label."""
    if await hold.implementation_held(ctx, repo, number):
        return ("The implementation is held: nothing of it is on a branch and no CI has judged it. Read the held "
                "diff in the workflow comment and release it with `/ok-to-test` first; then approve or reject it.")
    run = await _implementation(ctx, repo, number)
    if run is None:
        return "There is no completed implementation to approve or reject yet; `/implement` starts one."
    pull = await git.find_pull(gh, repo, git.work_branch(number))
    if pull is None:
        return "The implementation's pull request is not open, so there is nothing to approve or reject."
    head = (pull.get("head") or {}).get("sha", "")
    at = _stamp(ctx)
    state, word = ("success", "approved") if approve else ("failure", "rejected")
    description = f"Approved by {actor} at {head[:7]}" if approve else f"Rejected by {actor}: {reason}"[:140]
    await git.set_status(gh, repo, head, state, description, pull.get("html_url"))
    text = specs.set_approval(run.data.get("spec_text", ""), status=word, by=actor, at=at, reason=reason or None)
    await _record(ctx, run, config, text)
    issue_state = await ctx.store.issue_state(repo, number)
    issue_state["approval"] = {"status": word, "by": actor, "at": at, "sha": head, "reason": reason[:500]}
    await ctx.store.save_issue_state(repo, number, issue_state)
    label = "approved" if approve else "ready-for-implementation"
    await labelling.relabel(ctx, gh, repo, number, config, {"stage": config.label("stage", label)}, by_person=True)
    await progress.refresh(ctx, gh, repo, number, config)
    if approve:
        return (f"Approved: `chantbot/approval` is now success on {head[:7]}, the pull request's head, and the "
                f"implementation spec records the approval. A later push makes it pending again. Merging is yours.")
    return (f"Rejected: `chantbot/approval` is now failure on {head[:7]} and the implementation spec records the "
            f"reason; the issue is back to ready-for-implementation.")


async def on_push(ctx: Context, gh: GitHubAPI, repo: str, number: int, head: str, config: RepoConfig) -> None:
    """New commits on the issue's pull request: an approval of earlier commits no longer counts."""
    run = await _implementation(ctx, repo, number)
    if run is None:
        return
    await git.set_status(gh, repo, head, "pending", "New commits: waiting for a maintainer's /approve")
    issue_state = await ctx.store.issue_state(repo, number)
    approval = issue_state.get("approval")
    if approval and approval.get("sha") != head and approval.get("status") != "pending":
        text = specs.set_approval(run.data.get("spec_text", ""), status="pending", by="chantbot", at=_stamp(ctx),
                                  reason=f"New commits ({head[:7]}) since the decision: approval is needed again.")
        await _record(ctx, run, config, text)
        issue_state["approval"] = {"status": "pending", "sha": head}
        await ctx.store.save_issue_state(repo, number, issue_state)
        await progress.refresh(ctx, gh, repo, number, config)


async def on_closed(ctx: Context, gh: GitHubAPI, repo: str, number: int, *, merged: bool, pull: dict[str, Any],
                    config: RepoConfig) -> None:
    """The issue's pull request closed: merged completes the chain, otherwise the chain is abandoned."""
    await runner.cancel(ctx, gh, repo, number, config,
                        "the pull request was merged" if merged else "the pull request was closed")
    issue_state = await ctx.store.issue_state(repo, number)
    issue_state["chain"] = {"state": "merged" if merged else "abandoned", "pull": int(pull.get("number") or 0),
                            "url": pull.get("html_url", "")}
    await ctx.store.save_issue_state(repo, number, issue_state)
    for record in await ctx.store.specs(repo, number):
        if record.status in ("pending", "in_progress"):
            await specchain.set_status(ctx, repo, number, record, "cancelled")
    await progress.refresh(ctx, gh, repo, number, config)


async def release_notes(ctx: Context, gh: GitHubAPI, repo: str, number: int, version: str, actor: str,
                        config: RepoConfig) -> str:
    """`/release-notes <version>`: the draft release from the completed implementation specs of the version."""
    if "---" in version:
        return "A version may not contain `---` (chant would misread it in a spec)."
    found = await release.entries(ctx, repo, await release.issues_of(gh, repo, version))
    if not found:
        return (f"No issue labelled or milestoned `{version}` has a completed implementation with release notes "
                f"yet, so no draft release was written.")
    text = release.body(version, [entry for entry, _ in found])
    try:
        made = await release.publish_draft(gh, repo, version, text)
    except ValueError as exc:
        return f"No release was written: {exc}."
    for entry, run in found:
        await _record(ctx, run, config, specs.add_labels(run.data.get("spec_text", ""), [version]))
    listed = ", ".join(f"#{entry.number}" for entry, _ in found)
    return (f"Draft release `{version}` now gathers the release notes of {listed} ([draft]({made.get('html_url', '')}))"
            f"; their implementation specs carry the label `{version}`. Publishing it is yours.")
