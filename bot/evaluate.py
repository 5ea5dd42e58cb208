"""`python -m bot eval`: a triager's precision, recall and F1 on labelled issues (or cross-validated), with its cost."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import random
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

from bot import prompts
from bot.assessment import CATEGORIES, COMPLETENESS, PRIORITIES, RECOMMENDATIONS, SEVERITIES
from bot.issuetext import IssueText
from bot.classifier import LocalTriager, rules_only

ALIASES = {"enhancement": "feature", "feature request": "feature", "feature-request": "feature",
           "docs": "documentation", "support": "question"}
MISS = "(none)"  # the prediction recorded when the triager gave no answer
CONCURRENCY = 4


class DatasetError(ValueError):
    """A labelled file cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class ClassScore:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Report:
    """Scores of one run: per class, macro-F1 over the true classes, accuracy, confusion counts."""

    classes: tuple[ClassScore, ...]
    macro_f1: float
    accuracy: float
    labels: tuple[str, ...]  # rows and columns of the confusion matrix
    confusion: tuple[tuple[int, ...], ...]  # confusion[truth][predicted]
    total: int


def normalise_label(label: str) -> str:
    """A dataset label in chantbot's vocabulary (`enhancement` is `feature`)."""
    label = " ".join(str(label).strip().lower().split())
    return ALIASES.get(label, label)


def load_jsonl(path: Path) -> list[dict]:
    """Issues with `title`, `body` and `label`, one JSON object a line; raises DatasetError."""
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")  # not splitlines: JSON may hold U+2028
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        if not (isinstance(row, dict) and isinstance(row.get("title"), str) and isinstance(row.get("label"), str)
                and isinstance(row.get("body"), (str, type(None)))):
            raise DatasetError(f"{path}:{number}: needs string fields title, body and label")
        rows.append({**row, "body": row["body"] or "", "label": normalise_label(row["label"])})
    return rows


def score(truth: Sequence[str], predicted: Sequence[str]) -> Report:
    """Per-class precision/recall/F1, macro-F1 (over the classes in `truth`), accuracy and confusion."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predictions differ in length")
    present = set(truth) | set(predicted)
    order = [c for c in CATEGORIES if c in present] + sorted(present - set(CATEGORIES))
    pairs = Counter(zip(truth, predicted))
    classes = []
    for label in (c for c in order if c in set(truth)):
        hits = pairs[label, label]
        claimed = sum(n for (_, p), n in pairs.items() if p == label)
        support = sum(n for (t, _), n in pairs.items() if t == label)
        precision = hits / claimed if claimed else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        classes.append(ClassScore(label, precision, recall, f1, support))
    total = len(truth)
    return Report(
        classes=tuple(classes),
        macro_f1=sum(c.f1 for c in classes) / len(classes) if classes else 0.0,
        accuracy=sum(pairs[c, c] for c in order) / total if total else 0.0,
        labels=tuple(order),
        confusion=tuple(tuple(pairs[t, p] for p in order) for t in order),
        total=total,
    )


class Classifier(Protocol):
    def classify(self, title: str, body: str) -> tuple[str, float]: ...


Learner = Callable[[list[tuple[str, str, str]]], Classifier]  # (title, body, label) of the training issues


@dataclass(frozen=True)
class Fold:
    """One held-out fold: its report, each repository's, and the time to learn and to classify."""

    report: Report
    by_repository: dict[str, Report]
    train_seconds: float
    classify_seconds: float  # per issue


def folds(rows: Sequence[dict], k: int, seed: int = 0) -> list[list[dict]]:
    """`k` folds stratified by label and repository: each (repository, label) group, ordered by id and shuffled
    with `seed`, is dealt out in turn, so every fold holds a k-th of each."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (str(r.get("id", "")), r["title"], r["body"])):
        groups[str(row.get("repo", "")), row["label"]].append(row)
    rng = random.Random(seed)
    dealt: list[list[dict]] = [[] for _ in range(k)]
    for key in sorted(groups):
        group = groups[key]
        rng.shuffle(group)
        for i, row in enumerate(group):
            dealt[i % k].append(row)
    return dealt


def by_repository(rows: Sequence[dict], predicted: Sequence[str]) -> dict[str, Report]:
    """The report of each repository's issues (rows without `repo` are left out)."""
    truth: dict[str, list[str]] = defaultdict(list)
    guesses: dict[str, list[str]] = defaultdict(list)
    for row, guess in zip(rows, predicted):
        if row.get("repo"):
            truth[row["repo"]].append(row["label"])
            guesses[row["repo"]].append(guess)
    return {repo: score(truth[repo], guesses[repo]) for repo in sorted(truth)}


def held_out(train: Sequence[dict], test: Sequence[dict], learn: Learner) -> tuple[list[str], Fold]:
    """Learn from `train`, classify `test`: the predictions and their scores."""
    started = time.perf_counter()
    classifier = learn([(r["title"], r["body"], r["label"]) for r in train])
    trained = time.perf_counter()
    predicted = [classifier.classify(r["title"], r["body"])[0] for r in test]
    per_issue = (time.perf_counter() - trained) / max(1, len(test))
    return predicted, Fold(score([r["label"] for r in test], predicted), by_repository(test, predicted),
                           trained - started, per_issue)


def cross_validate(rows: Sequence[dict], learn: Learner, *, k: int = 5, seed: int = 0) -> list[Fold]:
    """Each of the `folds` held out once, learning from the others."""
    dealt = folds(rows, k, seed)
    return [held_out([r for j, fold in enumerate(dealt) if j != i for r in fold], dealt[i], learn)[1]
            for i in range(k)]


def _spread(values: Sequence[float]) -> str:
    return f"{statistics.fmean(values):.3f} ± {statistics.pstdev(values):.3f}"


def cv_rows(results: Sequence[Fold]) -> list[tuple[str, str]]:
    """(what, mean ± std over the folds): macro-F1, accuracy, each category's F1, each repository's macro-F1,
    and the time to learn and to classify an issue."""
    lines = [("macro-F1", _spread([f.report.macro_f1 for f in results])),
             ("accuracy", _spread([f.report.accuracy for f in results]))]
    labels = [c.label for c in results[0].report.classes]
    lines += [(f"F1 {label}", _spread([next((c.f1 for c in f.report.classes if c.label == label), 0.0)
                                       for f in results])) for label in labels]
    lines += [(f"macro-F1 {repo}", _spread([f.by_repository[repo].macro_f1 for f in results]))
              for repo in results[0].by_repository]
    lines += [("training (s)", f"{statistics.fmean(f.train_seconds for f in results):.2f}"),
              ("per issue (ms)", f"{statistics.fmean(f.classify_seconds for f in results) * 1000:.2f}")]
    return lines


def format_cv(columns: dict[str, Sequence[Fold]]) -> str:
    """Cross-validation results side by side, one column per triager, mean ± std over the folds."""
    tables = {name: dict(cv_rows(results)) for name, results in columns.items()}
    keys = list(dict.fromkeys(key for table in tables.values() for key in table))
    width = max(len(key) for key in keys) + 2
    cell = max([16, *(len(name) + 2 for name in tables)])
    lines = [f"{'':<{width}}" + "".join(f"{name:>{cell}}" for name in tables)]
    lines += [f"{key:<{width}}" + "".join(f"{table.get(key, '-'):>{cell}}" for table in tables.values())
              for key in keys]
    return "\n".join(lines)


def format_repositories(reports: dict[str, Report]) -> list[str]:
    """One line for each repository: macro-F1, accuracy, issues."""
    if not reports:
        return []
    width = max(len(repo) for repo in reports) + 2
    return [f"{'repository':<{width}}{'macro-F1':>10}{'accuracy':>10}{'issues':>10}"] + [
        f"{repo:<{width}}{r.macro_f1:>10.3f}{r.accuracy:>10.3f}{r.total:>10}" for repo, r in reports.items()]


def format_report(report: Report, *, usage_lines: Sequence[str] = ()) -> str:
    """The report as a plain text table, followed by `usage_lines`."""
    width = max([len("macro-F1"), *(len(label) for label in report.labels)]) + 2
    lines = [f"{'class':<{width}}{'precision':>10}{'recall':>10}{'F1':>10}{'support':>10}"]
    lines += [f"{c.label:<{width}}{c.precision:>10.3f}{c.recall:>10.3f}{c.f1:>10.3f}{c.support:>10}"
              for c in report.classes]
    lines += ["", f"{'macro-F1':<{width}}{report.macro_f1:>10.3f}",
              f"{'accuracy':<{width}}{report.accuracy:>10.3f}   ({report.total} issues)", "",
              "confusion matrix (rows: truth, columns: predicted)"]
    cell = max([7, *(len(label) + 2 for label in report.labels)])
    lines.append(" " * width + "".join(f"{label:>{cell}}" for label in report.labels))
    lines += [f"{label:<{width}}" + "".join(f"{n:>{cell}}" for n in row)
              for label, row in zip(report.labels, report.confusion)]
    if usage_lines:
        lines += ["", *usage_lines]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `eval` subcommand's arguments."""
    parser.add_argument("file", type=Path, help="labelled issues, one JSON object a line (title, body, label)")
    parser.add_argument("--train", type=Path, help="labelled issues the local triager learns from "
                        "(default: built-in rules only)")
    parser.add_argument("--triager", choices=("local", "llm"),
                        help="which triager to measure (default: llm when ANTHROPIC_API_KEY is set, else local)")
    parser.add_argument("--model", help="Claude model for --triager llm (default: BOT_MODEL or chantbot's default)")
    parser.add_argument("--limit", type=int, help="measure only the first N issues")
    parser.add_argument("--cv", type=int, metavar="K", help="cross-validate the local triager over FILE in K folds "
                        "(stratified by label and repository), then hold out the first fold as a train/test split")
    parser.add_argument("--seed", type=int, default=0, help="the folds' shuffle (default 0)")
    parser.add_argument("--price-in", type=float, help="USD per million input tokens (default: the model's list "
                        "price in chantbot's table)")
    parser.add_argument("--price-out", type=float, help="USD per million output tokens (default: the model's list "
                        "price)")


def _issue(index: int, row: dict) -> IssueText:
    return IssueText(number=index + 1, title=row["title"], body=row["body"], author="reporter")


def _local(rows: list[dict], train: list[dict] | None) -> tuple[list[str], list[str]]:
    """Predictions of the local triager, and lines describing it."""
    started = time.perf_counter()
    if train is None:
        triager, about = rules_only(), "local (built-in rules, no training history)"
    else:
        triager = LocalTriager.from_history((r["title"], r["body"], r["label"]) for r in train)
        counts = Counter(r["label"] for r in train)
        learned = ", ".join(f"{c} {counts[c]}" for c in triager.classes)
        about = (f"local (learned from {len(train)} issues: {learned})" if learned else
                 f"local (built-in rules: {len(train)} training issues are too few per category)")
    trained = time.perf_counter()
    predicted = [triager.classify(r["title"], r["body"])[0] for r in rows]
    per_issue = (time.perf_counter() - trained) / max(1, len(rows))
    lines = [f"triager: {about}"]
    if train is not None:
        lines.append(f"training time: {trained - started:.2f} s")
    lines.append(f"time per issue: {per_issue * 1000:.2f} ms")
    return predicted, lines


def _vocabulary() -> str:
    return "\n".join([
        f"category: {', '.join(CATEGORIES)}", f"priority: {', '.join(PRIORITIES)}",
        f"severity: {', '.join(SEVERITIES)}", f"completeness: {', '.join(COMPLETENESS)}",
        f"recommendation: {', '.join(RECOMMENDATIONS)}"])


async def _llm(rows: list[dict], args: argparse.Namespace, key: str) -> tuple[list[str], list[str]]:
    """Predictions of Claude, and lines on tokens, cache share, cost and misses."""
    from bot.llm import ClaudeTriager, make_client
    from bot.modelcalls import PRICES_TAKEN, LLMUnavailable, Price, Usage, price
    from bot.settings import DEFAULT_MODEL

    model = getattr(args, "model", None) or DEFAULT_MODEL
    rates = price(model)
    if getattr(args, "price_in", None) is not None or getattr(args, "price_out", None) is not None:
        given_in = rates.input if args.price_in is None else args.price_in
        rates = Price(given_in, rates.output if args.price_out is None else args.price_out, given_in * 1.25,
                      given_in * 0.1)
        priced = "given"
    else:
        priced = f"list prices of {PRICES_TAKEN}"
    instructions = prompts.packaged("triage").body
    client = make_client(api_key=key)
    triager = ClaudeTriager(client, model=model)
    gate = asyncio.Semaphore(CONCURRENCY)
    total = Usage()
    cost = 0.0
    misses: list[str] = []

    async def one(index: int, row: dict) -> str:
        nonlocal total, cost
        async with gate:
            try:
                assessment, usage = await triager.assess(instructions=instructions, vocabulary=_vocabulary(),
                                                         issue=_issue(index, row), candidates=())
            except LLMUnavailable as exc:
                total += exc.usage
                cost += rates.cost(exc.usage)
                misses.append(str(exc))
                return MISS
        total += usage
        cost += rates.cost(usage)
        return assessment.category

    started = time.perf_counter()
    try:
        predicted = list(await asyncio.gather(*(one(i, row) for i, row in enumerate(rows))))
    finally:
        closing = getattr(client, "close", None)
        if closing is not None and inspect.isawaitable(result := closing()):
            await result
    elapsed = time.perf_counter() - started
    n = max(1, len(rows))
    prompt = total.input_tokens + total.cache_read_input_tokens + total.cache_creation_input_tokens
    lines = [
        f"triager: llm ({model}, {CONCURRENCY} at a time)",
        f"time per issue: {elapsed / n * 1000:.0f} ms (wall clock, concurrent)",
        f"tokens per issue: {prompt / n:.0f} in ({total.input_tokens / n:.0f} uncached, "
        f"{total.cache_read_input_tokens / n:.0f} cache reads, {total.cache_creation_input_tokens / n:.0f} "
        f"cache writes), {total.output_tokens / n:.0f} out",
        f"cache share: {total.cache_read_input_tokens / prompt:.0%} of input tokens read from the cache"
        if prompt else "cache share: no input tokens reported",
        f"cost per issue: ${cost / n:.5f} (at ${rates.input:g}/${rates.output:g} per million in/out, {priced}; "
        f"total ${cost:.4f})",
        f"unavailable: {len(misses)} of {len(rows)} issues had no usable answer (counted as misses)",
    ]
    lines += [f"  {reason}: {count}" for reason, count in Counter(misses).most_common(5)]
    return predicted, lines


def _cross_validation(rows: list[dict], args: argparse.Namespace) -> int:
    """Cross-validate the local triager over `rows`, then report its first fold as a train/test split."""
    k = args.cv
    if not 2 <= k <= len(rows):
        print(f"error: --cv needs between 2 and {len(rows)} folds")
        return 2
    results = cross_validate(rows, LocalTriager.from_history, k=k, seed=args.seed)
    print(f"cross-validation: {k} folds of {args.file.name} ({len(rows)} issues), stratified by label and "
          f"repository, seed {args.seed}; mean ± std over the folds\n")
    print(format_cv({"local triager": results}))
    first = results[0]
    print(f"\ntrain/test split: fold 1 held out ({first.report.total} issues), learned from the other "
          f"{k - 1} folds ({len(rows) - first.report.total} issues)\n")
    print(format_report(first.report, usage_lines=[
        f"training time: {first.train_seconds:.2f} s", f"time per issue: {first.classify_seconds * 1000:.2f} ms"]))
    if first.by_repository:
        print("\n" + "\n".join(format_repositories(first.by_repository)))
    return 0


async def run(args: argparse.Namespace) -> int:
    """Measure the chosen triager on `args.file`, print the report; 0, or 2 on unusable input."""
    key = getattr(args, "api_key", None)
    choice = getattr(args, "triager", None) or ("llm" if key else "local")
    try:
        rows = load_jsonl(args.file)
        train = load_jsonl(args.train) if getattr(args, "train", None) else None
    except DatasetError as exc:
        print(f"error: {exc}")
        return 2
    if getattr(args, "limit", None):
        rows = rows[:max(0, args.limit)]
    if not rows:
        print(f"error: {args.file} holds no labelled issues")
        return 2
    if getattr(args, "cv", None) is not None:
        if choice == "llm" or train is not None:
            print("error: --cv measures the local triager, learning from FILE itself (no --train, no --triager llm)")
            return 2
        return _cross_validation(rows, args)
    if choice == "llm":
        if not key:
            print("error: --triager llm needs ANTHROPIC_API_KEY")
            return 2
        predicted, lines = await _llm(rows, args, key)
    else:
        predicted, lines = _local(rows, train)
    print(format_report(score([r["label"] for r in rows], predicted), usage_lines=lines))
    if repositories := by_repository(rows, predicted):
        print("\n" + "\n".join(format_repositories(repositories)))
    return 0
