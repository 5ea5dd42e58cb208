"""An issue as chantbot reads it, an earlier issue that may be the same one, and the file paths a report names
(untrusted data, plain values)."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_SCANNED = 20_000  # characters of a report searched for file paths
# A relative file path (`docs/usage.md`, `src/a/b.py`): bounded parts, so a long run of word characters is one pass.
_PATH = re.compile(r"(?<![\w/.-])((?:[\w.-]{1,100}/){0,12}[\w-][\w.-]{0,99}\.[A-Za-z]{1,6})(?![\w/])")


@dataclass(frozen=True)
class IssueText:
    """The parts of an issue triage reads. All of it is untrusted input."""

    number: int
    title: str
    body: str
    author: str
    author_association: str = "NONE"
    url: str = ""
    answers: tuple[str, ...] = ()  # the reporter's comments since the triage, oldest first


@dataclass(frozen=True)
class Candidate:
    """A possible duplicate found in the repository's issue index."""

    number: int
    title: str
    body: str = ""
    state: str = "open"
    score: float = 0.0


def named_paths(text: str, limit: int = 10) -> list[str]:
    """Relative file paths the text names (`docs/usage.md`, `README.md`), in order, once each."""
    found = []
    for match in _PATH.finditer(text[:MAX_SCANNED]):
        path = match.group(1).lstrip("./")
        if path and ".." not in path.split("/") and path not in found:
            found.append(path)
            if len(found) >= limit:
                break
    return found
