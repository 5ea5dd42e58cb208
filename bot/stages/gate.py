"""The approval gate and the end of the chain: `/approve` and `/reject` set the commit status
`chantbot/approval` on the pull request's head (a later push makes it pending again), the implementation
spec records who and when; anyone else's pull request gets the status `success` (not an agent's change); a
merge completes the chain, a close without merge abandons it; `/release-notes` gathers a version's release
notes into a draft release (a rejected implementation's note left out)."""

from __future__ import annotations

import datetime
import logging
from typing import Any, Callable

from gidgethub.abc import GitHubAPI

from bot import specs
from bot.context import Context
from bot.repoconfig import RepoConfig
from bot.sanitize import code_span
from bot.services import labelling, specchain
from bot.stages import git, hold, progress, release, runner
from bot.store import Run

log = logging.getLogger(__name__)
SAVE_TRIES = 5  # writes of one change to a run that other writers keep changing, before giving up loudly
NOT_AN_AGENTS_CHANGE = "Not an agent's change: chantbot's approval is not needed"


class RunConflict(RuntimeError):
    """A run kept changing under a write: the change was not stored (the job fails and is retried)."""


async def save(ctx: Context, run: Run, change: Callable[[Run], tuple[str, dict[str, Any], str | None] | None]) -> Run | None:
    """Store `change(run)` (status, data, waiting_sha; None: nothing to change) without losing a concurrent write.

    When another writer saved the run first, the run is read again and `change` applied to what it holds now.
    The run as saved, or None when there was nothing to change (or the run is gone).
    """
    current: Run | None = run
    for _ in range(SAVE_TRIES):
        if current is None:
            return None
        changed = change(current)
        if changed is None:
            return None
        status, data, waiting_sha = changed
        saved = await ctx.store.save_run(current, status=status, data=data, waiting_sha=waiting_sha)
        if saved is not None:
            return saved
        current = await ctx.store.get_run(run.id)
    raise RunConflict(f"{run.repo}#{run.number}: the {run.stage} run changed {SAVE_TRIES} times while chantbot "
                      f"was saving a change to it; the change was not saved")


def _stamp(ctx: Context) -> str:
    return datetime.datetime.fromtimestamp(ctx.clock(), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _implementation(ctx: Context, repo: str, number: int) -> Run | None:
    done = [r for r in await ctx.store.runs_for_issue(repo, number) if r.stage == "implement" and r.status == "done"]
    return done[-1] if done else None


async def record_spec(ctx: Context, run: Run, config: RepoConfig, edit: Callable[[str], str]) -> Run:
    """Store and queue the implementation spec as `edit` changes it; a concurrent change to the run is kept
    (the edit is applied again to the spec the run holds then)."""
    texts: list[str] = []

    def change(current: Run) -> tuple[str, dict[str, Any], str | None]:
        texts.append(edit(current.data.get("spec_text", "")))
        return current.status, {**current.data, "spec_text": texts[-1]}, current.waiting_sha

    saved = await save(ctx, run, change)
    if saved is None:
        raise RunConflict(f"{run.repo}#{run.number}: the {run.stage} run is gone; its spec was not changed")
    await specchain.queue_files(ctx, run.repo, run.installation_id, config, {run.data["spec_path"]: texts[-1]})
    return saved


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
    log.info("approval gate: %s#%d %s by %s at %s", repo, number, word, actor, head[:7])
    await record_spec(ctx, run, config,
                      lambda text: specs.set_approval(text, status=word, by=actor, at=at, reason=reason or None))
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
        at, why = _stamp(ctx), f"New commits ({head[:7]}) since the decision: approval is needed again."
        await record_spec(ctx, run, config,
                          lambda text: specs.set_approval(text, status="pending", by="chantbot", at=at, reason=why))
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


async def on_other_pull(ctx: Context, gh: GitHubAPI, repo: str, pull: dict[str, Any]) -> None:
    """Someone else's pull request (not chantbot's own `chant/issue-N` of this repository) opened or pushed to:
    `chantbot/approval` is success on its head, so that a branch protection rule may require the check.

    A commit that already carries a `chantbot/approval` status keeps it: an agent's commit that a fork copied
    into its own pull request stays as pending (or rejected) as it was.
    """
    head = (pull.get("head") or {}).get("sha")
    if not isinstance(head, str) or not head:
        return
    async for status in gh.getiter(f"/repos/{repo}/commits/{head}/statuses?per_page=100"):
        if status.get("context") == git.APPROVAL_CONTEXT:
            return
    await gh.post(f"/repos/{repo}/statuses/{head}", data={"state": "success", "description": NOT_AN_AGENTS_CHANGE,
                                                          "context": git.APPROVAL_CONTEXT})


async def release_notes(ctx: Context, gh: GitHubAPI, repo: str, number: int, version: str, actor: str,
                        config: RepoConfig) -> str:
    """`/release-notes <version>`: the draft release from the completed implementation specs of the version;
    an implementation a maintainer rejected is left out, and the answer says so."""
    if "---" in version:
        return "A version may not contain `---` (chant would misread it in a spec)."
    gathered = await release.entries(ctx, repo, await release.issues_of(gh, repo, version))
    found = [(entry, run) for entry, run in gathered if release.rejection(run) is None]
    left_out = _left_out([(entry.number, release.rejection(run)) for entry, run in gathered
                          if release.rejection(run) is not None])
    if not found:
        return (f"No issue labelled or milestoned `{version}` has a completed implementation with release notes "
                f"yet, so no draft release was written.") + left_out
    text = release.body(version, [entry for entry, _ in found])
    try:
        made = await release.publish_draft(gh, repo, version, text)
    except ValueError as exc:
        return f"No release was written: {exc}."
    for entry, run in found:
        await record_spec(ctx, run, config, lambda spec: specs.add_labels(spec, [version]))
    listed = ", ".join(f"#{entry.number}" for entry, _ in found)
    return (f"Draft release `{version}` now gathers the release notes of {listed} ([draft]({made.get('html_url', '')}))"
            f"; their implementation specs carry the label `{version}`. Publishing it is yours.") + left_out


def _left_out(rejected: list[tuple[int, dict[str, Any] | None]]) -> str:
    if not rejected:
        return ""
    listed = ", ".join(f"#{number} (rejected by {code_span(str((approval or {}).get('by') or 'a maintainer'), 40)})"
                       for number, approval in rejected)
    return (f" Left out: {listed}, because a maintainer rejected the implementation with `/reject`; a new "
            f"implementation that is not rejected brings its note back.")
