"""The durable store, on both backends: atomic dedupe and claims, leases, retention, runs, shared limits."""

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.store import SpecRecord, SqliteStore, open_store
from bot.writelimit import WriteLimit
from tests.conftest import ManualClock
from tests.databases import opened

DAY = 86400.0


@pytest.fixture
async def store(database_url):  # noqa: F811
    clock = ManualClock()
    s = await opened(database_url, clock)
    s.test_clock = clock
    s.test_url = database_url
    yield s
    await s.close()


async def accept(store, delivery: str, key: str = "o/r#1", payload: dict | None = None) -> bool:
    return await store.accept_delivery(delivery, "issues", "opened", kind="event", key=key,
                                       payload=payload or {"n": delivery}, installation_id=1)


async def test_a_delivery_is_stored_once(store):
    assert await accept(store, "d1") is True
    assert await accept(store, "d1") is False
    together = await asyncio.gather(*(accept(store, d, key=f"o/r#{i}") for i, d in enumerate(["d2", "d2", "d3"])))
    assert sorted(together) == [False, True, True]
    assert (await store.queue_depth()) == {"queued": 3}


async def test_a_crashed_workers_job_is_claimed_again_after_the_lease(store):
    await accept(store, "d1")
    [job] = await store.claim(4, lease=15)
    assert job.attempts == 1 and job.payload == {"n": "d1"}
    assert await store.claim(4, lease=15) == []  # leased: nobody else takes it
    store.test_clock.now += 16  # the worker died; its lease ran out
    [again] = await store.claim(4, lease=15)
    assert again.id == job.id and again.attempts == 2
    await store.finish(again.id)
    store.test_clock.now += 100
    assert await store.claim(4, lease=15) == []


async def test_jobs_under_way_are_those_of_the_kind_and_key_running_or_due(store):
    for delivery, key in (("d1", "o/r#1"), ("d2", "o/r#2"), ("d3", "o/r-fork#1"), ("d4", "o/rr#1")):
        await accept(store, delivery, key=key)
    await store.enqueue("event", "o/r#3", {}, installation_id=1, delay=30)  # not due yet
    await store.enqueue("commit-specs", "o/r#4", {}, installation_id=1)  # another kind
    assert await store.jobs_under_way("event", "o/r#") == 2
    [first, *_] = await store.claim(1, lease=15)
    assert await store.jobs_under_way("event", "o/r#") == 2  # one running, one queued
    await store.finish(first.id)
    assert await store.jobs_under_way("event", "o/r#") == 1
    assert await store.jobs_under_way("event", "o/r-fork#") == 1 and await store.jobs_under_way("event", "x/y#") == 0


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


async def test_an_expired_job_goes_before_a_newer_one_of_its_key(store):
    await accept(store, "d1", key="o/r#1")
    [job] = await store.claim(1, lease=15)
    await store.enqueue("event", "o/r#1", {"n": "later"}, installation_id=1)
    store.test_clock.now += 16
    [again] = await store.claim(4, lease=15)
    assert again.id == job.id


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
    assert (await store.queue_depth()) == {"queued": 1}


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
    assert await store.similar_issues("o/r", "saving a widget", exclude=1) == []
    assert await store.history("o/r") == [("Add YAML export", "It would be nice", "feature")]
    await store.index_issue("o/r", 1, "Crash when saving a widget", "KeyError size on save", "closed", "bug")
    assert await store.history_size("o/r") == 2
    await store.index_issue("o/r", 1, "Crash when loading a gadget", "KeyError size on load", "closed", None)
    assert [c.number for c in await store.similar_issues("o/r", "gadget", exclude=9)] == [1]  # the edited text
    assert await store.similar_issues("o/r", "widget", exclude=9) == []
    assert ("Crash when loading a gadget", "KeyError size on load", "bug") in await store.history("o/r")
    await store.index_issues("o/r", [(4, "Batched theme picker", "alpha", "closed", "feature"),
                                     (5, "Batched exporter", "beta", "open", None)])
    assert sorted(c.number for c in await store.similar_issues("o/r", "batched", exclude=9)) == [4, 5]
    assert await store.history_size("o/r") == 3


async def test_a_search_does_not_wait_for_the_stores_writes(store):
    """Full-text search takes milliseconds; on SQLite it reads on a connection of its own, so job claims
    and write slots never queue behind one, and a search never queues behind a long write."""
    await store.index_issue("o/r", 1, "Crash when saving a widget", "KeyError size", "open", None)
    if not isinstance(store, SqliteStore):
        return  # PostgreSQL: every call has a connection of its own from the pool
    release = asyncio.Event()
    loop = asyncio.get_running_loop()
    busy = asyncio.ensure_future(store.call(lambda db: asyncio.run_coroutine_threadsafe(release.wait(),
                                                                                        loop).result(10)))
    found = await asyncio.wait_for(store.similar_issues("o/r", "widget crash", exclude=9), 5)
    assert [c.number for c in found] == [1] and not busy.done()  # answered while the store's thread was held
    release.set()
    await busy


async def test_titles_weigh_more_than_bodies(store):
    await store.index_issue("o/r", 1, "Unrelated thing", "mentions exporter once", "open", None)
    await store.index_issue("o/r", 2, "Exporter fails", "nothing else here", "open", None)
    found = await store.similar_issues("o/r", "exporter", exclude=9)
    assert [c.number for c in found] == [2, 1]


async def test_hostile_text_is_stored(store):
    await store.index_issue("o/r", 1, "nul\x00 and \ud800 surrogate", "body\x00", "open", None)
    [found] = await store.similar_issues("o/r", "surrogate", exclude=9)
    assert "\x00" not in found.title


async def test_spec_ids_and_records(store):
    assert [await store.next_spec_seq("o/r", "2026-11-24") for _ in range(3)] == [1, 2, 3]
    assert await store.next_spec_seq("o/r", "2026-11-25") == 1
    await store.record_spec("o/r", 5, SpecRecord("triage", "2026-11-24-001-abc", ".chant/specs/x.md", "completed"))
    assert (await store.spec_for("o/r", 5, "triage")).spec_id == "2026-11-24-001-abc"
    assert [r.stage for r in await store.specs("o/r", 5)] == ["triage"]
    await store.queue_files("o/r", 1, "chant-specs", {"a.md": "A", "b.md": "B"})
    pending = await store.pending_files("o/r")
    assert [(p.path, p.content, p.branch) for p in pending] == [("a.md", "A", "chant-specs"), ("b.md", "B", "chant-specs")]
    await store.mark_committed(p.id for p in pending)
    assert await store.pending_files("o/r") == []


async def test_state_and_repository_metadata(store):
    assert await store.issue_state("o/r", 1) == {}
    await store.save_issue_state("o/r", 1, {"comment_id": 7})
    await store.save_issue_state("o/r", 1, {"comment_id": 8})
    assert await store.issue_state("o/r", 1) == {"comment_id": 8}
    await store.save_issue_state("o/r", 2, {"security": True})
    await store.save_issue_state("x/y", 3, {"security": True})
    assert await store.issue_states("o/r", [3, 2, 1, 1]) == {1: {"comment_id": 8}, 2: {"security": True}}
    assert await store.issue_states("o/r", []) == {}
    assert await store.repo_meta("o/r", "indexed") is None
    await store.set_repo_meta("o/r", "indexed", "3")
    assert await store.repo_meta("o/r", "indexed") == "3"


# ---------------------------------------------------------------------- two claimers on one database
async def test_two_connections_never_claim_the_same_job_nor_two_of_one_key(store):
    other = await opened(store.test_url, store.test_clock)
    try:
        for i in range(60):
            await accept(store, f"d{i}", key=f"o/r#{i % 20}")
        seen: list[int] = []
        running: dict[str, int] = {}
        for _ in range(80):
            for claimer in (store, other):
                for job in await claimer.claim(3, lease=60):
                    assert job.key not in running, "two running jobs of one key"
                    running[job.key] = job.id
                    seen.append(job.id)
            for key, job_id in list(running.items())[:4]:
                await (store if job_id % 2 else other).finish(job_id)
                del running[key]
        assert sorted(seen) == sorted(set(seen)) and len(seen) == 60
    finally:
        await other.close()


CLAIMER = textwrap.dedent("""
    import asyncio, json, sys
    from bot.store import open_store

    async def main(url):
        store = open_store(url, pool_size=3)
        await store.open()
        print("ready", flush=True)
        sys.stdin.readline()
        claimed, idle = [], 0
        while idle < 20:
            jobs = await store.claim(2, lease=600)
            idle = 0 if jobs else idle + 1
            for job in jobs:
                claimed.append(job.id)
                await store.finish(job.id)
        print(json.dumps(claimed), flush=True)
        await store.close()

    asyncio.run(main(sys.argv[1]))
""")


async def test_two_processes_never_claim_the_same_job(store):
    for i in range(300):
        await accept(store, f"d{i}", key=f"o/r#{i}")
    root = Path(__file__).resolve().parent.parent
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, store.test_url], cwd=root, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(2)]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [json.loads(proc.communicate(timeout=60)[0].strip().splitlines()[-1]) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    both = results[0] + results[1]
    assert all(results), "both processes took part"
    assert len(both) == 300 and len(set(both)) == 300, "a job was claimed twice"


# ---------------------------------------------------------------------- retention
async def test_finished_work_is_pruned_after_the_retention_dead_jobs_later(store):
    clock = store.test_clock
    await accept(store, "old-done", key="o/r#1")
    await accept(store, "old-dead", key="o/r#2")
    await store.queue_files("o/r", 1, "chant-specs", {"a.md": "A"})
    await store.mark_committed(p.id for p in await store.pending_files("o/r"))
    run = await store.start_run("o/r", 1, "research", 1, {"turns": []})
    await store.save_run(run, status="done", data={}, waiting_sha=None)
    await store.add_spend(1, "1970-01-02", 0.5)  # the clock starts on 1970-01-12
    jobs = {j.key: j for j in await store.claim(4, lease=15)}
    await store.finish(jobs["o/r#1"].id)
    await store.bury(jobs["o/r#2"].id, "gave up")
    clock.now += 15 * DAY
    await accept(store, "fresh", key="o/r#3")
    [fresh] = await store.claim(4, lease=15)
    await store.finish(fresh.id)
    counts = await store.prune(finished_before=clock.now - 14 * DAY, dead_before=clock.now - 30 * DAY)
    assert counts == {"deliveries": 2, "jobs": 1, "dead_jobs": 0, "outbox": 1, "runs": 1, "spend": 1}
    assert await store.queue_depth() == {"dead": 1}
    assert await accept(store, "fresh") is False  # recent deliveries still deduplicate
    clock.now += 20 * DAY
    counts = await store.prune(finished_before=clock.now - 14 * DAY, dead_before=clock.now - 30 * DAY)
    assert counts["dead_jobs"] == 1 and counts["jobs"] == 1
    assert await store.queue_depth() == {}


async def test_a_deleted_issue_leaves_no_text_behind(store):
    issue = {"number": 1, "title": "secret title", "body": "secret body"}
    await store.index_issue("o/r", 1, "secret title", "secret body", "open", None)
    await store.save_issue_state("o/r", 1, {"comment_id": 3})
    await store.start_run("o/r", 1, "research", 1, {"conversation": ["secret body"]})
    await accept(store, "d1", key="o/r#1", payload={"data": {"issue": dict(issue)}})
    await accept(store, "d2", key="o/r#1", payload={"data": {"issue": dict(issue), "comment": {"body": "secret"}}})
    await accept(store, "d3", key="o/r#2", payload={"data": {"issue": {"number": 2, "title": "kept"}}})
    [running, other] = await store.claim(4, lease=15)
    await store.forget_issue("o/r", 1)
    assert await store.similar_issues("o/r", "secret title", exclude=0) == []
    assert await store.issue_state("o/r", 1) == {} and await store.runs_for_issue("o/r", 1) == []
    assert await store.queue_depth() == {"running": 2}  # the other issue's job and the running one
    await store.finish(running.id)
    await store.finish(other.id)
    store.test_clock.now += 16
    assert await store.claim(4, lease=15) == []
    rows = await store.read_rows("jobs", ("key", "payload"), "id", 0, 10)
    assert "secret" not in json.dumps(rows) and "kept" in json.dumps(rows)


# ---------------------------------------------------------------------- health and migrations
async def test_the_probe_fails_when_the_store_cannot_write(store):
    assert await store.probe() is None and await store.ping()
    if isinstance(store, SqliteStore):
        await store.call(lambda db: db.execute("PRAGMA query_only = ON").fetchall())
    else:
        await store.pool.execute("ALTER DATABASE " + store.test_url.rsplit("/", 1)[1]
                                 + " SET default_transaction_read_only = on")
        await store.pool.expire_connections()
    problem = await store.probe()
    assert problem and "cannot write" in problem
    assert await store.ping()


async def test_spec_files_wait_in_the_outbox_while_other_work_goes_on(store):
    """Outbox writes run alongside everything else; on SQLite none hands a live cursor back to the
    event loop (freeing one there races the store's thread: "bad parameter or other API misuse")."""
    files = [{f"specs/{i}-{j}.md": "x" * 200 for j in range(2)} for i in range(60)]
    await asyncio.gather(*(store.queue_files("o/r", 1, "chant-specs", f) for f in files),
                         *(accept(store, f"d{i}", key=f"o/r#{i}") for i in range(60)))
    pending = await store.pending_files("o/r")
    assert len(pending) == 120
    await store.mark_committed(f.id for f in pending)
    assert await store.pending_files("o/r") == []
    if isinstance(store, SqliteStore):
        with pytest.raises(TypeError, match="cursor"):
            await store.call(lambda db: db.execute("SELECT 1"))


async def test_migrations_are_versioned_and_applied_once(store):
    version = await store.schema_version()
    assert version >= 1
    again = await opened(store.test_url, store.test_clock)  # a second process starting: nothing to do
    try:
        assert await again.schema_version() == version
        assert await again.row_count("schema_migrations") == version
    finally:
        await again.close()


async def test_a_database_from_before_versioned_migrations_is_adopted(tmp_path):
    import sqlite3

    from bot.store import migrations

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(migrations.load("sqlite")[0].sql)
        db.execute("INSERT INTO jobs (kind, key, payload, run_after, created_at) VALUES ('event', 'o/r#1', '{}', 0, 0)")
    store = open_store(f"sqlite:///{path}")
    await store.open()
    try:
        assert await store.queue_depth() == {"queued": 1}
        assert await store.probe() is None
        assert await store.schema_version() == len(migrations.load("sqlite"))
    finally:
        await store.close()


# ---------------------------------------------------------------------- stage runs and spend
async def test_one_active_run_per_stage_and_optimistic_saves(store):
    run = await store.start_run("o/r", 7, "research", 42, {"turns": [1]})
    assert run.status == "queued" and run.version == 1 and run.data == {"turns": [1]} and run.installation_id == 42
    assert await store.start_run("o/r", 7, "research", 42, {}) is None  # the database refuses a second
    other = await store.start_run("o/r", 7, "reproduce", 42, {})
    assert other is not None
    store.test_clock.now += 5
    saved = await store.save_run(run, status="waiting_ci", data={"turns": [1, 2]}, waiting_sha="abc")
    assert saved.version == 2 and saved.waiting_sha == "abc" and saved.updated_at == run.updated_at + 5
    assert await store.save_run(run, status="running", data={}, waiting_sha=None) is None  # stale version
    assert [r.id for r in await store.runs_waiting_for("o/r", "abc")] == [run.id]
    assert await store.runs_waiting_for("o/r", "def") == []
    assert await store.runs_waiting_for("x/y", "abc") == []
    done = await store.save_run(saved, status="done", data=saved.data, waiting_sha=None)
    assert (await store.get_run(run.id)) == done
    again = await store.start_run("o/r", 7, "research", 42, {})
    assert again is not None
    assert await store.save_run(done, status="running", data={}, waiting_sha=None) is None  # would be a second
    assert [r.id for r in await store.runs_for_issue("o/r", 7)] == [run.id, other.id, again.id]
    assert await store.get_run(999999) is None
    with pytest.raises(ValueError):
        await store.save_run(again, status="paused", data={}, waiting_sha=None)


async def test_a_checkpoint_of_a_few_megabytes(store):
    data = {"conversation": [{"role": "user", "content": "x" * 1_000_000}] * 3, "nul": "\x00"}
    run = await store.start_run("o/r", 1, "implement", 1, data)
    assert (await store.get_run(run.id)).data == data


async def test_spend_adds_up_per_installation_and_day(store):
    assert await store.spend(1, "2026-01-01") == 0.0
    assert await store.add_spend(1, "2026-01-01", 0.25) == 0.25
    assert await store.add_spend(1, "2026-01-01", 0.5) == 0.75
    assert await store.add_spend(2, "2026-01-01", 1.0) == 1.0
    assert await store.spend(1, "2026-01-01") == 0.75 and await store.spend(1, "2026-01-02") == 0.0
    # Several budget keys in one round trip: read, and added to together.
    assert await store.spends(1, ["2026-01-01", "2026-01-01 o/r", "2026-01-02"]) == [0.75, 0.0, 0.0]
    assert await store.add_spends(1, ["2026-01-01", "2026-01-01 o/r"], 0.25) == [1.0, 0.25]
    assert await store.spends(1, ["2026-01-01 o/r", "2026-01-01"]) == [0.25, 1.0]
    assert await store.spends(2, []) == []


# ---------------------------------------------------------------------- GitHub's limits, shared
async def test_write_slots_are_shared_by_every_connection(store):
    other = await opened(store.test_url, store.test_clock)
    limits = (WriteLimit(5, 1.0), WriteLimit(12, 10.0))
    try:
        slots = []
        for i in range(40):
            slots.append(await (store if i % 2 else other).reserve_write(9, limits, 0.0))
        for limit in limits:
            for i, start in enumerate(slots):
                assert len([s for s in slots[i:] if s < start + limit.window]) <= limit.count
        assert slots[4] == slots[0] == store.test_clock.now  # a burst up to the limit goes out at once
        assert await store.reserve_write(10, limits, 0.0) == store.test_clock.now  # installations apart
    finally:
        await other.close()


async def test_writes_are_admitted_by_when_they_were_sent(store):
    other = await opened(store.test_url, store.test_clock)
    limits = (WriteLimit(3, 1.0),)
    try:
        sent = []
        for i in range(12):
            while (admitted := await (store if i % 2 else other).admit_write(9, limits, 0.0))[0] > 0:
                store.test_clock.now += admitted[0]
            assert admitted[1] == store.test_clock.now  # the write's stamp
            sent.append(store.test_clock.now)
        for i, start in enumerate(sent):
            assert len([s for s in sent[i:] if s < start + 1.0]) <= 3
        assert sent[2] == sent[0]
        # A write counts from its answer: GitHub may have counted it at any time until then.
        clock = store.test_clock
        clock.now += 10
        for _ in range(3):
            stamp = (await store.admit_write(9, limits, 0.0))[1]
            await other.answered(9, stamp, clock.now + 0.5)
        clock.now += 1.2
        assert (await store.admit_write(9, limits, 0.0))[0] == pytest.approx(0.3)  # 1.0 after the answer
    finally:
        await other.close()


async def test_holds_only_grow(store):
    assert await store.holds(3) == {}
    await store.hold(3, "writes", 100.0)
    await store.hold(3, "writes", 50.0)
    await store.hold(3, "tokens", 10.0)
    assert await store.holds(3) == {"writes": 100.0, "tokens": 10.0}
    store.test_clock.now = 20.0
    assert await store.reserve_write(3, (WriteLimit(5, 1.0),), 0.0) == 100.0


# ---------------------------------------------------------------------- PostgreSQL only
async def test_postgres_wakes_listeners_when_work_is_stored(postgres_url):  # noqa: F811
    web, worker = await opened(postgres_url, ManualClock()), await opened(postgres_url, ManualClock())
    woken = asyncio.Event()
    try:
        worker.listen(woken.set)
        for _ in range(100):  # until the listening connection is up
            await web.enqueue("event", "k", {}, installation_id=None)
            try:
                await asyncio.wait_for(woken.wait(), 0.1)
                break
            except asyncio.TimeoutError:
                continue
        else:
            pytest.fail("the worker's listening connection never woke it")
        await quiet(woken)  # the wakes of the jobs above have all arrived: the next one is the delivery's
        assert not woken.is_set()
        assert await accept(web, "d1") is True
        await asyncio.wait_for(woken.wait(), 5)
        assert woken.is_set()
    finally:
        await web.close()
        await worker.close()


async def quiet(woken: asyncio.Event, period: float = 0.3, rounds: int = 50) -> None:
    """Return once `woken` stays unset for `period` seconds (wakes of earlier writes may still be in flight)."""
    for _ in range(rounds):
        woken.clear()
        try:
            await asyncio.wait_for(woken.wait(), period)
        except asyncio.TimeoutError:
            return
    pytest.fail("the listener kept being woken while nothing was stored")


async def test_an_unreachable_postgres_is_one_clear_error():
    from bot.store import StoreError

    store = open_store("postgresql://chantbot:secret@127.0.0.1:9/nowhere")
    with pytest.raises(StoreError) as caught:
        await store.open()
    message = str(caught.value)
    assert "cannot connect to PostgreSQL" in message and "secret" not in message and "\n" not in message
