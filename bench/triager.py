"""The local triager against an earlier one, side by side from one run: cross-validated scores, training and
classification time, and the size of the stored model."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "issues-labeled.jsonl"
BASELINE = "b024f15"  # the last revision with the bag-of-words logistic regression


def baseline_classifier(revision: str):
    """`bot/classifier.py` as it was at `revision`, loaded beside the working tree's (it imports the rest of bot)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:bot/classifier.py"], check=True,
                            capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader(f"baseline_classifier_{revision}", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"{revision}:bot/classifier.py", "exec"), module.__dict__)
    return module


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from bot import classifier, evaluate

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--baseline", default=BASELINE, help=f"git revision to compare with (default {BASELINE})")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)
    rows = evaluate.load_jsonl(options.dataset)
    before = baseline_classifier(options.baseline)
    columns = {f"at {options.baseline}": evaluate.cross_validate(rows, before.LocalTriager.from_history,
                                                                 k=options.folds, seed=options.seed),
               "now": evaluate.cross_validate(rows, classifier.LocalTriager.from_history, k=options.folds,
                                              seed=options.seed)}
    per_fold = len(rows) * (options.folds - 1) // options.folds
    print(f"{options.dataset.name}: {len(rows)} issues, {options.folds} folds stratified by label and repository, "
          f"seed {options.seed}; mean ± std over the folds; training on {per_fold} issues a fold\n")
    print(evaluate.format_cv(columns))

    history = [(r["title"], r["body"], r["label"]) for r in rows]
    started = time.perf_counter()
    triager = classifier.LocalTriager.from_history(history)
    trained = time.perf_counter() - started
    started = time.perf_counter()
    for title, body, _ in history:
        triager.classify(title, body)
    per_issue = (time.perf_counter() - started) / len(history)
    stored = json.dumps(triager.to_dict(), separators=(",", ":"))
    started = time.perf_counter()
    classifier.LocalTriager.from_dict(json.loads(stored))
    loaded = time.perf_counter() - started
    print(f"\nnow, on all {len(history)} issues: training {trained:.2f} s, {per_issue * 1000:.2f} ms an issue to "
          f"classify, stored model {len(stored) / 1e6:.1f} MB ({len(triager.model.weights)} features), "
          f"read back in {loaded:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
