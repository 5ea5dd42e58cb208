"""Git objects and refs of one simulated repository, with real SHA-1 object ids."""

from __future__ import annotations

import collections
import difflib
import gzip
import hashlib
import io
import tarfile
import time
from dataclasses import dataclass, field
from typing import Any

DIFF_CONTEXT = 3  # lines of context around a change, as git and GitHub show them


def iso(ts: float | None) -> str | None:
    """A timestamp as GitHub writes it: `2024-01-31T12:00:00Z`."""
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def git_sha(kind: str, data: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(data)}\0".encode() + data).hexdigest()


class GitStore:
    """Blobs, trees, commits and refs ("heads/main" -> commit sha)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        # sha -> {"files": {path: blob sha} (flat, nested paths), "entries": [(name, "blob"|"tree", sha)]}
        self.trees: dict[str, dict[str, Any]] = {}
        self.commits: dict[str, dict[str, Any]] = {}
        self.refs: dict[str, str] = {}

    def put_blob(self, data: bytes) -> str:
        sha = git_sha("blob", data)
        self.blobs[sha] = data
        return sha

    def put_tree(self, files: dict[str, str]) -> str:
        """Store a tree and its subtrees from a flat {path: blob sha} map."""
        subdirs: dict[str, dict[str, str]] = collections.defaultdict(dict)
        entries = []
        for path, blob in files.items():
            head, _, rest = path.partition("/")
            if rest:
                subdirs[head][rest] = blob
            else:
                entries.append((head, "blob", blob))
        entries += [(name, "tree", self.put_tree(sub)) for name, sub in subdirs.items()]
        entries.sort(key=lambda e: e[0] + ("/" if e[1] == "tree" else ""))  # git's tree order
        raw = b"".join(("40000" if kind == "tree" else "100644").encode() + b" " + name.encode() + b"\0"
                       + bytes.fromhex(sha) for name, kind, sha in entries)
        sha = git_sha("tree", raw)
        self.trees[sha] = {"files": dict(files), "entries": entries}
        return sha

    def put_commit(self, tree: str, parents: list[str], message: str, who: str, when: float, *,
                   author: dict[str, str] | None = None) -> str:
        """Store a commit; `author` ({name, email}) defaults to `who`, who is always the committer."""
        committer = {"name": who, "email": f"{who}@users.noreply.github.com", "date": iso(when)}
        written = {**committer, **{k: str(v) for k, v in (author or {}).items() if k in ("name", "email")}}

        def stamp(person: dict[str, Any]) -> str:
            return f"{person['name']} <{person['email']}> {int(when)} +0000"

        raw = f"tree {tree}\n" + "".join(f"parent {p}\n" for p in parents)
        raw += f"author {stamp(written)}\ncommitter {stamp(committer)}\n\n{message}"
        sha = git_sha("commit", raw.encode())
        self.commits.setdefault(sha, {"tree": tree, "parents": list(parents), "message": message,
                                      "author": written, "committer": committer, "login": who,
                                      "time": when})
        return sha

    def commit_files(self, parent: str | None, files: dict[str, str], message: str, who: str, when: float) -> str:
        """Commit a whole file map on top of `parent` (moves no ref); returns the commit sha."""
        return self.put_commit(self.put_tree(files), [parent] if parent else [], message, who, when)

    def resolve(self, ref: str) -> str | None:
        """The commit a branch, tag, full ref or commit sha names."""
        name = ref.removeprefix("refs/")
        for candidate in (name, f"heads/{name}", f"tags/{name}"):
            if candidate in self.refs:
                return self.refs[candidate]
        return ref if ref in self.commits else None

    def files_at(self, commit: str) -> dict[str, str]:
        return self.trees[self.commits[commit]["tree"]]["files"]

    def subtree(self, commit: str, path: str) -> list[tuple[str, str, str]]:
        """Entries of the directory `path` at a commit ([] when there is no such directory)."""
        tree = self.commits[commit]["tree"]
        for part in path.split("/"):
            found = [sha for name, kind, sha in self.trees[tree]["entries"] if name == part and kind == "tree"]
            if not found:
                return []
            tree = found[0]
        return list(self.trees[tree]["entries"])

    def is_ancestor(self, old: str, new: str) -> bool:
        stack, seen = [new], set()
        while stack:
            sha = stack.pop()
            if sha == old:
                return True
            if sha not in seen and sha in self.commits:
                seen.add(sha)
                stack.extend(self.commits[sha]["parents"])
        return False

    # ------------------------------------------------------------------ history
    def history(self, head: str) -> list[str]:
        """Every commit reachable from `head`, newest first (children always before their parents)."""
        reachable = self.ancestors(head)
        order = {sha: n for n, sha in enumerate(self.commits)}  # a commit is stored after its parents
        return sorted(reachable, key=lambda sha: order[sha], reverse=True)

    def ancestors(self, head: str | None) -> set[str]:
        """`head` and every commit reachable from it."""
        stack, seen = [head] if head else [], set()
        while stack:
            sha = stack.pop()
            if sha not in seen and sha in self.commits:
                seen.add(sha)
                stack.extend(self.commits[sha]["parents"])
        return seen

    def merge_base(self, base: str, head: str) -> str | None:
        common = self.ancestors(base) & self.ancestors(head)
        return next((sha for sha in self.history(head) if sha in common), None)

    def merge_files(self, base: str, head: str) -> dict[str, str] | None:
        """The files of a three-way merge of `head` into `base`, or None when both changed a file apart."""
        ours, theirs = self.files_at(base), self.files_at(head)
        common = self.merge_base(base, head)
        ancestor = self.files_at(common) if common else {}
        merged = dict(ours)
        for path in set(theirs) | set(ancestor):
            if theirs.get(path) == ancestor.get(path):
                continue  # the head left it alone
            if ours.get(path) not in (ancestor.get(path), theirs.get(path)):
                return None
            if theirs.get(path) is None:
                merged.pop(path, None)
            else:
                merged[path] = theirs[path]
        return merged

    def between(self, base: str, head: str) -> list[str]:
        """Commits reachable from `head` but not from `base`, oldest first (what a compare lists)."""
        behind = self.ancestors(base)
        return [sha for sha in reversed(self.history(head)) if sha not in behind]

    def diff(self, old_commit: str | None, new_commit: str) -> list[FileChange]:
        """What changed between two commits (`None`: from nothing), file by file, sorted by path."""
        old = self.files_at(old_commit) if old_commit else {}
        new = self.files_at(new_commit)
        changes = []
        for path in sorted(set(old) | set(new)):
            before, after = old.get(path), new.get(path)
            if before == after:
                continue
            status = "added" if before is None else "removed" if after is None else "modified"
            changes.append(FileChange(path, status, before, after,
                                      *_patch(self.blobs.get(before or "", b""), self.blobs.get(after or "", b""))))
        return _pair_renames(changes)

    # ------------------------------------------------------------------ archives
    def archive(self, commit: str, top: str) -> bytes:
        """The commit's tree as a `.tar.gz` under one folder `top/`, as `git archive` writes it."""
        when = int(self.commits[commit]["time"])
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT,
                          pax_headers={"comment": commit}) as tar:
            folders = {top}
            for path in sorted(self.files_at(commit)):
                folders.update(f"{top}/{path.rsplit('/', n)[0]}" for n in range(1, path.count("/") + 1))
            for folder in sorted(folders):
                info = tarfile.TarInfo(folder + "/")
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o775, when
                tar.addfile(info)
            for path, sha in sorted(self.files_at(commit).items()):
                data = self.blobs[sha]
                info = tarfile.TarInfo(f"{top}/{path}")
                info.size, info.mode, info.mtime = len(data), 0o664, when
                tar.addfile(info, io.BytesIO(data))
        return gzip.compress(buffer.getvalue(), mtime=0)


@dataclass
class FileChange:
    """One file's change between two commits, with GitHub's unified `patch` (None for binary data)."""
    path: str
    status: str  # added | removed | modified | renamed
    old_sha: str | None
    new_sha: str | None
    additions: int
    deletions: int
    patch: str | None
    # (first line, last line) of each hunk, on the old ("LEFT") and the new ("RIGHT") side
    hunks: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    previous_path: str | None = None


def _text_lines(data: bytes) -> list[str] | None:
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def _patch(old: bytes, new: bytes) -> tuple[int, int, str | None, dict[str, list[tuple[int, int]]]]:
    """(additions, deletions, unified patch without file headers, hunk line ranges per side)."""
    a, b = _text_lines(old), _text_lines(new)
    if a is None or b is None:
        return 0, 0, None, {"LEFT": [], "RIGHT": []}
    out: list[str] = []
    hunks: dict[str, list[tuple[int, int]]] = {"LEFT": [], "RIGHT": []}
    additions = deletions = 0

    def line(mark: str, text: str) -> None:
        out.append(mark + text if text.endswith("\n") else f"{mark}{text}\n\\ No newline at end of file\n")

    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(DIFF_CONTEXT):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        out.append(f"@@ -{_span(i1, i2)} +{_span(j1, j2)} @@\n")
        hunks["LEFT"].append((i1 + 1, i2))
        hunks["RIGHT"].append((j1 + 1, j2))
        for tag, x1, x2, y1, y2 in group:
            if tag == "equal":
                for text in a[x1:x2]:
                    line(" ", text)
                continue
            for text in a[x1:x2]:
                line("-", text)
            for text in b[y1:y2]:
                line("+", text)
            deletions, additions = deletions + x2 - x1, additions + y2 - y1
    return additions, deletions, "".join(out).removesuffix("\n"), hunks


def _span(start: int, stop: int) -> str:
    """A hunk header's range, as `diff -u` writes it ("3", "3,4", or "2,0" for an empty range)."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start if length == 0 else start + 1},{length}"


def _pair_renames(changes: list[FileChange]) -> list[FileChange]:
    """A removed file and an added file with the same content are one rename, as GitHub reports it."""
    removed = {c.old_sha: c for c in changes if c.status == "removed"}
    out = []
    for change in changes:
        gone = removed.pop(change.new_sha, None) if change.status == "added" else None
        if gone is not None:
            change = FileChange(change.path, "renamed", gone.old_sha, change.new_sha, 0, 0, None,
                                {"LEFT": [], "RIGHT": []}, previous_path=gone.path)
            gone.status = "paired"
        out.append(change)
    return [c for c in out if c.status != "paired"]


def valid_path(path: str) -> bool:
    """Whether git accepts `path` in a tree: no empty, `.`, `..` or `.git` component."""
    return bool(path) and all(part not in ("", ".", "..") and part.lower() != ".git" for part in path.split("/"))


def locate(patch: str, side: str, line: int) -> tuple[int, str] | None:
    """Where a review comment on `line` of `side` sits in a file's patch: (diff position, diff hunk),
    or None when that line is not part of the diff. Position 1 is the line under the first `@@`."""
    lines = patch.split("\n")
    old = new = start = 0
    for index, text in enumerate(lines):
        if text.startswith("@@"):
            numbers = text.split(" ")
            old, new, start = int(numbers[1][1:].split(",")[0]), int(numbers[2][1:].split(",")[0]), index
            continue
        mark = text[:1]
        here = {"LEFT": old if mark in (" ", "-") else None, "RIGHT": new if mark in (" ", "+") else None}
        if here.get(side) == line:
            return index, "\n".join(lines[start:index + 1])
        old += mark in (" ", "-")
        new += mark in (" ", "+")
    return None
