"""The issue's spec chain: stable spec ids, the files queued for the specs branch, links to them."""

from __future__ import annotations

import datetime
import random

from gidgethub.abc import GitHubAPI

from bot import jobs, specs, workflow
from bot.assessment import IssueText
from bot.context import Context
from bot.repoconfig import RepoConfig
from bot.store import SpecRecord


async def record(ctx: Context, repo: str, number: int, stage: str, *, status: str) -> SpecRecord:
    """The issue's spec for `stage`, given an id the first time (ids are stable across re-runs)."""
    existing = await ctx.store.spec_for(repo, number, stage)
    if existing is not None:
        return existing
    now = datetime.datetime.fromtimestamp(ctx.clock(), datetime.timezone.utc)
    seq = await ctx.store.next_spec_seq(repo, now.date().isoformat())
    spec_id = specs.spec_id(now.date(), seq, specs.random_suffix(random.Random()))
    made = SpecRecord(stage, spec_id, specs.spec_path(spec_id), status)
    await ctx.store.record_spec(repo, number, made)
    return made


async def set_status(ctx: Context, repo: str, number: int, made: SpecRecord, status: str) -> SpecRecord:
    updated = SpecRecord(made.stage, made.spec_id, made.path, status)
    await ctx.store.record_spec(repo, number, updated)
    return updated


async def queue_files(ctx: Context, repo: str, installation_id: int, config: RepoConfig,
                      files: dict[str, str]) -> bool:
    """Queue files for the specs branch (a short-delayed job commits every queued file in one commit).

    False when the repository keeps no specs branch (nothing is written).
    """
    if not config.specs_branch or not files:
        return bool(config.specs_branch)
    await ctx.store.queue_files(repo, installation_id, config.specs_branch, files)
    await ctx.store.enqueue(jobs.COMMIT_SPECS, f"specs:{repo}", {"repo": repo}, installation_id=installation_id,
                            delay=ctx.spec_commit_delay, unique=True)
    return True


async def pending_spec(ctx: Context, repo: str, issue: IssueText, stage: str, config: RepoConfig,
                       *, requested_by: str | None = None) -> tuple[SpecRecord, dict[str, str]]:
    """The pending spec that starts `stage`: informed by (and depending on) the specs before it."""
    order = list(workflow.CHAIN)
    before = [r for r in [await ctx.store.spec_for(repo, issue.number, s) for s in order[:order.index(stage)]] if r]
    informed = [r.path for r in before]
    if stage in ("reproduce", "research") and any(r.stage == "triage" for r in before):
        informed.append(specs.triage_doc_path(issue.number))
    made = await record(ctx, repo, issue.number, stage, status="pending")
    text = specs.stage_spec(stage, spec_id=made.spec_id, issue=issue, informed_by=informed[-2:] or [issue.url],
                            requested_by=requested_by, depends_on=[r.spec_id for r in before][-2:])
    return made, {made.path: text}


def url(issue_url: str, config: RepoConfig, path: str) -> str | None:
    """Where a file on the specs branch can be read on the web, next to the issue (github.com or GHES)."""
    if not config.specs_branch or "/issues/" not in issue_url:
        return None
    return f"{issue_url.rsplit('/issues/', 1)[0]}/blob/{config.specs_branch}/{path}"


async def commit_pending(ctx: Context, gh: GitHubAPI, repo: str) -> None:
    """Commit every queued file of the repository to its specs branch (one commit per branch)."""
    from bot import specbranch

    pending = await ctx.store.pending_files(repo)
    by_branch: dict[str, dict[str, tuple[int, str]]] = {}
    for item in pending:
        by_branch.setdefault(item.branch, {})[item.path] = (item.id, item.content)  # newest text wins
    for branch, files in by_branch.items():
        message = f"chantbot: {len(files)} spec file(s)"
        await specbranch.commit_files(gh, repo, branch, {p: text for p, (_, text) in files.items()}, message)
    await ctx.store.mark_committed(item.id for item in pending)
