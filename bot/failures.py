"""What a failure means (pure): whether retrying can help, and what to tell a maintainer in plain words.

Failure comments never show exception text: it can hold request details, tokens in URLs, or
whatever a server chose to answer. They name the step that failed and what usually fixes it.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3

import aiohttp
from gidgethub import BadRequest, GitHubBroken, HTTPException, RateLimitExceeded, RedirectionException

from bot.store import StoreError

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
REQUEST = "chantbot_request"  # attribute the GitHub client sets on an HTTP error: (method, url)
_ISSUE = re.compile(r"/repos/[^/]+/[^/]+/issues/\d+(/|$)")  # an issue or what hangs off it (labels, comments)

# (method or "*", path pattern, what chantbot was doing), first match wins.
_STEPS: tuple[tuple[str, re.Pattern[str], str], ...] = tuple((m, re.compile(p), what) for m, p, what in (
    ("POST", r"/issues/\d+/comments$", "post a comment on the issue"),
    ("PATCH", r"/issues/comments/\d+$", "edit its comment on the issue"),
    ("GET", r"/issues/\d+/comments", "read the issue's comments"),
    ("POST", r"/issues/comments/\d+/reactions$", "react to the comment"),
    ("POST", r"/issues/\d+/labels$", "add labels to the issue"),
    ("DELETE", r"/issues/\d+/labels/", "remove a label from the issue"),
    ("GET", r"/issues/\d+/labels", "read the issue's labels"),
    ("POST", r"/labels$", "create a label in the repository"),
    ("GET", r"/labels", "read the repository's labels"),
    ("PATCH", r"/issues/\d+$", "close or reopen the issue"),
    ("GET", r"/issues/\d+$", "read the issue"),
    ("GET", r"/issues(\?|$)", "read the repository's issues"),
    ("GET", r"/collaborators/[^/]+/permission$", "look up a person's access to the repository"),
    ("GET", r"/contents/", "read a file from the repository"),
    ("*", r"/git/", "commit spec files to the specs branch"),
    ("POST", r"/access_tokens$", "sign in as the App's installation"),
))


def step_of(method: str, url: str) -> str:
    """What chantbot was doing when it sent `method url`, in words."""
    path = url.split("://", 1)[-1].partition("/")[2]
    path = "/" + path.split("?", 1)[0] + ("?" if "?" in path else "")
    for wanted, pattern, what in _STEPS:
        if wanted in ("*", method.upper()) and pattern.search(path):
            return what
    return "call the GitHub API"


def _status(exc: BaseException) -> int | None:
    return int(exc.status_code) if isinstance(exc, HTTPException) else None


def _request(exc: BaseException) -> tuple[str, str]:
    method, url = getattr(exc, REQUEST, None) or ("", "")
    return method, url


def is_permanent(exc: BaseException) -> bool:
    """Whether the same request can only fail again: retrying it later would only repeat the failure.

    404 and 410 on an issue (deleted, or the App lost access), 301 (moved: a transferred issue or
    a renamed repository), and 422 on a write (GitHub found the request itself invalid). A 404
    elsewhere may be GitHub catching up with a write it just took, so it is retried.
    """
    status = _status(exc)
    if status == 301 or isinstance(exc, RedirectionException):
        return True
    method, url = _request(exc)
    if status in (404, 410):
        return _ISSUE.search(url.split("?", 1)[0]) is not None
    return status == 422 and method.upper() in WRITE_METHODS


def describe(exc: BaseException) -> str:
    """One or two sentences a maintainer can act on; never the exception's own text."""
    status = _status(exc)
    method, url = _request(exc)
    step = step_of(method, url) if method else "call the GitHub API"
    if isinstance(exc, RateLimitExceeded):
        return (f"GitHub's API rate limit for this installation ran out when chantbot tried to {step}. "
                "It resets within the hour.")
    if isinstance(exc, GitHubBroken):
        return (f"GitHub kept answering with server errors ({status}) when chantbot tried to {step}; "
                "this is usually temporary.")
    if status == 401:
        return (f"GitHub did not accept chantbot's credentials when it tried to {step} (401). The App's "
                "installation may be suspended, or its private key may have been replaced.")
    if status == 403:
        return (f"GitHub refused to let chantbot {step} (403 Forbidden). The App may lack a permission on "
                "this repository (issues and contents need write access), or GitHub asked it to slow down.")
    if status in (301, 404, 410):
        return (f"GitHub no longer has what chantbot needed to {step} ({status}): it was deleted or moved, "
                "or the App lost access to the repository.")
    if status == 422:
        return (f"GitHub rejected what chantbot tried to {step} as invalid (422 Validation Failed)"
                + _validation_detail(exc) + "." + _HINTS_422.get(step, ""))
    if isinstance(exc, BadRequest):
        return f"GitHub answered {status} when chantbot tried to {step}."
    if isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)):
        return "chantbot could not reach GitHub (a network error or a timeout); this is usually temporary."
    if isinstance(exc, (sqlite3.Error, StoreError)):
        return "chantbot's database was not available; the operator's log has the details."
    return INTERNAL


INTERNAL = "An internal error stopped chantbot; the operator's log has the details."


def is_internal(exc: BaseException) -> bool:
    """Whether the failure is none of GitHub's, the network's or the database's: a bug, whose
    traceback the operator's log needs."""
    return describe(exc) == INTERNAL


_HINTS_422 = {
    "add labels to the issue": " Check the label names in `.github/chantbot.yml`.",
    "create a label in the repository": " Check the label names in `.github/chantbot.yml`.",
    "commit spec files to the specs branch": " Check `specs_branch` in `.github/chantbot.yml`: the branch may be "
                                             "protected.",
}
_WORD = re.compile(r"^[a-z_]{1,40}$")


def _validation_detail(exc: BaseException) -> str:
    """GitHub's own field and code names (`name: invalid`), never free text from the answer."""
    errors = getattr(exc, "errors", None)
    if not isinstance(errors, list):
        return ""
    details = [f"{e.get('field')}: {e.get('code')}" for e in errors[:3] if isinstance(e, dict)
               and _WORD.match(str(e.get("field", ""))) and _WORD.match(str(e.get("code", "")))]
    return f" ({'; '.join(details)})" if details else ""
