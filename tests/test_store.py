"""The durable store: atomic dedupe, leases that run out, retries, the issue index."""

import pytest

from bot.store import SpecRecord, SqliteStore
from tests.conftest import ManualClock


@pytest.fixture
async def store(tmp_path):
    clock = ManualClock()
    s = SqliteStore(str(tmp_path / "s.db"), clock=clock)
    await s.open()
    s.test_clock = clock
    yield s
    await s.close()


async def accept(store, delivery: str, key: str = "o/r#1") -> bool:
    return await store.accept_delivery(delivery, "issues", "opened", kind="event", key=key,
                                       payload={"n": delivery}, installation_id=1)


async def test_a_delivery_is_stored_once(store):
    assert await accept(store, "d1") is True
    assert await accept(store, "d1") is False
    assert (await store.queue_depth()) == {"queued": 1}


async def test_a_crashed_workers_job_is_claimed_again_after_the_lease(store):
    await accept(store, "d1")
    [job] = await store.claim(4, lease=15)
    assert job.attempts == 1
    assert await store.claim(4, lease=15) == []  # leased: nobody else takes it
    store.test_clock.now += 16  # the worker died; its lease ran out
    [again] = await store.claim(4, lease=15)
    assert again.id == job.id and again.attempts == 2
    await store.finish(again.id)
    store.test_clock.now += 100
    assert await store.claim(4, lease=15) == []


async def test_one_job_per_issue_at_a_time(store):
    await accept(store, "d1", key="o/r#1")
    await accept(store, "d2", key="o/r#1")
    await accept(store, "d3", key="o/r#2")
    jobs = await store.claim(4, lease=15)
    assert sorted(j.key for j in jobs) == ["o/r#1", "o/r#2"]
    first = next(j for j in jobs if j.key == "o/r#1")
    assert await store.claim(4, lease=15) == []
    await store.finish(first.id)
    [second] = await store.claim(4, lease=15)
    assert second.payload == {"n": "d2"}


async def test_retry_later_and_bury(store):
    await accept(store, "d1")
    [job] = await store.claim(1, lease=15)
    await store.retry_later(job.id, "boom", delay=10)
    assert await store.claim(1, lease=15) == []
    store.test_clock.now += 10
    [job] = await store.claim(1, lease=15)
    await store.bury(job.id, "boom again")
    assert (await store.queue_depth()) == {"dead": 1}
    assert await store.requeue_dead() == 1


async def test_unique_enqueue_and_due_time(store):
    assert await store.enqueue("commit-specs", "specs:o/r", {}, installation_id=1, delay=2, unique=True)
    assert not await store.enqueue("commit-specs", "specs:o/r", {}, installation_id=1, delay=2, unique=True)
    assert await store.next_due() == store.test_clock.now + 2


async def test_full_text_candidates_and_history(store):
    await store.index_issue("o/r", 1, "Crash when saving a widget", "KeyError size on save", "open", None)
    await store.index_issue("o/r", 2, "Add YAML export", "It would be nice", "closed", "feature")
    await store.index_issue("x/y", 3, "Crash when saving a widget", "other repo", "open", None)
    found = await store.similar_issues("o/r", "saving a widget crashes with KeyError", exclude=9)
    assert [c.number for c in found] == [1]
    assert await store.history("o/r") == [("Add YAML export", "It would be nice", "feature")]
    await store.index_issue("o/r", 1, "Crash when saving a widget", "KeyError size on save", "closed", "bug")
    assert await store.history_size("o/r") == 2


async def test_spec_ids_and_records(store):
    assert [await store.next_spec_seq("o/r", "2026-11-24") for _ in range(3)] == [1, 2, 3]
    assert await store.next_spec_seq("o/r", "2026-11-25") == 1
    await store.record_spec("o/r", 5, SpecRecord("triage", "2026-11-24-001-abc", ".chant/specs/x.md", "completed"))
    assert (await store.spec_for("o/r", 5, "triage")).spec_id == "2026-11-24-001-abc"
    await store.queue_files("o/r", 1, "chant-specs", {"a.md": "A", "b.md": "B"})
    pending = await store.pending_files("o/r")
    await store.mark_committed(p.id for p in pending)
    assert await store.pending_files("o/r") == []
