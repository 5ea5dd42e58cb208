"""The worker: a job killed mid-way is claimed again; failures retry, then are reported on the issue."""

import asyncio
import http
import logging
import sqlite3

import pytest
from gidgethub import BadRequest

from bot import failures
from bot.worker import retry_delay
from tests.conftest import REPO, eventually


def test_retry_schedule_ends_in_dead():
    assert [retry_delay(n) for n in range(1, 6)] == [2.0, 10.0, 30.0, 120.0, None]


def test_only_a_bug_is_logged_with_its_traceback():
    assert failures.is_internal(TypeError("a store call returned a cursor"))
    assert not failures.is_internal(BadRequest(http.HTTPStatus.FORBIDDEN))
    assert not failures.is_internal(asyncio.TimeoutError())
    assert not failures.is_internal(sqlite3.OperationalError("database is locked"))


async def stored_issue(bot, *, fail_status: int | None = None, times: int = 1, message: str | None = None) -> dict:
    """An opened issue whose delivery is stored but not yet run (the test runs it by hand)."""
    await bot.runtime.worker.stop(grace=0)
    await bot.runtime.store.set_repo_meta(REPO, "indexed", "0")  # no background indexing job in the way
    issue = bot.sim.add_issue(REPO, title="Crash on save", body="Traceback: KeyError 'size'", user="reporter")
    if fail_status:
        bot.sim.fail("GET", rf"/issues/{issue['number']}$", status=fail_status, times=times, message=message)
    assert await bot.deliver("issues", bot.sim.issue_payload("opened", REPO, issue["number"])) == 202
    return issue


async def test_job_killed_mid_way_is_reclaimed_and_done_once(start_bot):
    bot = await start_bot()
    runtime = bot.runtime
    issue = await stored_issue(bot)
    [job] = await runtime.store.claim(1, lease=15)  # claimed, then the process is killed: never finished
    await runtime.run_job(job)  # it even got as far as commenting
    assert len(bot.bot_comments(issue["number"])) == 1
    clock = runtime.store.clock
    runtime.store.clock = lambda: clock() + 16  # the lease has run out
    [again] = await runtime.store.claim(1, lease=15)
    assert again.id == job.id and again.attempts == 2
    await runtime.run_job(again)
    await runtime.store.finish(again.id)
    assert len(bot.bot_comments(issue["number"])) == 1  # the re-run edited, it did not repeat


async def run_attempts(runtime, count: int) -> None:
    """Claim and run the one stored job `count` times, each time after its retry delay has passed."""
    clock = runtime.store.clock
    for attempt in range(1, count + 1):
        runtime.store.clock = lambda a=attempt: clock() + 1000 * a
        claimed = await runtime.store.claim(1, lease=15)
        if not claimed:
            return
        await runtime.worker._attempt(claimed[0])


def failure_reports(bot, number: int) -> list[dict]:
    return [c for c in bot.bot_comments(number) if "chantbot:failure" in c["body"]]


async def test_failed_job_marks_needs_triage_then_reports_what_failed_and_how_to_retry(start_bot, caplog):
    caplog.set_level(logging.WARNING, logger="bot.worker")
    bot = await start_bot()
    runtime = bot.runtime
    issue = await stored_issue(bot, fail_status=403, times=100, message="Resource not accessible by integration")
    [job] = await runtime.store.claim(1, lease=15)
    await runtime.worker._attempt(job)  # first failure: retried later, issue shows it waits
    assert "needs-triage" in bot.sim.labels_on(REPO, issue["number"])
    await run_attempts(runtime, 4)
    assert (await runtime.store.queue_depth()).get("dead") == 1
    [report] = failure_reports(bot, issue["number"])
    body = report["body"]
    assert "/retriage" in body
    assert "read the issue (403 Forbidden)" in body and "permission" in body  # the step, and what to check
    assert "Resource not accessible" not in body and "BadRequest" not in body  # never the raw exception
    logged = [r for r in caplog.records if r.name == "bot.worker"]
    assert logged and not any(r.exc_info for r in logged)  # GitHub's refusal is no bug: no traceback


def issue_reads(bot, number: int) -> int:
    return len([r for r in bot.sim.requests if r["method"] == "GET" and r["path"].endswith(f"/issues/{number}")])


@pytest.mark.parametrize("how", ["deleted", "410", "transferred"])
async def test_a_vanished_issue_ends_the_job_quietly_at_once(start_bot, how):
    bot = await start_bot()
    runtime = bot.runtime
    if how == "deleted":
        issue = await stored_issue(bot)
        bot.sim.find_repo(REPO).issues.pop(issue["number"])
    else:
        issue = await stored_issue(bot, fail_status=410 if how == "410" else 301, times=100)
    await run_attempts(runtime, 5)
    assert await runtime.store.queue_depth() == {}  # done, not queued for a retry, not dead
    assert issue_reads(bot, issue["number"]) == 2  # the job's read and the check that the issue is gone
    assert not [r for r in bot.sim.requests if r["write"]]  # no needs-triage label, no failure report


async def test_a_write_github_refuses_as_invalid_is_not_retried(start_bot):
    bot = await start_bot()
    runtime = bot.runtime
    issue = await stored_issue(bot)
    number = issue["number"]
    bot.sim.fail("POST", rf"/issues/{number}/labels$", status=422, times=100)
    await run_attempts(runtime, 5)
    assert (await runtime.store.queue_depth()).get("dead") == 1
    label_posts = [r for r in bot.sim.requests if r["method"] == "POST" and r["path"].endswith(f"/{number}/labels")]
    assert len(label_posts) == 1  # one attempt, not five
    [report] = failure_reports(bot, number)
    assert "add labels to the issue" in report["body"] and "422" in report["body"]
    assert "Unprocessable" not in report["body"]


async def test_stop_lets_running_jobs_finish(start_bot):
    bot = await start_bot()
    number = await bot.open_issue("Crash on save", "Traceback: KeyError 'size'")

    async def started() -> bool:
        return bool((await bot.runtime.store.queue_depth()).get("running")) or bool(bot.bot_comments(number))

    await eventually(started)
    await asyncio.wait_for(bot.runtime.worker.stop(), 25)
    assert len(bot.bot_comments(number)) == 1
    assert not (await bot.runtime.store.queue_depth()).get("running")


async def test_a_401_drops_the_cached_token_so_the_retry_mints_a_new_one(start_bot):
    bot = await start_bot()
    runtime = bot.runtime
    issue = await stored_issue(bot, fail_status=401)
    [job] = await runtime.store.claim(1, lease=15)
    with pytest.raises(BadRequest):
        await runtime.run_job(job)
    minted = len([r for r in bot.sim.requests if r["path"].endswith("/access_tokens")])
    await runtime.run_job(job)
    assert len([r for r in bot.sim.requests if r["path"].endswith("/access_tokens")]) == minted + 1
    assert len(bot.bot_comments(issue["number"])) == 1
