"""`python -m bot eval`: scores, the printed report, and both triagers end to end."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import pytest

from bot.classifier import LocalTriager
from bot.evaluate import DatasetError, add_arguments, cross_validate, folds, format_report, load_jsonl, run, score

ISSUES = [
    {"title": "Crash on startup", "body": "It crashes:\n```\nTraceback (most recent call last):\nKeyError\n```",
     "label": "bug"},
    {"title": "Export throws an exception", "body": "Error: bad state when exporting.", "label": "bug"},
    {"title": "Add support for YAML", "body": "It would be nice to support YAML output.", "label": "enhancement"},
    {"title": "Please add a dark theme", "body": "Would be great to have a dark theme option.", "label": "feature"},
    {"title": "How do I configure the proxy?", "body": "Is there a way to set it?", "label": "question"},
    {"title": "How to change the cache directory?", "body": "", "label": "question"},
]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def arguments(*argv: str, api_key: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(list(argv))
    args.api_key = api_key
    return args


def test_score_gives_exact_precision_recall_and_f1():
    truth = ["bug", "bug", "bug", "feature", "feature", "question"]
    predicted = ["bug", "bug", "feature", "feature", "question", "question"]
    report = score(truth, predicted)
    by_label = {c.label: (c.precision, c.recall, c.f1, c.support) for c in report.classes}
    assert by_label == {"bug": (1.0, pytest.approx(2 / 3), pytest.approx(0.8), 3),
                        "feature": (0.5, 0.5, 0.5, 2),
                        "question": (0.5, 1.0, pytest.approx(2 / 3), 1)}
    assert report.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.labels == ("bug", "feature", "question")
    assert report.confusion == ((2, 1, 0), (0, 1, 1), (0, 0, 1))


def test_a_class_only_predicted_shows_in_the_matrix_but_not_in_macro_f1():
    report = score(["bug", "question"], ["bug", "documentation"])
    assert [c.label for c in report.classes] == ["bug", "question"]
    assert report.labels == ("bug", "documentation", "question")
    assert report.confusion == ((1, 0, 0), (0, 0, 0), (0, 1, 0))
    assert report.macro_f1 == pytest.approx(0.5)


def test_format_report_is_a_plain_table():
    text = format_report(score(["bug", "feature"], ["bug", "bug"]), usage_lines=["triager: local"])
    lines = text.splitlines()
    assert lines[0].split() == ["class", "precision", "recall", "F1", "support"]
    assert lines[1].split() == ["bug", "0.500", "1.000", "0.667", "1"]
    assert "macro-F1" in text and "confusion matrix (rows: truth, columns: predicted)" in text
    assert lines[-1] == "triager: local"


def test_load_jsonl_maps_enhancement_to_feature_and_names_bad_lines(tmp_path):
    rows = load_jsonl(write(tmp_path / "a.jsonl", ISSUES))
    assert [r["label"] for r in rows] == ["bug", "bug", "feature", "feature", "question", "question"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ISSUES[0]) + "\n{\"title\": \"no label\", \"body\": \"\"}\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: needs string fields"):
        load_jsonl(bad)


async def test_run_local_prints_the_report(tmp_path, capsys):
    data = write(tmp_path / "issues.jsonl", ISSUES)
    assert await run(arguments(str(data), "--triager", "local")) == 0
    out = capsys.readouterr().out
    assert "macro-F1" in out and "confusion matrix" in out
    assert "triager: local (built-in rules, no training history)" in out
    assert "time per issue:" in out


async def test_run_learns_from_train_and_respects_limit(tmp_path, capsys):
    data = write(tmp_path / "issues.jsonl", ISSUES)
    train = write(tmp_path / "train.jsonl", ISSUES * 5)
    assert await run(arguments(str(data), "--train", str(train), "--limit", "4")) == 0
    out = capsys.readouterr().out
    assert "learned from 30 issues: bug 10, feature 10, question 10" in out
    assert "(4 issues)" in out


async def test_run_reports_an_unreadable_file_in_one_line(tmp_path, capsys):
    assert await run(arguments(str(tmp_path / "missing.jsonl"))) == 2
    assert capsys.readouterr().out.startswith("error: cannot read")


async def test_run_llm_prints_tokens_cost_and_misses(tmp_path, capsys, fake_llm, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_llm.base_url)
    fake_llm.script("refusal", match="dark theme")
    data = write(tmp_path / "issues.jsonl", ISSUES)
    assert await run(arguments(str(data), "--model", "claude-test", api_key="test-key")) == 0
    out = capsys.readouterr().out
    assert "triager: llm (claude-test" in out
    assert "tokens per issue:" in out and "cache share:" in out and "cost per issue: $" in out
    assert "unavailable: 1 of 6 issues" in out
    assert "(none)" in out  # the miss is a column of the confusion matrix


def labelled(repos: int = 2, per_label: int = 10) -> list[dict]:
    """Issues of `repos` repositories, `per_label` of each label in each."""
    kinds = {"bug": ("crashes with a traceback", "Traceback (most recent call last): KeyError"),
             "feature": ("would be nice to support", "Please add an option, it would be great."),
             "question": ("how do I configure it?", "Is there a way to set this? I could not find it.")}
    return [{"id": f"{repo}-{label}-{i}", "repo": f"acme/repo{repo}", "title": f"Widget {i} {title}",
             "body": f"{body} (widget {i})", "label": label}
            for repo in range(repos) for label, (title, body) in kinds.items() for i in range(per_label)]


def test_folds_are_stratified_by_label_and_repository_and_reproducible():
    rows = labelled(repos=3, per_label=10)
    dealt = folds(rows, 5, seed=0)
    assert sorted(r["id"] for fold in dealt for r in fold) == sorted(r["id"] for r in rows)
    for fold in dealt:
        assert set(Counter((r["repo"], r["label"]) for r in fold).values()) == {2}
    assert [[r["id"] for r in f] for f in folds(list(reversed(rows)), 5, seed=0)] == [[r["id"] for r in f]
                                                                                     for f in dealt]
    assert [[r["id"] for r in f] for f in folds(rows, 5, seed=1)] != [[r["id"] for r in f] for f in dealt]


def test_cross_validation_scores_every_fold_per_category_and_repository():
    results = cross_validate(labelled(), LocalTriager.from_history, k=5)
    assert len(results) == 5
    for fold in results:
        assert fold.report.total == 12 and fold.report.macro_f1 == pytest.approx(1.0)
        assert list(fold.by_repository) == ["acme/repo0", "acme/repo1"]
        assert all(r.total == 6 for r in fold.by_repository.values())


async def test_run_cv_prints_the_folds_and_a_train_test_split(tmp_path, capsys):
    data = write(tmp_path / "issues.jsonl", labelled())
    assert await run(arguments(str(data), "--cv", "5", "--triager", "local")) == 0
    out = capsys.readouterr().out
    assert "cross-validation: 5 folds of issues.jsonl (60 issues), stratified by label and repository, seed 0" in out
    lines: dict[str, list[str]] = {}
    for line in out.splitlines():
        lines.setdefault(line.split("  ")[0], line.split())  # the first: the cross-validation's table
    assert lines["macro-F1"][-3:] == ["1.000", "±", "0.000"]
    assert lines["F1 question"][-3:] == ["1.000", "±", "0.000"]
    assert lines["macro-F1 acme/repo1"][-3:] == ["1.000", "±", "0.000"]
    assert "train/test split: fold 1 held out (12 issues), learned from the other 4 folds (48 issues)" in out
    assert "confusion matrix" in out and lines["acme/repo0"][1:] == ["1.000", "1.000", "6"]


async def test_run_cv_refuses_what_it_cannot_measure(tmp_path, capsys):
    data = write(tmp_path / "issues.jsonl", labelled())
    assert await run(arguments(str(data), "--cv", "1")) == 2
    assert capsys.readouterr().out.startswith("error: --cv needs between 2 and 60 folds")
    assert await run(arguments(str(data), "--cv", "5", "--train", str(data))) == 2
    assert capsys.readouterr().out.startswith("error: --cv measures the local triager")
