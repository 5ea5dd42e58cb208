"""`python -m bot receive EVENT PAYLOAD.json`: one delivery through chantbot, and what it did on GitHub."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from pathlib import Path

import pytest

from bot import receive
from tests.conftest import APP_ID, INSTALLATION, REPO, bot_settings
from tests.test_register import ROOT, clean_env


async def test_receive_runs_a_delivery_and_lists_the_jobs_and_github_requests(simulator, app_key, tmp_path):
    issue = simulator.add_issue(REPO, title="Saving crashes with KeyError", user="alice",
                                body="Traceback (most recent call last):\nKeyError: 'size'\n\nwidgets 2.3.1")
    payload = tmp_path / "opened.json"
    payload.write_text(json.dumps(simulator.issue_payload("opened", REPO, issue["number"])))
    (tmp_path / "app.pem").write_text(app_key.private_pem)
    env_file = tmp_path / "debug.env"  # no webhook secret: receive verifies nothing
    env_file.write_text(f"GITHUB_APP_ID={APP_ID}\nGITHUB_PRIVATE_KEY_PATH={tmp_path / 'app.pem'}\n"
                        f"GITHUB_API_URL={simulator.base_url}\nGITHUB_WRITE_LIMITS=1000/s\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "receive", "issues", str(payload), "--env-file", str(env_file), cwd=tmp_path,
        env=clean_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = (s.decode() for s in await asyncio.wait_for(proc.communicate(), 60))
    assert proc.returncode == 0, err
    number = issue["number"]
    assert f"job event issues.opened on {REPO}#{number}: done" in out
    assert f"  POST /app/installations/{INSTALLATION}/access_tokens -> 201" in out
    assert f"  POST /repos/{REPO}/issues/{number}/comments -> 201" in out
    listed = [line for line in out.splitlines() if line.startswith("  ")]
    assert len(listed) == len([r for r in simulator.requests if r["path"] != "/_sim/state"])
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
def test_an_unusable_payload_file_is_one_line_and_exit_2(tmp_path, content, message):
    import subprocess

    from bot.simulator import app_key_pair

    (tmp_path / "payload.json").write_text(content)
    env = clean_env(GITHUB_APP_ID="1", GITHUB_PRIVATE_KEY=app_key_pair()[0].replace("\n", "\\n"))
    done = subprocess.run([sys.executable, "-m", "bot", "receive", "issues", "payload.json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("chantbot: payload.json")
