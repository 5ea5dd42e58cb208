"""Which deliveries become work (pure): the job kind and the key that serialises work on one issue."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


HANDLED = {
    "issues": {"opened", "reopened", "edited", "labeled", "closed"},
    "issue_comment": {"created", "edited"},
    "installation": {"created"},
    "installation_repositories": {"added"},
    "check_suite": {"completed"},
    "check_run": {"completed"},
    "pull_request": {"closed", "synchronize"},
}
_WORK_BRANCH = re.compile(r"chant/issue-([1-9][0-9]{0,9})")


@dataclass(frozen=True)
class Plan:
    """A delivery worth storing: the job kind and the key that serialises work on one issue."""

    kind: str
    key: str
    installation_id: int | None


def is_bot(user: dict[str, Any] | None) -> bool:
    return bool(user) and (user.get("type") == "Bot" or str(user.get("login", "")).endswith("[bot]"))


def _mentions_command(body: str | None) -> bool:
    return bool(body) and any(line.lstrip(" ").startswith("/") for line in body.splitlines())


def work_issue(event: str, data: dict[str, Any]) -> int | None:
    """The issue whose branch (`chant/issue-N`) a check or pull request delivery is about, if any."""
    if event == "pull_request":
        branches = [((data.get("pull_request") or {}).get("head") or {}).get("ref")]
    else:
        item = data.get(event) or {}
        suite = item.get("check_suite") or item if event == "check_run" else item
        branches = [suite.get("head_branch")] + [((p or {}).get("head") or {}).get("ref")
                                                  for p in (item.get("pull_requests") or [])[:5]]
    for branch in branches:
        match = _WORK_BRANCH.fullmatch(branch) if isinstance(branch, str) else None
        if match:
            return int(match.group(1))
    return None


def plan(event: str, data: dict[str, Any]) -> Plan | None:
    """The job for a delivery, or None when chantbot has nothing to do with it (answered 200)."""
    action = data.get("action")
    if action not in HANDLED.get(event, ()):
        return None
    installation = (data.get("installation") or {}).get("id")
    repo = (data.get("repository") or {}).get("full_name", "")
    if event == "installation" or event == "installation_repositories":
        return Plan("event", f"installation:{installation}", installation)
    if event in ("check_suite", "check_run", "pull_request"):
        number = work_issue(event, data)
        return Plan("event", f"{repo}#{number}", installation) if number else None
    issue = data.get("issue") or {}
    if issue.get("pull_request"):
        return None
    if event == "issue_comment":
        comment = data.get("comment") or {}
        if is_bot(comment.get("user")):
            return None
        labels = {label.get("name") for label in issue.get("labels", [])}
        answers_questions = (comment.get("user", {}).get("login") == issue.get("user", {}).get("login")
                             and action == "created")
        if not _mentions_command(comment.get("body")) and not (answers_questions and labels):
            return None  # no command and not a reporter's answer: costs no GitHub request
    if event == "issues" and action == "labeled" and is_bot(data.get("sender")):
        return None
    return Plan("event", f"{repo}#{issue.get('number')}", installation)

