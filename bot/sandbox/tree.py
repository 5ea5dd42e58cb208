"""A throwaway copy of a work tree from GitHub's tarball plus a run's writes, made without trusting the archive."""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass
from typing import Iterator, Mapping

# What counts as a dependency file (its basename, at any depth): setup is cached by their hashes.
DEPENDENCY_FILES = (
    "pyproject.toml", "setup.py", "setup.cfg", "requirements*.txt", "constraints*.txt", "Pipfile", "Pipfile.lock",
    "poetry.lock", "uv.lock", "pdm.lock", "pylock*.toml", "package.json", "package-lock.json", "yarn.lock",
    "pnpm-lock.yaml", "Cargo.lock", "go.sum", "Gemfile.lock", "composer.lock",
)
MAX_MEMBERS = 200_000
MAX_TREE_BYTES = 2 * 1024**3  # what one tarball may expand to
MAX_PATH = 1024


class TreeError(Exception):
    """The archive or the overlay cannot be laid out (too large, malformed)."""


@dataclass(frozen=True)
class Tree:
    """A laid-out copy: its folder, the files in it and the hashes of its dependency files."""

    root: str
    files: frozenset[str]
    dependencies: Mapping[str, str]  # path → sha256 of the content


def is_dependency(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in DEPENDENCY_FILES)


def safe_path(name: str) -> str | None:
    """The relative path a tree entry may have, or None when it may not be laid out."""
    if not name or len(name) > MAX_PATH or "\0" in name or name.startswith("/") or "\\" in name:
        return None
    parts = name.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts) or parts[0] == ".git":
        return None
    return "/".join(parts)


def _members(archive: bytes) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo, str]]:
    """The archive's members below its one top folder, with their checked relative paths."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for count, member in enumerate(tar):
                if count >= MAX_MEMBERS:
                    raise TreeError(f"the archive has more than {MAX_MEMBERS} entries")
                top, sep, rest = member.name.partition("/")
                path = safe_path(rest) if sep and top not in ("", ".", "..") else None
                if path is not None:
                    yield tar, member, path
    except (tarfile.TarError, EOFError, OSError) as error:
        raise TreeError(f"the archive cannot be read: {error}") from error


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dependency_hashes(archive: bytes) -> dict[str, str]:
    """Path → sha256 of each dependency file in the archive, without laying the tree out."""
    found: dict[str, str] = {}
    for tar, member, path in _members(archive):
        if member.isfile() and is_dependency(path) and member.size <= 16 * 1024 * 1024:
            handle = tar.extractfile(member)
            if handle is not None:
                found[path] = _sha(handle.read())
    return found


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _write(full: str, data: bytes, mode: int) -> None:
    fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _has_symlink_parent(path: str, links: set[str]) -> bool:
    parts = path.split("/")
    return any("/".join(parts[:i]) in links for i in range(1, len(parts)))


def lay_out(archive: bytes, overlay: Mapping[str, str], root: str) -> Tree:
    """Extract the archive's tree into the empty folder `root` and lay the overlay over it.

    Nothing is written outside `root` or through a symlink: members are regular files, folders and
    symlinks only; symlinks are made last, and any whose target resolves outside the tree is removed,
    so a committed link to a host file resolves to nothing in the copy."""
    os.makedirs(root, mode=0o755, exist_ok=True)
    root = os.path.realpath(root)
    files: set[str] = set()
    links: dict[str, str] = {}
    total = 0
    for tar, member, path in _members(archive) if archive else ():
        full = os.path.join(root, path)
        if _has_symlink_parent(path, set(links)):
            continue
        try:
            if member.isdir():
                os.makedirs(full, mode=0o755, exist_ok=True)
            elif member.isfile():
                total += member.size
                if total > MAX_TREE_BYTES:
                    raise TreeError(f"the tree is larger than {MAX_TREE_BYTES // 1024**2} MiB")
                os.makedirs(os.path.dirname(full), mode=0o755, exist_ok=True)
                handle = tar.extractfile(member)
                _write(full, handle.read() if handle else b"", 0o755 if member.mode & 0o111 else 0o644)
                files.add(path)
            elif member.issym():
                links[path] = member.linkname
        except (NotADirectoryError, FileExistsError, IsADirectoryError):
            continue  # a path that collides with another entry: the first one stays
    for path, target in links.items():
        full = os.path.join(root, path)
        try:
            os.makedirs(os.path.dirname(full), mode=0o755, exist_ok=True)
            os.symlink(target, full)
        except OSError:
            continue
    removed = True
    while removed:  # a link through a removed link may now point elsewhere: check until none moves
        removed = False
        for path in list(links):
            full = os.path.join(root, path)
            if not _inside(root, os.path.realpath(full)):
                os.unlink(full)
                del links[path]
                files.discard(path)
                removed = True
    for path, text in overlay.items():
        checked = safe_path(path)
        if checked is None:
            raise TreeError(f"the written path {path[:100]!r} cannot be laid out")
        full = os.path.join(root, checked)
        if os.path.islink(full):
            os.unlink(full)
        parent = os.path.realpath(os.path.dirname(full))
        if not _inside(root, parent):
            raise TreeError(f"the written path {path[:100]!r} leads outside the tree")
        os.makedirs(parent, mode=0o755, exist_ok=True)
        target = os.path.join(parent, os.path.basename(full))
        if os.path.isdir(target) and not os.path.islink(target):
            raise TreeError(f"the written path {path[:100]!r} is a folder in the tree")
        _write(target, text.encode("utf-8"), 0o644)
        files.add(checked)
    dependencies = {}
    for path in sorted(files):
        if is_dependency(path):
            full = os.path.join(root, path)
            if os.path.isfile(full) and not os.path.islink(full):
                with open(full, "rb") as handle:
                    dependencies[path] = _sha(handle.read())
    return Tree(root, frozenset(files), dependencies)


def hand_over(root: str, uid: int, gid: int) -> None:
    """Make every entry under `root` (itself included) the sandbox user's, without following links."""
    if os.geteuid() != 0 or (uid, gid) == (os.geteuid(), os.getegid()):
        return
    os.lchown(root, uid, gid)
    for folder, dirs, names, fd in os.fwalk(root, follow_symlinks=False):
        for name in dirs + names:
            os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)


def read_regular(path: str, limit: int) -> bytes | None:
    """At most `limit` bytes of a regular file the sandbox wrote (None when it is not one: a link, a pipe…)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(limit + 1)
