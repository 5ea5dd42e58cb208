"""Measure the local triager on a labelled dataset: learn from one stratified half, score the other."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "issues-labeled.jsonl"


def stratified_halves(rows: list[dict], seed: int) -> tuple[list[dict], list[dict]]:
    """(train, test): each label's issues shuffled with `seed` and cut in half."""
    by_label: dict[str, list[dict]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (str(r.get("id", "")), r["title"], r["body"])):
        by_label[row["label"]].append(row)
    rng = random.Random(seed)
    train: list[dict] = []
    test: list[dict] = []
    for label in sorted(by_label):
        issues = by_label[label]
        rng.shuffle(issues)
        half = len(issues) // 2
        train += issues[:half]
        test += issues[half:]
    return train, test


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from bot import evaluate

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args(argv)
    try:
        rows = evaluate.load_jsonl(options.dataset)
    except evaluate.DatasetError as exc:
        print(f"error: {exc}")
        return 2
    train, test = stratified_halves(rows, options.seed)
    print(f"{options.dataset.name}: {len(train)} issues to learn from, {len(test)} to score (seed {options.seed})\n")
    with tempfile.TemporaryDirectory(prefix="chantbot-eval-") as tmp:
        train_file, test_file = Path(tmp) / "train.jsonl", Path(tmp) / "test.jsonl"
        _write(train_file, train)
        _write(test_file, test)
        eval_parser = argparse.ArgumentParser()
        evaluate.add_arguments(eval_parser)
        args = eval_parser.parse_args([str(test_file), "--train", str(train_file), "--triager", "local"])
        return asyncio.run(evaluate.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
