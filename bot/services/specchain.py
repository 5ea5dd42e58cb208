"""The issue's spec chain: stable spec ids, the files queued for the specs branch, links to them."""

from __future__ import annotations

import datetime
import random
from typing import Callable

from gidgethub.abc import GitHubAPI

from bot import jobs, prompts, specs, workflow
from bot.context import Context
from bot.repoconfig import RepoConfig
from bot.issuetext import IssueText, named_paths
from bot.store import SpecRecord

MAX_TRACKED = 20
PUT_OFF_AT_MOST = 60.0  # seconds a spec commit waits at most for the repository's issue work under way
PUT_OFF_STEP = 0.5  # seconds at least between two looks at that work


async def record(ctx: Context, repo: str, number: int, stage: str, *, status: str) -> SpecRecord:
    """The issue's spec for `stage`, given an id the first time (ids are stable across re-runs)."""
    existing = await ctx.store.spec_for(repo, number, stage)
    if existing is not None:
        return existing
    now = datetime.datetime.fromtimestamp(ctx.clock(), datetime.timezone.utc)
    seq = await ctx.store.next_spec_seq(repo, now.date().isoformat())
    spec_id = specs.spec_id(now.date(), seq, specs.random_suffix(random.SystemRandom()))  # no 2.5 KB seed per spec
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


async def _inputs(ctx: Context, repo: str, issue: IssueText, stage: str) -> tuple[list[str], list[str]]:
    """What a stage's spec reads first (`informed_by`: the specs before it, and the triage document for the stages
    that read the report) and the spec ids it depends on."""
    order = list(workflow.CHAIN)
    before = [r for r in [await ctx.store.spec_for(repo, issue.number, s) for s in order[:order.index(stage)]] if r]
    informed = [r.path for r in before][-2:]
    if stage in ("reproduce", "research", "document") and any(r.stage == "triage" for r in before):
        informed.append(specs.triage_doc_path(issue.number))
    return informed or ([issue.url] if issue.url else []), [r.spec_id for r in before][-2:]


async def stage_spec_text(ctx: Context, repo: str, issue: IssueText, stage: str, made: SpecRecord, *,
                          requested_by: str | None, progress: specs.Progress) -> str:
    """A stage's spec as it stands, from the issue's spec chain; a security report's text never appears in it."""
    if (await ctx.store.issue_state(repo, issue.number)).get("security"):
        issue = specs.redacted(issue)
    informed, depends = await _inputs(ctx, repo, issue, stage)
    return specs.stage_spec(stage, spec_id=made.spec_id, issue=issue, informed_by=informed, requested_by=requested_by,
                            depends_on=depends, progress=progress)


async def pending_spec(ctx: Context, gh: GitHubAPI, repo: str, issue: IssueText, stage: str, config: RepoConfig,
                       *, requested_by: str | None = None) -> tuple[SpecRecord, dict[str, str]]:
    """The pending spec that starts `stage`: informed by (and depending on) the specs before it; a
    documentation spec also names the files it tracks."""
    made = await record(ctx, repo, issue.number, stage, status="pending")
    tracks = await tracked(ctx, gh, repo, issue) if stage == "document" else []
    text = await stage_spec_text(ctx, repo, issue, stage, made, requested_by=requested_by,
                                 progress=specs.Progress(tracks=tuple(tracks)))
    return made, {made.path: text}


async def tracked(ctx: Context, gh: GitHubAPI, repo: str, issue: IssueText,
                  exists: Callable[[str], bool] | None = None) -> list[str]:
    """What a documentation spec tracks (chant's `tracks`): the files the issue's implementation changed, else
    the repository files the report names (`exists` says whether a path is one; default: its default branch)."""
    for run in reversed(await ctx.store.runs_for_issue(repo, issue.number)):
        if run.stage == "implement" and run.status == "done" and run.data.get("written"):
            return [str(path) for path in run.data["written"]][:MAX_TRACKED]
    found = []
    for path in named_paths(f"{issue.title}\n{issue.body}"):
        if (exists(path) if exists is not None else await ctx.repos.file(gh, repo, path) is not None):
            found.append(path)
        if len(found) >= MAX_TRACKED:
            break
    return found


async def redact_stage_specs(ctx: Context, repo: str, number: int, config: RepoConfig,
                             installation_id: int | None = None) -> None:
    """Every stage spec of a security report rewritten without its text; those not finished are cancelled."""
    files: dict[str, str] = {}
    issue = specs.redacted(IssueText(number=number, title="", body="", author=""))
    for made in await ctx.store.specs(repo, number):
        if made.stage not in workflow.CHAIN or made.stage == "triage":
            continue
        status = "cancelled" if made.status in ("pending", "in_progress") else made.status
        made = await set_status(ctx, repo, number, made, status)
        files[made.path] = specs.stage_spec(made.stage, spec_id=made.spec_id, issue=issue, informed_by=[],
                                            progress=specs.Progress(status=status))
    if files:
        runs = await ctx.store.runs_for_issue(repo, number)
        installation = installation_id if installation_id is not None else (runs[-1].installation_id if runs else None)
        if installation is not None:
            await queue_files(ctx, repo, installation, config, files)


async def spec_links(ctx: Context, repo: str, number: int, config: RepoConfig,
                     issue_url: str) -> list[tuple[str, str]]:
    """Each spec of the issue as (text, link), for the pull request's description."""
    return [(f"{r.stage}: {r.spec_id}", url(issue_url, config, r.path) or "") for r in await ctx.store.specs(repo, number)]


def url(issue_url: str, config: RepoConfig, path: str) -> str | None:
    """Where a file on the specs branch can be read on the web, next to the issue (github.com or GHES)."""
    if not config.specs_branch or "/issues/" not in issue_url:
        return None
    return f"{issue_url.rsplit('/issues/', 1)[0]}/blob/{config.specs_branch}/{path}"


async def commit_pending(ctx: Context, gh: GitHubAPI, repo: str, installation_id: int) -> None:
    """Commit every queued file of the repository to its specs branch (one commit per branch), with the chant
    files `chant work` needs to run the specs committed.

    While deliveries about the repository's issues are being handled, the commit is put off (up to a minute):
    a burst's specs then share one commit, and the people waiting for triage get GitHub's write slots first.
    """
    from bot import specbranch

    now = ctx.clock()
    since = ctx.spec_commits_put_off.setdefault(repo, now)
    if now - since < PUT_OFF_AT_MOST and await ctx.store.jobs_under_way(jobs.EVENT, f"{repo}#"):
        await ctx.store.enqueue(jobs.COMMIT_SPECS, f"specs:{repo}", {"repo": repo}, installation_id=installation_id,
                                delay=max(ctx.spec_commit_delay, PUT_OFF_STEP), unique=True)
        return
    ctx.spec_commits_put_off.pop(repo, None)
    pending = await ctx.store.pending_files(repo)
    by_branch: dict[str, dict[str, tuple[int, str]]] = {}
    for item in pending:
        by_branch.setdefault(item.branch, {})[item.path] = (item.id, item.content)  # newest text wins
    for branch, files in by_branch.items():
        texts = {p: text for p, (_, text) in files.items()}
        message = f"chantbot: {len(files)} spec file(s)"
        texts = {**await chant_files(ctx, gh, repo, texts), **texts}
        await specbranch.commit_files(gh, repo, branch, texts, message)
    await ctx.store.mark_committed(item.id for item in pending)


async def chant_files(ctx: Context, gh: GitHubAPI, repo: str, files: dict[str, str]) -> dict[str, str]:
    """What `chant work <id>` needs beside the specs in `files`: `.chant/config.md` and the prompt each spec
    names (`.chant/prompts/<name>.md`). The repository's own files win (copied from its default branch, where
    chantbot reads its prompt overrides); chantbot's are written where it has none. Unchanged files cost no
    commit: the tree is the same."""
    names = set()
    for path, text in files.items():
        if path.startswith(".chant/specs/"):
            try:
                prompt = specs.prompt_name(text)
            except ValueError:
                continue
            if prompt is not None:
                names.add(prompt)
    if not names:
        return {}
    wanted = {specs.CHANT_CONFIG_PATH: specs.chant_config(repo.rsplit("/", 1)[-1])}
    for name in sorted(names):
        try:
            wanted[prompts.override_path(name)] = prompts.packaged_text(name)
        except ValueError:
            continue  # not a prompt chantbot ships
    out = {}
    for path, ours in wanted.items():
        theirs = await ctx.repos.file(gh, repo, path)
        if theirs is None:
            out[path] = ours
        elif theirs.text is not None:  # too large to read: the branch keeps what it has
            out[path] = theirs.text
    return out
