"""`python -m bot migrate --from URL --to URL`: copy chantbot's durable state between databases.

Copied: deliveries (for dedupe), jobs (running ones become queued again: the source is stopped),
issue state, the issue index, spec ids and records, the outbox, repository metadata, stage runs
and spend. Not copied: write slots and holds (they last seconds to an hour) and the health probe.
"""

from __future__ import annotations

from typing import Any, Callable

from bot.store import RUN_COLUMNS, Store, StoreError


TABLES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("deliveries", ("id", "event", "action", "received_at"), "id"),
    ("jobs", ("id", "kind", "key", "payload", "installation_id", "status", "attempts", "run_after", "lease_until",
              "last_error", "created_at", "finished_at"), "id"),
    ("issue_state", ("repo", "number", "data"), "repo, number"),
    ("issue_index", ("repo", "number", "title", "body", "state", "category"), "repo, number"),
    ("spec_seq", ("repo", "day", "seq"), "repo, day"),
    ("specs", ("repo", "number", "stage", "spec_id", "path", "status", "created_at"), "repo, number, stage"),
    ("outbox", ("id", "repo", "installation_id", "branch", "path", "content", "committed", "committed_at"), "id"),
    ("repo_meta", ("repo", "key", "value"), "repo, key"),
    ("runs", tuple(RUN_COLUMNS.split(", ")), "id"),
    ("spend", ("installation_id", "day", "usd"), "installation_id, day"),
)
FLOATS = frozenset({"received_at", "run_after", "lease_until", "created_at", "finished_at", "committed_at",
                    "updated_at", "usd"})
BATCH = 1000


def _row(table: str, columns: tuple[str, ...], row: tuple) -> tuple:
    values: list[Any] = [float(v) if c in FLOATS and v is not None else v for c, v in zip(columns, row)]
    if table == "jobs" and values[columns.index("status")] == "running":
        values[columns.index("status")] = "queued"
        values[columns.index("lease_until")] = None
    return tuple(values)


async def copy_state(source: Store, target: Store, *,
                     report: Callable[[str], None] = lambda line: None) -> dict[str, int]:
    """Copy every durable table from `source` into an empty `target` (both open); rows copied per table."""
    for table in ("deliveries", "jobs", "issue_index", "runs"):
        if await target.row_count(table):
            raise StoreError(f"the target database already holds chantbot data ({table}); copy into an empty one")
    counts = {}
    for table, columns, order in TABLES:
        copied = 0
        while True:
            rows = await source.read_rows(table, columns, order, copied, BATCH)
            if not rows:
                break
            await target.write_rows(table, columns, [_row(table, columns, r) for r in rows])
            copied += len(rows)
        counts[table] = copied
        report(f"{table}: {copied} rows")
    return counts
