"""Slash-command grammar, markdown-aware: a command is a `/name args` line outside code, quotes and comments.

Edits run only the commands they added (`added`), so editing a comment never re-runs an old command.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from bot.markdown import CodeSpans

MAX_BODY = 65_536  # GitHub's limit on a comment body: anything longer is not a comment GitHub sent
MAX_PER_COMMENT = 10  # commands one comment may run; a flood of them would flood the model and GitHub


@dataclass(frozen=True)
class Command:
    """One command line: its name (lower-case, no slash), its whitespace-split arguments, and the line as written."""

    name: str
    args: tuple[str, ...]
    line: str


# Up to 3 spaces, a slash, a name, then whitespace or the end: `/usr/bin`, `/ priority` and `/p:x` are prose.
_COMMAND = re.compile(r" {0,3}/([A-Za-z][A-Za-z0-9_-]*)(?=\s|$)(.*)")
_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_QUOTE = re.compile(r" {0,3}>")


def _indent(line: str) -> int:
    """Columns of leading whitespace (a tab reaches the next multiple of 4)."""
    lead = line[: len(line) - len(line.lstrip(" \t"))]
    return len(lead.expandtabs(4))


def _strip_comments(line: str) -> tuple[str, bool]:
    """The line without its HTML comments, and whether a comment is still open at its end.

    A code span or a comment, whichever starts first, hides the other: `<!--` inside a code span
    is text. One pass: the next comment is looked for again only once the scan has passed it.
    """
    if "<!--" not in line:
        return line, False
    spans = CodeSpans(line)
    visible, pos, opening = [], 0, line.find("<!--")
    while True:
        if 0 <= opening < pos:
            opening = line.find("<!--", pos)
        span = spans.first_from(pos)
        if opening < 0:
            visible.append(line[pos:])
            return "".join(visible), False
        if span is not None and span[0] < opening:  # a code span: keep it, look after it
            visible.append(line[pos:span[1]])
            pos = span[1]
            continue
        visible.append(line[pos:opening])
        end = line.find("-->", opening + 4)
        if end < 0:
            return "".join(visible), True
        pos = end + 3


def parse(body: str) -> list[Command]:
    """The commands in a comment body, in order of appearance.

    Lines inside fenced code (``` or ~~~), indented code, block quotes and HTML comments are not commands.
    An unclosed fence or comment runs to the end of the body. Unknown names are parsed too: the
    registry decides what they mean. A body longer than GitHub allows is read up to that length.
    """
    found: list[Command] = []
    fence: tuple[str, int] | None = None  # the open fence's character and length
    in_comment = False
    in_paragraph = False  # an indented line continues a paragraph instead of starting code
    for line in body[:MAX_BODY].replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if fence is not None:
            char, length = fence
            stripped = line.strip()
            if _indent(line) < 4 and len(stripped) >= length and stripped == char * len(stripped):
                fence = None
            continue
        if in_comment:
            end = line.find("-->")
            if end < 0:
                continue
            line, in_comment = line[end + 3:], False
        if not line.strip():
            in_paragraph = False
            continue
        if _indent(line) >= 4 and not in_paragraph:
            continue  # indented code
        opener = _FENCE_OPEN.match(line)
        if opener and not (opener.group(1)[0] == "`" and "`" in opener.group(2)):
            fence, in_paragraph = (opener.group(1)[0], len(opener.group(1))), False
            continue
        in_paragraph = True
        if _QUOTE.match(line):
            continue
        text, in_comment = _strip_comments(line)
        match = _COMMAND.match(text)
        if match:
            found.append(Command(match.group(1).lower(), tuple(match.group(2).split()), text.strip()))
    return found


def once_each(commands: list[Command]) -> list[Command]:
    """Each distinct command (name and arguments) once, at its last place in the comment.

    Every command sets a state (a label, the issue's state, a spec) or reports one, so running it
    again changes nothing; keeping the last place keeps what a sequence like `/close`, `/reopen`,
    `/close` leaves behind.
    """
    last = {(c.name, c.args): i for i, c in enumerate(commands)}
    return [c for i, c in enumerate(commands) if last[(c.name, c.args)] == i]


def added(old_body: str, new_body: str) -> list[Command]:
    """Commands of `new_body` that `old_body` did not have (a multiset difference on name and arguments)."""
    before = Counter((c.name, c.args) for c in parse(old_body))
    new: list[Command] = []
    for command in parse(new_body):
        key = (command.name, command.args)
        if before[key]:
            before[key] -= 1
        else:
            new.append(command)
    return new
