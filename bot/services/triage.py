"""Triage an issue: assess it (Claude, or the local triager, with the reporter's answers), comment once, label
it, write its specs; triage's own stage label starts the next stage (after a grace period) or writes its pending
spec. A security report is handled privately; a question is pointed to the documentation."""

from __future__ import annotations

import asyncio
import datetime
import logging
from dataclasses import replace
from typing import Any

from gidgethub.abc import GitHubAPI

from bot import comment as comments
from bot import issueops, jobs, labels, prompts, similarity, specs, vulnreport, workflow
from bot.assessment import Assessment, Suggestion, settle
from bot.issuetext import Candidate, IssueText
from bot.commands import registry
from bot.context import Context
from bot.repoconfig import RepoConfig
from bot.sanitize import repo_url_of
from bot.services import config as configs
from bot.services import budget, reporter, specchain
from bot.services.issues import issue_text, label_names

log = logging.getLogger(__name__)

SECURITY_POLICIES = ("SECURITY.md", ".github/SECURITY.md", "docs/SECURITY.md")
README = "README.md"
DOC_FOLDERS = ("docs", "doc")
DOC_SUFFIXES = (".md", ".rst", ".txt")
MAX_DOCUMENT_FILES = 8  # the README and documentation files a question's answer may draw on


def vocabulary_text(config: RepoConfig) -> str:
    lines = ["Label vocabulary of this repository (chantbot applies only these):"]
    for family, names in config.labels.items():
        lines.append(f"- {family}: " + ", ".join(f"{key} → `{name}`" for key, name in names.items()))
    return "\n".join(lines)


async def triage_prompt(ctx: Context, gh: GitHubAPI, repo: str) -> tuple[str, list[str]]:
    """The triage prompt (the repository's override when it is usable) and what is wrong with the override."""
    prompt, problem = await configs.prompt(ctx, gh, repo, "triage")
    return prompts.render(prompt, {"project.name": repo}), [problem] if problem else []


async def assess(ctx: Context, gh: GitHubAPI, repo: str, issue: IssueText, config: RepoConfig,
                 installation_id: int = 0) -> tuple[Assessment, list[Candidate], list[str]]:
    """Claude when a key is set and the day's budget allows, the local triager otherwise or when Claude fails;
    with the candidates, and what is wrong with the repository's prompt override."""
    found = await ctx.store.similar_issues(repo, f"{issue.title}\n{issue.body}", exclude=issue.number,
                                          limit=similarity.POOL)
    # A security report is nobody's duplicate candidate: its text reaches no prompt and no comment.
    states = await ctx.store.issue_states(repo, (c.number for c in found))
    found = [c for c in found if not states.get(c.number, {}).get("security")]
    candidates = await asyncio.to_thread(similarity.candidates, issue, found)
    problems: list[str] = []
    if ctx.llm is not None and not await budget.available(ctx, installation_id, repo, config):
        log.warning("%s#%d: the day's model budget is spent (%s); using the local triager", repo, issue.number,
                    budget.refusal(ctx, config))
    elif ctx.llm is not None:
        from bot.modelcalls import LLMUnavailable, price

        model = config.model or ctx.settings.model
        instructions, problems = await triage_prompt(ctx, gh, repo)
        try:
            assessment, usage = await ctx.llm.assess(instructions=instructions,
                                                     vocabulary=vocabulary_text(config), issue=issue,
                                                     candidates=candidates, model=model)
            ctx.metrics.llm_calls.labels(outcome="ok").inc()
            for kind in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
                ctx.metrics.llm_tokens.labels(kind=kind).inc(getattr(usage, kind))
            await budget.charge(ctx, installation_id, repo, price(model).cost(usage))  # triage counts too
            return assessment, candidates, problems
        except LLMUnavailable as exc:
            await budget.charge(ctx, installation_id, repo, price(model).cost(exc.usage))
            ctx.metrics.llm_calls.labels(outcome="fallback").inc()
            log.warning("%s#%d: Claude unavailable (%s); using the local triager", repo, issue.number, exc)
    triager = await ctx.local_triager(repo)
    return await asyncio.to_thread(triager.assess, issue, candidates), candidates, problems


async def triage_issue(ctx: Context, gh: GitHubAPI, repo: str, number: int, *, installation_id: int,
                       attempt: int = 1, security: bool = False, delivered: dict[str, Any] | None = None) -> bool:
    """The whole triage of one issue; every effect is idempotent, so a re-run edits rather than repeats.

    A re-triage reads the reporter's comments since the triage as their answers. `security`: a
    maintainer marked the issue as a security report (it stays one on every later triage). `delivered`:
    the issue as a delivery's payload had it, assessed instead of reading it first (one read, just
    before writing, sees what changed since). False when the issue was not triaged (closed, a pull
    request, or triage is turned off).
    """
    issue_json = delivered if delivered is not None else await gh.getitem(f"/repos/{repo}/issues/{number}")
    if issue_json.get("state") != "open" or issue_json.get("pull_request"):
        return False
    issue = issue_text(issue_json)
    await ctx.store.index_issue(repo, number, issue.title, issue.body, "open", None)
    config, problems = await configs.load(ctx, gh, repo)
    state = await ctx.store.issue_state(repo, number)
    if not config.stage("triage").enabled:
        await mark_waiting(ctx, gh, repo, number, config, label_names(issue_json), state)
        return False
    if state.get("triaged_at") and int(issue_json.get("comments") or 0) > 0:
        issue = replace(issue, answers=await reporter.answers(gh, repo, number, issue.author,
                                                              after_comment=state.get("comment_id")))
    ctx.fresh.expect(repo, issue_json)
    assessment, candidates, prompt_problems = await assess(ctx, gh, repo, issue, config, installation_id)
    problems += prompt_problems
    if await is_security_report(issue, assessment, state, marked=security):
        # A reported vulnerability is a bug to handle privately, whatever the triager called it.
        assessment = replace(assessment, security=True,
                             category="bug" if assessment.category == "question" else assessment.category)
    else:
        assessment = replace(assessment, security=False)
    assessment = settle(assessment)
    # Assessing takes a while (a model call): decide on the issue as it is now. Closed meanwhile means
    # a person dealt with it; a label a person set meanwhile is theirs, and labels.plan leaves its family.
    issue_json = await ctx.fresh.issue(gh, repo, number)
    if issue_json.get("state") != "open":
        log.info("%s#%d was closed during triage; nothing posted", repo, number)
        return False
    current = label_names(issue_json)
    owned = set(state.get("owned_labels", []))
    want = labels.desired(assessment, config)
    plan = labels.plan(current, owned, want, config)
    stage_label = want["stage"]
    final_labels = sorted((set(current) | set(plan.add)) - set(plan.remove))

    shown = specs.redacted(issue) if assessment.security else issue  # a security report's text stays off the branch
    files: dict[str, str] = {}
    triage_spec = await specchain.record(ctx, repo, number, "triage", status="completed")
    now = datetime.datetime.fromtimestamp(ctx.clock(), datetime.timezone.utc).replace(microsecond=0)
    files[triage_spec.path] = specs.triage_spec(spec_id=triage_spec.spec_id, issue=shown, assessment=assessment,
                                                completed_at=now, model=assessment.triager)
    duplicate = next(((c.number, c.title) for c in candidates if c.number == assessment.duplicate_of), None)
    dup_url = f"{issue.url.rsplit('/', 1)[0]}/{assessment.duplicate_of}" if duplicate and issue.url else None
    files[specs.triage_doc_path(number)] = specs.triage_document(
        issue=shown, assessment=assessment, labels=final_labels, duplicate_url=dup_url)
    next_key = {v: k for k, v in config.labels["stage"].items()}.get(stage_label, "")
    _, starts = workflow.after_triage(assessment.category, next_key, lambda name: config.stage(name).enabled)
    if assessment.security:
        starts = None
        files.update(await _redacted_chain(ctx, repo, issue))
    settings = config.stage(starts.name) if starts else None
    auto = bool(settings and settings.enabled and settings.auto and stage_label in final_labels
                and ctx.anthropic is not None)
    if settings and settings.enabled and stage_label in final_labels and not auto:
        _, stage_files = await specchain.pending_spec(ctx, gh, repo, issue, starts.name, config)
        files.update(stage_files)

    next_step = comments.next_step(next_key, auto=auto, grace=settings.grace if settings else 0)
    step, notes = await _notes(ctx, gh, repo, issue, assessment, config, state)
    next_step = step or next_step
    if duplicate and not assessment.security:
        next_step = (f"If this is the same problem as #{duplicate[0]}, please follow that issue; a maintainer will "
                     "confirm and close one of the two.")
    answered = comments.answered(state.get("asked", []), state.get("answered", []), assessment.questions)
    body = comments.triage_comment(
        issue=issue, assessment=assessment, next_step=next_step,
        commands_help=registry.help_text(config.commands, labels=label_choices(config)),
        spec_path=triage_spec.path if config.specs_branch else None,
        spec_url=specchain.url(issue.url, config, triage_spec.path), duplicate=duplicate, config_problems=problems,
        answered=answered, notes=notes)
    comment_id = await issueops.upsert_comment(
        gh, repo, number, comments.TRIAGE_MARKER, body, known_id=state.get("comment_id"),
        may_exist=attempt > 1 or int(issue_json.get("comments", 0)) > 0)
    state["comment_id"] = comment_id
    await ctx.store.save_issue_state(repo, number, state)

    await ctx.repos.ensure_labels(gh, repo, list(plan.add), config)
    await issueops.apply_labels(gh, repo, number, plan)
    await specchain.queue_files(ctx, repo, installation_id, config, files)
    # What the stages read is the text triaged here (and the answers it took in), not a later edit of the issue.
    # Whose words that text holds: the author's, and those of anyone else who edited it (the CI gate asks).
    state["triaged"] = {"title": issue.title, "body": issue.body, "answers": list(issue.answers),
                        "shapers": [issue.author, *state.get("editors", [])]}
    state.update(owned_labels=sorted(plan.owned), triaged_at=ctx.clock(), asked=list(assessment.questions),
                 answered=answered, triage_summary=specs.triage_document(issue=shown, assessment=assessment,
                                                                        labels=final_labels))
    if assessment.security:
        state["security"] = True
    waiting = config.label("stage", "needs-info") in final_labels
    if waiting:
        reporter.start_waiting(state, ctx.clock())
    else:
        state.pop("needs_info", None)
    await ctx.store.save_issue_state(repo, number, state)
    if waiting:
        await reporter.schedule_sweep(ctx, repo, installation_id, config)
    if auto and starts is not None:  # triage's own label starts its stage once the grace period is over
        await ctx.store.enqueue(jobs.STAGE_AUTO, f"{repo}#{number}",
                                {"repo": repo, "number": number, "stage": starts.name, "label": stage_label},
                                installation_id=installation_id, delay=settings.grace, unique=True)
    log.info("%s#%d triaged by %s: %s, %s", repo, number, assessment.triager, assessment.category, stage_label)
    return True


async def is_security_report(issue: IssueText, assessment: Assessment, state: dict[str, Any], *,
                             marked: bool = False) -> bool:
    """The security flag: what a maintainer decided (`/security`, `/security off`) stands; otherwise the union of
    the triager's verdict, the local detector's and an earlier triage's (no model can lower it)."""
    if marked:
        return True
    if state.get("security") is False:  # a maintainer's `/security off`
        return False
    if assessment.security or state.get("security"):
        return True
    found = await asyncio.to_thread(vulnreport.detect, issue)
    if found.vulnerability:
        log.info("#%d reads as a vulnerability report (%s)", issue.number, ", ".join(found.cues))
    return found.vulnerability


async def _notes(ctx: Context, gh: GitHubAPI, repo: str, issue: IssueText, assessment: Assessment,
                 config: RepoConfig, state: dict[str, Any]) -> tuple[str | None, list[str]]:
    """What the triage comment adds for a security report (where to report it instead) or a question (the
    documentation, Discussions, a suggested answer), and the next step it says instead of the stage's."""
    repo_url = repo_url_of(issue.url)
    if assessment.security:
        return comments.SECURITY_STEP, [comments.security_note(repo_url, await security_policy(ctx, gh, repo))]
    if assessment.category != "question":
        return None, []
    found = await suggestion(ctx, gh, repo, issue, config, state)
    info = await ctx.repos.repository(gh, repo)
    notes = [comments.question_note(repo_url, await documentation(ctx, gh, repo), bool(info.get("has_discussions")))]
    if found is not None:
        notes.append(comments.suggestion_block(found.answer, found.sources, repo_url))
    return comments.QUESTION_STEP if assessment.recommendation == "defer" else None, notes


def label_choices(config: RepoConfig) -> list[str]:
    """What `/label` takes in this repository: its chantbot vocabulary, then `labels.additional`."""
    return [name for names in config.labels.values() for name in names.values()] + list(config.additional_labels)


async def _redacted_chain(ctx: Context, repo: str, issue: IssueText) -> dict[str, str]:
    """The issue's pending stage specs rewritten without the report's text, cancelled: a security report runs
    no stage on the public specs branch."""
    files: dict[str, str] = {}
    shown = specs.redacted(issue)
    records = await ctx.store.specs(repo, issue.number)
    for record in records:
        if record.stage not in workflow.CHAIN or record.stage == "triage" or record.status != "pending":
            continue
        cancelled = await specchain.set_status(ctx, repo, issue.number, record, "cancelled")
        files[cancelled.path] = specs.stage_spec(record.stage, spec_id=record.spec_id, issue=shown,
                                                 informed_by=[issue.url] if issue.url else [],
                                                 progress=specs.Progress(status="cancelled"))
    return files


async def security_policy(ctx: Context, gh: GitHubAPI, repo: str) -> str | None:
    """Where the repository keeps its security policy (`SECURITY.md` at the root, in `.github/` or `docs/`)."""
    for path in SECURITY_POLICIES:
        if await ctx.repos.file(gh, repo, path) is not None:
            return path
    return None


async def documentation(ctx: Context, gh: GitHubAPI, repo: str) -> list[str]:
    """The repository's README and documentation folder, as paths (a folder ends with `/`)."""
    found = [README] if await ctx.repos.file(gh, repo, README) is not None else []
    for folder in DOC_FOLDERS:
        if await ctx.repos.listing(gh, repo, folder):
            found.append(folder + "/")
            break
    return found


async def documents(ctx: Context, gh: GitHubAPI, repo: str) -> list[tuple[str, str]]:
    """(path, text) of the README and the documentation folder's text files, within MAX_DOCUMENT_FILES."""
    paths = [README]
    for folder in DOC_FOLDERS:
        listed = await ctx.repos.listing(gh, repo, folder)
        if listed:
            paths += sorted(p for p in listed if p.lower().endswith(DOC_SUFFIXES))
            break
    out = []
    for path in paths[:MAX_DOCUMENT_FILES]:
        found = await ctx.repos.file(gh, repo, path)
        if found is not None and found.text:
            out.append((path, found.text))
    return out


async def suggestion(ctx: Context, gh: GitHubAPI, repo: str, issue: IssueText, config: RepoConfig,
                     state: dict[str, Any]) -> Suggestion | None:
    """With a model, an answer to a question drawn only from the repository's documentation (asked once per
    issue; kept in its state)."""
    if ctx.llm is None:
        return None
    if "suggestion" in state:
        kept = state["suggestion"]
        return Suggestion(kept["answer"], tuple(kept["sources"])) if kept else None
    from bot.modelcalls import LLMUnavailable

    found = await documents(ctx, gh, repo)
    result = None
    if found:
        prompt, _ = await configs.prompt(ctx, gh, repo, "answer")
        try:
            result, usage = await ctx.llm.suggest_answer(
                instructions=prompts.render(prompt, {"project.name": repo}), issue=issue, documents=found,
                model=config.model or ctx.settings.model)
            ctx.metrics.llm_calls.labels(outcome="ok").inc()
            for kind in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
                ctx.metrics.llm_tokens.labels(kind=kind).inc(getattr(usage, kind))
        except LLMUnavailable as exc:
            ctx.metrics.llm_calls.labels(outcome="error").inc()
            log.warning("%s#%d: no documentation answer (%s)", repo, issue.number, exc)
            return None  # asked again on the next triage
    state["suggestion"] = {"answer": result.answer, "sources": list(result.sources)} if result else None
    return result


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
