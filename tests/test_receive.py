"""`python -m bot receive EVENT PAYLOAD.json`: one delivery through chantbot, and what it did on GitHub."""

from __future__ import annotations

import io
import json

import pytest

from bot import receive
from bot.__main__ import build_parser, main
from bot.settings import from_env, with_env_file
from bot.store import open_store
from chantbot_sim.github import app_key_pair
from tests.conftest import APP_ID, INSTALLATION, REPO, bot_settings


def write_env(tmp_path, simulator, app_key, database: str | None = None):
    (tmp_path / "app.pem").write_text(app_key.private_pem)
    env_file = tmp_path / "debug.env"  # no webhook secret: receive verifies nothing
    env_file.write_text(f"GITHUB_APP_ID={APP_ID}\nGITHUB_PRIVATE_KEY_PATH={tmp_path / 'app.pem'}\n"
                        f"GITHUB_API_URL={simulator.base_url}\nGITHUB_WRITE_LIMITS=1000/s\n"
                        + (f"DATABASE_URL={database}\n" if database else ""))
    return env_file


async def test_receive_says_where_it_acts_and_lists_the_jobs_and_github_requests(simulator, app_key, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    issue = simulator.add_issue(REPO, title="Saving crashes with KeyError", user="alice",
                                body="Traceback (most recent call last):\nKeyError: 'size'\n\nwidgets 2.3.1")
    payload = tmp_path / "opened.json"
    payload.write_text(json.dumps(simulator.issue_payload("opened", REPO, issue["number"])))
    env_file = write_env(tmp_path, simulator, app_key)
    settings = from_env(with_env_file({}, env_file), require_secret=False)
    out = io.StringIO()
    args = build_parser().parse_args(["receive", "issues", str(payload), "--env-file", str(env_file)])
    assert await receive.run(args, settings, out=out) == 0
    lines, number = out.getvalue().splitlines(), issue["number"]
    assert lines[0] == f"receive: event issues.opened on {REPO}#{number}"
    assert lines[1].startswith(f"  GitHub: {simulator.base_url} (GITHUB_API_URL), as App {APP_ID}. What chantbot "
                               "does there is real: comments, labels")
    assert lines[2].startswith("  database: a scratch one, deleted afterwards (no DATABASE_URL given)")
    assert lines[3].startswith(f"job event issues.opened on {REPO}#{number}: done (")
    assert f"  POST /app/installations/{INSTALLATION}/access_tokens -> 201" in lines
    assert f"  POST /repos/{REPO}/issues/{number}/comments -> 201" in lines
    listed = [line for line in lines if line.startswith("  ") and "->" in line]
    writes = [r for r in simulator.requests if r["method"] != "GET"]
    assert len(listed) == len(simulator.requests) - 1  # all but the App check, made before any job
    assert lines[-1] == f"{len(simulator.requests)} GitHub requests in all, {len(writes)} of them writes."
    assert len(simulator.comments(REPO, number, bot_only=True)) == 1  # the effects are real
    assert list(tmp_path.glob("*.db")) == []  # a scratch database


async def test_with_the_deployments_database_spec_numbers_continue_and_its_workers_get_the_rest(
        simulator, app_key, tmp_path):
    import datetime

    database = f"sqlite:///{tmp_path / 'deployment.db'}"
    live = open_store(database)
    await live.open()
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    for _ in range(3):  # three specs written today by the deployment
        await live.next_spec_seq(REPO, today)
    await live.close()
    issue = simulator.add_issue(REPO, title="Saving crashes with KeyError", user="alice",
                                body="Traceback (most recent call last):\nKeyError: 'size'\n\nwidgets 2.3.1")
    env = with_env_file({}, write_env(tmp_path, simulator, app_key, database))
    out = io.StringIO()
    status = await receive.receive(from_env(env, require_secret=False), "issues",
                                   simulator.issue_payload("opened", REPO, issue["number"]), out=out,
                                   deployment_database=True)
    assert status == 0
    text = out.getvalue()
    assert f"  database: {database} (DATABASE_URL, the deployment's): issue state and spec numbers continue" in text
    assert f"left for later: commit-specs on {REPO}" in text
    live = open_store(database)
    await live.open()
    try:
        [spec] = await live.specs(REPO, issue["number"])
        assert spec.spec_id.startswith(f"{today}-004-")  # after the deployment's three, not 001 again
        queued = [row[0] for row in await live.read_rows("jobs", ("kind",), "id", 0, 10)]
        assert "commit-specs" in queued and len(queued) == text.count("left for later: ")  # for its workers
    finally:
        await live.close()


async def test_an_event_chantbot_ignores_runs_nothing(simulator, app_key, tmp_path):
    out = io.StringIO()
    settings = bot_settings(simulator, app_key, tmp_path / "unused.db")
    assert await receive.receive(settings, "issues", {"action": "assigned"}, out=out) == 0
    assert out.getvalue() == "chantbot does nothing with issues (assigned): no job; a server would answer 200.\n"
    assert simulator.requests == []


async def test_a_failing_job_is_reported_and_the_exit_status_is_1(simulator, app_key, tmp_path):
    issue = simulator.add_issue(REPO, title="Crash", body="KeyError", user="alice")
    simulator.fail("POST", r"/access_tokens$", status=404)  # the App was uninstalled meanwhile
    out = io.StringIO()
    settings = bot_settings(simulator, app_key, tmp_path / "unused.db")
    status = await receive.receive(settings, "issues", simulator.issue_payload("opened", REPO, issue["number"]),
                                   out=out)
    assert status == 1
    assert f"job event issues.opened on {REPO}#{issue['number']}: failed: BadRequest" in out.getvalue()


@pytest.mark.parametrize("content, message", [("{not json", "is not JSON"), ("[1, 2]", "must hold a JSON object")])
def test_an_unusable_payload_file_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path, content, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_APP_ID", "1")
    monkeypatch.setenv("GITHUB_PRIVATE_KEY", app_key_pair()[0])
    (tmp_path / "payload.json").write_text(content)
    with pytest.raises(SystemExit) as exit_:
        main(["receive", "issues", "payload.json"])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("chantbot: payload.json")
