"""The CI gate end to end: code an agent wrote for an issue that someone without write access shaped is held (no
branch, no pull request, no CI) until a writer's `/ok-to-test`; each value of `gate`; each batch released on its
own; `/approve` refused while an implementation is held. Scripted agents through the real anthropic SDK, the real
gidgethub client against the simulator, whose CI really runs the repository's pytest."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from tests.test_stage_runner import BUG, LAYOUT, REPRO, finished, specs_of, world, workflow_comment  # noqa: F401 (a fixture)
PEOPLE_OFF = "stages:\n  reproduce: {auto: false}\n  research: {auto: false}\n"


def branch_of(n: int) -> str:
    return f"chant/issue-{n}"


def nothing_on_github(bot, n: int) -> None:
    """While held: no branch, no pull request, no CI on anything but the default branch."""
    assert branch_of(n) not in bot.sim.branches(REPO)
    assert not [p for p in bot.sim.pulls(REPO) if p["head"]["ref"] == branch_of(n)]
    assert not bot.sim.check_suites(REPO, branch_of(n))


def replies(bot, n: int) -> list[str]:
    return [c["body"] for c in bot.sim.comments(REPO, n, bot_only=True) if "chantbot:reply" in c["body"]]


async def reproduce_held(bot, *, user: str = "reporter") -> int:
    n = await bot.open_issue(*BUG, user=user)
    await bot.triaged(n)
    await bot.comment(n, "/reproduce", user="maint")
    await bot.idle(30)
    return n


@pytest.fixture
async def no_sandbox(world, simulator):
    """chantbot without a sandbox (CHANTBOT_SANDBOX=none): held code waits for /ok-to-test, then CI judges it."""
    async def start(config: str = PEOPLE_OFF):
        simulator.set_file(REPO, ".github/chantbot.yml", config)
        return await world(sandbox="none")
    return start


async def test_an_outsiders_reproduction_is_held_until_a_writer_says_ok_to_test(no_sandbox):
    bot = await no_sandbox()
    n = await reproduce_held(bot)
    nothing_on_github(bot, n)
    body = workflow_comment(bot.sim, n)
    assert "held" in body and "/ok-to-test" in body and "<details" in body and "tests/test_issue_columns.py" in body
    assert "assert columns(100, 30, 5) == 3" in body  # the diff a maintainer reads
    assert specs_of(bot.sim, n, "reproduce")[-1]["status"] == "in_progress"  # no sandbox: CI judges it once released

    for person in ("outsider", "reporter", "triager"):
        await bot.comment(n, "/ok-to-test", user=person)
        await bot.idle()
        assert "Not run" in replies(bot, n)[-1] and "/ok-to-test" in replies(bot, n)[-1]
        nothing_on_github(bot, n)

    await bot.comment(n, "/ok-to-test", user="writer")
    spec = await finished(bot, n, "reproduce", timeout=60)
    assert bot.sim.files(REPO, branch=branch_of(n))["tests/test_issue_columns.py"] == REPRO
    assert [s["conclusion"] for s in bot.sim.check_suites(REPO, branch_of(n))] == ["failure"]
    [pull] = [p for p in bot.sim.pulls(REPO) if p["head"]["ref"] == branch_of(n)]
    assert pull["draft"]
    assert spec["status"] == "completed" and spec["commits"]
    body = workflow_comment(bot.sim, n)
    assert "reproduced" in body and "<details" not in body  # released: nothing is held any more
    assert "Released to" in replies(bot, n)[-1]


async def test_a_writers_own_issue_is_pushed_at_once(no_sandbox):
    bot = await no_sandbox()
    n = await bot.open_issue(*BUG, user="writer")
    await bot.triaged(n)
    await bot.comment(n, "/reproduce", user="maint")
    spec = await finished(bot, n, "reproduce", timeout=60)
    assert spec["status"] == "completed"
    assert [s["conclusion"] for s in bot.sim.check_suites(REPO, branch_of(n))] == ["failure"]
    assert "held" not in workflow_comment(bot.sim, n)


@pytest.mark.parametrize("gate, author, held", [("always", "writer", True), ("never", "reporter", False),
                                                 ("outsiders", "triager", True), ("outsiders", "maint", False)])
async def test_each_gate_value(no_sandbox, gate, author, held):
    bot = await no_sandbox(PEOPLE_OFF + f"gate: {gate}\n")
    n = await reproduce_held(bot, user=author)
    assert (branch_of(n) not in bot.sim.branches(REPO)) is held
    assert ("/ok-to-test" in workflow_comment(bot.sim, n)) is held


async def test_an_invalid_gate_holds(no_sandbox):
    bot = await no_sandbox(PEOPLE_OFF + "gate: sometimes\n")
    n = await reproduce_held(bot, user="writer")
    nothing_on_github(bot, n)


async def test_each_batch_needs_its_own_ok_to_test_and_approve_waits_for_it(no_sandbox):
    bot = await no_sandbox()
    n = await reproduce_held(bot)
    await bot.comment(n, "/ok-to-test", user="maint")
    await finished(bot, n, "reproduce", timeout=60)
    released = bot.sim.check_suites(REPO, branch_of(n))[-1]["head_sha"]

    await bot.comment(n, "/implement", user="maint")
    await bot.idle(30)
    assert [s["head_sha"] for s in bot.sim.check_suites(REPO, branch_of(n))] == [released]  # held: the branch
    assert bot.sim.files(REPO, branch=branch_of(n))["src/widgets/layout.py"] == LAYOUT  # did not move
    assert specs_of(bot.sim, n, "implement")[-1]["status"] == "in_progress"
    assert "src/widgets/layout.py" in workflow_comment(bot.sim, n)

    await bot.comment(n, "/approve", user="maint")
    await bot.idle()
    assert "/ok-to-test" in replies(bot, n)[-1] and "Approved" not in replies(bot, n)[-1]

    await bot.comment(n, "/ok-to-test", user="maint")
    spec = await finished(bot, n, "implement", timeout=60)
    assert spec["status"] == "completed"
    assert bot.sim.check_suites(REPO, branch_of(n))[-1]["conclusion"] == "success"
    await finished(bot, n, "review", timeout=60)  # review follows once the released fix is green
    await bot.comment(n, "/approve", user="maint")
    await bot.idle()
    assert "Approved" in replies(bot, n)[-1]


async def test_nothing_held_says_so(no_sandbox):
    bot = await no_sandbox()
    n = await bot.open_issue(*BUG, user="writer")
    await bot.triaged(n)
    await bot.comment(n, "/ok-to-test", user="maint")
    await bot.idle()
    assert "Nothing is held" in replies(bot, n)[-1]
