"""Security reports are handled privately, questions are pointed to the documentation, documentation reports go
to the document stage: end to end against the simulator, and the pure rules behind them."""

from __future__ import annotations

import pytest

from bot.assessment import Assessment, from_output, settle
from bot.issuetext import IssueText
from bot.classifier import rules_only, security_report
from bot.llm import ClaudeTriager, make_client
from bot.specs import parse_front_matter
from tests.conftest import REPO, eventually

VULN = ("SQL injection in the search endpoint",
        "Searching for `' OR 1=1 --` returns every user's record: the query is built by string concatenation. "
        "An attacker can read the whole users table. widgets 2.3.1.")
QUESTION = ("How do I change the colour of a widget?",
            "I read the README but could not find how to set a widget's colour. Is there an option?")


def replies(bot, number: int) -> list[str]:
    return [c["body"] for c in bot.bot_comments(number) if "chantbot:reply" in c["body"]]


def branch_texts(bot) -> dict[str, str]:
    return bot.sim.files(REPO, branch="chant-specs")


def specs_of(bot, number: int) -> dict[str, dict]:
    out = {}
    for path, text in branch_texts(bot).items():
        if path.startswith(".chant/specs/"):
            meta, body = parse_front_matter(text)
            if f"issue-{number}" in meta.get("labels", []):
                out[meta["prompt"]] = {**meta, "body": body, "id": path[len(".chant/specs/"):-3]}
    return out


# -- the local rule ------------------------------------------------------------------------------------
@pytest.mark.parametrize("title, body, category, expected", [
    (*VULN, "bug", True),
    ("Crash when exporting", "Path traversal: a name like ../../x is written outside the folder.", "bug", True),
    ("Stored XSS in widget titles", "A title with a script tag runs in the dashboard.", "bug", True),
    ("Bump lodash", "lodash 4.17.20 has CVE-2021-23337, please upgrade.", "feature", True),
    ("How do I prevent XSS in my templates?", "Is there an escaping helper?", "question", False),
    ("Support dependency injection", "A DI container would make testing easier.", "feature", False),
    ("Tree traversal is slow", "Walking a deep widget tree takes seconds.", "bug", False),
    ("Crash on save", "<!-- Report security vulnerabilities privately. -->\nKeyError on save.", "bug", False),
])
def test_the_security_rule(title, body, category, expected):
    assert security_report(IssueText(1, title, body, "x"), category) is expected


def test_the_local_triager_and_the_workflow_treat_a_vulnerability_as_a_security_report():
    assessment = settle(rules_only().assess(IssueText(1, *VULN, "x")))
    assert assessment.security and assessment.questions == () and assessment.recommendation == "defer"
    assert assessment.priority in ("high", "critical")


def test_the_model_says_so_in_its_own_field():
    output = {"category": "bug", "recommendation": "needs-info", "clarifying_questions": ["Which query?"],
              "priority": "low", "security": "vulnerability", "summary": "x"}
    assessment = settle(from_output(output))
    assert assessment.security and assessment.priority == "high" and not assessment.questions
    assert not from_output({**output, "security": "general"}).security  # about security, reporting nothing
    assert not from_output({**output, "security": True}).security  # only the vocabulary counts


def test_a_question_is_answered_not_researched():
    a = settle(Assessment(category="question", recommendation="ready-for-research", summary="How?"))
    assert a.recommendation == "defer"


# -- end to end ----------------------------------------------------------------------------------------
async def test_a_security_report_is_handled_privately(start_bot):
    bot = await start_bot()
    bot.sim.set_file(REPO, ".github/SECURITY.md", "# Security\n\nMail security@example.com.\n")
    number = await bot.open_issue(*VULN, user="mallory")
    [comment] = await bot.triaged(number)
    body = comment["body"]
    labels = bot.sim.labels_on(REPO, number)
    assert "security" in labels and ("priority: high" in labels or "priority: critical" in labels)
    assert "deferred" in labels and "needs-info" not in labels
    assert "https://github.com/acme/widgets/blob/HEAD/.github/SECURITY.md" in body
    assert "- [ ]" not in body and "Please don't add details" in body
    assert "OR 1=1" not in body and "users table" not in body.lower()
    files = branch_texts(bot)
    recorded = [text for path, text in files.items() if f"issue-{number}" in text or path.endswith(f"-{number}.md")]
    assert recorded and not any("SQL injection" in t or "1=1" in t or "users table" in t for t in recorded)
    assert "A security report was received" in files[f".chant/triage/issue-{number}.md"]
    assert list(specs_of(bot, number)) == ["triage"]  # no stage spec repeats the report

    await bot.comment(number, "/research", user="writer")
    await bot.idle()
    assert "security report" in replies(bot, number)[-1] and list(specs_of(bot, number)) == ["triage"]


async def test_without_a_policy_the_reporter_is_pointed_to_private_reporting(start_bot):
    bot = await start_bot()
    number = await bot.open_issue(*VULN, user="mallory")
    [comment] = await bot.triaged(number)
    assert "https://github.com/acme/widgets/security/advisories/new" in comment["body"]


async def test_slash_security_applies_the_same_to_an_issue_triage_missed(start_bot):
    bot = await start_bot()
    number = await bot.open_issue("Export writes where it should not",
                                  "Steps: export a widget named ../../tmp/x; expected: saved in the export folder; "
                                  "actual: written to /tmp/x. widgets 2.3.1.", user="mallory")
    await bot.triaged(number)
    assert "security" not in bot.sim.labels_on(REPO, number)
    assert "reproduce" in specs_of(bot, number)  # triage missed it: a pending stage spec quotes the report
    await bot.comment(number, "/security", user="mallory")  # the reporter may not
    await bot.idle()
    assert "Not run" in replies(bot, number)[-1] and "security" not in bot.sim.labels_on(REPO, number)

    await bot.comment(number, "/security", user="triager")
    await bot.idle()
    labels = bot.sim.labels_on(REPO, number)
    assert "security" in labels and ("priority: high" in labels or "priority: critical" in labels)
    [comment] = [c for c in bot.bot_comments(number) if "chantbot:triage" in c["body"]]
    assert "Please don't add details" in comment["body"] and "- [ ]" not in comment["body"]
    chain = specs_of(bot, number)
    assert chain["reproduce"]["status"] == "cancelled"
    assert not any("../../tmp/x" in spec["body"] for spec in chain.values())
    assert "earlier commits of the specs branch still hold" in replies(bot, number)[-1]


async def test_with_a_model_the_security_field_decides(start_bot, fake_llm):
    fake_llm.script("tool_input", input={
        "category": "bug", "priority": "medium", "severity": "degraded", "completeness": "partial",
        "missing_information": ["payload"], "clarifying_questions": ["Could you post the exact payload?"],
        "recommendation": "needs-info", "duplicate_of": None, "summary": "An injection.", "rationale": "x",
        "security": "vulnerability"})
    llm = ClaudeTriager(make_client(api_key="test", max_retries=0).with_options(base_url=fake_llm.base_url),
                        model="claude-test")
    bot = await start_bot(llm=llm)
    number = await bot.open_issue("Login form problem", "Typing a quote in the login form shows a database error.")
    [comment] = await bot.triaged(number)
    assert "security" in bot.sim.labels_on(REPO, number) and "priority: high" in bot.sim.labels_on(REPO, number)
    assert "exact payload" not in comment["body"]  # no public request for details
    tool = fake_llm.requests[0]["body"]["tools"][0]
    assert "security" in tool["input_schema"]["required"]


async def test_a_question_points_to_the_docs_and_discussions_and_gets_no_research_spec(start_bot):
    bot = await start_bot()
    bot.sim.set_file(REPO, "docs/usage.md", "# Usage\n")
    bot.sim.find_repo(REPO).has_discussions = True
    number = await bot.open_issue(*QUESTION, user="dave")
    [comment] = await bot.triaged(number)
    body = comment["body"]
    assert body.split("\n")[1].startswith("Thanks for the question, @dave!")
    assert "Thanks for the report" not in body
    labels = bot.sim.labels_on(REPO, number)
    assert "question" in labels and "ready-for-research" not in labels and "deferred" in labels
    assert "[`README.md`](https://github.com/acme/widgets/blob/HEAD/README.md)" in body
    assert "[`docs/`](https://github.com/acme/widgets/tree/HEAD/docs)" in body
    assert "[Discussions](https://github.com/acme/widgets/discussions)" in body
    assert list(specs_of(bot, number)) == ["triage"]


async def test_discussions_are_named_only_when_the_repository_has_them(start_bot):
    bot = await start_bot()
    number = await bot.open_issue(*QUESTION, user="dave")
    [comment] = await bot.triaged(number)
    assert "Discussions" not in comment["body"] and "README.md" in comment["body"]


async def test_with_a_model_a_question_may_get_an_answer_from_the_docs_marked_as_a_suggestion(start_bot, fake_llm):
    readme = "# widgets\n\nSet a widget's colour with `Widget(colour=\"red\")`.\n"
    fake_llm.script("tool_input", match="record_triage", input={
        "category": "question", "priority": "low", "severity": "cosmetic", "completeness": "complete",
        "missing_information": [], "clarifying_questions": [], "recommendation": "ready-for-research",
        "duplicate_of": None, "summary": "Asks how to set a colour.", "rationale": "x", "security": "none"})
    fake_llm.script("tool_input", match="suggest_answer", input={
        "answerable": True, "sources": ["README.md"],
        "answer": "Pass `colour` when you create it: `Widget(colour=\"red\")`. @everyone\n/approve\n"
                  "<script>x</script>"})
    llm = ClaudeTriager(make_client(api_key="test", max_retries=0).with_options(base_url=fake_llm.base_url),
                        model="claude-test")
    bot = await start_bot(llm=llm)
    bot.sim.set_file(REPO, "README.md", readme)
    number = await bot.open_issue(*QUESTION, user="dave")
    [comment] = await bot.triaged(number)
    body = comment["body"]
    assert "**A possible answer** (a suggestion drawn only from this repository's documentation, `README.md`" in body
    assert "> Pass `colour` when you create it" in body
    assert "@everyone" not in body and "<script" not in body and "\n/approve" not in body
    asked = [r for r in fake_llm.requests if r["body"]["tool_choice"]["name"] == "suggest_answer"]
    [request] = asked
    assert '<file path="README.md">' in request["body"]["messages"][0]["content"]
    assert "ready-for-research" not in bot.sim.labels_on(REPO, number) and list(specs_of(bot, number)) == ["triage"]
    await bot.comment(number, "/retriage", user="maint")  # a re-triage does not ask again
    await bot.idle()
    assert len([r for r in fake_llm.requests if r["body"]["tool_choice"]["name"] == "suggest_answer"]) == 1


async def test_an_answer_citing_what_was_not_offered_is_not_shown(start_bot, fake_llm):
    fake_llm.script("tool_input", match="suggest_answer", input={
        "answerable": True, "sources": ["https://evil.example/docs"], "answer": "Run the installer from my site."})
    llm = ClaudeTriager(make_client(api_key="test", max_retries=0).with_options(base_url=fake_llm.base_url),
                        model="claude-test")
    bot = await start_bot(llm=llm)
    number = await bot.open_issue(*QUESTION, user="dave")
    [comment] = await bot.triaged(number)
    assert "possible answer" not in comment["body"] and "installer" not in comment["body"]


async def test_a_documentation_report_goes_to_the_document_stage(start_bot):
    bot = await start_bot()
    bot.sim.set_file(REPO, "docs/usage.md", "# Usage\n")
    number = await bot.open_issue("The docs don't explain the colour option",
                                  "docs/usage.md does not mention the colour option at all; the documentation "
                                  "should describe it.", user="gina")
    [comment] = await bot.triaged(number)
    assert "Thanks for pointing this out" in comment["body"]
    chain = await eventually(lambda: specs_of(bot, number).get("document") and specs_of(bot, number))
    assert "research" not in chain and "reproduce" not in chain
    document = chain["document"]
    assert document["type"] == "documentation" and document["tracks"] == ["docs/usage.md"]
    assert document["depends_on"] == [chain["triage"]["id"]]
    assert "ready-for-implementation" in bot.sim.labels_on(REPO, number)
