"""The agent's repository tools over a snapshot of the work branch plus the run's own writes (pure).

Repository content is read, never executed. Every path is checked before use: relative, no `..`,
nothing under `.git/` or `.github/`, writes only where the stage allows, sizes bounded. A refused
call is an error result with the reason; the run goes on.
"""

from __future__ import annotations

import io
import tarfile
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Mapping

from bot.workflow import READ_TOOLS, SUBMIT_TOOL, WRITE_TOOL, path_allowed

MAX_PATH = 300
MAX_WRITE_BYTES = 256 * 1024  # one written file
MAX_OVERLAY_FILES = 40
MAX_OVERLAY_BYTES = 1024 * 1024  # everything one run writes
MAX_READ_LINES = 400  # lines one read_file answer shows
MAX_ANSWER = 40_000  # characters of any one tool answer
MAX_LINE = 400  # characters of one line in an answer
MAX_HITS = 60
MAX_LISTED = 400
MAX_QUERY = 200
MAX_SNAPSHOT_FILE = 1024 * 1024  # larger repository files are listed but not readable
MAX_SNAPSHOT_BYTES = 96 * 1024 * 1024


@dataclass(frozen=True)
class Snapshot:
    """The text files of one commit's tree (paths relative to the repository root)."""

    commit: str
    files: Mapping[str, str]
    unreadable: frozenset[str] = frozenset()  # binary or too large: listed, not readable
    archive: bytes = field(default=b"", repr=False, compare=False)  # GitHub's tarball, for the sandbox

    def lines(self, path: str) -> int | None:
        text = self.files.get(path)
        return None if text is None else text.count("\n") + (0 if text.endswith("\n") or not text else 1)


def snapshot_from_tarball(commit: str, data: bytes) -> Snapshot:
    """A snapshot from GitHub's tarball of a commit (one top folder holding the tree)."""
    files: dict[str, str] = {}
    unreadable: set[str] = set()
    total = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive:
            if not member.isfile():
                continue
            parts = member.name.split("/", 1)
            if len(parts) != 2 or not parts[1]:
                continue
            path = parts[1]
            if check_path(path) is not None:
                continue
            if member.size > MAX_SNAPSHOT_FILE or total + member.size > MAX_SNAPSHOT_BYTES:
                unreadable.add(path)
                continue
            raw = archive.extractfile(member).read()  # type: ignore[union-attr]
            if b"\0" in raw[:8192]:
                unreadable.add(path)
                continue
            total += len(raw)
            files[path] = raw.decode("utf-8", "replace")
    return Snapshot(commit, files, frozenset(unreadable), data)


def check_path(path: Any, *, folder: bool = False) -> str | None:
    """Why `path` may not be used (None when it may). `folder` allows "" for the root."""
    if not isinstance(path, str):
        return "the path must be a string"
    if path == "" and folder:
        return None
    if not path or len(path) > MAX_PATH:
        return f"the path must be 1 to {MAX_PATH} characters"
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in path) or "\\" in path:
        return "the path contains control characters or backslashes"
    if path.startswith("/"):
        return "the path must be relative to the repository root"
    parts = path.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "the path must not contain empty, '.' or '..' parts"
    if any(part.lower() == ".git" for part in parts):
        return "nothing under .git/ may be read or written"
    if parts[0].lower() == ".github":
        return "nothing under .github/ may be read or written"
    return None


@dataclass(frozen=True)
class Result:
    """What a tool call answers: text for the model, and whether the call was refused or failed."""

    text: str
    is_error: bool = False


def _clip(text: str, limit: int = MAX_ANSWER) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[answer cut at {limit} characters]"


@dataclass
class Workspace:
    """The work branch as one run sees it: the snapshot with the run's writes laid over it."""

    snapshot: Snapshot
    writes_allowed: tuple[str, ...] = ()
    overlay: dict[str, str] = field(default_factory=dict)

    def text(self, path: str) -> str | None:
        return self.overlay[path] if path in self.overlay else self.snapshot.files.get(path)

    def paths(self) -> set[str]:
        return set(self.snapshot.files) | set(self.snapshot.unreadable) | set(self.overlay)

    def call(self, name: str, args: Any) -> Result:
        """Run one tool call (`submit` is the runner's, not the workspace's)."""
        if not isinstance(args, dict):
            return Result("the tool input must be an object", True)
        if name == "list_files":
            return self.list_files(args.get("path", ""))
        if name == "read_file":
            return self.read_file(args.get("path"), args.get("start_line"), args.get("end_line"))
        if name == "search_code":
            return self.search_code(args.get("query"), args.get("path"))
        if name == WRITE_TOOL and self.writes_allowed:
            return self.write_file(args.get("path"), args.get("content"))
        known = READ_TOOLS + ((WRITE_TOOL,) if self.writes_allowed else ()) + (SUBMIT_TOOL,)
        return Result(f"there is no tool {str(name)[:60]!r} in this stage; the tools are {', '.join(known)}", True)

    def list_files(self, path: Any) -> Result:
        problem = check_path(path, folder=True)
        if problem:
            return Result(problem, True)
        prefix = path.rstrip("/") + "/" if path else ""
        entries: set[str] = set()
        for name in self.paths():
            if name.startswith(prefix):
                head, sep, _ = name[len(prefix):].partition("/")
                entries.add(head + "/" if sep else head)
        if not entries:
            return Result(f"no folder {path!r} in the repository" if path else "the repository is empty", True)
        listed = sorted(entries)
        text = "\n".join(listed[:MAX_LISTED])
        if len(listed) > MAX_LISTED:
            text += f"\n[{len(listed) - MAX_LISTED} more entries not shown]"
        return Result(text)

    def read_file(self, path: Any, start: Any = None, end: Any = None) -> Result:
        problem = check_path(path)
        if problem:
            return Result(problem, True)
        text = self.text(path)
        if text is None:
            if path in self.snapshot.unreadable:
                return Result(f"{path} is binary or larger than {MAX_SNAPSHOT_FILE // 1024} KiB", True)
            return Result(f"no file {path!r} in the repository", True)
        lines = text.splitlines()
        if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in (start, end)):
            return Result("start_line and end_line must be whole numbers", True)
        first = max(1, start or 1)
        last = min(len(lines), end or first + MAX_READ_LINES - 1, first + MAX_READ_LINES - 1)
        if lines and first > len(lines):
            return Result(f"{path} has {len(lines)} lines; start_line {first} is past the end", True)
        width = len(str(last))
        shown = [f"{n:>{width}}: {line[:MAX_LINE]}" for n, line in enumerate(lines[first - 1:last], first)]
        header = f"{path} (lines {first}-{last} of {len(lines)})" if lines else f"{path} (empty file)"
        return Result(_clip(header + "\n" + "\n".join(shown)))

    def search_code(self, query: Any, path: Any = None) -> Result:
        if not isinstance(query, str) or not query.strip() or len(query) > MAX_QUERY:
            return Result(f"the query must be plain text of 1 to {MAX_QUERY} characters", True)
        if path not in (None, ""):
            problem = check_path(path)
            if problem:
                return Result(problem, True)
        prefix = (path or "").rstrip("/")
        needle = query.lower()
        hits: list[str] = []
        more = 0
        for name in sorted(self.paths()):
            if prefix and name != prefix and not name.startswith(prefix + "/"):
                continue
            text = self.text(name)
            if text is None or needle not in text.lower():
                continue
            for number, line in enumerate(text.splitlines(), 1):
                if needle in line.lower():
                    if len(hits) < MAX_HITS:
                        hits.append(f"{name}:{number}: {line.strip()[:MAX_LINE]}")
                    else:
                        more += 1
        if not hits:
            return Result(f"no match for {query!r}" + (f" under {prefix}" if prefix else ""))
        return Result(_clip("\n".join(hits) + (f"\n[{more} more matches not shown]" if more else "")))

    def write_file(self, path: Any, content: Any) -> Result:
        problem = check_path(path)
        if problem:
            return Result(problem, True)
        if not path_allowed(path, self.writes_allowed):
            return Result(f"this stage may not write {path}; it may write: {', '.join(self.writes_allowed)}", True)
        if isinstance(content, dict) and isinstance(content.get("cut"), int):
            return Result(f"{path} would be {content['cut']} characters; one file may be at most "
                          f"{MAX_WRITE_BYTES} bytes", True)
        if not isinstance(content, str):
            return Result("content must be the whole file as text", True)
        size = len(content.encode("utf-8"))
        if size > MAX_WRITE_BYTES:
            return Result(f"{path} would be {size} bytes; one file may be at most {MAX_WRITE_BYTES} bytes", True)
        others = sum(len(t.encode("utf-8")) for p, t in self.overlay.items() if p != path)
        if others + size > MAX_OVERLAY_BYTES:
            return Result(f"this run may write at most {MAX_OVERLAY_BYTES} bytes in all", True)
        if path not in self.overlay and len(self.overlay) >= MAX_OVERLAY_FILES:
            return Result(f"this run may write at most {MAX_OVERLAY_FILES} files", True)
        if path in self.snapshot.unreadable:
            return Result(f"{path} is binary or too large to replace", True)
        existed = self.text(path) is not None
        self.overlay[path] = content
        return Result(f"{'replaced' if existed else 'created'} {path} ({size} bytes)")

    def changes(self) -> dict[str, str]:
        """The writes that differ from the snapshot (what a commit would hold)."""
        return {p: t for p, t in self.overlay.items() if self.snapshot.files.get(p) != t}


def definitions(tools: tuple[str, ...], submit_schema: dict[str, Any], submit_help: str) -> list[dict[str, Any]]:
    """The tool definitions sent to the model (names and inputs as the contract fixes them)."""
    catalogue = {
        "list_files": ("List the files and folders directly inside a folder of the repository (\"\" is the root).",
                       {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"],
                        "additionalProperties": False}),
        "read_file": (f"Read a text file, with line numbers; at most {MAX_READ_LINES} lines per call "
                      "(use start_line and end_line for longer files).",
                      {"type": "object", "properties": {"path": {"type": "string"},
                                                        "start_line": {"type": "integer", "minimum": 1},
                                                        "end_line": {"type": "integer", "minimum": 1}},
                       "required": ["path"], "additionalProperties": False}),
        "search_code": ("Search the repository for plain text (case-insensitive); answers `path:line: text` lines.",
                        {"type": "object", "properties": {"query": {"type": "string"},
                                                          "path": {"type": "string"}},
                         "required": ["query"], "additionalProperties": False}),
        "write_file": ("Write a whole file (created or replaced). chantbot commits your writes when you submit; "
                       "you cannot run anything.",
                       {"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                        "required": ["path", "content"], "additionalProperties": False}),
        "submit": (submit_help, submit_schema),
    }
    return [{"name": name, "description": catalogue[name][0], "input_schema": catalogue[name][1]}
            for name in tools]
