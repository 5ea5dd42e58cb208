"""The reporter-facing triage comment and chantbot's other replies (pure rendering).

Every string that comes from the issue or the model goes through `safe_line` (a suggested answer,
which has several lines, through `neutralize`), so a comment can mention only the reporter, never
holds a line that reads as a slash command, and carries no raw HTML apart from its marker and the
maintainers' `<details>` block.
"""

from __future__ import annotations

import re
from typing import Sequence

from bot.assessment import Assessment
from bot.issuetext import IssueText
from bot.sanitize import clean, neutralize, one_line, repo_url_of, safe_line

TRIAGE_MARKER = "<!-- chantbot:triage -->"
FAILURE_PURPOSE = "failure"
REMINDER_PURPOSE = "needs-info-reminder"
NO_ANSWER_PURPOSE = "needs-info-closed"
RETRIAGE_LIMIT_PURPOSE = "retriage-limit"

GREETING = "{thanks}, @{author}! {summary}"
GREETING_NO_MENTION = "{thanks}! {summary}"
THANKS = {"bug": "Thanks for the report", "duplicate": "Thanks for the report",
          "feature": "Thanks for the suggestion", "question": "Thanks for the question",
          "documentation": "Thanks for pointing this out"}
SECURITY_THANKS = "Thanks for letting us know"
SECURITY_SUMMARY = "This looks like a report of a security vulnerability."
ASSESSMENT_TABLE = ("| Category | Priority | Severity |\n"
                    "| --- | --- | --- |\n"
                    "| {category} | {priority} | {severity} |")
QUESTIONS_INTRO = "**A few questions for you**, to help us move this forward (please answer in a comment):"
ANSWERED_INTRO = "**Thanks for your answers.** The questions asked earlier are answered:"
DUPLICATE_NOTE = ("This may be a duplicate of #{number} ({title}). I've labelled it as a duplicate but have "
                  "**not** closed it: a maintainer will decide.")
RECOMMENDATION_LINE = "**Recommendation:** {recommendation}\n\n**What happens next:** {next_step}"
SECURITY_NOTE = ("**Please don't add details of the vulnerability here.** This issue is public, and details "
                 "help attackers before a fix is released. {where} A maintainer may also edit this issue to remove "
                 "details that are already in it.")
SECURITY_POLICY = "Please report it privately, as the repository's security policy ([`{path}`]({url})) describes."
SECURITY_PRIVATE = ("Please report it privately with GitHub's private vulnerability reporting "
                    "([report a vulnerability]({url})), if the maintainers have turned it on, or contact them "
                    "privately.")
QUESTION_NOTE = "This looks like a question about using the project rather than a change to it. {docs}{discussions}"
QUESTION_DOCS = "The documentation may already answer it: {links}. "
QUESTION_DISCUSSIONS = ("Questions are also welcome in the repository's [Discussions]({url}), where more people "
                        "can help.")
SUGGESTION_INTRO = ("**A possible answer** (a suggestion drawn only from this repository's documentation, {sources}; "
                    "a maintainer has not checked it):")
CONFIG_PROBLEMS_INTRO = ("**`.github/chantbot.yml` is invalid**, so chantbot used its defaults. What is wrong:")
COMMANDS_BLOCK = "<details><summary>{summary}</summary>\n\n{content}\n\n</details>"
COMMANDS_SUMMARY = "Commands for maintainers"
COMMANDS_PROBLEM_SUMMARY = "Commands for maintainers, and a configuration problem"
SPEC_FOOTER = "_Triage record: {spec}_"
FAILURE = "**chantbot could not {what}.**\n\nWhat went wrong: {error}\n\nTo try again, {retry}."
REMINDER = ("This issue is still waiting for answers to the questions in chantbot's comment above. Could you answer "
            "them in a comment, or say if they don't apply? {closing}")
REMINDER_CLOSING = "If there is no answer within {days} days, chantbot will close the issue; any answer reopens it."
NO_ANSWER = ("chantbot is closing this issue as not planned, because the questions above have had no answer for "
             "{days} days. Nothing is lost: any answer from you here reopens it.")
RETRIAGE_LIMIT = ("Thanks, chantbot has seen your answer. It has already triaged this issue again {count} time(s) in "
                  "the last 24 hours, the most it does on its own, so it has not triaged it again this time: your "
                  "answer waits for a maintainer, who can have chantbot triage the issue again with `/retriage`.")

# What triage concluded about the report; "What happens next" says what is done about it.
RECOMMENDATION_TEXT = {
    "close": "close: this does not look like something to change in this project",
    "defer": "keep it open for a maintainer to decide on",
    "needs-info": "some details are missing before anyone can act on it",
    "needs-reproduction": "a plausible bug, described well enough to try to reproduce",
    "ready-for-research": "clear enough to look into",
}
QUESTION_RECOMMENDATION = "a question to answer, not a change to the project"
DOCS_RECOMMENDATION = "a change to the documentation, clear enough to make"
SECURITY_RECOMMENDATION = "handle it privately, as a security report, at high priority or above"

MAX_COMMENT = 65_536  # GitHub's limit on a comment body; counted here in UTF-8 bytes, the strictest reading
LEFT_OUT = "_… {count} more answer(s) left out: a GitHub comment holds at most 65,536 characters._"
SHORTENED = "\n\n_… shortened: a GitHub comment holds at most 65,536 characters._\n"

_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_PURPOSE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
MAX_SUMMARY = 600
MAX_ITEM = 240
MAX_ANSWERED = 5  # answered questions shown ticked
MAX_SUGGESTION = 1500


NEXT_STEPS = {
    "needs-info": "Once you have answered the questions above, chantbot triages the issue again.",
    "needs-reproduction": "Next, a maintainer or the workflow writes a failing test that reproduces it.",
    "ready-for-research": "Next comes research: what lies behind this, and two or three approaches with their "
                          "trade-offs, written up as a spec a maintainer reviews.",
    "ready-for-implementation": "Next, a maintainer or the workflow updates the documentation the report is about "
                                "(the document stage), on a draft pull request a maintainer reviews.",
    "deferred": "A maintainer will decide whether and when to take this up.",
}
QUESTION_STEP = "A maintainer will answer here; the workflow's research and code stages do not run for questions."
SECURITY_STEP = ("A maintainer takes it from here, privately; chantbot runs no workflow stage for it and writes "
                 "nothing about it beyond a note that a security report was received.")
AUTO_STEPS = {
    "needs-reproduction": "{when} chantbot starts writing a failing test that reproduces it, and the repository's "
                          "CI judges that test{unless}.",
    "ready-for-research": "{when} chantbot starts researching it: the root cause and two or three approaches with "
                          "their trade-offs{unless}.",
    "ready-for-implementation": "{when} chantbot starts updating the documentation the report is about, on a "
                                "draft pull request{unless}.",
}


def next_step(stage_label: str, *, auto: bool = False, grace: float = 0.0) -> str:
    """What happens next, for the triage comment: the stage label's step, and whether chantbot starts it."""
    if auto and stage_label in AUTO_STEPS:
        if grace < 60:
            return AUTO_STEPS[stage_label].format(when="Next,", unless="")
        return AUTO_STEPS[stage_label].format(when=f"In about {round(grace / 60)} minutes",
                                              unless=", unless a maintainer changes the label first")
    return NEXT_STEPS.get(stage_label, NEXT_STEPS["deferred"])


def answered(asked: Sequence[str], answered_before: Sequence[str], asking: Sequence[str]) -> list[str]:
    """The questions to show ticked: those asked or ticked before that this triage no longer asks (the latest
    MAX_ANSWERED)."""
    ticked = dict.fromkeys([*answered_before, *asked])
    return [q for q in ticked if q not in asking][-MAX_ANSWERED:]


def recommendation_text(a: Assessment) -> str:
    """What triage concluded, in words (the next step says what is done about it)."""
    if a.security:
        return SECURITY_RECOMMENDATION
    if a.category == "question" and a.recommendation == "defer":
        return QUESTION_RECOMMENDATION
    if a.category == "documentation" and a.recommendation in ("needs-reproduction", "ready-for-research"):
        return DOCS_RECOMMENDATION
    return RECOMMENDATION_TEXT[a.recommendation]


def security_note(repo_url: str | None, policy: str | None) -> str:
    """Where to report a vulnerability instead: the repository's policy file, else private reporting."""
    if repo_url and policy:
        where = SECURITY_POLICY.format(path=one_line(policy, 100), url=f"{repo_url}/blob/HEAD/{policy}")
    elif repo_url:
        where = SECURITY_PRIVATE.format(url=f"{repo_url}/security/advisories/new")
    else:
        where = "Please contact the maintainers privately."
    return SECURITY_NOTE.format(where=where)


def question_note(repo_url: str | None, docs: Sequence[str], discussions: bool) -> str:
    """Where a question may already be answered: the repository's documentation, and its Discussions."""
    links = ", ".join(f"[`{one_line(path, 100)}`]({repo_url}/{'tree' if path.endswith('/') else 'blob'}/HEAD/"
                      f"{path.rstrip('/')})" for path in docs) if repo_url else ""
    return QUESTION_NOTE.format(docs=QUESTION_DOCS.format(links=links) if links else "",
                                discussions=QUESTION_DISCUSSIONS.format(url=f"{repo_url}/discussions")
                                if repo_url and discussions else "").strip()


def suggestion_block(answer: str, sources: Sequence[str], repo_url: str | None) -> str:
    """A suggested answer, quoted and marked as a suggestion from the documentation (model text, neutralised)."""
    text = neutralize(clean(answer)[:MAX_SUGGESTION], repo_url=repo_url).strip()
    quoted = "\n".join("> " + line if line.strip() else ">" for line in text.splitlines())
    cited = ", ".join(f"`{one_line(source, 100).replace('`', '')}`" for source in sources[:5])
    return SUGGESTION_INTRO.format(sources=cited) + "\n\n" + quoted


def marker_for(purpose: str) -> str:
    """The hidden marker of chantbot's one comment for `purpose` (found and edited in place)."""
    if not _PURPOSE.match(purpose):
        raise ValueError(f"invalid comment purpose {purpose!r}")
    return f"<!-- chantbot:{purpose} -->"


def triage_comment(*, issue: IssueText, assessment: Assessment, next_step: str, commands_help: str,
                   spec_path: str | None = None, spec_url: str | None = None,
                   duplicate: tuple[int, str] | None = None, config_problems: Sequence[str] = (),
                   answered: Sequence[str] = (), notes: Sequence[str] = ()) -> str:
    """The triage comment: greeting, assessment, questions, notes, duplicate, next step, maintainers' section.

    `next_step`, `commands_help` and `notes` are chantbot's own text (a note built from model text
    neutralises it itself); everything else is treated as untrusted. `answered` are questions asked
    before that this triage no longer asks: they are shown ticked. A security report's comment
    repeats nothing of the report and asks nothing.
    """
    author = issue.author if _LOGIN.match(issue.author or "") else None

    repo_url = repo_url_of(issue.url)

    def safe(text: str, limit: int) -> str:
        # No mention survives here, the reporter's included: the greeting is the comment's one mention.
        return safe_line(text, limit, repo_url=repo_url)

    a = assessment
    summary = SECURITY_SUMMARY if a.security else safe(a.summary, MAX_SUMMARY)
    thanks = SECURITY_THANKS if a.security else THANKS.get(a.category, THANKS["bug"])
    greeting = (GREETING.format(thanks=thanks, author=author, summary=summary) if author
                else GREETING_NO_MENTION.format(thanks=thanks, summary=summary))
    parts = [TRIAGE_MARKER + "\n" + greeting.rstrip(),
             ASSESSMENT_TABLE.format(category=a.category, priority=a.priority or "not assessed",
                                     severity=a.severity or "not assessed")]
    open_questions = [] if a.security else [safe(q, MAX_ITEM) for q in a.questions]
    ticked = [safe(q, MAX_ITEM) for q in answered if not a.security][:MAX_ANSWERED]
    if open_questions:
        parts.append(QUESTIONS_INTRO + "\n\n" + "\n".join([f"- [ ] {q}" for q in open_questions]
                                                          + [f"- [x] {q}" for q in ticked]))
    elif ticked:
        parts.append(ANSWERED_INTRO + "\n\n" + "\n".join(f"- [x] {q}" for q in ticked))
    parts += [note for note in notes if note]
    if duplicate and not a.security:
        parts.append(DUPLICATE_NOTE.format(number=int(duplicate[0]), title=safe(duplicate[1], 120)))
    parts.append(RECOMMENDATION_LINE.format(recommendation=recommendation_text(a),
                                            next_step=one_line(next_step, 400)))
    maintainers = commands_help.strip()
    if config_problems:  # for maintainers: not the first thing a reporter reads
        maintainers = config_problem_lines(config_problems) + "\n\n" + maintainers
    parts.append(COMMANDS_BLOCK.format(summary=COMMANDS_PROBLEM_SUMMARY if config_problems else COMMANDS_SUMMARY,
                                       content=maintainers))
    if spec_path:
        spec = f"`{one_line(spec_path, 200)}`"
        parts.append(SPEC_FOOTER.format(spec=f"[{spec}]({one_line(spec_url, 500)})" if spec_url else spec))
    return "\n\n".join(parts) + "\n"


def reminder_comment(close_after: int | None) -> str:
    """The one reminder to a reporter whose answers are awaited."""
    closing = REMINDER_CLOSING.format(days=close_after) if close_after else ""
    return marker_for(REMINDER_PURPOSE) + "\n" + REMINDER.format(closing=closing).rstrip() + "\n"


def retriage_limit_comment(count: int) -> str:
    """Why a reporter's answer is not triaged at once: the issue's re-triages for the day are spent."""
    return marker_for(RETRIAGE_LIMIT_PURPOSE) + "\n" + RETRIAGE_LIMIT.format(count=int(count)) + "\n"


def no_answer_comment(days: int) -> str:
    """Why the issue is being closed, and that an answer reopens it."""
    return marker_for(NO_ANSWER_PURPOSE) + "\n" + NO_ANSWER.format(days=days) + "\n"


def failure_comment(*, what: str, error: str, retry: str, purpose: str = FAILURE_PURPOSE) -> str:
    """A job that failed for good: what failed, why in words a maintainer can act on, and how to retry."""
    return (marker_for(purpose) + "\n"
            + FAILURE.format(what=one_line(what, 200), error=safe_line(error, 300),
                             retry=one_line(retry, 200).rstrip(".")) + "\n")


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def fit_parts(marker: str, parts: Sequence[str], limit: int = MAX_COMMENT) -> str:
    """The marker line and as many whole answers as GitHub takes in one comment, then how many were left out."""
    budget = limit - _size(marker) - _size(LEFT_OUT) - 16
    kept: list[str] = []
    for part in parts:
        budget -= _size(part) + 2
        if budget < 0:
            break
        kept.append(part)
    if len(kept) < len(parts):
        kept.append(LEFT_OUT.format(count=len(parts) - len(kept)))
    return fit(marker + "\n" + "\n\n".join(kept), limit)


def fit(body: str, limit: int = MAX_COMMENT) -> str:
    """`body` as it is when GitHub takes it, else cut at a line break and marked as shortened."""
    if _size(body) <= limit:
        return body
    room = limit - _size(SHORTENED)
    cut = body.encode("utf-8")[:room].decode("utf-8", "ignore")
    if "\n" in cut:
        cut = cut[:cut.rindex("\n")]
    return cut + SHORTENED


def config_problem_lines(problems: Sequence[str]) -> str:
    """What is wrong with the repository's `.github/chantbot.yml` (empty when nothing is)."""
    if not problems:
        return ""
    return CONFIG_PROBLEMS_INTRO + "\n\n" + "\n".join(f"- {safe_line(p, MAX_ITEM)}" for p in problems)


def config_problem_block(problems: Sequence[str]) -> str:
    """The configuration problems in a collapsed section for maintainers (empty when there are none)."""
    if not problems:
        return ""
    return COMMANDS_BLOCK.format(summary="For maintainers: a configuration problem",
                                 content=config_problem_lines(problems))
