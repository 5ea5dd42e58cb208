"""Untrusted text as chantbot posts it: no pings, no commands, no HTML, no links out, no hidden characters."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.markdown import CodeSpans
from bot.sanitize import clean, neutralize, repo_url_of, safe_line

REPO_URL = "https://github.com/acme/widgets"
MENTION = re.compile(r"(?<![A-Za-z0-9_`])@[A-Za-z0-9]")


def outside_code(text: str) -> str:
    """What GitHub renders as text rather than code, line by line."""
    out = []
    for line in text.split("\n"):
        pos = 0
        for start, end in CodeSpans(line).all():
            out.append(line[pos:start])
            pos = end
        out.append(line[pos:] + "\n")
    return "".join(out)


def test_plain_text_is_left_as_it_is():
    text = "Saving a widget crashes on Python 3.11; the traceback ends in KeyError: 'size'."
    assert neutralize(text) == text


def test_links_and_images_out_of_the_repository_are_shown_as_text():
    text = neutralize("Please [verify your account](https://evil.example/login) ![x](http://evil.example/p.png)",
                      repo_url=REPO_URL)
    assert "](http" not in text and "](" not in outside_code(text).replace("](`", "")
    assert "`https://evil.example/login`" in text and "`http://evil.example/p.png`" in text


def test_bare_urls_out_of_the_repository_are_code_not_links():
    text = neutralize("see https://evil.example/a?b=c, or www.evil.example.", repo_url=REPO_URL)
    assert text == "see `https://evil.example/a?b=c`, or `www.evil.example`."


def test_links_into_the_repository_stay_links():
    link = "[the docs](https://github.com/acme/widgets/blob/main/docs/usage.md)"
    assert neutralize(f"See {link} and https://github.com/acme/widgets/issues/3.", repo_url=REPO_URL) == \
        f"See {link} and https://github.com/acme/widgets/issues/3."


def test_a_link_that_only_looks_like_the_repository_is_text():
    for url in ("https://github.com/acme/widgets-evil/x", "https://github.com/acme/widgets/../../evil/x",
                "https://github.com/acme/widgets/%2e%2e/%2E%2E/evil", "https://github.com.evil.example/acme/widgets"):
        assert f"`{url}`" in neutralize(f"[x]({url})", repo_url=REPO_URL)


def test_bidi_and_invisible_control_characters_are_removed():
    hidden = "admin\u202eslaunch\u202c \u2066x\u2069 zero\u200bwidth \ufeffbom \x1b[31m tag\U000E0041"
    assert clean(hidden) == "adminslaunch x zerowidth bom [31m tag"
    assert not re.search("[\u202a-\u202e\u2066-\u2069\u200b\ufeff\x00-\x08\x1b\U000E0000-\U000E007F]",
                         safe_line(hidden, 200))


def test_code_on_one_line_survives_verbatim():
    text = "Run `pip install 'widgets<2' && echo @someone` then ``a ` b``."
    assert neutralize(text) == text


def test_backticks_and_backslashes_outside_code_cannot_open_a_span():
    text = neutralize("unpaired ` then <b> and \\ then `` x")
    assert CodeSpans(text).all() == [] and "<b>" not in text and "\\" not in text
    assert neutralize("a `<b> \\` c") == "a `<b> \\` c"  # a backslash is text inside code: the span is whole


def test_mentions_and_commands_are_defused():
    text = neutralize("/approve hi @everyone and @alice", allow="alice")
    assert text.startswith("\\/approve") and not MENTION.search(text.replace("@alice", ""))


def pieces(*extra: str) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(list("`\\<>@a/[]()!: \n-*&") + list(extra)), max_size=40).map("".join)


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(pieces("http://e.x", "@x", "<script>", "\u202e", "www.", "](", "``"), pieces("<img src=x>", "@y", "`` ", "\\`"))
def test_one_line_text_comes_out_inert_and_self_contained(first, second):
    a, b = safe_line(first, 200, repo_url=REPO_URL), safe_line(second, 200, repo_url=REPO_URL)
    joined = f"- {a} and {b}"
    # Each piece's code spans stay its own: nothing opens in one and closes in the text around it.
    own = [(s + 2, e + 2) for s, e in CodeSpans(a).all()]
    own += [(s + len(a) + 7, e + len(a) + 7) for s, e in CodeSpans(b).all()]
    assert CodeSpans(joined).all() == own
    text = outside_code(joined)
    assert "<" not in text and "\u202e" not in joined and not MENTION.search(text)
    assert "](" not in text and not re.search(r"(?i)(https?://|www\.)[^\s<>`]", text)
    assert not any(line.lstrip(" >*+-").startswith("/") for line in joined.split("\n"))


def test_repo_url_of_an_issue():
    assert repo_url_of("https://github.com/acme/widgets/issues/12") == REPO_URL
    assert repo_url_of("") is None and repo_url_of("https://evil.example/issues/1") is None
