"""An issue as chantbot reads it, and an earlier issue that may be the same one (untrusted data, plain values)."""

from __future__ import annotations

from dataclasses import dataclass


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
