"""Research without a model: a dossier of evidence for the maintainer who will do the research (or run
`chant work`): the files and lines a stack trace names that exist in the repository, where the issue's
identifiers appear in the code, recent commits to those files, and related issues."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field

from gidgethub.abc import GitHubAPI

from bot.issuetext import Candidate, IssueText
from bot.stages.documents import code, line
from bot.stages.tools import Snapshot, Workspace

MAX_TEXT = 20_000  # characters of the issue read (before any regex)
MAX_LOCATIONS = 12
MAX_IDENTIFIERS = 8
HITS_PER_IDENTIFIER = 5
MAX_FILES_FOR_HISTORY = 5

# Python `File "a/b.py", line 12`, JavaScript `at f (src/a.js:10:5)`, and the plain `path/to/file.ext:123`.
_PY_FRAME = re.compile(r'File "([^"\n]{1,300})", line (\d{1,7})')
_PATH_LINE = re.compile(r"(?<![\w/.-])((?:[\w.-]{1,100}/){0,12}[\w.-]{1,100}\.[A-Za-z]{1,6}):(\d{1,7})")
_IDENTIFIER = re.compile(r"`([A-Za-z_][\w.]{2,80})[(`]|\b([a-z]+_[a-z0-9_]{2,60}|[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]{1,60})\b")


@dataclass(frozen=True)
class Dossier:
    """What chantbot found, each item checked against the repository."""

    locations: tuple[tuple[str, int, str], ...] = ()  # (repository path, line, the line's text)
    hits: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (identifier, `path:line: text` lines)
    commits: tuple[tuple[str, str, str], ...] = ()  # (path, short sha, first line of the message)
    related: tuple[Candidate, ...] = field(default=())


def trace_locations(text: str) -> list[tuple[str, int]]:
    """(path, line) pairs named by stack traces or `path:line` references in the text, in order, once each."""
    text = text[:MAX_TEXT]
    found = [(m.group(1), int(m.group(2))) for m in _PY_FRAME.finditer(text)]
    found += [(m.group(1), int(m.group(2))) for m in _PATH_LINE.finditer(text)]
    return list(dict.fromkeys(found))


def identifiers(text: str) -> list[str]:
    """Names from the issue that look like code: code spans, snake_case and CamelCase words."""
    names = [m.group(1) or m.group(2) for m in _IDENTIFIER.finditer(text[:MAX_TEXT])]
    return list(dict.fromkeys(n.split(".")[-1] for n in names if n))[:MAX_IDENTIFIERS]


def resolve(path: str, snapshot: Snapshot) -> str | None:
    """The repository file a trace's path means (traces carry absolute or site-packages prefixes)."""
    path = path.replace("\\", "/").lstrip("./")
    if path in snapshot.files:
        return path
    parts = path.split("/")
    for start in range(1, len(parts)):
        suffix = "/".join(parts[start:])
        matches = [p for p in snapshot.files if p == suffix or p.endswith("/" + suffix)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            return None  # ambiguous
    return None


def gather(issue: IssueText, snapshot: Snapshot, related: list[Candidate]) -> Dossier:
    """Everything that needs no GitHub request: trace locations, code-search hits, related issues (pure)."""
    text = f"{issue.title}\n{issue.body}"
    locations = []
    for path, number in trace_locations(text):
        real = resolve(path, snapshot)
        lines = snapshot.files.get(real or "", "").splitlines()
        if real and 1 <= number <= len(lines):
            locations.append((real, number, lines[number - 1].strip()[:200]))
        if len(locations) >= MAX_LOCATIONS:
            break
    workspace = Workspace(snapshot)
    hits = []
    for name in identifiers(text):
        result = workspace.search_code(name)
        found = tuple(row for row in result.text.splitlines() if not result.is_error and not row.startswith(
            ("no match", "[")))[:HITS_PER_IDENTIFIER]
        if found:
            hits.append((name, found))
    return Dossier(tuple(locations), tuple(hits), (), tuple(related))


async def with_history(gh: GitHubAPI, repo: str, dossier: Dossier) -> Dossier:
    """The dossier with the latest commits that touched the files it names."""
    files = list(dict.fromkeys([p for p, _, _ in dossier.locations]
                               + [hit.split(":", 1)[0] for _, rows in dossier.hits for hit in rows]))
    commits = []
    for path in files[:MAX_FILES_FOR_HISTORY]:
        query = urllib.parse.urlencode({"path": path, "per_page": 3})
        async for commit in gh.getiter(f"/repos/{repo}/commits?{query}"):
            message = ((commit.get("commit") or {}).get("message") or "").splitlines() or [""]
            commits.append((path, str(commit.get("sha", ""))[:7], message[0][:120]))
            if len([c for c in commits if c[0] == path]) >= 3:
                break
    return Dossier(dossier.locations, dossier.hits, tuple(commits), dossier.related)


def render(issue: IssueText, dossier: Dossier, spec_id: str) -> str:
    """The dossier as the research document (`.chant/research/issue-N-dossier.md`)."""
    parts = [f"# Research dossier: issue #{issue.number}: {line(issue.title, 120)}",
             "No model is configured, so no agent researched this issue. chantbot gathered the evidence below "
             f"from the repository; the research spec `{spec_id}` stays pending for a maintainer or for "
             f"`chant work {spec_id}`.",
             "## Code named by stack traces"]
    parts.append("\n".join(f"- {code(f'{p}:{n}', 320)}: {code(text, 200)}" for p, n, text in dossier.locations)
                 or "- (no stack trace names a file of this repository)")
    parts.append("## Where the issue's identifiers appear")
    parts.append("\n\n".join(f"- {code(name, 80)}\n" + "\n".join(f"  - {code(row, 320)}" for row in rows)
                             for name, rows in dossier.hits) or "- (none of the issue's names found in the code)")
    parts.append("## Recent commits to those files")
    parts.append("\n".join(f"- {code(p, 200)}: {code(sha, 12)} {line(msg, 120)}" for p, sha, msg in dossier.commits)
                 or "- (none found)")
    parts.append("## Related issues")
    parts.append("\n".join(f"- #{c.number} ({c.state}): {line(c.title, 120)}" for c in dossier.related)
                 or "- (none found)")
    return "\n\n".join(parts) + "\n"
