"""The reporter-facing triage comment and chantbot's other replies (pure rendering).

Every string that comes from the issue or the model goes through `safe_line`, so a comment can
mention only the reporter, never holds a line that reads as a slash command, and carries no raw
HTML apart from its marker and the maintainers' `<details>` block.
"""

from __future__ import annotations

import re
from typing import Sequence

from bot.assessment import Assessment, IssueText
from bot.sanitize import one_line, repo_url_of, safe_line

TRIAGE_MARKER = "<!-- chantbot:triage -->"
FAILURE_PURPOSE = "failure"

GREETING = "Thanks for the report, @{author}! {summary}"
GREETING_NO_MENTION = "Thanks for the report! {summary}"
ASSESSMENT_TABLE = ("| Category | Priority | Severity |\n"
                    "| --- | --- | --- |\n"
                    "| {category} | {priority} | {severity} |")
QUESTIONS_INTRO = "**A few questions for you**, to help us move this forward (please answer in a comment):"
DUPLICATE_NOTE = ("This may be a duplicate of #{number} ({title}). I've labelled it as a duplicate but have "
                  "**not** closed it: a maintainer will decide.")
RECOMMENDATION_LINE = "**Recommendation:** {recommendation}\n\n**What happens next:** {next_step}"
CONFIG_PROBLEMS_INTRO = ("**Note for maintainers:** `.github/chantbot.yml` is invalid, so chantbot used its "
                         "defaults. What is wrong:")
COMMANDS_BLOCK = "<details><summary>Commands for maintainers</summary>\n\n{commands_help}\n\n</details>"
SPEC_FOOTER = "_Triage record: {spec}_"
FAILURE = "**chantbot could not {what}.**\n\nWhat went wrong: {error}\n\nTo try again, {retry}."

RECOMMENDATION_TEXT = {
    "close": "close: this does not look like something to change in this project",
    "defer": "defer: kept open for a maintainer to decide",
    "needs-info": "more information needed before work can start (see the questions above)",
    "needs-reproduction": "reproduce first: a failing test that shows the problem",
    "ready-for-research": "ready for research: work out the cause or design and compare two or three approaches",
}

MAX_COMMENT = 65_536  # GitHub's limit on a comment body; counted here in UTF-8 bytes, the strictest reading
LEFT_OUT = "_… {count} more answer(s) left out: a GitHub comment holds at most 65,536 characters._"
SHORTENED = "\n\n_… shortened: a GitHub comment holds at most 65,536 characters._\n"

_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_PURPOSE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
MAX_SUMMARY = 600
MAX_ITEM = 240


NEXT_STEPS = {
    "needs-info": "Once you have answered the questions above, chantbot triages the issue again.",
    "needs-reproduction": "Next, a maintainer or the workflow writes a failing test that reproduces it.",
    "ready-for-research": "Next comes research: what lies behind this, and two or three approaches with their "
                          "trade-offs, written up as a spec a maintainer reviews.",
    "deferred": "A maintainer will decide whether and when to take this up.",
}
AUTO_STEPS = {
    "needs-reproduction": "{when} chantbot starts writing a failing test that reproduces it, and the repository's "
                          "CI judges that test{unless}.",
    "ready-for-research": "{when} chantbot starts researching it: the root cause and two or three approaches with "
                          "their trade-offs{unless}.",
}


def next_step(stage_label: str, *, auto: bool = False, grace: float = 0.0) -> str:
    """What happens next, for the triage comment: the stage label's step, and whether chantbot starts it."""
    if auto and stage_label in AUTO_STEPS:
        if grace < 60:
            return AUTO_STEPS[stage_label].format(when="Next,", unless="")
        return AUTO_STEPS[stage_label].format(when=f"In about {round(grace / 60)} minutes",
                                              unless=", unless a maintainer changes the label first")
    return NEXT_STEPS.get(stage_label, NEXT_STEPS["deferred"])


def marker_for(purpose: str) -> str:
    """The hidden marker of chantbot's one comment for `purpose` (found and edited in place)."""
    if not _PURPOSE.match(purpose):
        raise ValueError(f"invalid comment purpose {purpose!r}")
    return f"<!-- chantbot:{purpose} -->"


def triage_comment(*, issue: IssueText, assessment: Assessment, next_step: str, commands_help: str,
                   spec_path: str | None = None, spec_url: str | None = None,
                   duplicate: tuple[int, str] | None = None, config_problems: Sequence[str] = ()) -> str:
    """The triage comment: greeting, assessment, questions, duplicate, next step, maintainers' commands.

    `next_step` and `commands_help` are chantbot's own text; everything else is treated as untrusted.
    """
    author = issue.author if _LOGIN.match(issue.author or "") else None

    repo_url = repo_url_of(issue.url)

    def safe(text: str, limit: int) -> str:
        # No mention survives here, the reporter's included: the greeting is the comment's one mention.
        return safe_line(text, limit, repo_url=repo_url)

    a = assessment
    summary = safe(a.summary, MAX_SUMMARY)
    greeting = (GREETING.format(author=author, summary=summary) if author
                else GREETING_NO_MENTION.format(summary=summary))
    parts = [TRIAGE_MARKER + "\n" + greeting.rstrip(),
             ASSESSMENT_TABLE.format(category=a.category, priority=a.priority or "not assessed",
                                     severity=a.severity or "not assessed")]
    if a.questions:
        parts.append(QUESTIONS_INTRO + "\n\n" + "\n".join(f"- [ ] {safe(q, MAX_ITEM)}" for q in a.questions))
    if duplicate:
        parts.append(DUPLICATE_NOTE.format(number=int(duplicate[0]), title=safe(duplicate[1], 120)))
    parts.append(RECOMMENDATION_LINE.format(recommendation=RECOMMENDATION_TEXT[a.recommendation],
                                            next_step=one_line(next_step, 400)))
    if config_problems:
        parts.append(config_problem_lines(config_problems))
    parts.append(COMMANDS_BLOCK.format(commands_help=commands_help.strip()))
    if spec_path:
        spec = f"`{one_line(spec_path, 200)}`"
        parts.append(SPEC_FOOTER.format(spec=f"[{spec}]({one_line(spec_url, 500)})" if spec_url else spec))
    return "\n\n".join(parts) + "\n"


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
