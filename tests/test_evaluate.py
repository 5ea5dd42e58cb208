"""`python -m bot eval`: scores, the printed report, and both triagers end to end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bot.evaluate import DatasetError, add_arguments, format_report, load_jsonl, run, score

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
