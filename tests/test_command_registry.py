"""The command registry: default levels, argument checks, "did you mean", and the generated help."""

from __future__ import annotations

import re

import pytest

from bot.assessment import CATEGORIES, PRIORITIES, SEVERITIES
from bot.commands.parser import parse
from bot.commands.registry import COMMANDS, check_args, help_text, levels, spec_for, suggest

DEFAULT_LEVELS = {
    "help": "anyone", "status": "anyone",
    "retriage": "triage",
    "triage": "triage", "kind": "triage", "priority": "triage", "severity": "triage", "label": "triage",
    "unlabel": "triage", "duplicate": "triage", "defer": "triage", "needs-info": "triage", "close": "triage",
    "reopen": "triage", "assign": "triage", "unassign": "triage", "security": "triage",
    "reproduce": "write", "research": "write", "implement": "write", "review": "write", "document": "write",
    "ok-to-test": "write", "approve": "maintain", "reject": "maintain", "release-notes": "maintain",
}


def cells(row: str) -> list[str]:
    """A Markdown table row's cells, splitting on unescaped pipes as GitHub does."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def help_rows(text: str) -> dict[str, list[str]]:
    rows = [cells(line) for line in text.splitlines() if line.startswith("| `")]
    return {re.match(r"`/([a-z-]+)", row[0]).group(1): row for row in rows}


def test_default_levels() -> None:
    assert levels() == DEFAULT_LEVELS
    assert [s.name for s in COMMANDS if s.author_may] == ["retriage", "close"]


def test_every_command_is_well_formed() -> None:
    names = [spec.name for spec in COMMANDS]
    assert len(names) == len(set(names))
    for spec in COMMANDS:
        assert spec.usage.split()[0] == f"/{spec.name}"
        assert spec.help and "\n" not in spec.help and len(spec.help) <= 90
        assert spec_for(spec.name) is spec
        check_args(spec, [])  # every argument kind is known


def test_stage_commands_name_their_stage() -> None:
    stages = {spec.name: spec.stage for spec in COMMANDS if spec.stage}
    assert stages == {s: s for s in ("reproduce", "research", "implement", "review", "document")}


def test_spec_for_ignores_case_and_slash() -> None:
    assert spec_for("Priority") is spec_for("/priority") is spec_for("priority")
    assert spec_for("xyzzy") is None
    assert spec_for("usr") is None


def test_overrides_apply_and_unknown_names_are_ignored() -> None:
    result = levels({"research": "triage", "help": "read", "xyzzy": "admin", "/approve": "admin"})
    assert result == {**DEFAULT_LEVELS, "research": "triage", "help": "read", "approve": "admin"}


def test_help_lists_every_command_with_its_level() -> None:
    rows = help_rows(help_text())
    assert list(rows) == [spec.name for spec in COMMANDS]
    for spec in COMMANDS:
        usage, what, who = rows[spec.name]
        assert usage == "`" + spec.usage.replace("|", "\\|") + "`"
        assert what == spec.help
    assert rows["help"][2] == "anyone"
    assert rows["retriage"][2] == "the issue's author, or people with triage access and above"
    assert rows["priority"][2] == "people with triage access and above"
    assert rows["research"][2] == "people with write access and above"
    assert rows["approve"][2] == "people with maintain access and above"


def test_help_shows_overridden_levels() -> None:
    rows = help_rows(help_text({"research": "triage", "approve": "admin", "status": "read"}))
    assert rows["research"][2] == "people with triage access and above"
    assert rows["approve"][2] == "people with admin access"
    assert rows["status"][2] == "people with read access and above"
    assert rows["implement"][2] == "people with write access and above"


def test_help_is_safe_to_post() -> None:
    text = help_text()
    assert not [line for line in text.splitlines() if line.lstrip().startswith("/")]
    assert "@" not in text
    assert parse(text) == []  # posting the help never runs a command
    assert text.splitlines()[-len(COMMANDS) - 2] == "| command | what it does | who may run it |"


def test_help_table_rows_have_three_cells() -> None:
    for line in help_text().splitlines():
        if line.startswith("|"):
            assert len(cells(line)) == 3, line


@pytest.mark.parametrize("name, args, expected", [
    ("kind", ["bug"], ["bug"]),
    ("kind", ["Bug"], ["bug"]),
    ("kind", ["enhancement"], ["feature"]),
    ("kind", ["feature"], ["feature"]),
    ("kind", ["docs"], ["documentation"]),
    ("kind", ["documentation"], ["documentation"]),
    ("kind", ["question"], ["question"]),
    ("kind", ["duplicate"], ["duplicate"]),
    ("priority", ["HIGH"], ["high"]),
    ("severity", ["cosmetic"], ["cosmetic"]),
    ("label", ["good", "first", "issue"], ["good first issue"]),
    ("label", ['"priority:', 'high"'], ["priority: high"]),
    ("label", ["needs-info"], ["needs-info"]),
    ("unlabel", ["bug"], ["bug"]),
    ("duplicate", ["#12"], ["12"]),
    ("duplicate", ["12"], ["12"]),
    ("duplicate", ["https://github.com/acme/widgets/issues/34"], ["34"]),
    ("duplicate", ["https://github.com/acme/widgets/issues/34#issuecomment-1"], ["34"]),
    ("close", [], []),
    ("close", ["not", "planned"], ["not planned"]),
    ("reject", ["breaks", "the", "API"], ["breaks the API"]),
    ("release-notes", ["v1.2.3"], ["v1.2.3"]),
    ("release-notes", ["1.2.3"], ["1.2.3"]),
    ("release-notes", ["2.0.0-rc.1"], ["2.0.0-rc.1"]),
    ("help", [], []),
    ("research", [], []),
    ("approve", [], []),
])
def test_check_args_normalises(name: str, args: list[str], expected: list[str]) -> None:
    assert check_args(spec_for(name), args) == (expected, None)


@pytest.mark.parametrize("name, args, message", [
    ("kind", [], "`/kind` takes one of " + ", ".join(CATEGORIES) + "."),
    ("kind", ["bugfix"], "`/kind` takes one of " + ", ".join(CATEGORIES) + "."),
    ("kind", ["bug", "feature"], "`/kind` takes one of " + ", ".join(CATEGORIES) + "."),
    ("priority", ["urgent"], "`/priority` takes one of " + ", ".join(PRIORITIES) + "."),
    ("severity", [], "`/severity` takes one of " + ", ".join(SEVERITIES) + "."),
    ("label", [], "`/label` needs a label name."),
    ("label", ['""'], "`/label` needs a label name."),
    ("duplicate", [], "`/duplicate` needs an issue number like #123."),
    ("duplicate", ["#0"], "`/duplicate` needs an issue number like #123."),
    ("duplicate", ["#abc"], "`/duplicate` needs an issue number like #123."),
    ("duplicate", ["of", "#12"], "`/duplicate` needs an issue number like #123."),
    ("duplicate", ["https://github.com/acme/widgets/pull/5"], "`/duplicate` needs an issue number like #123."),
    ("reject", [], "`/reject` needs a reason."),
    ("release-notes", [], "`/release-notes` needs a version like v1.2.3 or 1.2.3."),
    ("release-notes", ["next"], "`/release-notes` needs a version like v1.2.3 or 1.2.3."),
    ("release-notes", ["1.2"], "`/release-notes` needs a version like v1.2.3 or 1.2.3."),
    ("research", ["now"], "`/research` takes no arguments."),
    ("defer", ["later"], "`/defer` takes no arguments."),
])
def test_check_args_errors(name: str, args: list[str], message: str) -> None:
    assert check_args(spec_for(name), args) == ([], message)


@pytest.mark.parametrize("typed, expected", [
    ("prioirty", "priority"),
    ("priorty", "priority"),
    ("aprove", "approve"),
    ("lable", "label"),
    ("reserach", "research"),
    ("Severty", "severity"),
    ("prio", "priority"),
    ("release", "release-notes"),
    ("dup", "duplicate"),
    ("/retriag", "retriage"),
    ("xyzzy", None),
    ("usr", None),
    ("lgtm", None),
])
def test_suggest(typed: str, expected: str | None) -> None:
    assert suggest(typed) == expected


def test_a_level_set_by_the_repository_drops_the_authors_exception() -> None:
    rows = help_rows(help_text({"retriage": "write"}))
    assert rows["retriage"][2] == "people with write access and above"
    assert rows["close"][2] == "the issue's author, or people with triage access and above"


@pytest.mark.parametrize("args, expected", [
    ([], ([], None)), (["@octo-cat"], (["octo-cat"], None)), (["octo_cat"], (["octo_cat"], None)),
    (["@a", "@b"], ([], "x")), (["@-bad"], ([], "x")), (["@" + "a" * 40], ([], "x")),
])
def test_assign_takes_one_login_or_none(args, expected) -> None:
    result, error = check_args(spec_for("assign"), args)
    assert result == expected[0] and (error is None) == (expected[1] is None)
    if error:
        assert "@" not in error.replace("`@octocat`", "")  # a reply never mentions anyone


def test_help_lists_what_label_takes() -> None:
    text = help_text(labels=["bug", "priority: high", "good first issue", "bug"])
    assert text.endswith("`/label` takes: `bug`, `priority: high`, `good first issue`.")
