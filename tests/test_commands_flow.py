"""Slash commands end to end: permissions from GitHub's role endpoint, visible answers, label rules."""

import pytest

from bot.commands.parser import parse
from tests.conftest import REPO

FEATURE = ("Support exporting widgets to YAML",
           "It would be nice to add support for exporting a Widget to YAML.\n\nUse case: our tooling reads YAML.")


@pytest.fixture
async def triaged(start_bot):
    bot = await start_bot()
    issue = bot.sim.add_issue(REPO, title=FEATURE[0], body=FEATURE[1], user="reporter", labels=["help wanted"])
    assert await bot.deliver("issues", bot.sim.issue_payload("opened", REPO, issue["number"])) == 202
    await bot.triaged(issue["number"])
    return bot, issue["number"]


def replies(bot, number):
    return [c for c in bot.bot_comments(number) if "chantbot:reply" in c["body"]]


def family(labels, prefix):
    return sorted(l for l in labels if l.startswith(prefix))


async def test_help_by_anyone_lists_the_commands(triaged):
    bot, n = triaged
    before = bot.sim.labels_on(REPO, n)
    await bot.comment(n, "/help", user="outsider")
    await bot.idle()
    [reply] = replies(bot, n)
    for name in ("/priority", "/research", "/approve", "/retriage"):
        assert name in reply["body"]
    assert parse(reply["body"]) == [] and bot.sim.labels_on(REPO, n) == before


async def test_priority_by_triager_replaces_the_family_with_reactions(triaged):
    bot, n = triaged
    comment = await bot.comment(n, "/priority critical", user="triager")
    await bot.idle()
    assert family(bot.sim.labels_on(REPO, n), "priority:") == ["priority: critical"]
    assert bot.sim.reactions(comment["id"]) == ["eyes", "+1"]
    assert "help wanted" in bot.sim.labels_on(REPO, n)


async def test_refused_command_quotes_it_and_says_who_may(triaged):
    bot, n = triaged
    before = sorted(bot.sim.labels_on(REPO, n))
    await bot.comment(n, "/research", user="outsider")
    await bot.idle()
    [reply] = replies(bot, n)
    assert "/research" in reply["body"] and "write" in reply["body"] and "Not run" in reply["body"]
    assert sorted(bot.sim.labels_on(REPO, n)) == before


async def test_commands_in_code_quotes_and_html_comments_do_nothing(triaged):
    bot, n = triaged
    before, writes = sorted(bot.sim.labels_on(REPO, n)), len([r for r in bot.sim.requests if r["write"]])
    await bot.comment(n, "Old workaround:\n\n```\n/priority low\n```\n\n> /priority low\n\n<!-- /priority low -->",
                      user="maint")
    await bot.idle()
    assert sorted(bot.sim.labels_on(REPO, n)) == before and not replies(bot, n)
    assert len([r for r in bot.sim.requests if r["write"]]) == writes


async def test_an_edit_runs_only_the_commands_it_added(triaged):
    bot, n = triaged
    first = await bot.comment(n, "/priority high", user="triager")
    await bot.idle()
    await bot.comment(n, "/priority low", user="maint")
    await bot.idle()
    edited, old = bot.sim.edit_comment(first["id"], "/priority high\n/kind bug")
    assert await bot.deliver("issue_comment", bot.sim.comment_payload("edited", REPO, n, first["id"],
                                                                      old_body=old)) == 202
    await bot.idle()
    labels = bot.sim.labels_on(REPO, n)
    assert "bug" in labels and "enhancement" not in labels
    assert family(labels, "priority:") == ["priority: low"]


async def test_several_commands_run_in_order_and_unknown_ones_get_a_suggestion(triaged):
    bot, n = triaged
    await bot.comment(n, "/severity cosmetic\n/prioirty low\n/kind question", user="maint")
    await bot.idle()
    labels = bot.sim.labels_on(REPO, n)
    assert "severity: cosmetic" in labels and "question" in labels
    [reply] = replies(bot, n)
    assert "Did you mean `/priority`" in reply["body"]


async def test_label_outside_the_vocabulary_is_refused(triaged):
    bot, n = triaged
    await bot.comment(n, "/label security-approved", user="maint")
    await bot.idle()
    assert "security-approved" not in bot.sim.labels_on(REPO, n)
    assert "neither one of this repository's chantbot labels" in replies(bot, n)[0]["body"]


async def test_research_writes_the_stage_spec_and_labels_it(triaged):
    bot, n = triaged
    await bot.comment(n, "/research", user="writer")
    await bot.idle()
    assert "ready-for-research" in bot.sim.labels_on(REPO, n)
    [reply] = replies(bot, n)
    assert "research" in reply["body"] and "chant work" in reply["body"]
    await bot.comment(n, "/status", user="outsider")
    await bot.idle()
    status = replies(bot, n)[-1]["body"]
    assert "triage" in status and "research" in status and "pending" in status


async def test_approve_is_for_maintainers_and_needs_an_implementation(triaged):
    bot, n = triaged
    await bot.comment(n, "/approve", user="writer")
    await bot.idle()
    assert "maintain" in replies(bot, n)[-1]["body"]
    await bot.comment(n, "/approve", user="maint")
    await bot.idle()
    assert "no completed implementation" in replies(bot, n)[-1]["body"]
    assert "approved" not in bot.sim.labels_on(REPO, n)


async def test_close_and_reopen(triaged):
    bot, n = triaged
    await bot.comment(n, "/close not planned", user="triager")
    await bot.idle()
    assert bot.sim.issue(REPO, n)["state"] == "closed"
    await bot.comment(n, "/reopen", user="triager")
    await bot.idle()
    assert bot.sim.issue(REPO, n)["state"] == "open"


async def test_comments_by_bots_are_ignored(triaged):
    bot, n = triaged
    before = len(bot.sim.requests)
    comment = bot.sim.add_comment(REPO, n, body="/priority low", user="dependabot[bot]")
    assert await bot.deliver("issue_comment", bot.sim.comment_payload("created", REPO, n, comment["id"])) == 200
    assert len(bot.sim.requests) == before


async def test_retriage_keeps_what_a_maintainer_decided(triaged):
    bot, n = triaged
    await bot.comment(n, "/priority critical", user="maint")
    await bot.idle()
    await bot.comment(n, "/retriage", user="reporter")
    await bot.idle()
    assert family(bot.sim.labels_on(REPO, n), "priority:") == ["priority: critical"]


async def edit(bot, number: int, comment: dict, body: str, *, by: str) -> int:
    """`by` edits someone's comment: GitHub names the editor as the delivery's sender."""
    _, old = bot.sim.edit_comment(comment["id"], body)
    payload = bot.sim.comment_payload("edited", REPO, number, comment["id"], old_body=old)
    payload["sender"] = bot.sim.render_user(by)
    return await bot.deliver("issue_comment", payload)


async def test_a_writer_editing_a_maintainers_comment_cannot_approve(triaged):
    bot, n = triaged
    await bot.comment(n, "/review", user="writer")
    await bot.idle()
    mine = await bot.comment(n, "Looking at this now.", user="maint")
    await bot.idle()
    assert await edit(bot, n, mine, "Looking at this now.\n/approve", by="writer") == 202
    await bot.idle()
    assert "approved" not in bot.sim.labels_on(REPO, n)
    reply = replies(bot, n)[-1]["body"]
    assert "Not run" in reply and "`writer`" in reply and "`maint`" in reply and "both" in reply
    review = [t for t in bot.sim.files(REPO, branch="chant-specs").values() if "prompt: review" in t]
    assert review and "status: approved" not in review[0]


async def test_a_maintainer_editing_a_writers_comment_runs_only_what_both_may(triaged):
    bot, n = triaged
    theirs = await bot.comment(n, "Could someone look?", user="writer")
    await bot.idle()
    assert await edit(bot, n, theirs, "Could someone look?\n/approve\n/priority high", by="maint") == 202
    await bot.idle()
    assert family(bot.sim.labels_on(REPO, n), "priority:") == ["priority: high"]  # writer and maint may both
    reply = replies(bot, n)[-1]["body"]
    assert "/approve" in reply and "Not run" in reply and "access here: `maint` maintain, `writer` write" in reply


async def test_forty_help_lines_get_one_answer_under_githubs_limit(triaged):
    bot, n = triaged
    await bot.comment(n, "/help\n" * 40, user="outsider")
    await bot.idle()
    [reply] = replies(bot, n)
    assert reply["body"].count("| command | what it does |") == 1
    assert "Repeated commands ran once" in reply["body"] and len(reply["body"]) < 65_536


async def test_a_comment_runs_at_most_ten_commands_and_says_so(triaged):
    bot, n = triaged
    await bot.comment(n, "\n".join(f"/nope{i}" for i in range(14)), user="outsider")
    await bot.idle()
    [reply] = replies(bot, n)
    assert reply["body"].count("has no command") == 10
    assert "4 more command(s) in this comment were not run" in reply["body"]


async def test_hundreds_of_retriage_lines_make_one_model_call(start_bot, fake_llm):
    from bot.llm import ClaudeTriager, make_client
    llm = ClaudeTriager(make_client(api_key="test", max_retries=0).with_options(base_url=fake_llm.base_url),
                        model="claude-test")
    bot = await start_bot(llm=llm)
    number = await bot.open_issue(*FEATURE, user="reporter")
    await bot.triaged(number)
    writes = len([r for r in bot.sim.requests if r["write"]])
    await bot.comment(number, "/retriage\n" * 300, user="reporter")
    await bot.idle()
    assert fake_llm.usage["requests"] == 2  # the first triage, and one re-triage
    assert len([r for r in bot.sim.requests if r["write"]]) - writes <= 6


async def test_retriage_runs_at_most_three_times_an_hour_per_issue(triaged):
    bot, n = triaged
    for _ in range(3):
        await bot.comment(n, "/retriage", user="reporter")
        await bot.idle()
    assert not replies(bot, n)  # each ran, silently
    await bot.comment(n, "/retriage", user="reporter")
    await bot.idle()
    [reply] = replies(bot, n)
    assert "Not run" in reply["body"] and "3 times in the last hour" in reply["body"]


# -- commands that do what they say ------------------------------------------------------------------------
async def test_without_a_specs_branch_research_says_nothing_was_started(start_bot):
    bot = await start_bot()
    bot.sim.set_file(REPO, ".github/chantbot.yml", "specs_branch: false\n")
    number = await bot.open_issue(*FEATURE)
    await bot.triaged(number)
    await bot.comment(number, "/research", user="writer")
    await bot.idle()
    reply = replies(bot, number)[-1]["body"]
    assert "nothing was started" in reply and "Wrote" not in reply and "chant work" not in reply
    assert "chant-specs" not in bot.sim.branches(REPO)


async def test_a_stage_turned_off_does_not_start(start_bot):
    bot = await start_bot()
    bot.sim.set_file(REPO, ".github/chantbot.yml", "stages: {document: false}\n")
    number = await bot.open_issue(*FEATURE)
    await bot.triaged(number)
    await bot.comment(number, "/document", user="writer")
    await bot.idle()
    assert "turned off" in replies(bot, number)[-1]["body"]
    files = bot.sim.files(REPO, branch="chant-specs")
    assert not any("prompt: document" in text for text in files.values())


async def test_a_command_level_set_by_the_repository_binds_the_issues_author_too(start_bot):
    bot = await start_bot()
    bot.sim.set_file(REPO, ".github/chantbot.yml", "commands: {retriage: write}\n")
    number = await bot.open_issue(*FEATURE, user="reporter")
    await bot.triaged(number)
    triaged_at = (await bot.runtime.store.issue_state(REPO, number))["triaged_at"]
    await bot.comment(number, "/retriage", user="reporter")
    await bot.idle()
    reply = replies(bot, number)[-1]["body"]
    assert "Not run: only people with write access and above may run `/retriage`" in reply
    assert "you have read access here" in reply and "your access here is" not in reply
    assert (await bot.runtime.store.issue_state(REPO, number))["triaged_at"] == triaged_at


async def test_refusals_say_what_access_a_person_has_in_words(triaged):
    bot, n = triaged
    await bot.comment(n, "/priority low", user="outsider")
    await bot.idle()
    assert "and you have no access to this repository." in replies(bot, n)[-1]["body"]


async def test_duplicate_checks_the_original(triaged):
    bot, n = triaged
    before = sorted(bot.sim.labels_on(REPO, n))
    bot.sim.push(REPO, "feature", {"notes.txt": "x\n"}, user="writer")
    pull = bot.sim.add_pull(REPO, head="feature", title="A change", user="writer")
    for ref, says in ((f"#{n}", "cannot be a duplicate of itself"), ("#999", "There is no issue #999"),
                      (f"#{pull['number']}", "is a pull request, not an issue")):
        await bot.comment(n, f"/duplicate {ref}", user="triager")
        await bot.idle()
        assert says in replies(bot, n)[-1]["body"]
    assert sorted(bot.sim.labels_on(REPO, n)) == before


async def test_duplicate_keeps_the_category_a_maintainer_set(triaged):
    bot, n = triaged
    other = await bot.open_issue("Export to YAML", "Same request: YAML export, please.", user="someone")
    await bot.triaged(other)
    await bot.comment(other, "/kind bug", user="maint")
    await bot.idle()
    await bot.comment(other, f"/duplicate #{n}", user="maint")
    await bot.idle()
    labels = bot.sim.labels_on(REPO, other)
    assert "bug" in labels and "duplicate" in labels and "deferred" in labels
    assert f"Marked as a duplicate of #{n}" in replies(bot, other)[-1]["body"]


async def test_label_takes_the_repositorys_own_labels_that_the_config_allows(start_bot):
    bot = await start_bot()
    bot.sim.set_file(REPO, ".github/chantbot.yml", "labels: {additional: [good first issue, needs-design]}\n")
    number = await bot.open_issue(*FEATURE)
    await bot.triaged(number)
    await bot.comment(number, "/label Good First Issue", user="triager")
    await bot.idle()
    assert "good first issue" in bot.sim.labels_on(REPO, number)
    await bot.comment(number, "/label needs-design", user="triager")  # allowed, but the repository has no such label
    await bot.idle()
    assert "has no label `needs-design`" in replies(bot, number)[-1]["body"]
    await bot.comment(number, "/label wontfix", user="triager")  # exists, but not allowed
    await bot.idle()
    assert "neither one of" in replies(bot, number)[-1]["body"]
    labels = bot.sim.labels_on(REPO, number)
    assert "needs-design" not in labels and "wontfix" not in labels
    assert not any(label["name"] == "needs-design" for label in bot.sim.repo_labels(REPO))
    await bot.comment(number, "/help", user="outsider")
    await bot.idle()
    help_reply = replies(bot, number)[-1]["body"]
    assert "`/label` takes: `bug`" in help_reply and "`good first issue`, `needs-design`." in help_reply


async def test_assign_and_unassign(triaged):
    bot, n = triaged
    await bot.comment(n, "/assign @writer", user="triager")
    await bot.idle()
    assert [a["login"] for a in bot.sim.issue(REPO, n)["assignees"]] == ["writer"]
    await bot.comment(n, "/assign @outsider", user="triager")
    await bot.idle()
    reply = replies(bot, n)[-1]["body"]
    assert "`outsider` cannot be assigned" in reply and "@outsider" not in reply.split("\n", 2)[-1]
    await bot.comment(n, "/assign", user="maint")  # yourself
    await bot.idle()
    assert sorted(a["login"] for a in bot.sim.issue(REPO, n)["assignees"]) == ["maint", "writer"]
    await bot.comment(n, "/unassign writer", user="triager")
    await bot.idle()
    assert [a["login"] for a in bot.sim.issue(REPO, n)["assignees"]] == ["maint"]
    await bot.comment(n, "/assign @writer", user="reporter")  # read access: refused
    await bot.idle()
    assert "Not run" in replies(bot, n)[-1]["body"]
    assert [a["login"] for a in bot.sim.issue(REPO, n)["assignees"]] == ["maint"]


async def test_the_issues_author_may_close_it_and_others_may_not(triaged):
    bot, n = triaged
    await bot.comment(n, "/close", user="outsider")
    await bot.idle()
    assert bot.sim.issue(REPO, n)["state"] == "open" and "Not run" in replies(bot, n)[-1]["body"]
    await bot.comment(n, "/close", user="reporter")
    await bot.idle()
    assert bot.sim.issue(REPO, n)["state"] == "closed"


async def test_a_config_problem_in_a_reply_is_for_maintainers_collapsed(start_bot):
    bot = await start_bot()
    number = await bot.open_issue(*FEATURE)
    await bot.triaged(number)
    bot.runtime.ctx.repos._files.clear()
    bot.sim.set_file(REPO, ".github/chantbot.yml", "stages: {research: maybe}\n")
    await bot.comment(number, "/status", user="reporter")
    await bot.idle()
    reply = replies(bot, number)[-1]["body"]
    details = reply.index("<details><summary>For maintainers: a configuration problem</summary>")
    assert reply.index("stages.research") > details
