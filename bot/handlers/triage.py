"""Triage: on a new or reopened issue, assess it, write the triage spec, comment once, label it."""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
from typing import Any

from gidgethub import routing, sansio
from gidgethub.abc import GitHubAPI

from bot import comment as comments
from bot import issueops, labels, prompts, specs
from bot.assessment import Assessment, Candidate, IssueText
from bot.classifier import related
from bot.commands import registry
from bot.context import Context
from bot.repoconfig import RepoConfig
from bot.services import config as configs
from bot.store import Job, SpecRecord

log = logging.getLogger(__name__)
router = routing.Router()

FOLLOW_UP_INTERVAL = 600.0  # at most one re-triage per issue per 10 minutes from follow-ups
NEXT_STEPS = {
    "needs-info": "Once you have answered the questions above, chantbot triages the issue again.",
    "needs-reproduction": "Next, a maintainer or the workflow writes a failing test that reproduces it.",
    "ready-for-research": "Next comes research: what lies behind this, and two or three approaches with their "
                          "trade-offs, written up as a spec a maintainer reviews.",
    "deferred": "A maintainer will decide whether and when to take this up.",
}
STAGE_AFTER_LABEL = {"needs-reproduction": "reproduce", "ready-for-research": "research"}


def repo_of(event: sansio.Event) -> str:
    return event.data["repository"]["full_name"]


def issue_text(issue: dict[str, Any]) -> IssueText:
    return IssueText(number=int(issue["number"]), title=issue.get("title") or "", body=issue.get("body") or "",
                     author=(issue.get("user") or {}).get("login", ""),
                     author_association=issue.get("author_association", "NONE"), url=issue.get("html_url", ""))


def label_names(issue: dict[str, Any]) -> list[str]:
    return [label["name"] for label in issue.get("labels") or []]


def vocabulary_text(config: RepoConfig) -> str:
    lines = ["Label vocabulary of this repository (chantbot applies only these):"]
    for family, names in config.labels.items():
        lines.append(f"- {family}: " + ", ".join(f"{key} → `{name}`" for key, name in names.items()))
    return "\n".join(lines)


async def load_config(ctx: Context, gh: GitHubAPI, repo: str) -> tuple[RepoConfig, list[str]]:
    """The repository's configuration and what is wrong with it (parsed once per blob SHA)."""
    return await configs.load(ctx, gh, repo)


async def triage_prompt(ctx: Context, gh: GitHubAPI, repo: str) -> tuple[str, list[str]]:
    """The triage prompt (the repository's override when it is usable) and what is wrong with the override."""
    prompt, problem = await configs.prompt(ctx, gh, repo, "triage")
    return prompts.render(prompt, {"project.name": repo}), [problem] if problem else []


async def assess(ctx: Context, gh: GitHubAPI, repo: str, issue: IssueText,
                 config: RepoConfig) -> tuple[Assessment, list[Candidate], list[str]]:
    """Claude when a key is set, the local triager otherwise or when Claude fails; with the candidates,
    and what is wrong with the repository's prompt override."""
    found = await ctx.store.similar_issues(repo, f"{issue.title}\n{issue.body}", exclude=issue.number)
    candidates = related(issue, found)
    problems: list[str] = []
    if ctx.llm is not None:
        from bot.llm import LLMUnavailable

        model = config.model or ctx.settings.model
        instructions, problems = await triage_prompt(ctx, gh, repo)
        try:
            assessment, usage = await ctx.llm.assess(instructions=instructions,
                                                     vocabulary=vocabulary_text(config), issue=issue,
                                                     candidates=candidates, model=model)
            ctx.metrics.llm_calls.labels(outcome="ok").inc()
            for kind in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
                ctx.metrics.llm_tokens.labels(kind=kind).inc(getattr(usage, kind))
            return assessment, candidates, problems
        except LLMUnavailable as exc:
            ctx.metrics.llm_calls.labels(outcome="fallback").inc()
            log.warning("%s#%d: Claude unavailable (%s); using the local triager", repo, issue.number, exc)
    triager = await ctx.local_triager(repo)
    return await asyncio.to_thread(triager.assess, issue, candidates), candidates, problems


async def spec_record(ctx: Context, repo: str, number: int, stage: str, *, status: str) -> SpecRecord:
    """The issue's spec for `stage`, given an id the first time (ids are stable across re-runs)."""
    existing = await ctx.store.spec_for(repo, number, stage)
    if existing is not None:
        return existing
    now = datetime.datetime.fromtimestamp(ctx.clock(), datetime.timezone.utc)
    seq = await ctx.store.next_spec_seq(repo, now.date().isoformat())
    spec_id = specs.spec_id(now.date(), seq, specs.random_suffix(random.Random()))
    record = SpecRecord(stage, spec_id, specs.spec_path(spec_id), status)
    await ctx.store.record_spec(repo, number, record)
    return record


async def queue_spec_files(ctx: Context, gh: GitHubAPI, repo: str, installation_id: int, config: RepoConfig,
                           files: dict[str, str]) -> None:
    """Queue files for the specs branch; a short-delayed job commits every queued file in one commit."""
    if not config.specs_branch or not files:
        return
    await ctx.store.queue_files(repo, installation_id, config.specs_branch, files)
    await ctx.store.enqueue("commit-specs", f"specs:{repo}", {"repo": repo}, installation_id=installation_id,
                            delay=ctx.spec_commit_delay, unique=True)


async def next_stage_spec(ctx: Context, repo: str, issue: IssueText, stage: str, config: RepoConfig,
                          *, requested_by: str | None = None) -> tuple[SpecRecord, dict[str, str]]:
    """The spec that starts `stage`, informed_by the previous stage's spec (and the triage document)."""
    order = specs.STAGES
    previous = [await ctx.store.spec_for(repo, issue.number, s) for s in order[:order.index(stage)]]
    informed = [r.path for r in previous if r is not None]
    if stage in ("reproduce", "research") and any(r and r.stage == "triage" for r in previous):
        informed.append(specs.triage_doc_path(issue.number))
    record = await spec_record(ctx, repo, issue.number, stage, status="pending")
    text = specs.stage_spec(stage, spec_id=record.spec_id, issue=issue, informed_by=informed[-2:] or [issue.url],
                            requested_by=requested_by)
    return record, {record.path: text}


def spec_url(issue_url: str, config: RepoConfig, path: str) -> str | None:
    """Where a spec file can be read on the web, next to the issue (github.com or GitHub Enterprise)."""
    if not config.specs_branch or "/issues/" not in issue_url:
        return None
    return f"{issue_url.rsplit('/issues/', 1)[0]}/blob/{config.specs_branch}/{path}"


async def triage_issue(ctx: Context, gh: GitHubAPI, repo: str, number: int, *, installation_id: int,
                       attempt: int = 1) -> None:
    """The whole triage of one issue; every effect is idempotent, so a re-run edits rather than repeats."""
    issue_json = await gh.getitem(f"/repos/{repo}/issues/{number}")
    if issue_json.get("state") != "open" or issue_json.get("pull_request"):
        return
    issue = issue_text(issue_json)
    await ctx.store.index_issue(repo, number, issue.title, issue.body, "open", None)
    config, problems = await load_config(ctx, gh, repo)
    state = await ctx.store.issue_state(repo, number)
    if not config.stage("triage").enabled:
        await mark_waiting(ctx, gh, repo, number, config, label_names(issue_json), state)
        return
    assessment, candidates, prompt_problems = await assess(ctx, gh, repo, issue, config)
    problems += prompt_problems
    # Assessing takes a while (a model call): decide on the issue as it is now. Closed meanwhile means
    # a person dealt with it; a label a person set meanwhile is theirs, and labels.plan leaves its family.
    issue_json = await gh.getitem(f"/repos/{repo}/issues/{number}")
    if issue_json.get("state") != "open":
        log.info("%s#%d was closed during triage; nothing posted", repo, number)
        return
    current = label_names(issue_json)
    owned = set(state.get("owned_labels", []))
    want = labels.desired(assessment, config)
    plan = labels.plan(current, owned, want, config)
    stage_label = want["stage"]

    files: dict[str, str] = {}
    triage_spec = await spec_record(ctx, repo, number, "triage", status="completed")
    now = datetime.datetime.fromtimestamp(ctx.clock(), datetime.timezone.utc).replace(microsecond=0)
    final_labels = sorted((set(current) | set(plan.add)) - set(plan.remove))
    files[triage_spec.path] = specs.triage_spec(spec_id=triage_spec.spec_id, issue=issue, assessment=assessment,
                                                completed_at=now, model=assessment.triager)
    duplicate = next(((c.number, c.title) for c in candidates if c.number == assessment.duplicate_of), None)
    dup_url = f"{issue.url.rsplit('/', 1)[0]}/{assessment.duplicate_of}" if duplicate and issue.url else None
    files[specs.triage_doc_path(number)] = specs.triage_document(
        issue=issue, assessment=assessment, labels=final_labels, duplicate_url=dup_url)
    next_key = {v: k for k, v in config.labels["stage"].items()}.get(stage_label, "")
    stage = STAGE_AFTER_LABEL.get(next_key)
    if stage and config.stage(stage).enabled and stage_label in final_labels:
        _, stage_files = await next_stage_spec(ctx, repo, issue, stage, config)
        files.update(stage_files)

    next_step = NEXT_STEPS.get(next_key, NEXT_STEPS["deferred"])
    if duplicate:
        next_step = (f"If this is the same problem as #{duplicate[0]}, please follow that issue; a maintainer will "
                     "confirm and close one of the two.")
    body = comments.triage_comment(
        issue=issue, assessment=assessment, next_step=next_step,
        commands_help=registry.help_text(config.commands),
        spec_path=triage_spec.path if config.specs_branch else None,
        spec_url=spec_url(issue.url, config, triage_spec.path), duplicate=duplicate, config_problems=problems)
    comment_id = await issueops.upsert_comment(
        gh, repo, number, comments.TRIAGE_MARKER, body, known_id=state.get("comment_id"),
        may_exist=attempt > 1 or int(issue_json.get("comments", 0)) > 0)
    state["comment_id"] = comment_id
    await ctx.store.save_issue_state(repo, number, state)

    await ctx.repos.ensure_labels(gh, repo, list(plan.add), config)
    await issueops.apply_labels(gh, repo, number, plan)
    await queue_spec_files(ctx, gh, repo, installation_id, config, files)
    state.update(owned_labels=sorted(plan.owned), triaged_at=ctx.clock())
    await ctx.store.save_issue_state(repo, number, state)
    log.info("%s#%d triaged by %s: %s, %s", repo, number, assessment.triager, assessment.category, stage_label)


async def mark_waiting(ctx: Context, gh: GitHubAPI, repo: str, number: int, config: RepoConfig,
                       current: list[str], state: dict[str, Any]) -> None:
    """Show that the issue waits for triage (`needs-triage`), as chantbot's own label."""
    name = config.label("stage", "needs-triage")
    if name in current:
        return
    await ctx.repos.ensure_labels(gh, repo, [name], config)
    await gh.post(f"/repos/{repo}/issues/{number}/labels", data={"labels": [name]})
    state["owned_labels"] = sorted(set(state.get("owned_labels", [])) | {name})
    await ctx.store.save_issue_state(repo, number, state)


@router.register("issues", action="opened")
@router.register("issues", action="reopened")
async def on_opened(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, job: Job, **kwargs: Any) -> None:
    await triage_issue(ctx, gh, repo_of(event), int(event.data["issue"]["number"]),
                       installation_id=int(event.data["installation"]["id"]), attempt=job.attempts)


def substantial_edit(old: str, new: str) -> bool:
    """An edit worth a re-triage: the body grew or changed by a fair amount (pure)."""
    if old == new:
        return False
    added = abs(len(new) - len(old))
    return added >= 80 or added >= 0.3 * max(len(old), 1)


async def follow_up(ctx: Context, gh: GitHubAPI, event: sansio.Event, job: Job) -> None:
    repo, number = repo_of(event), int(event.data["issue"]["number"])
    state = await ctx.store.issue_state(repo, number)
    if not state.get("triaged_at") or ctx.clock() - state["triaged_at"] < FOLLOW_UP_INTERVAL:
        return
    await triage_issue(ctx, gh, repo, number, installation_id=int(event.data["installation"]["id"]),
                       attempt=job.attempts)


@router.register("issues", action="edited")
async def on_edited(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, job: Job, **kwargs: Any) -> None:
    old = (event.data.get("changes") or {}).get("body", {}).get("from")
    if old is None or not substantial_edit(old, event.data["issue"].get("body") or ""):
        return
    await follow_up(ctx, gh, event, job)


@router.register("issue_comment", action="created")
async def on_reporter_answer(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, job: Job,
                             **kwargs: Any) -> None:
    issue, comment = event.data["issue"], event.data["comment"]
    if comment["user"]["login"] != issue["user"]["login"]:
        return
    config, _ = await load_config(ctx, gh, repo_of(event))
    if config.label("stage", "needs-info") not in {label["name"] for label in issue.get("labels", [])}:
        return
    await follow_up(ctx, gh, event, job)


@router.register("issues", action="labeled")
async def on_labeled(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, **kwargs: Any) -> None:
    """A person's stage label starts that stage; a person's category label teaches the local triager."""
    repo, issue_json, name = repo_of(event), event.data["issue"], event.data["label"]["name"]
    config, _ = await load_config(ctx, gh, repo)
    issue = issue_text(issue_json)
    category = {v: k for k, v in config.labels["category"].items()}.get(name)
    if category and category != "duplicate":
        await ctx.store.index_issue(repo, issue.number, issue.title, issue.body, issue_json.get("state", "open"),
                                    category)
    stage = STAGE_AFTER_LABEL.get({v: k for k, v in config.labels["stage"].items()}.get(name, ""))
    if stage and config.stage(stage).enabled:
        _, files = await next_stage_spec(ctx, repo, issue, stage, config,
                                         requested_by=event.data.get("sender", {}).get("login"))
        await queue_spec_files(ctx, gh, repo, int(event.data["installation"]["id"]), config, files)


@router.register("issues", action="closed")
async def on_closed(event: sansio.Event, gh: GitHubAPI, *args: Any, ctx: Context, **kwargs: Any) -> None:
    """A closed issue joins the labelled history the local triager learns from."""
    repo, issue_json = repo_of(event), event.data["issue"]
    config, _ = await load_config(ctx, gh, repo)
    names = {label["name"] for label in issue_json.get("labels", [])}
    category = next((key for key, name in config.labels["category"].items() if name in names and key != "duplicate"),
                    None)
    issue = issue_text(issue_json)
    await ctx.store.index_issue(repo, issue.number, issue.title, issue.body, "closed", category)
