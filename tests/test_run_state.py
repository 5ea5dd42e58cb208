"""A run's typed checkpoint and its resume points, in-process: a run stopped between building its commit and
moving the branch, or between its end and its effects, goes on from there without doing anything twice; a
step that finds the run changed under it stores nothing."""

from __future__ import annotations

import asyncio

from bot.stages import runner
from bot.stages.state import ACTIVE, End, Phase, RunState
from tests.conftest import INSTALLATION, REPO, eventually
from tests.test_stage_runner import BUG, finished, specs_of, world, workflow_comment  # noqa: F401 (a fixture)


def test_the_checkpoint_round_trips_and_its_store_status_follows_the_phase():
    state = RunState(issue={"number": 3, "title": "t", "body": "b", "author": "a", "url": ""}, spec_id="s",
                     spec_path="p")
    assert state.status == "queued"
    for phase, status in ((Phase.TURN, "running"), (Phase.JUDGE, "running"), (Phase.HELD, "waiting_ci"),
                          (Phase.CI, "waiting_ci")):
        state.phase = phase
        assert state.status == status and status in ACTIVE
    state.phase, state.end = Phase.EFFECTS, End.FAILED
    again = RunState.load({**state.dump(), "a key of an older version": 1})
    assert again == state and again.status == "failed" and again.number == 3


def commits_of_the_run(sim) -> list[dict]:
    return [r for r in sim.requests if r["method"] == "POST" and r["path"].endswith("/git/commits")
            and "reproduce issue" in str((r.get("json") or {}).get("message", ""))]


async def test_a_push_that_failed_after_the_commit_was_built_resumes_with_that_commit(world, simulator):
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    simulator.fail("PATCH", rf"/git/refs/heads/chant/issue-{n}$", status=409, times=1)  # the push, once
    await bot.comment(n, "/reproduce", user="maint")
    spec = await finished(bot, n, "reproduce", timeout=60)
    assert spec["status"] == "completed" and len(spec["commits"]) == 1
    pushes = [r["status"] for r in simulator.requests if r["method"] == "PATCH" and r["path"].endswith(f"issue-{n}")]
    assert pushes[0] == 409 and 200 in pushes  # the first push failed, the retry's went through
    assert len(commits_of_the_run(simulator)) == 1  # built once: the retry pushed the commit it had recorded
    [run] = await bot.runtime.store.runs_for_issue(REPO, n)
    assert RunState.load(run.data).pending_commit is None and RunState.load(run.data).phase is Phase.ENDED


async def test_effects_interrupted_after_the_end_was_stored_are_done_once(world, simulator):
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    await bot.comment(n, "/reproduce", user="maint")
    await eventually(lambda: simulator.check_suites(REPO, f"chant/issue-{n}"), 30)
    simulator.fail("POST", rf"/issues/{n}/labels$", status=409, times=1)  # the done label, after the end is stored
    spec = await finished(bot, n, "reproduce", timeout=60)
    await bot.idle(30)
    assert spec["status"] == "completed" and "ready-for-research" in simulator.labels_on(REPO, n)
    labelled = [r["status"] for r in simulator.requests if r["method"] == "POST" and r["path"].endswith(f"/{n}/labels")]
    assert labelled[-2:] == [409, 200]  # the effects' first try failed after the end was stored
    [run] = await bot.runtime.store.runs_for_issue(REPO, n)
    assert RunState.load(run.data).phase is Phase.ENDED
    assert "reproduced" in workflow_comment(simulator, n)


async def test_a_step_that_finds_its_run_changed_stores_nothing(world, fake_llm):
    bot = await world()
    n = await bot.open_issue(*BUG)
    await bot.triaged(n)
    fake_llm.hold("research", 1)  # the run waits in its second turn; two steps race for it meanwhile
    await bot.comment(n, "/research", user="writer")
    await eventually(lambda: fake_llm.holds, 30)
    [run] = await bot.runtime.store.runs_for_issue(REPO, n)
    assert RunState.load(run.data).phase is Phase.TURN
    ctx = bot.runtime.ctx
    gh = await ctx.github.client(INSTALLATION)
    racing = asyncio.gather(*(runner.step(ctx, gh, {"run_id": run.id}) for _ in range(2)))
    await asyncio.sleep(0.5)
    await fake_llm.release()
    await racing
    spec = await finished(bot, n, "research", timeout=60)
    assert spec["status"] == "completed"
    [run] = await bot.runtime.store.runs_for_issue(REPO, n)
    turns = RunState.load(run.data).turns
    answered = [m for m in RunState.load(run.data).messages if m["role"] == "assistant"]
    assert turns == len(answered)  # every stored turn is one conversation turn: no step stored a stale copy
    assert len(specs_of(bot.sim, n, "research")) == 1


def test_a_checkpoint_stored_before_the_typed_state_is_read_by_its_store_status():
    from bot.store import Run

    issue = {"number": 3, "title": "t", "body": "b", "author": "a", "url": ""}
    old = {"issue": issue, "spec_id": "s", "spec_path": "p", "turns": 2, "usd": 0.01, "state": "reproduced",
           "messages": [{"role": "user", "content": "go"}, {"role": "assistant", "content": []}]}

    def run(status: str, **data) -> Run:
        return Run(1, REPO, 3, "reproduce", INSTALLATION, status, None, {**old, **data}, 1, 0.0, 0.0)

    done = RunState.of(run("done"))
    assert (done.end, done.phase, done.outcome, done.turns) == (End.COMPLETED, Phase.ENDED, "reproduced", 2)
    assert RunState.of(run("done", effects_pending=True)).phase is Phase.EFFECTS
    assert RunState.of(run("waiting_ci")).phase is Phase.CI
    assert RunState.of(run("running")).phase is Phase.TOOLS  # the last stored turn is the model's
    assert RunState.of(run("running", submission={"summary": "x"})).phase is Phase.JUDGE
    assert RunState.of(run("failed")).status == "failed"
