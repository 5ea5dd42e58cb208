"""Duplicate candidates: full-text matches kept when their title shares words or their text reads alike."""

from __future__ import annotations

from bot import similarity
from bot.classifier import rules_only
from bot.issuetext import Candidate, IssueText

EXPORT = Candidate(7, "Saving a large report as PDF never finishes",
                   "When I export a report with 5000 rows to PDF the progress bar stops at 99% and the app hangs. "
                   "The exporter log shows pdf render timeout after 60 seconds.")
OTHERS = [
    Candidate(3, "Crash in the importer", "Importing a CSV file with an empty header row crashes the importer."),
    Candidate(4, "Add a dark theme", "It would be nice to have a dark theme for the report viewer."),
    Candidate(5, "Report viewer: wrong totals", "The totals row of a report shows the sum of the first page only."),
    Candidate(6, "Docs: export options", "The documentation does not list the PDF export options."),
]


def new(title: str, body: str, number: int = 12) -> IssueText:
    return IssueText(number=number, title=title, body=body, author="reporter")


def test_a_report_in_other_words_is_a_candidate_and_leads():
    issue = new("Export hangs at 99% for big reports",
                "Exporting a report with many rows to PDF hangs; the exporter log says pdf render timeout.")
    found = similarity.candidates(issue, [*OTHERS, EXPORT])
    assert found[0].number == 7 and found[0].score > similarity.MINIMUM
    assert 3 not in {c.number for c in found}  # full text matched "report", nothing more


def test_a_shared_title_is_kept_and_the_issue_itself_never_is():
    issue = new("Crash in the importer", "Something else entirely happens here.", number=3)
    assert [c.number for c in similarity.candidates(issue, OTHERS)] == []
    issue = new("The importer crashes", "Opening any spreadsheet file crashes it.")
    assert 3 in {c.number for c in similarity.candidates(issue, OTHERS)}


def test_similarity_ranks_and_bounds():
    issue = new(EXPORT.title, EXPORT.body)
    ranked = similarity.rank(issue, [*OTHERS, EXPORT], minimum=0.0)
    assert ranked[0].number == 7 and ranked[0].score > 0.9
    assert all(0.0 <= c.score <= 1.0 for c in ranked) and len(similarity.rank(issue, OTHERS * 3, limit=2)) <= 2
    assert similarity.candidates(new("", ""), OTHERS) == []


def test_a_named_duplicate_says_how_similar_it_is():
    issue = new(EXPORT.title, EXPORT.body + " Seen on 2.3.")
    assessment = rules_only().assess(issue, similarity.candidates(issue, [*OTHERS, EXPORT]))
    assert assessment.duplicate_of == 7
    assert assessment.rationale.startswith("Its title and description nearly match #7 (similarity 0.9")
