"""Operating chantbot: retention, deleted issues, /healthz when the store cannot write, a worker's own
/healthz, `python -m bot migrate`, and the whole flow on PostgreSQL."""

import json
import sqlite3

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot import __main__ as cli
from bot.settings import from_env
from bot.store import SpecRecord, open_store
from bot.worker import DAY
from tests.conftest import REPO, ManualClock, eventually


async def get(url: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            return resp.status, await resp.json()


async def test_healthz_is_503_when_the_store_cannot_write(start_bot):
    bot = await start_bot()
    url = str(bot.server.make_url("/healthz"))
    assert (await get(url))[0] == 200
    await bot.runtime.store.call(lambda db: db.execute("PRAGMA query_only = ON").fetchall())  # as when the disk is full
    status, body = await get(url)
    assert status == 503 and body["status"] == "unavailable" and "cannot write" in body["database"]


async def test_a_worker_process_answers_healthz_and_metrics_with_the_shared_queue(start_bot):
    bot = await start_bot()
    await bot.runtime.worker.stop(grace=0)
    await bot.runtime.store.enqueue("event", "o/r#1", {}, installation_id=None, delay=60)
    server = TestServer(bot.runtime.status_app(), host="127.0.0.1")
    await server.start_server()
    try:
        status, body = await get(str(server.make_url("/healthz")))
        assert status == 200 and body["queue"] == {"queued": 1}
        async with aiohttp.ClientSession() as session:
            async with session.get(str(server.make_url("/metrics"))) as resp:
                assert 'chantbot_queue_depth{status="queued"} 1.0' in await resp.text()
            async with session.post(str(server.make_url("/webhook")), data=b"{}") as resp:
                assert resp.status in (404, 405)  # a worker takes no deliveries
    finally:
        await server.close()


async def test_workers_prune_old_work_on_start(start_bot):
    bot = await start_bot()
    store = bot.runtime.store
    await bot.runtime.worker.stop(grace=0)
    real = store.clock
    store.clock = lambda: real() - 20 * DAY  # work finished twenty days ago
    await store.enqueue("index-repo", "index:o/r", {"repo": "o/r"}, installation_id=1)
    [job] = await store.claim(1, lease=15)
    await store.finish(job.id)
    store.clock = real
    assert await bot.runtime.worker.prune() == {"deliveries": 0, "jobs": 1, "dead_jobs": 0, "outbox": 0,
                                                 "runs": 0, "spend": 0}
    assert await store.read_rows("jobs", ("id",), "id", 0, 10) == []


def test_retention_is_configurable():
    env = {"BOT_RETENTION_DAYS": "3", "BOT_DEAD_JOB_RETENTION_DAYS": "60"}
    settings = from_env(env, require_app=False)
    assert (settings.retention_days, settings.dead_retention_days) == (3, 60)
    assert from_env({}, require_app=False).retention_days == 14
    with pytest.raises(Exception, match="BOT_RETENTION_DAYS"):
        from_env({"BOT_RETENTION_DAYS": "0"}, require_app=False)


async def test_a_deleted_issue_keeps_no_text(start_bot):
    bot = await start_bot()
    number = await bot.open_issue("Crash when saving a zebra", "Traceback: KeyError 'stripes'")
    await bot.triaged(number)
    store = bot.runtime.store
    assert [c.number for c in await store.similar_issues(REPO, "saving zebra crash", exclude=0)] == [number]
    payload = bot.sim.issue_payload("deleted", REPO, number)
    assert await bot.deliver("issues", payload) == 202
    await eventually(lambda: _forgotten(store, number))
    await bot.idle()
    rows = await store.read_rows("jobs", ("payload",), "id", 0, 100)
    assert "zebra" not in json.dumps(rows) and "stripes" not in json.dumps(rows)


async def _forgotten(store, number: int) -> bool:
    return not await store.similar_issues(REPO, "saving zebra crash", exclude=0) \
        and await store.issue_state(REPO, number) == {}


async def test_the_whole_flow_on_postgres(start_bot, postgres_url):
    bot = await start_bot(database_url=postgres_url)
    number = await bot.open_issue("Crash on save", "Traceback (most recent call last): KeyError 'size'")
    [comment] = await bot.triaged(number)
    assert "bug" in bot.sim.labels_on(REPO, number)
    assert (await get(str(bot.server.make_url("/healthz"))))[0] == 200


async def test_migrate_copies_the_durable_state_to_postgres(tmp_path, postgres_url, capsys):
    source_url = f"sqlite:///{tmp_path / 'old.db'}"
    source = open_store(source_url, clock=ManualClock())
    await source.open()
    await source.accept_delivery("d1", "issues", "opened", kind="event", key="o/r#1", payload={"n": 1},
                                 installation_id=1)
    await source.accept_delivery("d2", "issues", "opened", kind="event", key="o/r#2", payload={"n": 2},
                                 installation_id=1)
    [running, _] = await source.claim(2, lease=15)
    await source.index_issue("o/r", 1, "Crash when saving a widget", "KeyError size", "closed", "bug")
    await source.save_issue_state("o/r", 1, {"comment_id": 5})
    await source.next_spec_seq("o/r", "2026-01-01")
    await source.record_spec("o/r", 1, SpecRecord("triage", "2026-01-01-001-abc", ".chant/specs/a.md", "completed"))
    await source.queue_files("o/r", 1, "chant-specs", {"a.md": "A"})
    await source.set_repo_meta("o/r", "indexed", "1")
    run = await source.start_run("o/r", 1, "research", 1, {"turns": ["x"]})
    await source.add_spend(1, "2026-01-01", 0.5)
    await source.close()

    assert await cli._migrate(source_url, postgres_url) == 0
    assert "copied" in capsys.readouterr().out
    target = open_store(postgres_url)
    await target.open()
    try:
        assert await target.queue_depth() == {"queued": 2}  # the running job is queued again
        assert await target.accept_delivery("d1", "issues", "opened", kind="event", key="o/r#1", payload={},
                                            installation_id=1) is False
        assert [c.number for c in await target.similar_issues("o/r", "saving widget crash", exclude=0)] == [1]
        assert await target.history("o/r") == [("Crash when saving a widget", "KeyError size", "bug")]
        assert await target.issue_state("o/r", 1) == {"comment_id": 5}
        assert await target.next_spec_seq("o/r", "2026-01-01") == 2
        assert (await target.spec_for("o/r", 1, "triage")).spec_id == "2026-01-01-001-abc"
        assert [f.content for f in await target.pending_files("o/r")] == ["A"]
        assert await target.repo_meta("o/r", "indexed") == "1"
        assert (await target.get_run(run.id)).data == {"turns": ["x"]}
        assert await target.spend(1, "2026-01-01") == 0.5
        assert await target.enqueue("event", "o/r#9", {}, installation_id=1)  # new ids follow the copied ones
        ids = [r[0] for r in await target.read_rows("jobs", ("id",), "id", 0, 10)]
        assert len(ids) == 3 and running.id in ids
    finally:
        await target.close()
    assert await cli._migrate(source_url, postgres_url) == 2  # never into a database in use
    assert "already holds" in capsys.readouterr().err


def test_migrate_without_a_copy_brings_the_schema_up_to_date(tmp_path, monkeypatch, capsys):
    path = tmp_path / "bot.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    assert cli.main(["migrate"]) == 0
    assert "schema at version" in capsys.readouterr().out
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] >= 2


def test_an_unusable_database_url_is_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "postgresql://chantbot:pw@127.0.0.1:9/none")
    assert cli.main(["migrate"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("chantbot: cannot use the database postgresql://127.0.0.1:9/none: cannot connect")
    assert "pw" not in err and "\n" not in err


async def test_a_push_to_another_branch_is_not_work(start_bot):
    bot = await start_bot()
    bot.sim.set_file(REPO, "docs/usage.md", "changed\n", branch="topic")
    assert await bot.deliver("push", bot.sim.push_payload(REPO, "topic")) == 200


async def test_a_pushed_configuration_counts_from_the_next_event(start_bot):
    bot = await start_bot()
    first = await bot.open_issue("Crash on save", "Traceback (most recent call last): KeyError 'size'")
    await bot.triaged(first)
    assert "bug" in bot.sim.labels_on(REPO, first)  # no configuration: GitHub's default names
    bot.sim.set_file(REPO, ".github/chantbot.yml", "labels:\n  category: {bug: 'kind/bug'}\n")
    assert await bot.deliver("push", bot.sim.push_payload(REPO)) == 202
    await bot.idle()
    second = await bot.open_issue("Crash on load", "Traceback (most recent call last): KeyError 'name'")
    await bot.triaged(second)
    assert "kind/bug" in bot.sim.labels_on(REPO, second) and "bug" not in bot.sim.labels_on(REPO, second)


def test_app_yaml_says_what_chantbot_does_with_each_permission():
    from pathlib import Path

    import yaml

    text = (Path(__file__).parent.parent / "app.yaml").read_text()
    permissions = yaml.safe_load(text)["default_permissions"]
    lines = text.split("default_permissions:")[1].splitlines()
    for name in permissions:
        [line] = [line for line in lines if line.startswith(f"  {name}:")]
        assert len(line.partition("#")[2].strip()) > 20, name
    section = "\n".join(lines)
    assert "never merges" in section and "merge" not in section.replace("never merges", "")
