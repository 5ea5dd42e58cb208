"""Git objects and refs of one simulated repository, with real SHA-1 object ids."""

from __future__ import annotations

import collections
import hashlib
import time
from typing import Any


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

    def put_commit(self, tree: str, parents: list[str], message: str, who: str, when: float) -> str:
        person = {"name": who, "email": f"{who}@users.noreply.github.com", "date": iso(when)}
        stamp = f"{who} <{person['email']}> {int(when)} +0000"
        raw = f"tree {tree}\n" + "".join(f"parent {p}\n" for p in parents)
        raw += f"author {stamp}\ncommitter {stamp}\n\n{message}"
        sha = git_sha("commit", raw.encode())
        self.commits[sha] = {"tree": tree, "parents": list(parents), "message": message,
                             "author": person, "committer": person}
        return sha

    def commit_files(self, branch: str, files: dict[str, str], message: str, who: str, when: float) -> str:
        """Commit a whole file map on top of a branch and move the branch; returns the commit sha."""
        head = self.refs.get(f"heads/{branch}")
        sha = self.put_commit(self.put_tree(files), [head] if head else [], message, who, when)
        self.refs[f"heads/{branch}"] = sha
        return sha

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
