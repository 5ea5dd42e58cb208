"""The local vulnerability-report detector measured: its recall on the hand-made reports of
tests/vulnerability_reports.py, and its false alarms on a labelled dataset of ordinary issues (none of them filed
as a vulnerability), which must stay under 1 %.

    python bench/vulnreport.py [DATASET.jsonl] [--show 20]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "issues-labeled.jsonl"
MAX_FALSE_ALARMS = 0.01


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from bot.issuetext import IssueText
    from bot.vulnreport import detect
    from tests.vulnerability_reports import REPORTS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--show", type=int, default=20, help="false alarms listed, by id and cues")
    options = parser.parse_args(argv)

    missed = [title for title, body in REPORTS if not detect(IssueText(1, title, body, "reporter")).vulnerability]
    print(f"recall on {len(REPORTS)} hand-made vulnerability reports: {len(REPORTS) - len(missed)}/{len(REPORTS)} "
          f"({(len(REPORTS) - len(missed)) / len(REPORTS):.1%})")
    for title in missed:
        print(f"  missed: {title}")

    rows = [json.loads(line) for line in options.dataset.read_text(encoding="utf-8").split("\n") if line.strip()]
    started = time.perf_counter()
    alarms = []
    for row in rows:
        found = detect(IssueText(1, row.get("title") or "", row.get("body") or "", "reporter"))
        if found.vulnerability:
            alarms.append((row.get("id", "?"), row.get("label", "?"), found.cues))
    elapsed = time.perf_counter() - started
    rate = len(alarms) / len(rows) if rows else 0.0
    by_label = collections.Counter(label for _, label, _ in alarms)
    print(f"false alarms on {len(rows)} ordinary issues of {options.dataset.name}: {len(alarms)} ({rate:.2%}; "
          f"by label {dict(by_label)}); {elapsed / max(len(rows), 1) * 1e3:.2f} ms per issue")
    for row_id, label, cues in alarms[:options.show]:
        print(f"  {row_id} ({label}): {', '.join(cues)}")
    ok = not missed and rate < MAX_FALSE_ALARMS
    print("ok" if ok else f"NOT OK: every report recognised and false alarms under {MAX_FALSE_ALARMS:.0%} wanted")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
