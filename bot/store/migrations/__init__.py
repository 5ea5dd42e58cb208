"""Versioned schema migrations: `<backend>/NNNN_name.sql`, applied in order, each once."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load(backend: str) -> list[Migration]:
    """The migrations of `backend` (sqlite or postgres), oldest first."""
    found = []
    for entry in resources.files(__package__).joinpath(backend).iterdir():
        if entry.name.endswith(".sql"):
            number, _, name = entry.name[:-4].partition("_")
            found.append(Migration(int(number), name, entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def statements(sql: str) -> list[str]:
    """SQLite statements of a script, one by one (so they run inside the caller's transaction)."""
    result, current = [], ""
    for line in sql.splitlines(keepends=True):
        if not current and (not line.strip() or line.lstrip().startswith("--")):
            continue
        current += line
        if sqlite3.complete_statement(current):
            result.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement at the end of a migration: {current[:80]!r}")
    return result
