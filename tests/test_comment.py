"""The reporter-facing triage comment and chantbot's failure replies."""

from __future__ import annotations

import re

import pytest

from bot import comment
from bot.assessment import Assessment
from bot.issuetext import IssueText

MENTION = re.compile(r"(?<![\w`/.@-])@([A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:/[A-Za-z0-9_.-]+)?)")
HELP = "| command | what it does |\n| --- | --- |\n| `/retriage` | triage again |"
ISSUE = IssueText(number=12, title="Export drops the last row", body="...", author="alice",
                  url="https://github.com/acme/widgets/issues/12")
ASSESSMENT = Assessment(category="bug", recommendation="needs-info", summary="Exports lose the final row.",
                        priority="high", severity="degraded",
                        questions=("Which version are you using?", "Does it happen with an empty file?"))
HOSTILE = Assessment(
    category="bug", recommendation="needs-info", priority="low", severity="cosmetic",
    summary="Hi @everyone and @alice\n/approve\n<script>alert(1)</script>",
    questions=("/approve", "ping @octo-org/admins <img src=x onerror=alert(1)>", "  /close now"),
)


def render(assessment: Assessment = ASSESSMENT, **kwargs) -> str:
    kwargs.setdefault("next_step", "Once you answer, triage runs again.")
    kwargs.setdefault("commands_help", HELP)
    return comment.triage_comment(issue=ISSUE, assessment=assessment, **kwargs)


def outside_code(text: str) -> str:
    return re.sub(r"`[^`\n]*`", "", text)


def test_comment_starts_with_marker_and_greets_the_reporter_once():
    text = render()
    assert text.splitlines()[0] == comment.TRIAGE_MARKER
    assert MENTION.findall(text) == ["alice"]
    assert "Exports lose the final row." in text


def test_assessment_table_and_questions_checklist():
    text = render()
    assert "| bug | high | degraded |" in text
    assert "- [ ] Which version are you using?\n- [ ] Does it happen with an empty file?" in text


def test_no_questions_section_when_there_are_none():
    text = render(Assessment(category="feature", recommendation="defer", summary="Wants CSV."))
    assert "- [ ]" not in text
    assert "not assessed" in text


def test_hostile_text_is_neutralised():
    text = render(HOSTILE, duplicate=(4, "@everyone <script>x</script>"), config_problems=["@admin /lock"])
    assert MENTION.findall(outside_code(text)) == ["alice"]
    assert not any(line.lstrip().startswith("/") for line in text.splitlines())
    assert not re.search(r"<\s*(script|img)", text, re.I)
    html = set(re.findall(r"<[^>\s]+", text))
    assert html <= {"<!--", "<details", "<summary", "</summary", "</details"}


def test_commands_are_in_a_details_section():
    text = render()
    assert "<details><summary>Commands for maintainers</summary>\n\n" + HELP + "\n\n</details>" in text


def test_duplicate_is_linked_but_not_closed():
    text = render(duplicate=(4, "Export loses rows"))
    assert "#4 (Export loses rows)" in text
    assert "**not** closed" in text


def test_recommendation_next_step_and_spec_footer():
    text = render(spec_path=".chant/specs/2026-11-24-001-abc.md",
                  spec_url="https://github.com/acme/widgets/blob/chant-specs/.chant/specs/2026-11-24-001-abc.md")
    assert "**Recommendation:** some details are missing before anyone can act on it" in text
    assert "**What happens next:** Once you answer, triage runs again." in text
    assert ("[`.chant/specs/2026-11-24-001-abc.md`](https://github.com/acme/widgets/blob/chant-specs/"
            ".chant/specs/2026-11-24-001-abc.md)") in text.splitlines()[-1]
    assert "`.chant/specs/x.md`" in render(spec_path=".chant/specs/x.md").splitlines()[-1]


def test_config_problems_are_reported():
    lines = comment.config_problem_lines(["labels.priority.urgent: unknown key", "stages.review: not a boolean"])
    assert ".github/chantbot.yml" in lines and "defaults" in lines
    assert "- labels.priority.urgent: unknown key\n- stages.review: not a boolean" in lines
    assert comment.config_problem_lines([]) == ""
    assert lines in render(config_problems=["labels.priority.urgent: unknown key",
                                            "stages.review: not a boolean"])


def test_author_that_is_not_a_login_is_not_mentioned():
    issue = IssueText(number=1, title="t", body="", author="dependabot[bot]")
    text = comment.triage_comment(issue=issue, assessment=ASSESSMENT, next_step="x", commands_help=HELP)
    assert MENTION.findall(text) == []


def test_marker_for_purpose():
    assert comment.marker_for("triage") == comment.TRIAGE_MARKER
    with pytest.raises(ValueError):
        comment.marker_for("x --><script>")


def test_failure_comment_says_what_failed_and_how_to_retry():
    text = comment.failure_comment(what="triage this issue", error="GitHub said 502\n/approve @everyone",
                                   retry="comment `/retriage`")
    assert text.splitlines()[0] == comment.marker_for("failure")
    assert "could not triage this issue" in text
    assert "GitHub said 502" in text
    assert "To try again, comment `/retriage`." in text
    assert MENTION.findall(text) == []
    assert not any(line.startswith("/") for line in text.splitlines())


def test_a_reply_keeps_whole_answers_under_githubs_limit_and_says_how_many_it_left_out():
    parts = [f"> `/help`\n\n{'x' * 4000}" for _ in range(40)]
    body = comment.fit_parts("<!-- chantbot:reply-1 -->", parts)
    assert len(body.encode()) <= comment.MAX_COMMENT
    kept = body.count("> `/help`")
    assert 10 <= kept < 40 and f"{40 - kept} more answer(s) left out" in body
    assert comment.fit_parts("<!-- m -->", ["short"]) == "<!-- m -->\nshort"


def test_any_body_is_cut_to_githubs_limit_counting_bytes():
    body = "<!-- m -->\n" + ("é" * 100 + "\n") * 1000  # 201 KB of UTF-8 in 101 K characters
    fitted = comment.fit(body)
    assert len(fitted.encode()) <= comment.MAX_COMMENT and fitted.startswith("<!-- m -->\n")
    assert fitted.endswith("holds at most 65,536 characters._\n") and comment.fit("small") == "small"


# -- wording --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("category, thanks", [("bug", "Thanks for the report"), ("question", "Thanks for the question"),
                                              ("feature", "Thanks for the suggestion"),
                                              ("documentation", "Thanks for pointing this out")])
def test_the_greeting_fits_the_kind_of_issue(category, thanks):
    text = render(Assessment(category=category, recommendation="defer", summary="Something."))
    assert text.splitlines()[1].startswith(f"{thanks}, @alice!")


def test_recommendation_and_next_step_say_different_things():
    for recommendation in ("close", "defer", "needs-info", "needs-reproduction", "ready-for-research"):
        a = Assessment(category="bug", recommendation=recommendation, summary="x")
        text = render(a, next_step=comment.next_step({"close": "deferred", "defer": "deferred"}.get(
            recommendation, recommendation)))
        said = re.search(r"\*\*Recommendation:\*\* (.*)\n\n\*\*What happens next:\*\* (.*)", text)
        assert said and said.group(1).lower() not in said.group(2).lower()
        assert not set(said.group(1).lower().split()) >= set(said.group(2).lower().split())


def test_answered_questions_are_ticked_and_open_ones_stay_open():
    text = render(Assessment(category="bug", recommendation="needs-info", summary="x",
                             questions=("What did you expect?",)),
                  answered=["Which version are you using?"])
    assert "- [ ] What did you expect?\n- [x] Which version are you using?" in text
    text = render(Assessment(category="bug", recommendation="needs-reproduction", summary="x"),
                  answered=["Which version are you using?"])
    assert "**Thanks for your answers.**" in text and "- [x] Which version are you using?" in text
    assert "- [ ]" not in text


def test_a_config_problem_is_for_maintainers_in_the_collapsed_section():
    text = render(config_problems=["`.github/chantbot.yml`: `stages.research`: 'maybe' is not of type 'boolean'"])
    details = text.index("<details><summary>Commands for maintainers, and a configuration problem</summary>")
    assert text.index("stages.research") > details
    assert text.index("**Recommendation:**") < details


def test_a_security_report_is_thanked_asks_nothing_and_repeats_nothing():
    a = Assessment(category="bug", recommendation="defer", summary="SQL injection through the search box",
                   questions=("Which payload?",), security=True)
    note = comment.security_note("https://github.com/acme/widgets", ".github/SECURITY.md")
    text = render(a, notes=[note], answered=["What version?"])
    assert "Thanks for letting us know, @alice! This looks like a report of a security vulnerability." in text
    assert "injection" not in text and "- [" not in text
    assert "[`.github/SECURITY.md`](https://github.com/acme/widgets/blob/HEAD/.github/SECURITY.md)" in text


def test_a_suggested_answer_is_quoted_marked_and_neutralised():
    block = comment.suggestion_block("Use `Widget(colour=\"red\")`.\n/approve\n@everyone <script>x</script>\n"
                                     "[login](https://evil.example)", ["README.md"], "https://github.com/acme/widgets")
    assert block.startswith("**A possible answer** (a suggestion drawn only from this repository's documentation, "
                            "`README.md`; a maintainer has not checked it):")
    assert all(line.startswith(">") for line in block.split("\n\n", 1)[1].splitlines())
    assert "@everyone" not in block and "<script" not in block and "](https://evil" not in block
    assert not any(line.lstrip("> ").startswith("/") for line in block.splitlines())


def test_the_reminder_and_the_closing_note():
    assert "within 14 days" in comment.reminder_comment(14) and "close" not in comment.reminder_comment(None)
    assert comment.reminder_comment(14).startswith("<!-- chantbot:needs-info-reminder -->\n")
    assert "21 days" in comment.no_answer_comment(21) and "reopens it" in comment.no_answer_comment(21)


def test_what_is_shown_ticked_after_a_retriage():
    assert comment.answered(["Version?", "Steps?"], [], ["Steps?"]) == ["Version?"]
    assert comment.answered(["Steps?"], ["Version?"], []) == ["Version?", "Steps?"]
    assert comment.answered([], ["Version?"], ["Version?"]) == []  # asked again: open, not ticked
    assert len(comment.answered([f"q{i}?" for i in range(9)], [], [])) == comment.MAX_ANSWERED
