"""Who may run what: every role against every command level, and the author rule."""

from __future__ import annotations

import pytest

from bot.commands.permissions import ROLES, allowed, describe, normalize, rank

LEVELS = ("anyone", "read", "triage", "write", "maintain", "admin")

# role -> may run a command of each level in LEVELS order (anyone, read, triage, write, maintain, admin)
TRUTH = {
    "none":             (True, False, False, False, False, False),
    "read":             (True, True, False, False, False, False),
    "triage":           (True, True, True, False, False, False),
    "write":            (True, True, True, True, False, False),
    "maintain":         (True, True, True, True, True, False),
    "admin":            (True, True, True, True, True, True),
    "security-manager": (True, True, False, False, False, False),  # a custom role counts as read
}


@pytest.mark.parametrize("role, level, expected", [
    (role, level, row[i]) for role, row in TRUTH.items() for i, level in enumerate(LEVELS)
])
def test_every_role_against_every_level(role: str, level: str, expected: bool) -> None:
    assert allowed(level, role) is expected


def test_truth_table_covers_every_standard_role() -> None:
    assert set(ROLES) <= set(TRUTH)


@pytest.mark.parametrize("role", [*TRUTH, None])
def test_author_may_retriage_whatever_their_role(role: str | None) -> None:
    assert allowed("triage", role, is_author=True, author_may=True)


@pytest.mark.parametrize("role, expected", [
    ("none", False), ("read", False), ("triage", True), ("write", True), ("maintain", True), ("admin", True),
])
def test_other_people_need_triage_to_retriage(role: str, expected: bool) -> None:
    assert allowed("triage", role, is_author=False, author_may=True) is expected


def test_being_the_author_grants_nothing_when_the_command_does_not_allow_it() -> None:
    assert not allowed("write", "read", is_author=True, author_may=False)


def test_a_missing_role_counts_as_none() -> None:
    assert rank(None) == 0
    assert allowed("anyone", None)
    assert not allowed("read", None)


def test_roles_are_case_insensitive() -> None:
    assert allowed("maintain", "Admin")
    assert rank("WRITE") == rank("write")


def test_unknown_level_is_an_error_not_a_silent_allow() -> None:
    with pytest.raises(ValueError):
        allowed("owner", "admin")


@pytest.mark.parametrize("role_name, legacy, expected", [
    ("admin", "admin", "admin"),
    ("maintain", "write", "maintain"),
    ("write", "write", "write"),
    ("triage", "read", "triage"),
    ("read", "read", "read"),
    ("Maintain", None, "maintain"),
    ("security-manager", "write", "write"),  # a custom role: its legacy permission decides
    ("security-manager", "none", "read"),  # ... but a custom role is at least read
    ("security-manager", None, "read"),
    (None, "admin", "admin"),
    (None, "write", "write"),
    (None, "read", "read"),
    (None, "none", "none"),
    ("", "none", "none"),
    (None, None, "none"),
])
def test_normalize(role_name: str | None, legacy: str | None, expected: str) -> None:
    assert normalize(role_name, legacy) == expected


@pytest.mark.parametrize("level, author_may, expected", [
    ("anyone", False, "anyone"),
    ("anyone", True, "anyone"),
    ("read", False, "people with read access and above"),
    ("triage", False, "people with triage access and above"),
    ("triage", True, "the issue's author, or people with triage access and above"),
    ("write", False, "people with write access and above"),
    ("maintain", False, "people with maintain access and above"),
    ("admin", False, "people with admin access"),
])
def test_describe(level: str, author_may: bool, expected: str) -> None:
    assert describe(level, author_may=author_may) == expected
