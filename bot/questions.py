"""What an issue leaves out (version, steps, expected vs actual, logs, use case) and what to ask the reporter."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from bot.assessment import MAX_QUESTIONS
from bot.issuetext import IssueText

# Every pattern here is linear: line anchors are followed by `[ \t]`, never `\s` (which would run on
# across blank lines from every line start), and no two quantifiers compete for the same characters.
_COMMENT = re.compile(r"<!--(.*?)(?:-->|\Z)", re.S)
_FENCE = re.compile(r"^[ \t]*+(`{3,}+|~{3,}+)([^\n`]*)\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)", re.S | re.M)
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}([^\n]*)$|^[ \t]*+\*\*([^*\n]{3,80})\*\*[ \t]*+(?::[ \t]*)?$", re.M)
_PLACEHOLDER = re.compile(r"_no response_|^[ \t]*n/?a\.?[ \t]*$", re.I | re.M)
_URL = re.compile(r"https?://\S+")
_REPO = re.compile(r"github\.com/[^/\s]+/([^/\s]+)/")

_VERSION = re.compile(r"\bv?\d+\.\d+(?:\.\d+)*\b|\bversion\s*+(?::\s*+)?\S*\d|\b(?:nightly|master|main branch|"
                      r"latest release|commit [0-9a-f]{7,})\b|\b(?=[0-9a-f]{0,40}\d)[0-9a-f]{7,40}\b", re.I)
_STEPS = re.compile(r"\bsteps?\b|\breproduc|\brepro\b|^[ \t]*1[.)]\s|\b(?:when|after|if|once) i\b|\bi (?:ran|run|"
                    r"tried|typed|clicked|opened|called|used|installed|executed)\b", re.I | re.M)
# Saying what goes wrong ("doesn't open", "nothing happens") implies what was expected.
_EXPECTED = re.compile(r"\bexpect|\bshould\b|\binstead\b|\bactual|\bsupposed to\b|\brather than\b|\bused to\b|"
                       r"\b(?:does|do|is|are|was|were|can|wo|did)(?:n't| not)\b|\bcannot\b|\bnothing happens\b|"
                       r"\bfails? to\b|\bnot found\b|\bwrong\b|\bincorrect|\bcrash|\berror\b|\bexception\b", re.I)
_FAILURE = re.compile(r"\berror|\bexception|\bcrash|\btraceback|\bpanic|\bsegfault|\bfail", re.I)
_LOG = re.compile(r"traceback \(most recent call last\)|^[ \t]+at \S+\(|^[ \t]*(?:error|fatal|warning|exception)\b"
                  r"[^\n]*:|\b\w+(?:error|exception)\b\s*:|^[ \t]*(?:\[|\d{2}:\d{2})", re.I | re.M)
_USE_CASE = re.compile(r"\buse[- ]?cases?\b|\bbecause\b|\bso that\b|\bin order to\b|\b(?:i|we) (?:need|want|would "
                       r"like|often|have to|currently)\b|\bwould (?:allow|help|make|let|save|enable)\b|\bcurrently\b|"
                       r"\bworkaround\b|\bmotivation\b|\bproblem\b|\buseful\b|\bfor example\b|\be\.g\.", re.I)
_DOC_PLACE = re.compile(r"https?://|\.(?:md|rst|txt|html)\b|\bpage\b|\bsection\b|\bchapter\b|\breadme\b", re.I)

MIN_WORDS = 8  # fewer words than this in the body says almost nothing
MAX_BODY = 8_000  # characters of an issue body read: enough for any template, and it bounds the work
MAX_TITLE = 256  # GitHub's own limit on an issue title
MAX_ANSWERS = 8_000  # characters of the reporter's later comments read, all together
MAX_ANSWER_COUNT = 10  # the reporter's latest comments read


@dataclass(frozen=True)
class Markdown:
    """An issue body split into what its author wrote, code blocks, template comments and headings."""

    prose: str
    code: tuple[tuple[str, str], ...]  # (info string, text) of each fenced block
    comments: tuple[str, ...]
    headings: tuple[str, ...]


def split_markdown(body: str) -> Markdown:
    """Split a Markdown body; HTML comments (template instructions) and code fences leave the prose."""
    text = (body or "")[:MAX_BODY].replace("\r\n", "\n")
    comments = tuple(m.group(1) for m in _COMMENT.finditer(text))
    text = _COMMENT.sub(" ", text)
    code = tuple((m.group(2).strip().lower(), m.group(3)) for m in _FENCE.finditer(text))
    prose = _FENCE.sub(" ", text)
    headings = tuple(h for h in (_heading(m) for m in _HEADING.finditer(prose)) if h)
    return Markdown(prose, code, comments, headings)


def _heading(mark: re.Match[str]) -> str:
    """A heading's text: an ATX heading without its closing hashes, or a bold line."""
    return (mark.group(1) if mark.group(1) is not None else mark.group(2) or "").strip(" \t#")


def bounded(issue: IssueText) -> IssueText:
    """The issue as far as it is read: title, body and the reporter's answers cut to what analysis looks at."""
    answers = bounded_answers(issue.answers)
    if len(issue.title) <= MAX_TITLE and len(issue.body) <= MAX_BODY and answers == issue.answers:
        return issue
    return replace(issue, title=issue.title[:MAX_TITLE], body=issue.body[:MAX_BODY], answers=answers)


def bounded_answers(answers: tuple[str, ...]) -> tuple[str, ...]:
    """The latest answers that fit MAX_ANSWERS characters together, oldest first (the latest is cut to fit)."""
    kept: list[str] = []
    room = MAX_ANSWERS
    for answer in reversed(answers[-MAX_ANSWER_COUNT:]):
        if room <= 0:
            break
        kept.append(answer[-room:] if len(answer) > room else answer)
        room -= len(kept[-1])
    return tuple(reversed(kept))


def reported(issue: IssueText) -> list[Markdown]:
    """The body and each of the reporter's answers, split into Markdown parts."""
    return [split_markdown(text) for text in (issue.body, *bounded_answers(issue.answers))]


def _sections(prose: str) -> dict[str, str]:
    """Heading → the text under it, with template placeholders removed."""
    sections: dict[str, str] = {}
    marks = list(_HEADING.finditer(prose))
    for mark, following in zip(marks, marks[1:] + [None]):
        end = following.start() if following else len(prose)
        heading = _heading(mark).lower()
        sections[heading] = _PLACEHOLDER.sub("", prose[mark.end():end]).strip()
    return sections


def written(prose: str) -> str:
    """What the reporter actually wrote: no template headings or placeholders."""
    return _PLACEHOLDER.sub("", _HEADING.sub(" ", prose))


def project_name(issue: IssueText) -> str:
    """The repository name from the issue's URL, or a neutral stand-in."""
    match = _REPO.search(issue.url or "")
    return match.group(1) if match else "the project"


# What can be missing, and the question that asks the reporter for it.
ASK = {
    "version": "Which version of {project} are you running (release number or commit), and on which operating "
               "system?",
    "steps to reproduce": "What are the exact steps to reproduce the problem, ideally a minimal example we can run?",
    "expected vs actual behaviour": "What did you expect to happen, and what happened instead?",
    "error output or logs": "Could you paste the full error message or stack trace, and any relevant log output?",
    "use case": "What problem would this solve for you: can you describe the use case or the workflow it would "
                "improve?",
    "what was tried": "What have you tried so far, and what happened when you did?",
    "goal and what was tried": "What are you trying to achieve, and what have you tried so far?",
    "documentation page": "Which page or section of the documentation is this about (a link would help)?",
}


def _gaps(issue: IssueText, category: str) -> list[str]:
    """What an issue of `category` leaves out, most important first."""
    issue = bounded(issue)
    docs = reported(issue)
    said = "\n".join(written(doc.prose) for doc in docs)
    filled = " ".join(heading for doc in docs for heading, text in _sections(doc.prose).items() if text)
    text = f"{issue.title}\n{said}"
    has_code = any(body.strip() for doc in docs for _, body in doc.code)
    few_words = len(said.split()) < MIN_WORDS and not has_code
    gaps = []
    if category == "bug":
        if not (_VERSION.search(_URL.sub(" ", text)) or "version" in filled):
            gaps.append("version")
        if few_words or not (_STEPS.search(said) or has_code or re.search(r"reproduc|steps", filled)):
            gaps.append("steps to reproduce")
        if few_words or not (_EXPECTED.search(text) or re.search(r"expect|actual|current", filled)):
            gaps.append("expected vs actual behaviour")
        if _FAILURE.search(text) and not (has_code or _LOG.search(said) or re.search(r"log|trace|output", filled)):
            gaps.append("error output or logs")
    elif category == "feature":
        if few_words or not (_USE_CASE.search(said) or re.search(r"motivation|use case|problem|why", filled)):
            gaps.append("use case")
    elif category == "question":
        if few_words:
            gaps.append("what was tried" if issue.title.rstrip().endswith("?") else "goal and what was tried")
        if _FAILURE.search(text) and not (has_code or _LOG.search(said)):
            gaps.append("error output or logs")
    elif category == "documentation" and not _DOC_PLACE.search(text):
        gaps.append("documentation page")
    return gaps


def missing_information(issue: IssueText, category: str) -> list[tuple[str, str]]:
    """(what is missing, the question to ask the reporter) for what an issue of `category` lacks."""
    project = project_name(issue)
    return [(gap, ASK[gap].format(project=project)) for gap in _gaps(issue, category)][:MAX_QUESTIONS]


def completeness(issue: IssueText, missing: list[tuple[str, str]]) -> str:
    """complete, partial or insufficient, from what is missing."""
    if not missing:
        return "complete"
    docs = reported(bounded(issue))
    words = sum(len(written(doc.prose).split()) for doc in docs)
    if len(missing) >= 3 or (words < MIN_WORDS and not any(doc.code for doc in docs)):
        return "insufficient"
    return "partial"
