"""Which deliveries become work (pure): the job kind and the key that serialises work on one issue.

A delivery is handled only when it has the shape the handlers rely on (`SHAPES`): every field
they read is there with the right type, so no handler meets a `null` where it expects an object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jsonschema

from bot import jobs

PUSHED = "pushed"  # the action a `push` delivery, which has none, is handled as
HANDLED = {
    "issues": {"opened", "reopened", "edited", "labeled", "closed", "deleted"},
    "issue_comment": {"created", "edited"},
    "installation": {"created"},
    "installation_repositories": {"added"},
    "check_suite": {"completed"},
    "check_run": {"completed"},
    "pull_request": {"opened", "reopened", "closed", "synchronize"},
    "push": {PUSHED},  # a push has no action: it stands for one here
}
_WORK_BRANCH = re.compile(r"chant/issue-([1-9][0-9]{0,9})")
MAX_DEPTH = 64  # GitHub's payloads nest about ten levels deep
NEEDS = {("issues", "labeled"): ("label",)}  # fields one action needs beyond its event's


class Malformed(ValueError):
    """A delivery of a handled event whose body lacks what handling it needs (answered 400)."""


@dataclass(frozen=True)
class Plan:
    """A delivery worth storing: the job kind and the key that serialises work on one issue."""

    kind: str
    key: str
    installation_id: int | None


# Names that become parts of API paths: no slashes, no dot segments (GitHub Enterprise logins may hold `_`).
_USER = {"type": "object", "required": ["login"],
         "properties": {"login": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}(\[bot\])?$"},
                        "type": {"type": "string"}}}
_REPO = {"type": "object", "required": ["full_name"],
         "properties": {"id": {"type": "integer"}, "full_name": {"type": "string", "maxLength": 200,
                                      "pattern": r"^(?!\.\.?/)[A-Za-z0-9_.-]+/(?!\.\.?$)[A-Za-z0-9_.-]+$"}}}
_LABEL = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
_TEXT = {"type": ["string", "null"]}
_ISSUE = {"type": "object", "required": ["number", "user"], "properties": {
    "number": {"type": "integer", "minimum": 1}, "title": _TEXT, "body": _TEXT, "user": _USER,
    "labels": {"type": "array", "items": _LABEL}, "state": {"type": "string"}, "html_url": {"type": "string"},
    "author_association": {"type": "string"}, "pull_request": {"type": ["object", "null"]}}}
_ENVELOPE = {"action": {"type": "string"}, "sender": _USER,
             "installation": {"type": "object", "required": ["id"],
                              "properties": {"id": {"type": "integer", "minimum": 1}}}}
_BODY_CHANGE = {"type": "object", "properties": {"body": {"type": "object", "properties": {"from": _TEXT}}}}
_REPOS = {"type": "array", "items": _REPO}
_HEAD = {"type": "object", "properties": {"ref": {"type": "string"}, "sha": {"type": "string"},
                                          "repo": {"type": ["object", "null"]}}}
_PULLS = {"type": "array", "items": {"type": "object", "properties": {"head": _HEAD}}}
_SUITE = {"type": "object", "properties": {"head_sha": {"type": "string"}, "head_branch": _TEXT,
                                           "pull_requests": _PULLS}}


def _shape(required: list[str], **properties: Any) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"type": "object", "required": ["action", "sender", "installation",
                                                                            *required],
                                            "properties": {**_ENVELOPE, **properties}})


SHAPES: dict[str, jsonschema.Draft202012Validator] = {
    "issues": _shape(["repository", "issue"], repository=_REPO, issue=_ISSUE, changes=_BODY_CHANGE,
                     label=_LABEL),
    "issue_comment": _shape(["repository", "issue", "comment"], repository=_REPO, issue=_ISSUE,
                            changes=_BODY_CHANGE, comment={
                                "type": "object", "required": ["id", "user"],
                                "properties": {"id": {"type": "integer", "minimum": 1}, "user": _USER,
                                               "body": _TEXT}}),
    "installation": _shape([], repositories=_REPOS),
    "installation_repositories": _shape([], repositories_added=_REPOS),
    "check_suite": _shape(["repository", "check_suite"], repository=_REPO, check_suite=_SUITE),
    "check_run": _shape(["repository", "check_run"], repository=_REPO, check_run={
        "type": "object", "properties": {"head_sha": {"type": "string"}, "check_suite": _SUITE,
                                         "pull_requests": _PULLS}}),
    "push": jsonschema.Draft202012Validator({
        "type": "object", "required": ["ref", "after", "repository", "installation", "sender"],
        "properties": {"ref": {"type": "string", "maxLength": 300}, "after": {"type": "string", "maxLength": 64},
                       "repository": {**_REPO, "properties": {**_REPO["properties"],
                                                              "default_branch": {"type": "string"}}},
                       "installation": _ENVELOPE["installation"], "sender": _USER}}),
    "pull_request": _shape(["repository", "pull_request"], repository=_REPO, pull_request={
        "type": "object", "required": ["number"], "properties": {"number": {"type": "integer", "minimum": 1},
                                                                 "head": _HEAD, "merged": {"type": ["boolean", "null"]}}}),
}


def is_bot(user: dict[str, Any] | None) -> bool:
    return isinstance(user, dict) and (user.get("type") == "Bot" or str(user.get("login", "")).endswith("[bot]"))


def _mentions_command(body: str | None) -> bool:
    return bool(body) and any(line.lstrip(" ").startswith("/") for line in body.splitlines())


def own_head(data: dict[str, Any]) -> bool:
    """Whether a pull request delivery's head is a branch of the repository itself (not a fork's).

    Compared by id, by full name when an id is missing; a deleted fork (`head.repo` null) is not the repository.
    """
    repository = data.get("repository") or {}
    head_repo = (((data.get("pull_request") or {}).get("head") or {}).get("repo"))
    if not isinstance(head_repo, dict):
        return False
    ids = head_repo.get("id"), repository.get("id")
    if all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        return ids[0] == ids[1]
    name = head_repo.get("full_name")
    return isinstance(name, str) and name.lower() == str(repository.get("full_name", "")).lower()


def work_issue(event: str, data: dict[str, Any]) -> int | None:
    """The issue whose branch (`chant/issue-N`) a check or pull request delivery is about, if any.

    A pull request counts only when its head is that branch of the repository itself: a fork may name a
    branch `chant/issue-N` too.
    """
    if event == "pull_request":
        branches = [((data.get("pull_request") or {}).get("head") or {}).get("ref")] if own_head(data) else []
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


def too_deep(data: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON data nests deeper than `limit` (checked without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values() if isinstance(v, (dict, list)))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value if isinstance(v, (dict, list)))
    return False


def check(event: str, data: dict[str, Any]) -> None:
    """Raise Malformed when a delivery of a handled event and action lacks a field its handler reads."""
    validator = SHAPES.get(event)
    if validator is None or _action(event, data) not in HANDLED[event]:
        return
    error = next(validator.iter_errors(data), None)
    missing = [name for name in NEEDS.get((event, _action(event, data)), ()) if name not in data]
    if error is None and missing:
        raise Malformed(f"{event}.{_action(event, data)}: {missing[0]} is missing")
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the body"
        raise Malformed(f"{event}.{_action(event, data)}: {where} is missing or has the wrong type"[:200])


def _action(event: str, data: dict[str, Any]) -> Any:
    return PUSHED if event == "push" else data.get("action")


def plan(event: str, data: dict[str, Any]) -> Plan | None:
    """The job for a delivery, or None when chantbot has nothing to do with it (answered 200).

    Raises Malformed when chantbot handles the event but the body lacks what handling needs.
    """
    action = _action(event, data)
    if not isinstance(action, str) or action not in HANDLED.get(event, ()):
        return None
    check(event, data)
    if event == "push":  # the default branch moved: its configuration may have changed
        branch = (data["repository"].get("default_branch") or "")
        if data["ref"] != f"refs/heads/{branch}":
            return None
        return Plan(jobs.EVENT, f"push:{data['repository']['full_name']}", data["installation"]["id"])
    installation = data["installation"]["id"]
    if event == "installation" or event == "installation_repositories":
        return Plan(jobs.EVENT, f"installation:{installation}", installation)
    repo = data["repository"]["full_name"]
    if event in ("check_suite", "check_run", "pull_request"):
        number = work_issue(event, data)
        if number is None and event == "pull_request" and action != "closed":
            # someone else's pull request: chantbot answers the approval check for it (not an agent's change)
            number = data["pull_request"]["number"]
        return Plan(jobs.EVENT, f"{repo}#{number}", installation) if number else None
    issue = data["issue"]
    if issue.get("pull_request"):
        return None
    if event == "issue_comment":
        comment = data["comment"]
        if is_bot(comment["user"]):
            return None
        labels = {label["name"] for label in issue.get("labels") or []}
        answers_questions = comment["user"]["login"] == issue["user"]["login"] and action == "created"
        if not _mentions_command(comment.get("body")) and not (answers_questions and labels):
            return None  # no command and not a reporter's answer: costs no GitHub request
    if event == "issues" and action == "labeled" and is_bot(data["sender"]):
        return None
    return Plan(jobs.EVENT, f"{repo}#{issue['number']}", installation)
