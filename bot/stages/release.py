"""Release notes from the spec chain: the completed implementations of a version's issues, gathered into one
draft release, breaking changes first. No model is needed; the facts come from the specs."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from gidgethub import BadRequest
from gidgethub.abc import GitHubAPI

from bot import specs
from bot.context import Context
from bot.sanitize import one_line, safe_line
from bot.store import Run

MARKER = "<!-- chantbot:release-notes -->"
ORDER = (("breaking", "Breaking changes"), ("feature", "Features"), ("fix", "Fixes"), ("deprecation", "Deprecations"))
MAX_ISSUES = 300


@dataclass(frozen=True)
class Entry:
    """One issue's release note, as its completed implementation spec recorded it."""

    number: int
    title: str
    kind: str
    note: str
    pull: int | None = None


def body(version: str, entries: list[Entry]) -> str:
    """The draft release's description (pure)."""
    parts = [MARKER, f"Release notes for {one_line(version, 40)}, gathered by chantbot from the completed "
                     "implementation specs of the issues labelled or milestoned with this version."]
    for kind, heading in ORDER:
        group = sorted((e for e in entries if e.kind == kind), key=lambda e: e.number)
        if not group:
            continue
        lines = []
        for e in group:
            links = f"#{e.number}" + (f", #{e.pull}" if e.pull else "")
            lines.append(f"- {safe_line(e.note, 600)} ({links})")
        parts.append(f"## {heading}\n\n" + "\n".join(lines))
    return "\n\n".join(parts) + "\n"


async def issues_of(gh: GitHubAPI, repo: str, version: str) -> list[int]:
    """Issues that carry the label `version` or sit in the milestone `version` (open or closed)."""
    found: set[int] = set()
    query = urllib.parse.urlencode({"labels": version, "state": "all", "per_page": 100})
    async for issue in gh.getiter(f"/repos/{repo}/issues?{query}"):
        if not issue.get("pull_request"):
            found.add(int(issue["number"]))
        if len(found) >= MAX_ISSUES:
            break
    async for milestone in gh.getiter(f"/repos/{repo}/milestones?state=all&per_page=100"):
        if milestone.get("title") == version:
            query = urllib.parse.urlencode({"milestone": milestone["number"], "state": "all", "per_page": 100})
            async for issue in gh.getiter(f"/repos/{repo}/issues?{query}"):
                if not issue.get("pull_request"):
                    found.add(int(issue["number"]))
            break
    return sorted(found)[:MAX_ISSUES]


async def entries(ctx: Context, repo: str, numbers: list[int]) -> list[tuple[Entry, Run]]:
    out = []
    for number in numbers:
        done = [r for r in await ctx.store.runs_for_issue(repo, number)
                if r.stage == "implement" and r.status == "done" and (r.data.get("submission") or {}).get("release_notes")]
        if not done:
            continue
        run = done[-1]
        submission = run.data["submission"]
        out.append((Entry(number, run.data["issue"]["title"], submission.get("change_type", "fix"),
                          str(submission["release_notes"]), (run.data.get("pull") or {}).get("number")), run))
    return out


def rejection(run: Run) -> dict[str, Any] | None:
    """The maintainer's rejection of an implementation, when it is the last decision its spec records (chant's
    `approval`); None when the change is approved, pending, or the spec cannot be read."""
    try:
        meta, _ = specs.parse_front_matter(str(run.data.get("spec_text") or ""))
    except ValueError:
        return None
    approval = meta.get("approval")
    return approval if isinstance(approval, dict) and approval.get("status") == "rejected" else None


async def publish_draft(gh: GitHubAPI, repo: str, version: str, text: str) -> dict[str, Any]:
    """Create the draft release `version`, or update chantbot's draft of it (a published release is left alone)."""
    async for release in gh.getiter(f"/repos/{repo}/releases?per_page=100"):
        if release.get("tag_name") == version:
            if not release.get("draft"):
                raise ValueError(f"{version} is already published; chantbot does not change a published release")
            return await gh.patch(f"/repos/{repo}/releases/{release['id']}", data={"body": text})
    try:
        return await gh.post(f"/repos/{repo}/releases", data={"tag_name": version, "name": version, "body": text,
                                                              "draft": True})
    except BadRequest as exc:
        if int(exc.status_code) == 422:
            raise ValueError(f"GitHub refused a draft release {version} (is the tag name valid?)") from None
        raise
