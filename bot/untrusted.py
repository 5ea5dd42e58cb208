"""Untrusted text inside a model's prompt: fenced in tags that the text itself can neither open nor close."""

from __future__ import annotations

import re

from bot.issuetext import IssueText
from bot.questions import bounded_answers

MAX_BODY = 12_000  # characters of the issue body sent to the model
MAX_TITLE = 256  # GitHub's own limit on an issue title
# Possessive quantifiers: `<` followed by a long run of spaces is one scan, not one per space.
TAG = re.compile(r"<(?=\s*+/?\s*+(?:issue|title|body|candidates?|stage_output|diff|reporter_comments|comment|"
                 r"documentation|file|checks|rejection)\b)", re.IGNORECASE)


def defuse(text: str) -> str:
    """Untrusted text cannot open or close the tags that fence it."""
    return TAG.sub("&lt;", text)


def issue_fence(issue: IssueText) -> str:
    """The issue as an <issue> element whose text cannot close or open the tags around it."""
    body = issue.body or ""
    if len(body) > MAX_BODY:
        body = body[:MAX_BODY] + f"\n[body truncated: {len(issue.body) - MAX_BODY} more characters]"
    association = re.sub(r"[^A-Z_]", "", issue.author_association.upper()) or "NONE"
    parts = [f'<issue number="{issue.number}" author_association="{association}">',
             f"<title>{defuse(issue.title[:MAX_TITLE])}</title>", f"<body>\n{defuse(body)}\n</body>"]
    answers = bounded_answers(issue.answers)
    if answers:  # the reporter's comments since the triage: their answers to the questions asked
        parts += ["<reporter_comments>"] + [f"<comment>\n{defuse(text)}\n</comment>" for text in answers] \
            + ["</reporter_comments>"]
    return "\n".join(parts + ["</issue>"])
