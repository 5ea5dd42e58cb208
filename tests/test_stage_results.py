"""What a stage agent submits, what CI decided, and what people see of it (pure)."""

import pytest

from bot.stages import ci, documents, release, results, view
from bot.stages.tools import Snapshot

SNAP = Snapshot("c0ffee", {"src/widgets/core.py": "a\nb\nc\n"})
RESEARCH = {"summary": "s", "root_cause": "parse_size slices text[:-3]", "recommendation": "slice [:-2]",
            "approaches": [{"name": "a", "description": "d", "trade_offs": "t"},
                           {"name": "b", "description": "d", "trade_offs": "t"}],
            "evidence": [{"location": "src/widgets/core.py:3", "note": "the slice"},
                         {"location": "src/widgets/core.py:99", "note": "made up"},
                         {"location": "nowhere.py:1", "note": "made up"}]}


def test_research_evidence_is_checked_against_the_snapshot():
    sub = results.validate("research", RESEARCH, SNAP)
    assert [e.exists for e in sub.evidence] == [True, False, False]
    doc = documents.document("research", 7, "t", RESEARCH, documents.Facts(
        "done", evidence=tuple((e.location, e.note, e.exists) for e in sub.evidence)))
    assert "`src/widgets/core.py:3`: the slice" in doc and doc.count("(not found in the repository)") == 2
    assert "parse_size slices text[:-3]" in doc


@pytest.mark.parametrize("data, where", [({"summary": "s"}, "root_cause"),
                                         ({**RESEARCH, "approaches": RESEARCH["approaches"][:1]}, "approaches"),
                                         ({**RESEARCH, "extra": 1}, "extra"), ("text", "object")])
def test_invalid_submissions_say_what_is_wrong(data, where):
    with pytest.raises(results.InvalidSubmission, match=where):
        results.validate("research", data, SNAP)


def test_ci_verdicts():
    run = lambda status, conclusion: ci.CheckRun("test", status, conclusion)  # noqa: E731
    assert ci.verdict([]) == "none"
    assert ci.verdict([run("completed", "success"), run("in_progress", None)]) == "pending"
    assert ci.verdict([run("completed", "success"), run("completed", "skipped")]) == "passed"
    assert ci.verdict([run("completed", "success"), run("completed", "timed_out")]) == "failed"
    failing = ci.CheckRun("test", "completed", "failure", "1 failed", "x" * 10_000)
    report = ci.failure_report([failing])
    assert report.startswith("### test: failure\n1 failed") and len(report) < 2100


def test_model_text_cannot_open_structure_in_a_document():
    hostile = "ok\n# Heading\n```\n---\n<script>alert(1)</script>\n@everyone\n/approve"
    text = documents.prose(hostile)
    assert "\n# " not in text and "\n```" not in text and "\n---" not in text
    assert "<script>" not in text and "@everyone" not in text and "\n/approve" not in text


def test_agent_output_is_fenced_longer_than_any_backtick_run():
    out = documents.agent_output("implement", {"summary": "````` five"}, documents.Facts("done"), at="T")
    assert out.startswith("## Agent Output\n\nT\n\n``````\n") and out.rstrip().endswith("``````")


def test_the_workflow_comment_has_one_line_per_stage_in_order():
    body = view.workflow_comment([view.Row("research", "failed", "reached the turn cap (max_turns 5)"),
                                  view.Row("reproduce", "reproduced", links=(("PR #3", "https://x/pull/3"),),
                                           turns=3, usd=0.0123)])
    lines = [line for line in body.splitlines() if line.startswith("| Re")]
    assert lines[0].startswith("| Reproduce | **reproduced**") and "[PR #3](https://x/pull/3)" in lines[0]
    assert "$0.0123" in lines[0] and lines[1].startswith("| Research | **failed**: reached the turn cap")
    assert body.startswith(view.WORKFLOW_MARKER)


def test_release_notes_put_breaking_changes_first():
    text = release.body("v1.2.0", [release.Entry(3, "t", "fix", "fixed a crash", 9),
                                   release.Entry(5, "t", "breaking", "renamed @everyone's option", None),
                                   release.Entry(4, "t", "feature", "added YAML", 10)])
    assert text.index("## Breaking changes") < text.index("## Features") < text.index("## Fixes")
    assert "- fixed a crash (#3, #9)" in text and "@everyone" not in text
