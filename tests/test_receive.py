"""`python -m bot receive EVENT PAYLOAD.json`: one delivery through chantbot, and what it did on GitHub."""

from __future__ import annotations

import io
import json

import pytest

from bot import receive
from bot.__main__ import build_parser, main
from bot.settings import from_env, with_env_file
from chantbot_sim.github import app_key_pair
from tests.conftest import APP_ID, INSTALLATION, REPO, bot_settings


async def test_receive_runs_a_delivery_and_lists_the_jobs_and_github_requests(simulator, app_key, tmp_path):
    issue = simulator.add_issue(REPO, title="Saving crashes with KeyError", user="alice",
                                body="Traceback (most recent call last):\nKeyError: 'size'\n\nwidgets 2.3.1")
    payload = tmp_path / "opened.json"
    payload.write_text(json.dumps(simulator.issue_payload("opened", REPO, issue["number"])))
    (tmp_path / "app.pem").write_text(app_key.private_pem)
    env_file = tmp_path / "debug.env"  # no webhook secret: receive verifies nothing
    env_file.write_text(f"GITHUB_APP_ID={APP_ID}\nGITHUB_PRIVATE_KEY_PATH={tmp_path / 'app.pem'}\n"
                        f"GITHUB_API_URL={simulator.base_url}\nGITHUB_WRITE_LIMITS=1000/s\n"
                        f"DATABASE_URL=sqlite:///{tmp_path / 'deployment.db'}\n")
    settings = from_env(with_env_file({}, env_file), require_secret=False)
    out = io.StringIO()
    args = build_parser().parse_args(["receive", "issues", str(payload), "--env-file", str(env_file)])
    assert await receive.run(args, settings, out=out) == 0
    lines, number = out.getvalue().splitlines(), issue["number"]
    assert lines[0].startswith(f"job event issues.opened on {REPO}#{number}: done (")
    assert f"  POST /app/installations/{INSTALLATION}/access_tokens -> 201" in lines
    assert f"  POST /repos/{REPO}/issues/{number}/comments -> 201" in lines
    listed = [line for line in lines if line.startswith("  ")]
    assert len(listed) == len(simulator.requests) and lines[-1] == f"{len(listed)} GitHub requests in all."
    assert len(simulator.comments(REPO, number, bot_only=True)) == 1  # the effects are real
    assert list(tmp_path.glob("*.db")) == []  # a scratch database, never DATABASE_URL's


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
