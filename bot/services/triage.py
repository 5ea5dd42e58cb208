"""Triage an issue: assess it (Claude, or the local triager), comment once, label it, write its specs;
triage's own stage label starts the next stage (after a grace period) or writes its pending spec."""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

from gidgethub.abc import GitHubAPI

from bot import comment as comments
from bot import issueops, jobs, labels, prompts, specs, workflow
from bot.assessment import Assessment, Candidate, IssueText
from bot.classifier import related
from bot.commands import registry
from bot.context import Context
from bot.repoconfig import RepoConfig
from bot.services import config as configs
from bot.services import specchain
from bot.services.issues import issue_text, label_names

log = logging.getLogger(__name__)


def vocabulary_text(config: RepoConfig) -> str:
    lines = ["Label vocabulary of this repository (chantbot applies only these):"]
    for family, names in config.labels.items():
        lines.append(f"- {family}: " + ", ".join(f"{key} → `{name}`" for key, name in names.items()))
    return "\n".join(lines)


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


async def triage_issue(ctx: Context, gh: GitHubAPI, repo: str, number: int, *, installation_id: int,
                       attempt: int = 1) -> None:
    """The whole triage of one issue; every effect is idempotent, so a re-run edits rather than repeats."""
    issue_json = await gh.getitem(f"/repos/{repo}/issues/{number}")
    if issue_json.get("state") != "open" or issue_json.get("pull_request"):
        return
    issue = issue_text(issue_json)
    await ctx.store.index_issue(repo, number, issue.title, issue.body, "open", None)
    config, problems = await configs.load(ctx, gh, repo)
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
    triage_spec = await specchain.record(ctx, repo, number, "triage", status="completed")
    now = datetime.datetime.fromtimestamp(ctx.clock(), datetime.timezone.utc).replace(microsecond=0)
    final_labels = sorted((set(current) | set(plan.add)) - set(plan.remove))
    files[triage_spec.path] = specs.triage_spec(spec_id=triage_spec.spec_id, issue=issue, assessment=assessment,
                                                completed_at=now, model=assessment.triager)
    duplicate = next(((c.number, c.title) for c in candidates if c.number == assessment.duplicate_of), None)
    dup_url = f"{issue.url.rsplit('/', 1)[0]}/{assessment.duplicate_of}" if duplicate and issue.url else None
    files[specs.triage_doc_path(number)] = specs.triage_document(
        issue=issue, assessment=assessment, labels=final_labels, duplicate_url=dup_url)
    next_key = {v: k for k, v in config.labels["stage"].items()}.get(stage_label, "")
    starts = workflow.started_by(next_key)
    settings = config.stage(starts.name) if starts else None
    auto = bool(settings and settings.enabled and settings.auto and stage_label in final_labels
                and ctx.anthropic is not None)
    if settings and settings.enabled and stage_label in final_labels and not auto:
        _, stage_files = await specchain.pending_spec(ctx, repo, issue, starts.name, config)
        files.update(stage_files)

    next_step = comments.next_step(next_key, auto=auto, grace=settings.grace if settings else 0)
    if duplicate:
        next_step = (f"If this is the same problem as #{duplicate[0]}, please follow that issue; a maintainer will "
                     "confirm and close one of the two.")
    body = comments.triage_comment(
        issue=issue, assessment=assessment, next_step=next_step,
        commands_help=registry.help_text(config.commands),
        spec_path=triage_spec.path if config.specs_branch else None,
        spec_url=specchain.url(issue.url, config, triage_spec.path), duplicate=duplicate, config_problems=problems)
    comment_id = await issueops.upsert_comment(
        gh, repo, number, comments.TRIAGE_MARKER, body, known_id=state.get("comment_id"),
        may_exist=attempt > 1 or int(issue_json.get("comments", 0)) > 0)
    state["comment_id"] = comment_id
    await ctx.store.save_issue_state(repo, number, state)

    await ctx.repos.ensure_labels(gh, repo, list(plan.add), config)
    await issueops.apply_labels(gh, repo, number, plan)
    await specchain.queue_files(ctx, repo, installation_id, config, files)
    state.update(owned_labels=sorted(plan.owned), triaged_at=ctx.clock(),
                 triage_summary=specs.triage_document(issue=issue, assessment=assessment, labels=final_labels))
    await ctx.store.save_issue_state(repo, number, state)
    if auto and starts is not None:  # triage's own label starts its stage once the grace period is over
        await ctx.store.enqueue(jobs.STAGE_AUTO, f"{repo}#{number}",
                                {"repo": repo, "number": number, "stage": starts.name, "label": stage_label},
                                installation_id=installation_id, delay=settings.grace, unique=True)
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
