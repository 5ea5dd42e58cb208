"""The maintainer guide's worked example, made from a demo run (pure): what changes from run to run (spec ids,
commit SHAs, times) replaced by fixed stand-ins, and Markdown pages whose marked sections are filled with it.

A page marks a generated section with a pair of comments; only what lies between them is rewritten:

    <!-- demo:spec-triage -->
    ````markdown
    …
    ````
    <!-- /demo:spec-triage -->
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

DAY = "2026-03-02"  # the date every spec id and time of the example carries
MOMENT = f"{DAY}T09:30:00Z"
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"

_SPEC_ID = re.compile(r"\b\d{4}-\d{2}-\d{2}-([0-9a-z]{3})-[0-9a-z]{3}\b")
_STAMP = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_MINUTE = re.compile(r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}\b")  # chant's `## Approval Discussion` lines
_HEX = re.compile(r"\b[0-9a-f]{7,40}\b")
_MARKED = re.compile(r"<!-- demo:([a-z0-9-]+) -->\n.*?<!-- /demo:\1 -->", re.S)


@dataclass(frozen=True)
class Section:
    """One generated part of the guide: the text shown, the fence's info string, and a line above the block
    (the file's path, for a file)."""

    text: str
    info: str = "text"
    caption: str = ""


def shown(section: Section) -> str:
    """What lies between a section's markers: its caption line, if any, and the fenced text."""
    return (f"{section.caption}\n\n" if section.caption else "") + fenced(section)


def fenced(section: Section) -> str:
    """The section as a fenced code block, the fence longer than any run of backticks inside."""
    longest = max((len(run) for run in re.findall(r"`+", section.text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{section.info}\n{section.text.rstrip()}\n{fence}"


def _suffix(seq: str) -> str:
    digest = hashlib.sha1(f"{DAY}-{seq}".encode()).digest()
    return "".join(_BASE36[byte % 36] for byte in digest[:3])


def normalise(sections: Mapping[str, Section], commits: Sequence[str]) -> dict[str, Section]:
    """The sections with spec ids, commit SHAs and times replaced by stand-ins that do not change between runs.

    A spec id keeps its sequence number (chant's order) on the example's day; each commit (a full SHA in
    `commits`, or a prefix of one of at least 7 characters) becomes the same stand-in wherever it appears,
    numbered by where it first appears; every time becomes the example's moment.
    """
    stand_ins: dict[str, str] = {}

    def commit(match: re.Match[str]) -> str:
        token = match.group(0)
        full = next((sha for sha in commits if sha.startswith(token)), None)
        if full is None:
            return token
        if full not in stand_ins:
            stand_ins[full] = hashlib.sha1(f"example commit {len(stand_ins) + 1}".encode()).hexdigest()
        return stand_ins[full][:len(token)]

    out = {}
    for name, section in sections.items():
        texts = []
        for text in (section.text, section.caption):
            text = _STAMP.sub(MOMENT, text)
            text = _MINUTE.sub(MOMENT.replace("T", " ")[:16], text)
            text = _SPEC_ID.sub(lambda m: f"{DAY}-{m.group(1)}-{_suffix(m.group(1))}", text)
            texts.append(_HEX.sub(commit, text))
        out[name] = Section(texts[0], section.info, texts[1])
    return out


def fill(page: str, sections: Mapping[str, Section]) -> str:
    """The page with every marked section rewritten. Raises KeyError naming a section the run did not make."""
    def put(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in sections:
            raise KeyError(name)
        return f"<!-- demo:{name} -->\n{shown(sections[name])}\n<!-- /demo:{name} -->"

    return _MARKED.sub(put, page)


def marked(page: str) -> list[str]:
    """The names of the page's marked sections, in order."""
    return [match.group(1) for match in _MARKED.finditer(page)]


def document(sections: Mapping[str, Section]) -> str:
    """Every section under its name, marked: a page of its own, ready to be filled again."""
    return "".join(f"## {name}\n\n<!-- demo:{name} -->\n{shown(section)}\n<!-- /demo:{name} -->\n\n"
                   for name, section in sections.items())
