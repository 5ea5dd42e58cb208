"""Duplicate candidates on real issues: today's (full-text search, then title words or similar text) against the
earlier one's (full-text search, then title words), through the real store.

Two sets, built from a labelled dataset (evaluation only, never copied into chantbot):
- same error: issues of one repository whose titles are the same once numbers are masked (the automatic reports
  of one crash), each a duplicate of the others; every other issue is a query with no duplicate;
- other words: a terse report, the issue's title alone, looked up while the issue itself is indexed without its
  title, so that only its description, written in other words, can match it.
recall@3: a duplicate is among the first three candidates handed on. precision: the share of those candidates
that are duplicates (same-error set, all issues as queries). named: what the local triager calls a duplicate.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "issues-labeled.jsonl"
MIN_TITLE = 12  # shorter shared titles ("Intellisense", ".") say nothing about the problem
NEW = 10**6  # the number of a report being triaged


def same_error(rows: list[dict]) -> dict[int, set[int]]:
    """Issue index -> the other indices of its same-error group."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        if len(row["title"]) >= MIN_TITLE:
            groups[re.sub(r"\d+", "#", row["title"].lower()).strip()].append(i)
    return {i: set(group) - {i} for group in groups.values() if len(group) > 1 for i in group}


async def measure(rows_by_repo: dict[str, list[dict]], detectors: dict[str, tuple[int, Callable]]) -> dict:
    from bot.classifier import likely_duplicate
    from bot.issuetext import IssueText
    from bot.store import open_store

    tally: dict[str, defaultdict[str, int]] = {name: defaultdict(int) for name in detectors}
    seconds: defaultdict[str, float] = defaultdict(float)
    with tempfile.TemporaryDirectory(prefix="chantbot-duplicates-") as tmp:
        for r, (repo, rows) in enumerate(sorted(rows_by_repo.items())):
            store = open_store(f"sqlite:///{tmp}/{r}.db")
            await store.open()
            try:
                for i, row in enumerate(rows):
                    await store.index_issue(repo, i, row["title"], row["body"], "closed", None)
                duplicates = same_error(rows)
                for i, row in enumerate(rows):
                    issue = IssueText(number=NEW, title=row["title"], body=row["body"], author="reporter")
                    for name, (pool, pick) in detectors.items():
                        started = time.perf_counter()
                        found = await store.similar_issues(repo, f"{issue.title}\n{issue.body}", exclude=i,
                                                           limit=pool)
                        offered = pick(issue, [c for c in found if c.number != i])[:3]
                        seconds[name] += time.perf_counter() - started
                        t = tally[name]
                        true = duplicates.get(i, set())
                        t["offered"] += len(offered)
                        t["offered duplicates"] += sum(c.number in true for c in offered)
                        if true:
                            t["same-error queries"] += 1
                            t["same-error hits"] += any(c.number in true for c in offered)
                        named = likely_duplicate(issue, offered)
                        if named is not None:
                            t["named"] += 1
                            t["named right"] += named.number in true
                for i, row in enumerate(rows):
                    if len(row["title"]) < MIN_TITLE:
                        continue
                    await store.index_issue(repo, i, "", row["body"], "closed", None)
                    terse = IssueText(number=NEW, title=row["title"], body="", author="reporter")
                    for name, (pool, pick) in detectors.items():
                        found = await store.similar_issues(repo, terse.title, exclude=NEW, limit=pool)
                        tally[name]["other-words queries"] += 1
                        tally[name]["other-words hits"] += any(c.number == i for c in pick(terse, found)[:3])
                    await store.index_issue(repo, i, row["title"], row["body"], "closed", None)
            finally:
                await store.close()
    return {"tally": tally, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    from bot import evaluate, similarity
    from triager import BASELINE, baseline_classifier  # bench/triager.py

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--minimum", type=float, default=similarity.MINIMUM,
                        help=f"similarity below which a candidate is not handed on (default {similarity.MINIMUM})")
    options = parser.parse_args(argv)
    rows_by_repo: dict[str, list[dict]] = defaultdict(list)
    for row in sorted(evaluate.load_jsonl(options.dataset), key=lambda r: str(r.get("id", ""))):
        rows_by_repo[str(row.get("repo", ""))].append(row)
    detectors = {
        f"full text + title words (at {BASELINE})": (5, baseline_classifier(BASELINE).related),
        f"full text + title words or similarity >= {options.minimum:g}": (
            similarity.POOL, lambda issue, found: similarity.candidates(issue, found, minimum=options.minimum)),
    }
    result = asyncio.run(measure(rows_by_repo, detectors))
    width = max(len(name) for name in detectors) + 2
    print(f"{options.dataset.name}: {sum(map(len, rows_by_repo.values()))} issues in {len(rows_by_repo)} "
          "repositories\n")
    print(f"{'':<{width}}{'recall@3':>14}{'recall@3':>14}{'precision':>14}{'named':>10}{'ms/query':>10}")
    print(f"{'':<{width}}{'same error':>14}{'other words':>14}{'of offered':>14}{'right':>10}")
    for name, t in result["tally"].items():
        queries = sum(map(len, rows_by_repo.values()))
        print(f"{name:<{width}}"
              f"{t['same-error hits'] / max(1, t['same-error queries']):>14.3f}"
              f"{t['other-words hits'] / max(1, t['other-words queries']):>14.3f}"
              f"{t['offered duplicates'] / max(1, t['offered']):>14.3f}"
              f"{t['named right']:>5}/{t['named']:<4}"
              f"{result['seconds'][name] / queries * 1000:>10.1f}")
    t = next(iter(result["tally"].values()))
    print(f"\nsame-error queries: {t['same-error queries']}; other-words queries: {t['other-words queries']}; "
          "candidates offered (before, after): " + ", ".join(str(x["offered"]) for x in result["tally"].values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
