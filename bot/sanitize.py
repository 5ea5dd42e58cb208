"""Neutralises untrusted text (issue text, model output) before chantbot posts it.

Posted text must never ping anyone but the reporter, never contain a line that reads as a slash
command, never carry raw HTML, never carry a link or image that leads out of the repository, and
never hide or reorder what it says with bidi or invisible control characters. Everything here
runs in linear time: callers cut text to what they show before calling, and no pattern can
backtrack over the same characters twice.
"""

from __future__ import annotations

import re

from bot.markdown import CodeSpans

_WORD_JOINER = "\u2060"

# Bidi embeddings, overrides and isolates, marks, zero-width and other invisible format characters,
# Unicode tags (invisible ASCII look-alikes), and control characters other than tab and newline.
_INVISIBLE = ([0x061C, 0x00AD, 0x180E, 0x200B, 0x200E, 0x200F, 0xFEFF, 0xFFF9, 0xFFFA, 0xFFFB, 0x7F]
              + list(range(0x202A, 0x202F)) + list(range(0x2060, 0x2070)) + list(range(0xE0000, 0xE0080))
              + [c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)] + list(range(0x80, 0xA0)))
_REMOVE = dict.fromkeys(_INVISIBLE)
_REMOVE.update({0x2028: "\n", 0x2029: "\n"})

# A link or image (kept only when it points into the repository), a bare URL GitHub would link,
# or a mention. Bounded repetitions and negated classes: each start position costs O(1) amortised.
_TOKEN = re.compile(
    r"(?P<link>!?\[(?P<text>[^\[\]\n]{0,500})\]\((?P<dest>[^\s()<>`\\\[\]]{1,2000})\))"
    r"|(?P<url>(?i:https?://|www\.)[^\s<>`]+)"
    r"|(?<![A-Za-z0-9_])@(?P<login>[A-Za-z0-9][A-Za-z0-9-]{0,38}(?:/[A-Za-z0-9_.-]{1,100})?)")
_URL_TAIL = "?!.,:;*_~'\")]"
# (text, replacement) pairs, `&` first; replace() chains run several times faster than translate() tables.
# A `]` right before `(` or `:` is what makes a link, an image or a link definition: only those are escaped,
# so `text[:-3]` still reads as written.
_PLAIN = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("](", "&#93;("), ("]:", "&#93;:"))
_ONE_LINE_PLAIN = _PLAIN + (("`", "&#96;"), ("\\", "&#92;"))
_JAVASCRIPT = re.compile(r"(?i)javascript:")
_COMMAND_LINE = re.compile(r"^([ \t>*+-]*)/", re.M)


def clean(text: str) -> str:
    """`text` without bidi controls, invisible format characters and control characters."""
    return text.translate(_REMOVE).replace("\r\n", "\n").replace("\r", "\n")


def repo_url_of(issue_url: str) -> str | None:
    """The repository's web address from one of its issues' (`…/owner/repo/issues/N`), else None."""
    base, sep, _ = (issue_url or "").rpartition("/issues/")
    return base if sep and base.count("/") >= 4 else None


def _inside(url: str, repo_url: str | None) -> bool:
    """Whether `url` points into the repository (no dot segment may climb out of it)."""
    if not repo_url:
        return False
    lowered, root = url.lower(), repo_url.lower().rstrip("/")
    if lowered != root and not lowered.startswith(root + "/"):
        return False
    segments = lowered[len(root):].split("?", 1)[0].split("#", 1)[0].replace("%2e", ".").split("/")
    return "\\" not in url and not any(segment in (".", "..") for segment in segments)


def neutralize(text: str, *, allow: str | None = None, repo_url: str | None = None) -> str:
    """Return `text` safe to post.

    HTML is escaped, mentions are defused (except `allow`), no line reads as a command, links and
    images are shown as text unless they point into `repo_url`, and bare URLs outside it are shown
    as code, so GitHub does not link them. Text on one line keeps its code spans verbatim (GitHub
    shows them as code, so nothing in them is active; a span holding `|` is escaped instead, as a
    table cell would split there) and comes out self-contained: every backtick and backslash
    outside a span is escaped, so no span can open in it and close in the text around it.
    Text on several lines is escaped everywhere, code included.
    """
    text = clean(text)
    if "\n" in text:
        out = _plain(text, _PLAIN, allow, repo_url)
    else:
        parts, pos = [], 0
        for start, end in CodeSpans(text).all():
            if "|" in text[start:end]:  # a table cell would split there: shown escaped, not as code
                continue
            parts += [_plain(text[pos:start], _ONE_LINE_PLAIN, allow, repo_url), text[start:end]]
            pos = end
        parts.append(_plain(text[pos:], _ONE_LINE_PLAIN, allow, repo_url))
        out = "".join(parts)
    return _COMMAND_LINE.sub(lambda m: m.group(1) + "\\/", out)


def _escaped(chunk: str, table: tuple[tuple[str, str], ...]) -> str:
    for char, entity in table:
        if char in chunk:
            chunk = chunk.replace(char, entity)
    return _JAVASCRIPT.sub("javascript&#58;", chunk) if ":" in chunk else chunk


def _plain(text: str, table: tuple[tuple[str, str], ...], allow: str | None, repo_url: str | None) -> str:
    """Text outside code: escaped, with links, bare URLs and mentions made harmless."""
    if len(text) < 2:
        return _escaped(text, table)
    parts, pos = [], 0

    def escaped(chunk: str) -> str:
        return _escaped(chunk, table)

    for match in _TOKEN.finditer(text):
        parts.append(escaped(text[pos:match.start()]))
        pos = match.end()
        if match.group("link") is not None:
            if _inside(match.group("dest"), repo_url):
                parts.append(("!" if match.group(0)[0] == "!" else "") + "["
                             + _plain(match.group("text"), table, allow, repo_url) + "](" + match.group("dest") + ")")
            else:
                parts.append(_plain(match.group(0)[:-1], table, allow, repo_url) + ")")
        elif match.group("url") is not None:
            url = match.group("url")
            kept = url.rstrip(_URL_TAIL) or url
            tail = url[len(kept):]
            parts.append((kept if _inside(kept, repo_url) else f"`{kept}`") + escaped(tail))
        else:
            login = match.group("login")
            if allow and login.lower() == allow.lower():
                parts.append(match.group(0))
            else:
                parts.append("@" + _WORD_JOINER + login)
    parts.append(escaped(text[pos:]))
    return "".join(parts)


def one_line(text: str, limit: int = 200) -> str:
    """Untrusted text squeezed onto one line (titles in headings, list items, tables), at most `limit` long."""
    flat = " ".join((text or "")[: limit * 8 + 64].split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def safe_line(text: str, limit: int, *, allow: str | None = None, repo_url: str | None = None) -> str:
    """Untrusted text cut to `limit` on one line first, then neutralised: the way to show it in a comment."""
    return neutralize(one_line(text, limit), allow=allow, repo_url=repo_url)


def code_span(text: str, limit: int) -> str:
    """Untrusted text shown as one inline code span: nothing in code is active, and it cannot close early."""
    return "`" + one_line(clean((text or "")[: limit * 8 + 64]), limit).replace("`", "'") + "`"
