"""The local triager: learned and rule-based categories, missing information, duplicates, the cached model."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bot.assessment import CATEGORIES, COMPLETENESS, MAX_QUESTIONS, PRIORITIES, RECOMMENDATIONS, SEVERITIES
from bot.issuetext import Candidate, IssueText
from bot.classifier import LocalTriager, likely_duplicate, missing_information, rules_only
from bot.context import TRIAGER_KEY, Context
from bot.questions import bounded
from tests.conftest import ManualClock
from tests.databases import opened

URL = "https://github.com/acme/widgets/issues/{}"
THINGS = ("the exporter", "the settings page", "the CLI", "the sync service", "the plugin loader", "the importer")

BUGS = [(f"{thing.capitalize()} {verb}", f"{thing.capitalize()} {verb} every time. Steps to reproduce: run it "
         f"with the default config.\n```\nTraceback (most recent call last):\nValueError: bad state\n```")
        for thing in THINGS for verb in ("crashes on startup", "throws an exception when saving")]
FEATURES = [(f"Add support for {what} in {thing}", f"It would be nice if {thing} could support {what}, because "
             f"we need it for our deployments.")
            for thing in THINGS for what in ("YAML output", "a dark theme")]
QUESTIONS = [(f"How do I {goal} {thing}?", f"I am trying to {goal} {thing}. Is there a way to do this? I read the "
              "FAQ but could not find it.")
             for thing in THINGS for goal in ("configure", "disable")]
DOCS = [(f"Typo in the {page} documentation", f"The {page} page of the docs says 'recieve' instead of 'receive'.")
        for page in ("install", "upgrade", "config", "plugin", "CLI", "API", "FAQ", "sync", "export", "theme",
                     "import", "logging")]
HISTORY = [(t, b, "bug") for t, b in BUGS] + [(t, b, "feature") for t, b in FEATURES] + \
    [(t, b, "question") for t, b in QUESTIONS] + [(t, b, "documentation") for t, b in DOCS]


def issue(title: str, body: str = "", number: int = 99) -> IssueText:
    return IssueText(number=number, title=title, body=body, author="reporter", url=URL.format(number))


@pytest.fixture(scope="module")
def learned() -> LocalTriager:
    return LocalTriager.from_history(HISTORY)


OBVIOUS = [
    ("The dashboard crashes when I open it", "It throws an exception:\n```\nTraceback (most recent call last):\n"
     "KeyError: 'x'\n```", "bug"),
    ("Add support for TOML output", "It would be nice to support TOML because our tools read it.", "feature"),
    ("How do I change the cache directory?", "Is there a way to configure where it stores files?", "question"),
    ("Typo in the README", "The docs say 'teh' instead of 'the'.", "documentation"),
]


@pytest.mark.parametrize("title, body, expected", OBVIOUS)
def test_learned_triager_classifies_obvious_issues(learned, title, body, expected):
    category, confidence = learned.classify(title, body)
    assert category == expected
    assert 0 < confidence <= 1


@pytest.mark.parametrize("title, body, expected", [
    ("Save fails", "When I press save:\n```\nTraceback (most recent call last):\n  File \"app.py\", line 3, in save\n"
     "OSError: disk full\n```", "bug"),
    ("Markdown tables", "It would be nice to support Markdown tables in the preview.", "feature"),
    ("How do I run it behind a proxy?", "I want to use it at work.", "question"),
    ("Typo in the docs", "The installation page says 'recieve'.", "documentation"),
])
def test_rules_only_triager_reads_the_usual_cues(title, body, expected):
    assert rules_only().classify(title, body)[0] == expected


def test_a_thin_category_falls_back_to_the_rules():
    few_docs = [(t, b, "documentation") for t, b in DOCS[:2]]
    without_docs = LocalTriager.from_history([row for row in HISTORY if row[2] != "documentation"] + few_docs)
    assert "documentation" not in without_docs.classes
    assert without_docs.classify("Typo in the documentation", "The docs are wrong about the flag.")[0] == \
        "documentation"
    assert without_docs.classify(*OBVIOUS[0][:2])[0] == "bug"
    # The docs named only in the body: the category the model never saw does not take the issue.
    assert without_docs.classify("save() with a relative path", "The documentation is wrong: the docs say save() "
                                 "takes any path, but a relative one fails.")[0] != "documentation"


def test_history_outside_the_vocabulary_is_ignored():
    triager = LocalTriager.from_history(HISTORY + [("Same as #1", "dupe", "duplicate"), ("x", "y", "wontfix")] * 9)
    assert set(triager.classes) == {"bug", "feature", "question", "documentation"}


def test_a_vague_bug_gets_asked_for_version_and_steps():
    missing = dict(missing_information(issue("The app is broken", "It does not work. Please fix."), "bug"))
    assert {"version", "steps to reproduce"} <= set(missing)
    assert missing["version"] == ("Which version of widgets are you running (release number or commit), "
                                  "and on which operating system?")
    assert all(question.endswith("?") for question in missing.values())


def test_a_complete_bug_is_not_asked_what_it_already_says():
    body = ("### Steps to reproduce\n1. Open a report\n2. Click Export\n\n### Expected\nA PDF file.\n\n"
            "### Actual\nIt crashes:\n```\nTraceback (most recent call last):\nValueError: bad\n```\n\n"
            "Version 2.3.1 on Ubuntu 22.04")
    assert missing_information(issue("Export crashes", body), "bug") == []
    assessment = rules_only().assess(issue("Export crashes", body))
    assert (assessment.category, assessment.completeness, assessment.recommendation) == \
        ("bug", "complete", "needs-reproduction")
    assert (assessment.priority, assessment.severity) == ("high", "blocking")


def test_template_placeholders_do_not_count_as_answers():
    body = "### Version\n\n_No response_\n\n### Steps to reproduce\n\n_No response_\n\n<!-- Which version? -->"
    missing = dict(missing_information(issue("Login fails", body), "bug"))
    assert {"version", "steps to reproduce"} <= set(missing)


def test_a_feature_without_a_use_case_needs_info():
    assessment = rules_only().assess(issue("Add YAML export", "It would be nice to support YAML."))
    assert (assessment.category, assessment.recommendation) == ("feature", "needs-info")
    assert assessment.missing_information == ("use case",)
    assert len(assessment.questions) == 1
    motivated = rules_only().assess(issue("Add YAML export", "It would be nice to support YAML because our deploy "
                                                             "tooling only reads YAML."))
    assert (motivated.recommendation, motivated.questions) == ("ready-for-research", ())


def test_a_near_identical_candidate_becomes_duplicate_of():
    body = "When I click Export on a large report the app freezes and then closes without any message."
    candidates = [Candidate(3, "Crash in the importer", "Unrelated text about importing CSV files."),
                  Candidate(7, "App closes when exporting a large report", body + " Happens on 2.3.")]
    new = issue("App closes when exporting a large report", body, number=12)
    assert likely_duplicate(new, candidates) == candidates[1]
    assessment = rules_only().assess(new, candidates)
    assert (assessment.category, assessment.duplicate_of, assessment.recommendation) == ("duplicate", 7, "defer")


def test_a_shared_template_title_alone_is_not_a_duplicate():
    candidates = [Candidate(4, "[Bug] Element not found", "Clicking the tree view in the sidebar shows an error.")]
    new = issue("[Bug] Element not found", "After upgrading, saving any settings file throws a permission error "
                "on Windows.", number=5)
    assert likely_duplicate(new, candidates) is None
    assert likely_duplicate(issue("Same", "x", number=4), [Candidate(4, "Same", "x")]) is None  # itself


@pytest.mark.parametrize("title, body", [
    ("", ""), ("?", "!!!"), ("Security: tokens leak into logs", "Everyone is affected, data loss too."),
    ("Fix typo", "teh"), ("<b>markup</b> `code` **bold**", "<!-- template -->\n### Heading\n_No response_"),
    (*OBVIOUS[0][:2],), (*OBVIOUS[1][:2],), (*OBVIOUS[2][:2],), (*OBVIOUS[3][:2],),
])
def test_the_assessment_is_always_inside_the_vocabulary(learned, title, body):
    for triager in (learned, rules_only()):
        a = triager.assess(issue(title, body), [Candidate(1, "Other issue", "other text")])
        assert a.category in CATEGORIES and a.recommendation in RECOMMENDATIONS
        assert a.priority in PRIORITIES and (a.severity is None or a.severity in SEVERITIES)
        assert a.completeness in COMPLETENESS and a.triager == "local"
        assert len(a.questions) <= MAX_QUESTIONS and all(q.endswith("?") for q in a.questions)
        assert a.recommendation != "needs-info" or a.questions
        assert a.summary and "<" not in a.summary and "`" not in a.summary and "*" not in a.summary
        assert a.rationale.endswith(".")


def test_the_model_round_trips_through_json(learned):
    restored = LocalTriager.from_dict(json.loads(json.dumps(learned.to_dict())))
    texts = [row[:2] for row in HISTORY[::5]] + [row[:2] for row in OBVIOUS]
    assert [restored.classify(t, b) for t, b in texts] == [learned.classify(t, b) for t, b in texts]
    rules = LocalTriager.from_dict(json.loads(json.dumps(rules_only().to_dict())))
    assert [rules.classify(t, b) for t, b in texts] == [rules_only().classify(t, b) for t, b in texts]


def test_from_dict_rejects_something_else():
    with pytest.raises(ValueError):
        LocalTriager.from_dict({"format": "other"})
    with pytest.raises(ValueError):
        LocalTriager.from_dict({**rules_only().to_dict(), "classes": ["bug", "feature"], "weights": {"x": [1.0]}})


def test_the_reporters_answers_fill_what_the_body_left_out():
    vague = issue("The app is broken", "It does not work. Please fix.")
    answered = replace(vague, answers=("I use widgets 2.3.1 on Ubuntu.",
                                       "Steps: 1. open a report 2. click Export. Expected a PDF; it crashes:\n"
                                       "```\nTraceback (most recent call last):\nValueError: bad\n```"))
    assert {"version", "steps to reproduce"} <= {what for what, _ in missing_information(vague, "bug")}
    assert missing_information(answered, "bug") == []
    assessment = rules_only().assess(answered)
    assert (assessment.recommendation, assessment.questions) == ("needs-reproduction", ())


def test_answers_are_bounded_latest_first():
    many = replace(issue("Broken", "x"), answers=tuple(f"answer {i} " + "y" * 3000 for i in range(20)))
    kept = bounded(many).answers
    assert kept[-1].startswith("answer 19") and sum(map(len, kept)) <= 8000 and len(kept) <= 10


async def test_what_the_triager_learned_is_stored_and_read_back_after_a_restart(database_url):
    """A restart reads the repository's stored model instead of learning again."""
    repo = "acme/widgets"
    store = await opened(database_url, ManualClock())
    try:
        for number, (title, body, category) in enumerate(HISTORY, 1):
            await store.index_issue(repo, number, title, body, "closed", category)
        first = await Context(store=store, github=None, settings=None, metrics=None).local_triager(repo)
        assert set(first.classes) == {"bug", "feature", "question", "documentation"}
        stored = json.loads(await store.repo_meta(repo, TRIAGER_KEY))
        assert stored["history"] == len(HISTORY)
        assert LocalTriager.from_dict(stored["model"]).to_dict() == first.to_dict()

        # What another process learned from other labels (bugs called features): a restart uses it as stored.
        swapped = {"bug": "feature", "feature": "bug"}
        other = LocalTriager.from_history([(t, b, swapped.get(c, c)) for t, b, c in HISTORY])
        await store.set_repo_meta(repo, TRIAGER_KEY, json.dumps({"history": len(HISTORY), "model": other.to_dict()}))
        restarted = await Context(store=store, github=None, settings=None, metrics=None).local_triager(repo)
        assert restarted.classify(*OBVIOUS[0][:2])[0] == "feature"

        # An unreadable stored model is learned again.
        await store.set_repo_meta(repo, TRIAGER_KEY, "{not json")
        relearned = await Context(store=store, github=None, settings=None, metrics=None).local_triager(repo)
        assert relearned.classify(*OBVIOUS[0][:2])[0] == "bug"
        assert json.loads(await store.repo_meta(repo, TRIAGER_KEY))["history"] == len(HISTORY)
    finally:
        await store.close()
