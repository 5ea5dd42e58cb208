"""Neutralises untrusted text (issue text, model output) before chantbot posts it.

Posted text must never ping anyone but the reporter, never contain a line that reads as a slash
command, and never carry raw HTML.
"""

from __future__ import annotations

import re

_MENTION = re.compile(r"(?<![\w`/.@-])@([A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:/[A-Za-z0-9_.-]+)?)")
_COMMAND_LINE = re.compile(r"^(\s*(?:[>*+-]\s*)*)/", re.M)
_WORD_JOINER = "\u2060"


def neutralize(text: str, *, allow: str | None = None) -> str:
    """Return `text` safe to post: HTML escaped, mentions defused (except `allow`), no command lines."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"(?i)javascript:", "javascript&#58;", text)

    def defuse(match: re.Match[str]) -> str:
        if allow and match.group(1).lower() == allow.lower():
            return match.group(0)
        return "@" + _WORD_JOINER + match.group(1)

    text = _MENTION.sub(defuse, text)
    return _COMMAND_LINE.sub(lambda m: m.group(1) + "\\/", text)


def one_line(text: str, limit: int = 200) -> str:
    """Untrusted text squeezed onto one line (titles in headings, list items, tables)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
