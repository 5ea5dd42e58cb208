"""The slash-command parser: which lines are commands, and which commands an edit added."""

from __future__ import annotations

import pytest

from bot.commands.parser import MAX_BODY, Command, added, once_each, parse


def found(body: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(c.name, c.args) for c in parse(body)]


PRIORITY_HIGH = [("priority", ("high",))]


@pytest.mark.parametrize("body, expected", [
    # plain commands, arguments and reasons
    ("/priority high", PRIORITY_HIGH),
    ("/help", [("help", ())]),
    ("/Priority High", [("priority", ("High",))]),
    ("/reject the fix hides the real error", [("reject", ("the", "fix", "hides", "the", "real", "error"))]),
    ("/close   not   planned  ", [("close", ("not", "planned"))]),
    ("/release-notes v1.2.3", [("release-notes", ("v1.2.3",))]),
    ("/needs-info", [("needs-info", ())]),
    ("/label priority: high", [("label", ("priority:", "high"))]),
    ("Thanks for the report.\n/priority high\nMore text.", PRIORITY_HIGH),
    # several commands run in order of appearance
    ("/kind bug\n/priority high\n\n/severity cosmetic\n/research",
     [("kind", ("bug",)), ("priority", ("high",)), ("severity", ("cosmetic",)), ("research", ())]),
    ("/priority low\n/priority high", [("priority", ("low",)), ("priority", ("high",))]),
    # unknown names are still commands: the registry decides
    ("/prioirty high", [("prioirty", ("high",))]),
    ("/xyzzy", [("xyzzy", ())]),
    # leading spaces: up to 3 is a command, 4 or a tab is not
    (" /priority high", PRIORITY_HIGH),
    ("   /priority high", PRIORITY_HIGH),
    ("    /priority high", []),
    ("\t/priority high", []),
    ("text\n    /priority high", []),
    # CRLF and lone CR line endings
    ("Please:\r\n/kind bug\r\n/priority high\r\n", [("kind", ("bug",)), ("priority", ("high",))]),
    ("/kind bug\r/priority high", [("kind", ("bug",)), ("priority", ("high",))]),
    ("```\r\n/priority low\r\n```\r\n/priority high", PRIORITY_HIGH),
    # not commands: paths, a slash without a name, mid-line slashes, inline code, list items
    ("/usr/bin/python crashes", []),
    ("/etc/hosts is empty", []),
    ("/ priority high", []),
    ("/1 high", []),
    ("/priority:high", []),
    ("//priority high", []),
    ("Please run /priority high", []),
    ("`/priority high`", []),
    ("Use `/priority high` here", []),
    ("- /priority high", []),
    ("", []),
    # fenced code: ``` and ~~~, longer fences, unclosed fences
    ("```\n/priority low\n```\n/priority high", PRIORITY_HIGH),
    ("```console\n/priority low\n```\n/priority high", PRIORITY_HIGH),
    ("~~~\n/priority low\n~~~\n/priority high", PRIORITY_HIGH),
    ("````\n```\n/priority low\n```\n/kind bug\n````\n/priority high", PRIORITY_HIGH),
    ("~~~~\n~~~\n/priority low\n~~~~\n/priority high", PRIORITY_HIGH),
    ("```\n/priority low\n~~~\n/kind bug\n```\n/priority high", PRIORITY_HIGH),
    ("```\n/priority low\n```   \n/priority high", PRIORITY_HIGH),
    ("   ```\n/priority low\n   ```\n/priority high", PRIORITY_HIGH),
    ("```\n/priority low\n``` not a close\n/kind bug", []),
    ("/priority high\n```\n/priority low\n/kind bug", PRIORITY_HIGH),
    ("~~~python\n/priority low", []),
    ("```\n<!--\n```\n/priority high", PRIORITY_HIGH),
    # indented code: after a blank line or at the start, not as a paragraph continuation
    ("    /priority low\n/priority high", PRIORITY_HIGH),
    ("Example:\n\n    ```\n/priority high", PRIORITY_HIGH),
    ("text\n\n    <!--\n/priority high", PRIORITY_HIGH),
    # block quotes
    ("> /priority low\n/priority high", PRIORITY_HIGH),
    ("   > /priority low", []),
    (">/priority low", []),
    ("> quoted\n> /priority low\n\n/priority high", PRIORITY_HIGH),
    # HTML comments: single and multi-line, several per line, before a command
    ("<!-- /priority low -->\n/priority high", PRIORITY_HIGH),
    ("<!--\n/priority low\n/kind bug\n-->\n/priority high", PRIORITY_HIGH),
    ("<!-- a --> <!-- /priority low -->\n/priority high", PRIORITY_HIGH),
    ("<!-- note -->/priority high", PRIORITY_HIGH),
    ("<!-- note --> /priority high", PRIORITY_HIGH),
    ("<!-- a --><!-- b -->/priority high", PRIORITY_HIGH),
    ("<!--\nhidden\n--> /priority high", PRIORITY_HIGH),
    ("/priority high <!-- was low -->", PRIORITY_HIGH),
    ("/priority <!-- low --> high", PRIORITY_HIGH),
    ("Text <!-- starts here\n/priority low\nends here --> more\n/priority high", PRIORITY_HIGH),
    ("<!-- never closed\n/priority low", []),
    ("Write `<!--` to start a comment.\n/priority high", PRIORITY_HIGH),
    # a maintainer quoting old commands: code, quote and comment all ignored
    ("For the record, the old workaround was:\n\n```\n/priority low\n```\n\n> /priority low\n\n"
     "<!-- /priority low -->\nNo action needed.", []),
])
def test_parse(body: str, expected: list[tuple[str, tuple[str, ...]]]) -> None:
    assert found(body) == expected


def test_line_is_the_visible_command_as_written() -> None:
    assert parse("  /Priority   High <!-- hidden -->  \r\n") == [Command("priority", ("High",), "/Priority   High")]


def test_reason_keeps_its_words_in_order() -> None:
    (command,) = parse("/reject breaks the `--dry-run` flag, see #12")
    assert " ".join(command.args) == "breaks the `--dry-run` flag, see #12"


@pytest.mark.parametrize("old, new, expected", [
    # an unchanged command plus a new one: only the new one runs
    ("/priority high", "/priority high\n/kind bug", [("kind", ("bug",))]),
    # changing an argument is a new command
    ("/priority low", "/priority high", PRIORITY_HIGH),
    # a duplicated command added again counts once more
    ("/priority high", "/priority high\n/priority high", PRIORITY_HIGH),
    # text-only edits, reordering and removals run nothing
    ("/priority high\nthanks", "/priority high\nthank you!", []),
    ("/kind bug\n/priority high", "/priority high\n/kind bug", []),
    ("/kind bug\n/priority high", "/kind bug", []),
    # a command moved out of a code block becomes live
    ("```\n/priority high\n```", "/priority high", PRIORITY_HIGH),
    # a command moved into a quote is gone, not added
    ("/priority high", "> /priority high", []),
    # a first body with no commands
    ("", "/kind bug\n/priority high", [("kind", ("bug",)), ("priority", ("high",))]),
    # new commands keep the order of the new body
    ("/kind bug", "/research\n/kind bug\n/priority high", [("research", ()), ("priority", ("high",))]),
    # a reason edited is a new command
    ("/reject too slow", "/reject too slow on large inputs", [("reject", ("too", "slow", "on", "large", "inputs"))]),
])
def test_added(old: str, new: str, expected: list[tuple[str, tuple[str, ...]]]) -> None:
    assert [(c.name, c.args) for c in added(old, new)] == expected


def test_added_keeps_the_new_line_for_quoting() -> None:
    assert added("/priority high", "/priority high\n/Kind  Bug") == [Command("kind", ("Bug",), "/Kind  Bug")]


def test_once_each_keeps_each_command_at_its_last_place() -> None:
    body = "/close\n/reopen\n/close\n/help\n/priority high\n/priority low\n/priority high\n/help"
    assert [(c.name, c.args) for c in once_each(parse(body))] == [
        ("reopen", ()), ("close", ()), ("priority", ("low",)), ("priority", ("high",)), ("help", ())]


def test_a_body_longer_than_github_allows_is_read_up_to_the_limit() -> None:
    assert found("x" * MAX_BODY + "\n/help") == []
    assert found("x" * (MAX_BODY - 10) + "\n/help") == [("help", ())]
