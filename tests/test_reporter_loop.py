"""The reporter's loop end to end on a manual clock: answers are acknowledged at once and lift `needs-info` after a
quiet period (a burst makes one re-triage, a few a day), silence brings one reminder and then closing, and an
answer reopens the issue."""

from __future__ import annotations

import time

from bot.llm import ClaudeTriager, make_client
from bot.specs import parse_front_matter
from tests.conftest import REPO, ManualClock, eventually

DAY = 86_400
VAGUE = ("widgets broken", "It doesn't work anymore after the update. Please fix.")
ANSWER = ("I'm on widgets 2.3.1 on Ubuntu 22.04.\n\nSteps to reproduce:\n1. `w = Widget(3)`\n2. `w.save('w.json')`\n\n"
          "Expected the file to be written; instead it raises KeyError: 'size'.")


def triage_comments(bot, number: int) -> list[dict]:
    return [c for c in bot.bot_comments(number) if "chantbot:triage" in c["body"]]


def specs_on_branch(bot, number: int) -> dict[str, dict]:
    out = {}
    for path, text in bot.sim.files(REPO, branch="chant-specs").items():
        if path.startswith(".chant/specs/"):
            meta, body = parse_front_matter(text)
            if f"issue-{number}" in meta.get("labels", []):
                out[meta["prompt"]] = {**meta, "body": body}
    return out


async def start(start_bot, **kwargs):
    clock = ManualClock(time.time())
    bot = await start_bot(clock=clock, **kwargs)
    return bot, clock


async def settled(bot) -> None:
    """Wait until no job runs and none is due yet (a re-triage waiting for its quiet period may be queued)."""
    async def done() -> bool:
        due = await bot.runtime.store.next_due()
        return not (await bot.runtime.store.queue_depth()).get("running") and (due is None or due > bot.clock())
    await eventually(done)


async def answer(bot, number: int, body: str) -> dict:
    """The reporter answers; returns the comment once chantbot has acknowledged it."""
    comment = await bot.comment(number, body, user="bob")
    await eventually(lambda: "eyes" in bot.sim.reactions(comment["id"]))
    await settled(bot)
    return comment


def triage_edits(bot, comment_id: int) -> int:
    return len([r for r in bot.sim.requests if r["method"] == "PATCH" and r["path"].endswith(f"/comments/{comment_id}")])


async def test_an_answer_a_minute_after_triage_is_acknowledged_at_once_and_lifts_needs_info_a_minute_later(start_bot):
    bot, clock = await start(start_bot)
    number = await bot.open_issue(*VAGUE, user="bob")
    [first] = await bot.triaged(number)
    assert "needs-info" in bot.sim.labels_on(REPO, number)
    assert "- [ ] Which version of widgets" in first["body"] and "- [ ] What are the exact steps" in first["body"]

    clock.now += 60
    answered_at = clock.now
    await answer(bot, number, ANSWER)  # acknowledged at once: an `eyes` reaction, no reply
    assert "needs-info" in bot.sim.labels_on(REPO, number) and len(bot.bot_comments(number)) == 1
    assert await bot.runtime.store.next_due() == answered_at + 60  # read after a minute of quiet
    clock.now += 61
    await eventually(lambda: "needs-info" not in bot.sim.labels_on(REPO, number))
    await bot.idle()

    labels = bot.sim.labels_on(REPO, number)
    assert "needs-reproduction" in labels and "bug" in labels
    [comment] = triage_comments(bot, number)  # edited in place, never posted again
    assert comment["id"] == first["id"]
    assert "- [ ]" not in comment["body"]
    assert "- [x] Which version of widgets" in comment["body"] and "- [x] What are the exact steps" in comment["body"]
    chain = specs_on_branch(bot, number)
    assert chain["reproduce"]["status"] == "pending"  # the label that follows writes its stage's spec
    assert "## Reporter's Answers" in chain["triage"]["body"] and "widgets 2.3.1" in chain["triage"]["body"]
    state = await bot.runtime.store.issue_state(REPO, number)
    assert "needs_info" not in state


async def test_five_comments_in_a_burst_make_one_retriage_after_the_last(start_bot):
    bot, clock = await start(start_bot)
    number = await bot.open_issue(*VAGUE, user="bob")
    [first] = await bot.triaged(number)
    parts = ["I'm on widgets 2.3.1.", "On Ubuntu 22.04.", "Steps to reproduce:\n1. `w = Widget(3)`\n2. `w.save('w.json')`",
             "Expected the file to be written.", "Instead it raises KeyError: 'size'."]
    for part in parts:
        clock.now += 20  # each one inside the quiet period of the one before
        await answer(bot, number, part)
        assert "needs-info" in bot.sim.labels_on(REPO, number) and triage_edits(bot, first["id"]) == 0
    last = clock.now
    clock.now += 59
    await settled(bot)
    assert triage_edits(bot, first["id"]) == 0  # the quiet period runs from the last answer
    clock.now = last + 61
    await eventually(lambda: "needs-info" not in bot.sim.labels_on(REPO, number))
    await bot.idle()
    assert triage_edits(bot, first["id"]) == 1  # one re-triage read all five
    state = await bot.runtime.store.issue_state(REPO, number)
    assert len(state["retriage"]["runs"]) == 1
    assert "widgets 2.3.1" in specs_on_branch(bot, number)["triage"]["body"]


async def test_past_the_daily_count_an_answer_waits_for_retriage_and_the_reply_says_so(start_bot):
    bot, clock = await start(start_bot)
    bot.sim.set_file(REPO, ".github/chantbot.yml", "needs_info: {debounce: 0, max_retriage: 2}\n")
    number = await bot.open_issue(*VAGUE, user="bob")
    [first] = await bot.triaged(number)
    for _ in range(2):
        clock.now += 600
        await answer(bot, number, "Still broken, sorry.")
        await bot.idle()
    assert triage_edits(bot, first["id"]) == 2 and "needs-info" in bot.sim.labels_on(REPO, number)

    clock.now += 600
    third = await answer(bot, number, ANSWER)  # the day's two re-triages are spent
    await bot.idle()
    assert triage_edits(bot, first["id"]) == 2 and "needs-info" in bot.sim.labels_on(REPO, number)
    [reply] = [c for c in bot.bot_comments(number) if "chantbot:retriage-limit" in c["body"]]
    assert "`/retriage`" in reply["body"] and "2 time(s)" in reply["body"] and "eyes" in bot.sim.reactions(third["id"])

    await bot.comment(number, "/retriage", user="triager")  # a maintainer's command reads the waiting answer
    await eventually(lambda: "needs-info" not in bot.sim.labels_on(REPO, number))
    await bot.idle()
    assert "needs-reproduction" in bot.sim.labels_on(REPO, number)


async def test_an_edit_of_the_body_is_acknowledged_on_the_issue_and_retriaged_after_the_quiet_period(start_bot):
    bot, clock = await start(start_bot)
    number = await bot.open_issue(*VAGUE, user="bob")
    [first] = await bot.triaged(number)
    clock.now += 30
    issue, changes = bot.sim.edit_issue(REPO, number, body=VAGUE[1] + "\n\n" + ANSWER)
    await bot.deliver("issues", bot.sim.issue_payload("edited", REPO, number, changes=changes, sender="bob"))
    await eventually(lambda: "eyes" in [c for _, c in bot.sim.find_issue(REPO, number)[1].reactions])
    await settled(bot)
    assert "needs-info" in bot.sim.labels_on(REPO, number)
    clock.now += 61
    await eventually(lambda: "needs-info" not in bot.sim.labels_on(REPO, number))
    await bot.idle()
    assert triage_edits(bot, first["id"]) == 1


async def test_silence_brings_one_reminder_then_closing_and_an_answer_reopens(start_bot):
    bot, clock = await start(start_bot)
    number = await bot.open_issue(*VAGUE, user="bob")
    await bot.triaged(number)

    def notes(purpose: str) -> list[dict]:
        return [c for c in bot.bot_comments(number) if f"chantbot:{purpose}" in c["body"]]

    clock.now += 6 * DAY  # not yet
    await bot.idle()
    assert not notes("needs-info-reminder")
    clock.now += DAY + 3600
    [reminder] = await eventually(lambda: notes("needs-info-reminder"))
    assert "14 days" in reminder["body"] and "reopens" in reminder["body"] and "@" not in reminder["body"]
    clock.now += 7 * 3600  # a later sweep (idle waits for it to run) changes nothing: one reminder, the issue open
    await bot.idle()
    assert len(notes("needs-info-reminder")) == 1 and bot.sim.issue(REPO, number)["state"] == "open"

    clock.now += 14 * DAY
    await eventually(lambda: bot.sim.issue(REPO, number)["state"] == "closed")
    await bot.idle()
    issue = bot.sim.issue(REPO, number)
    assert issue["state_reason"] == "not_planned"
    [closing] = notes("needs-info-closed")
    assert "any answer from you here reopens it" in closing["body"]

    await bot.comment(number, ANSWER, user="bob")
    await eventually(lambda: bot.sim.issue(REPO, number)["state"] == "open")
    await bot.idle()
    labels = bot.sim.labels_on(REPO, number)
    assert "needs-info" not in labels and "needs-reproduction" in labels
    assert len(triage_comments(bot, number)) == 1 and len(notes("needs-info-reminder")) == 1


async def test_a_closed_issue_is_reopened_only_by_its_reporter_and_only_when_chantbot_closed_it(start_bot):
    bot, clock = await start(start_bot)
    number = await bot.open_issue(*VAGUE, user="bob")
    await bot.triaged(number)
    clock.now += 7 * DAY + 3600
    await bot.idle()
    clock.now += 14 * DAY + 3600
    await eventually(lambda: bot.sim.issue(REPO, number)["state"] == "closed")
    await bot.idle()
    await bot.comment(number, "Any news?", user="outsider")  # not the reporter
    await bot.idle()
    assert bot.sim.issue(REPO, number)["state"] == "closed"

    other = await bot.open_issue("Crash on save", "widgets 2.3.1: Widget(3).save() raises KeyError.", user="bob")
    await bot.triaged(other)
    bot.sim.find_issue(REPO, other)[1].state = "closed"  # a maintainer closed it
    bot.sim.find_issue(REPO, other)[1].state_reason = "completed"
    await bot.comment(other, "Thanks!", user="bob")
    await bot.idle()
    assert bot.sim.issue(REPO, other)["state"] == "closed"


async def test_close_after_false_reminds_and_never_closes(start_bot):
    bot, clock = await start(start_bot)
    bot.sim.set_file(REPO, ".github/chantbot.yml", "needs_info: {remind_after: 2, close_after: false}\n")
    number = await bot.open_issue(*VAGUE, user="bob")
    await bot.triaged(number)
    clock.now += 2 * DAY + 3600
    [reminder] = await eventually(lambda: [c for c in bot.bot_comments(number)
                                           if "chantbot:needs-info-reminder" in c["body"]])
    assert "close" not in reminder["body"]
    for _ in range(3):
        clock.now += 60 * DAY
        await bot.idle()
    assert bot.sim.issue(REPO, number)["state"] == "open"


async def test_claude_reads_the_answers_and_the_label_that_follows_starts_its_stage(start_bot, fake_llm):
    asks = {"category": "bug", "priority": "medium", "severity": "degraded", "completeness": "insufficient",
            "missing_information": ["version", "steps"], "recommendation": "needs-info", "duplicate_of": None,
            "clarifying_questions": ["Which version of widgets do you use?", "What are the exact steps?"],
            "summary": "Something stopped working.", "rationale": "Vague.", "security": "none"}
    answered = {**asks, "completeness": "complete", "missing_information": [], "clarifying_questions": [],
                "recommendation": "needs-reproduction", "rationale": "The answers give version and steps."}
    fake_llm.script("tool_input", input=asks)
    fake_llm.script("tool_input", input=answered)
    client = make_client(api_key="test", max_retries=0).with_options(base_url=fake_llm.base_url)
    bot, clock = await start(start_bot, llm=ClaudeTriager(client, model="claude-test"), agent_client=client)
    bot.sim.set_file(REPO, ".github/chantbot.yml", "stages: {reproduce: {grace: 0}}\ngate: never\n")
    number = await bot.open_issue(*VAGUE, user="bob")
    await bot.triaged(number)
    assert "needs-info" in bot.sim.labels_on(REPO, number)
    await answer(bot, number, ANSWER)
    clock.now += 61  # the quiet period after the answer
    await eventually(lambda: "needs-info" not in bot.sim.labels_on(REPO, number))
    runs = await eventually(lambda: bot.runtime.store.runs_for_issue(REPO, number))
    assert [run.stage for run in runs] == ["reproduce"]  # the label that follows started its stage
    await bot.idle()

    triages = [r for r in fake_llm.requests if r["body"].get("tool_choice", {}).get("name") == "record_triage"]
    first, second = (r["body"]["messages"][0]["content"] for r in triages)
    assert "<reporter_comments>" not in first
    assert "<reporter_comments>\n<comment>\nI'm on widgets 2.3.1" in second  # fenced as untrusted input
    comment = triage_comments(bot, number)[0]["body"]
    assert "- [x] Which version of widgets do you use?" in comment and "- [ ]" not in comment
