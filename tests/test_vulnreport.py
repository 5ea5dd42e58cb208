"""The local vulnerability-report detector, and the security flag it raises with the model's: no model can lower
it, a maintainer's `/security off` can; a security issue's comment and specs repeat nothing of the report."""

from __future__ import annotations

import pytest

from bot.issuetext import IssueText
from bot.llm import ClaudeTriager, make_client
from bot.vulnreport import detect, without_comments
from tests.conftest import REPO
from tests.vulnerability_reports import REPORTS

PATH_TRAVERSAL = REPORTS[0]  # the report the model once called a question
PAYLOADS = ("../", "etc/passwd", "%2f", "root:x:0:0", "curl", "Widget.load")
NONE_SAID = {"category": "question", "priority": "medium", "severity": "degraded", "completeness": "partial",
             "missing_information": ["steps"], "clarifying_questions": ["What are the exact steps to reproduce this?"],
             "recommendation": "needs-info", "duplicate_of": None, "summary": "Widget.load reads ../../../../etc/passwd.",
             "rationale": "A question.", "security": "none"}


@pytest.mark.parametrize("title, body", REPORTS, ids=[title[:40] for title, _ in REPORTS])
def test_every_hand_made_vulnerability_report_is_recognised(title, body):
    assert detect(IssueText(1, title, body, "x")).vulnerability


@pytest.mark.parametrize("title, body", [
    ("How do I prevent XSS in my templates?", "Is there an escaping helper?"),
    ("Add CSRF protection to the forms", "Other frameworks add a token to every form; it would be nice to have."),
    ("Support dependency injection", "A DI container would make testing easier."),
    ("Tree traversal is slow", "Walking a deep widget tree takes seconds."),
    ("Crash on save", "<!-- If you found a security vulnerability, report it privately. -->\nKeyError on save."),
    ("Build fails", "```\nIn file included from ../../src/core/widget.h:12:\nerror: unknown type name\n```"),
    ("Token expired error after an hour", "The OAuth token expires and the client does not refresh it."),
    ("Query builder drops the ORDER BY", "`select(...).union(other)` loses the ordering; UNION semantics?"),
    ("Install script", "Run `curl -sSf https://sh.example.org | sh` and then `widgets init`."),
    ("Security: add a Content-Security-Policy header", "It would harden the dashboard against injected scripts."),
    ("Password field shows the text", "On the settings page the password field is type=text, so people nearby "
                                      "can read it while typing."),
])
def test_ordinary_issues_that_use_security_words_are_not_flagged(title, body):
    assert not detect(IssueText(1, title, body, "x")).vulnerability


def test_an_answer_can_reveal_a_vulnerability():
    issue = IssueText(1, "Export writes where it should not", "Files end up in odd places.", "x")
    assert not detect(issue).vulnerability
    answered = IssueText(1, issue.title, issue.body, "x", answers=("A name like ..%2f..%2fetc%2fcron.d%2fx works.",))
    assert detect(answered).vulnerability


def test_template_comments_are_not_read_and_the_scan_is_bounded():
    assert without_comments("a<!-- b -->c<!-- d") == "ac"
    long = IssueText(1, "x", "y" * 100_000 + " ../../../../etc/passwd", "x")
    assert not detect(long).vulnerability  # past what is read


async def model_saying_none(start_bot, fake_llm):
    fake_llm.script("tool_input", input=NONE_SAID, times=5)
    llm = ClaudeTriager(make_client(api_key="test", max_retries=0).with_options(base_url=fake_llm.base_url),
                        model="claude-test")
    return await start_bot(llm=llm)


def public_texts(bot, number: int) -> list[str]:
    comments = [c["body"] for c in bot.bot_comments(number)]
    specs = [text for path, text in bot.sim.files(REPO, branch="chant-specs").items()
             if f"issue-{number}" in text or path.endswith(f"-{number}.md")]
    return comments + specs


async def test_a_model_saying_none_does_not_lower_the_flag_and_nothing_public_repeats_the_report(start_bot, fake_llm):
    bot = await model_saying_none(start_bot, fake_llm)
    number = await bot.open_issue(*PATH_TRAVERSAL, user="mallory")
    [comment] = await bot.triaged(number)
    labels = bot.sim.labels_on(REPO, number)
    assert "security" in labels and "priority: high" in labels and "needs-info" not in labels
    assert "bug" in labels and "question" not in labels
    assert "Please don't add details" in comment["body"] and "- [ ]" not in comment["body"]
    assert "steps to reproduce" not in comment["body"].lower()
    texts = public_texts(bot, number)
    assert len(texts) >= 3 and not [p for p in PAYLOADS for t in texts if p in t]
    assert "A security report was received" in bot.sim.file(REPO, f".chant/triage/issue-{number}.md",
                                                             branch="chant-specs")
    other = await bot.open_issue("Widget.load lets anyone read the wrong folder", "Widget.load('a') reads the cwd.")
    await bot.triaged(other)
    triages = [r for r in fake_llm.requests if r["body"].get("tool_choice", {}).get("name") == "record_triage"]
    asked = triages[-1]["body"]["messages"][0]["content"]
    assert "etc/passwd" not in asked and "Path traversal" not in asked  # not a duplicate candidate's text either


async def test_security_off_by_a_maintainer_puts_the_issue_back_on_the_normal_path(start_bot):
    bot = await start_bot()
    number = await bot.open_issue(*PATH_TRAVERSAL, user="mallory")
    await bot.triaged(number)
    assert "security" in bot.sim.labels_on(REPO, number)
    await bot.comment(number, "/security off", user="triager")  # raising takes triage access, lowering maintain
    await bot.idle()
    assert "security" in bot.sim.labels_on(REPO, number)
    reply = [c["body"] for c in bot.bot_comments(number) if "chantbot:reply" in c["body"]][-1]
    assert "Not run" in reply and "maintain" in reply

    await bot.comment(number, "/security off", user="maint")
    await bot.idle()
    labels = bot.sim.labels_on(REPO, number)
    assert "security" not in labels and "deferred" not in labels and "bug" in labels
    [comment] = [c for c in bot.bot_comments(number) if "chantbot:triage" in c["body"]]
    assert "Please don't add details" not in comment["body"]
    reply = [c["body"] for c in bot.bot_comments(number) if "chantbot:reply" in c["body"]][-1]
    assert "triaged again on the normal path" in reply
    await bot.comment(number, "/retriage", user="maint")  # the detector does not raise it again
    await bot.idle()
    assert "security" not in bot.sim.labels_on(REPO, number)

    await bot.comment(number, "/security", user="triager")  # and a person can raise it again
    await bot.idle()
    assert "security" in bot.sim.labels_on(REPO, number)
