"""What people see of the stages (pure): the one workflow comment per issue, and the pull request's text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from bot.sanitize import one_line, safe_line
from bot.workflow import BY_NAME

WORKFLOW_MARKER = "<!-- chantbot:workflow -->"
REVIEW_MARKER = "<!-- chantbot:review -->"
INTRO = ("**chantbot workflow** for this issue: each stage is a chant spec; code goes to one branch and draft pull "
         "request, where the repository's own CI judges it (code for an issue that someone without write access "
         "shaped first waits for a maintainer). Nothing is merged without a person.")
APPROVAL_NOTE = ("Merging is yours: chantbot never merges or approves. Make the commit status `chantbot/approval` a "
                 "required check in the default branch's protection rule, with the chantbot App as its source, so "
                 "that only a change a maintainer approved with `/approve` can be merged; chantbot passes it on "
                 "everyone else's pull requests.")


@dataclass(frozen=True)
class Row:
    """One stage's line: its state and what to show next to it."""

    stage: str
    state: str  # queued | running | waiting for CI | done | reproduced | not reproduced | unverified | failed | …
    detail: str = ""  # chantbot's own words (a reason, how to retry)
    links: tuple[tuple[str, str], ...] = ()  # (text, url)
    turns: int = 0
    usd: float = 0.0


def _link(text: str, url: str) -> str:
    return f"[{text}]({one_line(url, 500).replace(' ', '%20').replace(')', '%29')})" if url else text


def stage_table(rows: Sequence[Row]) -> str:
    """One line per stage, in workflow order: its state, links, turns and cost."""
    order = list(BY_NAME)
    lines = ["| stage | state | links | turns | cost |", "| --- | --- | --- | --- | --- |"]
    for row in sorted(rows, key=lambda r: order.index(r.stage) if r.stage in order else len(order)):
        title = BY_NAME[row.stage].title if row.stage in BY_NAME else row.stage
        state = f"**{row.state}**" + (f": {safe_line(row.detail, 300)}" if row.detail else "")
        links = " · ".join(_link(text, url) for text, url in row.links) or "—"
        cost = f"${row.usd:.4f}" if row.turns else "—"
        lines.append(f"| {title} | {state.replace('|', '/')} | {links} | {row.turns or '—'} | {cost} |")
    return "\n".join(lines)


def workflow_comment(rows: Sequence[Row], *, footer: str = "", held: str = "") -> str:
    """The workflow comment: chantbot's hidden marker, what it is, the stage table, and what is held."""
    parts = [WORKFLOW_MARKER + "\n" + INTRO, stage_table(rows)] + [p for p in (held, footer) if p]
    return "\n\n".join(parts) + "\n"


def _code(text: str, limit: int = 200) -> str:
    return "`" + one_line(text, limit).replace("`", "'") + "`"


def verdict_words(verdict: dict | None) -> str:
    """The sandbox's verdict in one line: its kind, the test that decided it and the first line of its failure."""
    if not verdict:
        return "not judged in a sandbox (CI judges it once released)"
    test = f" {_code(str(verdict.get('test') or ''))}" if verdict.get("test") else ""
    line = safe_line(str(verdict.get("line") or ""), 300)
    return f"{safe_line(str(verdict.get('kind') or ''), 40)}{test}" + (f": {line}" if line else "")


def held_detail(verdict: dict | None) -> str:
    """A held stage's line: why it waits, and the sandbox's verdict."""
    return f"held until a maintainer's `/ok-to-test` (the diff is below); the sandbox's verdict: {verdict_words(verdict)}"


HELD_LIMIT = 60_000  # characters of held diffs in the workflow comment


def held_block(batches: Sequence[dict]) -> str:
    """Every held batch: what it is, its verdict, and the diff a maintainer reads before `/ok-to-test` (the newest
    in full, older ones by their files when the comment has no room for them)."""
    if not batches:
        return ""
    count = "1 batch" if len(batches) == 1 else f"{len(batches)} batches"
    parts = [f"**Held for a maintainer's `/ok-to-test`** ({count}): code an agent wrote for an issue "
             "that someone without write access shaped. Nothing of it is on a branch and no CI has run it. Read "
             "the diff, then comment `/ok-to-test` to push it to the issue's branch and draft pull request."]
    room = HELD_LIMIT
    for batch in reversed(list(batches)):
        head = (f"Batch {int(batch.get('batch', 0))} ({safe_line(str(batch.get('stage', '')), 20)}): "
                f"{verdict_words(batch.get('verdict'))}")
        diff = str(batch.get("diff") or "")
        if len(diff) > room:
            files = ", ".join(_code(p) for p in sorted(batch.get("files") or {}))
            diff = f"Files: {files[:2000]} (the diff does not fit here)."
        room -= len(diff)
        parts.insert(1, f"{head}\n\n{diff}")
    return "\n\n".join(parts)


def footer(approval: dict | None, chain: dict | None) -> str:
    """The approval gate and how the chain ended, under the stages."""
    lines = []
    if approval:
        if approval.get("status") == "pending":
            lines.append(f"**Approval gate** (`chantbot/approval`): pending: new commits "
                         f"({str(approval.get('sha', ''))[:7]}) since the last decision; `/approve` again.")
        else:
            lines.append(f"**Approval gate** (`chantbot/approval`): {approval.get('status')} by "
                         f"`{one_line(str(approval.get('by', '')), 40)}` on {str(approval.get('sha', ''))[:7]}.")
    if chain:
        pull = f"#{int(chain.get('pull') or 0)}"
        lines.append(f"**Merged** in {pull}: the chain is complete." if chain.get("state") == "merged"
                     else f"**Abandoned**: pull request {pull} was closed without merging.")
    return "\n\n".join(lines)


def pull_title(number: int, title: str) -> str:
    return f"#{number}: {safe_line(title, 100)}"


def pull_body(number: int, *, spec_links: Sequence[tuple[str, str]], fixes: bool, notes: str = "") -> str:
    """The draft pull request's description: the issue, the spec chain, and the approval gate."""
    link = f"Fixes #{number}" if fixes else f"For #{number} (a reproduction so far; no fix yet)"
    chain = "\n".join(f"- {_link(text, url)}" for text, url in spec_links) or "- (no specs yet)"
    parts = [link, "chantbot's research-first workflow for this issue. The spec chain:", chain]
    if notes:
        parts.append(safe_line(notes, 500))
    parts.append(APPROVAL_NOTE)
    return "\n\n".join(parts) + "\n"
