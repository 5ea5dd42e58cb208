"""What an operator sees from the command line: help, env files, start-up failures as one line, JSON logs."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import socket
import sqlite3

import pytest

from bot.__main__ import JsonFormatter, build_parser, main
from bot.github import GitHubApp
from bot.settings import ENVIRONMENT
from chantbot_sim.github import app_key_pair
from tests.conftest import APP_ID

PEM = app_key_pair()[0]
CONTRACT = ("PORT", "HOST", "GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "GITHUB_PRIVATE_KEY_PATH", "GITHUB_WEBHOOK_SECRET",
            "GITHUB_API_URL", "GITHUB_URL", "DATABASE_URL", "LOG_FORMAT")


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A complete environment for `serve`; tests change one thing."""
    for name in CONTRACT:
        monkeypatch.delenv(name, raising=False)
    values = {"GITHUB_APP_ID": "7", "GITHUB_PRIVATE_KEY": PEM, "GITHUB_WEBHOOK_SECRET": "s", "HOST": "127.0.0.1",
              "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def one_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_serve_help_lists_every_variable_it_reads(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in CONTRACT + ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "BOT_MODEL", "BOT_CONCURRENCY",
                            "GITHUB_WRITE_LIMITS"):
        assert f"\n  {name} " in out
    assert len(ENVIRONMENT) == out.count("\n  ") - out.split("environment")[0].count("\n  ")


async def test_a_busy_port_is_one_line_and_exit_2(env, capsys, simulator, app_key):
    env.setenv("GITHUB_APP_ID", str(APP_ID))  # the App's own key: start-up gets as far as listening
    env.setenv("GITHUB_PRIVATE_KEY", app_key.private_pem)
    env.setenv("GITHUB_API_URL", simulator.base_url)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env.setenv("PORT", str(port))
        with pytest.raises(SystemExit) as exit_:
            await asyncio.to_thread(main, ["serve"])
    assert exit_.value.code == 2
    assert one_line(capsys) == (f"chantbot: cannot listen on 127.0.0.1:{port} (HOST, PORT): "
                                f"the port is in use")


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_an_unusable_database_path_is_one_line_and_exit_2(env, capsys, tmp_path, command):
    env.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/no/such/folder/bot.db")
    with pytest.raises(SystemExit) as exit_:
        main([command])
    assert exit_.value.code == 2
    assert one_line(capsys) == (f"chantbot: cannot use the database sqlite:///{tmp_path}/no/such/folder/bot.db "
                                f"(DATABASE_URL): the folder {tmp_path}/no/such/folder does not exist")


def test_env_file_settings_reach_serve_and_the_environment_wins(env, capsys, tmp_path):
    env.delenv("GITHUB_APP_ID")
    env.setenv("HOST", "127.0.0.1")
    env.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/no/such/folder/bot.db")
    path = tmp_path / "chantbot.env"
    path.write_text(f"GITHUB_APP_ID=12\nDATABASE_URL=sqlite:///{tmp_path / 'ok.db'}\nHOST=bad host\n")
    with pytest.raises(SystemExit):
        main(["serve", "--env-file", str(path)])
    # the App id came from the file; the environment's (broken) database won over the file's
    assert "cannot use the database" in one_line(capsys)
    path.write_text("GITHUB_APP_ID=twelve\n")
    with pytest.raises(SystemExit) as exit_:
        main(["web", "--env-file", str(path)])
    assert exit_.value.code == 2
    assert one_line(capsys) == ("chantbot: GITHUB_APP_ID must be a number (the App's id on its settings page), "
                                "got 'twelve'")
    with pytest.raises(SystemExit):
        main(["worker", "--env-file", str(tmp_path / "absent.env")])
    assert one_line(capsys).startswith(f"chantbot: --env-file: cannot read {tmp_path / 'absent.env'}")


def test_json_logs_carry_iso_8601_utc_timestamps():
    record = logging.LogRecord("bot", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    record.created = 1_780_000_000.25
    entry = json.loads(JsonFormatter().format(record))
    assert entry == {"time": "2026-05-28T20:26:40.250Z", "level": "INFO", "logger": "bot", "message": "hello there"}
    assert datetime.datetime.fromisoformat(entry["time"]).utcoffset() == datetime.timedelta(0)


def test_every_command_says_what_it_does_and_the_help_names_try_and_the_simulator(capsys):
    parser = build_parser()
    [commands] = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    for name, command in commands.choices.items():
        assert command.description and len(command.description) > 40, name
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "python -m bot try PATH" in out and "python -m chantbot_sim.github" in out


@pytest.mark.parametrize("command", ["serve", "web", "worker"])
async def test_a_key_that_is_not_the_apps_stops_start_up_with_one_line(env, capsys, simulator, command):
    env.setenv("GITHUB_APP_ID", str(APP_ID))
    env.setenv("GITHUB_API_URL", simulator.base_url)  # the simulator knows App 777 by another key than PEM
    with pytest.raises(SystemExit) as exit_:
        await asyncio.to_thread(main, [command])
    assert exit_.value.code == 2
    assert one_line(capsys) == (
        f"chantbot: GitHub refused the App's credentials (GET {simulator.base_url}/app answered 401 A JSON web "
        f"token could not be decoded): the private key (GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH) is not a "
        f"key of App {APP_ID} (GITHUB_APP_ID), or this machine's clock is off by more than a minute")


def test_a_github_api_url_that_does_not_answer_stops_start_up_with_one_line(env, capsys):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        env.setenv("GITHUB_API_URL", f"http://127.0.0.1:{port}")
        with pytest.raises(SystemExit) as exit_:
            main(["serve"])
    assert exit_.value.code == 2
    line = one_line(capsys)
    assert line.startswith(f"chantbot: GitHub does not answer at http://127.0.0.1:{port} (GITHUB_API_URL): ")


async def test_the_apps_own_key_passes_the_check(simulator, app_key):
    import aiohttp

    async with aiohttp.ClientSession() as session:
        app = GitHubApp(session=session, app_id=str(APP_ID), private_key=app_key.private_pem,
                        base_url=simulator.base_url, pacer=None, metrics=None)
        assert (await app.identify())["id"] == APP_ID


def test_a_worker_needs_no_webhook_secret(env, capsys, tmp_path):
    env.delenv("GITHUB_WEBHOOK_SECRET")
    env.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/missing/bot.db")
    with pytest.raises(SystemExit):
        main(["worker"])
    assert "cannot use the database" in one_line(capsys)  # got past the settings: nothing was missing
    with pytest.raises(SystemExit):
        main(["web"])
    assert one_line(capsys).startswith("chantbot: missing required variable: GITHUB_WEBHOOK_SECRET")


def test_migrate_reads_an_env_file(env, capsys, tmp_path):
    env.delenv("DATABASE_URL")
    path = tmp_path / "chantbot.env"
    path.write_text(f"DATABASE_URL=sqlite:///{tmp_path / 'from-file.db'}\n")
    assert main(["migrate", "--env-file", str(path)]) == 0
    assert f"sqlite:///{tmp_path / 'from-file.db'}: schema at version" in capsys.readouterr().out
    with sqlite3.connect(tmp_path / "from-file.db") as db:
        assert db.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] >= 1


async def test_github_failing_on_its_side_does_not_stop_start_up(simulator, app_key, tmp_path, caplog):
    from bot.__main__ import check_app
    from bot.runtime import Runtime
    from tests.conftest import bot_settings

    runtime = Runtime(bot_settings(simulator, app_key, tmp_path / "bot.db"), llm=None, agent_client=None)
    await runtime.open()
    try:
        assert await check_app(runtime) == f"App chantbot (id {APP_ID})"
        simulator.fail("GET", r"^/app$", status=502, times=10)
        with caplog.at_level(logging.WARNING):
            assert await check_app(runtime) == f"App {APP_ID}"  # a warning, and start-up goes on
    finally:
        await runtime.close()
    assert "GitHub answered 502 to GET /app; starting anyway" in caplog.text
