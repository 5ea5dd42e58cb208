"""Issues as they are now, read once for the triages of a repository under way together."""

from bot.freshissues import FRESH, FreshIssues
from tests.conftest import INSTALLATION, REPO, ManualClock


def reads(bot, since: int) -> list[str]:
    return [r["path"] for r in bot.sim.requests[since:] if r["method"] == "GET" and "/issues" in r["path"]]


async def test_triages_under_way_together_share_one_read_that_shows_what_people_changed(start_bot):
    bot = await start_bot()
    gh = await bot.runtime.ctx.github.client(INSTALLATION)
    clock = ManualClock()
    fresh = FreshIssues(clock=clock)
    numbers = [bot.sim.add_issue(REPO, title=f"Crash {i}", body="Traceback", user="reporter")["number"]
               for i in range(3)]
    for n in numbers:
        fresh.expect(REPO, await gh.getitem(f"/repos/{REPO}/issues/{n}"))  # as the deliveries had them
    bot.sim.label_issue(REPO, numbers[1], "wontfix", user="maintainer")  # a person, while the model thinks

    before = len(bot.sim.requests)
    now = [await fresh.issue(gh, REPO, n) for n in numbers]
    assert [i["number"] for i in now] == numbers
    assert [label["name"] for label in now[1]["labels"]] == ["wontfix"]
    assert reads(bot, before) == [f"/repos/{REPO}/issues"]  # one read for the three

    # A read older than FRESH answers nobody; an issue closed meanwhile is read on its own.
    clock.now += FRESH + 0.01
    for n in numbers[:2]:
        fresh.expect(REPO, bot.sim.issue(REPO, n))
    await gh.patch(f"/repos/{REPO}/issues/{numbers[1]}", data={"state": "closed"})
    before = len(bot.sim.requests)
    assert (await fresh.issue(gh, REPO, numbers[0]))["state"] == "open"
    assert (await fresh.issue(gh, REPO, numbers[1]))["state"] == "closed"
    assert reads(bot, before) == [f"/repos/{REPO}/issues", f"/repos/{REPO}/issues/{numbers[1]}"]


async def test_a_triage_under_way_alone_reads_its_issue_alone(start_bot):
    bot = await start_bot()
    gh = await bot.runtime.ctx.github.client(INSTALLATION)
    fresh = FreshIssues(clock=ManualClock())
    number = bot.sim.add_issue(REPO, title="Crash", body="Traceback", user="reporter")["number"]
    fresh.expect(REPO, bot.sim.issue(REPO, number))
    before = len(bot.sim.requests)
    assert (await fresh.issue(gh, REPO, number))["number"] == number
    assert reads(bot, before) == [f"/repos/{REPO}/issues/{number}"]
