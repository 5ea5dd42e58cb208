"""Repository roles and who may run what (pure)."""

from __future__ import annotations

ROLES = ("none", "read", "triage", "write", "maintain", "admin")  # GitHub repository roles, ascending
LEVELS = ("anyone",) + ROLES[1:]  # what a command may require


def rank(role: str | None) -> int:
    """Position of `role` in ROLES; a custom role counts as read (every custom role builds on read or more)."""
    if role is None:
        return 0
    role = role.lower()
    return ROLES.index(role) if role in ROLES else ROLES.index("read")


def normalize(role_name: str | None, legacy_permission: str | None = None) -> str:
    """One of ROLES from the collaborator-permission endpoint's `role_name` and legacy `permission`.

    A standard `role_name` wins. Otherwise the legacy permission decides, but a custom role is at
    least read. With nothing to go on the answer is "none".
    """
    name = (role_name or "").strip().lower()
    if name in ROLES:
        return name
    legacy = (legacy_permission or "").strip().lower()
    if legacy in ROLES and not (legacy == "none" and name):
        return legacy
    return "read" if name or legacy else "none"


def allowed(min_role: str, role: str | None, *, is_author: bool = False, author_may: bool = False) -> bool:
    """Whether someone with `role` may run a command needing `min_role` (or its author, when `author_may`)."""
    if min_role not in LEVELS and min_role != "none":
        raise ValueError(f"unknown command level {min_role!r}")
    if min_role in ("anyone", "none") or (author_may and is_author):
        return True
    return rank(role) >= rank(min_role)


def describe(min_role: str, *, author_may: bool = False) -> str:
    """Who may run a command, in words: "anyone", "people with maintain access and above", …"""
    if min_role in ("anyone", "none"):
        return "anyone"
    people = "people with admin access" if min_role == "admin" else f"people with {min_role} access and above"
    return f"the issue's author, or {people}" if author_may else people
