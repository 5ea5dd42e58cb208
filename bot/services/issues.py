"""An issue as chantbot reads it from a delivery or the API (untrusted text, kept as data)."""

from __future__ import annotations

from typing import Any

from gidgethub import sansio

from bot.issuetext import IssueText


def repo_of(event: sansio.Event) -> str:
    return event.data["repository"]["full_name"]


def issue_text(issue: dict[str, Any]) -> IssueText:
    return IssueText(number=int(issue["number"]), title=issue.get("title") or "", body=issue.get("body") or "",
                     author=(issue.get("user") or {}).get("login", ""),
                     author_association=issue.get("author_association", "NONE"), url=issue.get("html_url", ""))


def label_names(issue: dict[str, Any]) -> list[str]:
    return [label["name"] for label in issue.get("labels") or [] if isinstance(label, dict) and "name" in label]
