"""Settings from the environment: defaults, rotation, key forms, clear errors."""

import re

import pytest

from bot.settings import SettingsError, from_env, read_env_file, with_env_file
from chantbot_sim.github import app_key_pair
from bot.writelimit import WriteLimit

PEM = app_key_pair()[0]
BASE = {"GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": PEM, "GITHUB_WEBHOOK_SECRET": "s"}


def test_defaults_follow_the_contract():
    s = from_env(BASE)
    assert (s.port, s.host, s.github_api_url, s.database_url, s.concurrency, s.log_format) == (
        8000, "0.0.0.0", "https://api.github.com", "sqlite:///chantbot.db", 8, "text")
    assert s.write_limits == (WriteLimit(80, 60.0), WriteLimit(500, 3600.0))
    assert s.anthropic_api_key is None


def test_several_secrets_for_rotation_and_escaped_key():
    s = from_env({**BASE, "GITHUB_WEBHOOK_SECRET": "old, new", "GITHUB_PRIVATE_KEY": PEM.replace("\n", "\\n")})
    assert s.webhook_secrets == ("old", "new")
    assert s.private_key == PEM


def test_a_key_that_cannot_sign_is_refused_at_start():
    with pytest.raises(SettingsError, match="PEM private key"):
        from_env({**BASE, "GITHUB_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\\nnot a key\\n-----END RSA PRIVATE KEY-----"})


def test_key_from_path(tmp_path):
    path = tmp_path / "app.pem"
    path.write_text(PEM)
    env = {k: v for k, v in BASE.items() if k != "GITHUB_PRIVATE_KEY"} | {"GITHUB_PRIVATE_KEY_PATH": str(path)}
    assert from_env(env).private_key == PEM


@pytest.mark.parametrize("missing, named", [("GITHUB_APP_ID", "GITHUB_APP_ID"),
                                            ("GITHUB_PRIVATE_KEY", "GITHUB_PRIVATE_KEY"),
                                            ("GITHUB_WEBHOOK_SECRET", "GITHUB_WEBHOOK_SECRET")])
def test_missing_required_variable_is_named(missing, named):
    with pytest.raises(SettingsError, match=named):
        from_env({k: v for k, v in BASE.items() if k != missing})


def test_every_missing_required_variable_is_named_at_once():
    with pytest.raises(SettingsError) as error:
        from_env({"PORT": "8000"})
    message = str(error.value)
    assert message.startswith("missing required variables: GITHUB_APP_ID")
    for name in ("GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH", "GITHUB_WEBHOOK_SECRET", "python -m bot register"):
        assert name in message


def test_receive_needs_no_webhook_secret():
    env = {k: v for k, v in BASE.items() if k != "GITHUB_WEBHOOK_SECRET"}
    assert from_env(env, require_secret=False).webhook_secrets == ()


@pytest.mark.parametrize("value", ["abc", "12a", "-5", "1.5", "Iv1.8a61f9b3a7aba766"])
def test_github_app_id_must_be_a_number(value):
    with pytest.raises(SettingsError, match=r"^GITHUB_APP_ID must be a number"):
        from_env({**BASE, "GITHUB_APP_ID": value})


def test_env_file_fills_in_what_the_environment_does_not_set(tmp_path):
    path = tmp_path / "chantbot.env"
    path.write_text("# written by register\n\nGITHUB_APP_ID=42\nexport PORT=9000\nGITHUB_WEBHOOK_SECRET='s e'\n"
                    'HOST="127.0.0.1"\nEMPTY=\n')
    assert read_env_file(path) == {"GITHUB_APP_ID": "42", "PORT": "9000", "GITHUB_WEBHOOK_SECRET": "s e",
                                   "HOST": "127.0.0.1", "EMPTY": ""}
    merged = with_env_file({"PORT": "8080", "PATH": "/bin"}, path)
    assert merged["PORT"] == "8080" and merged["GITHUB_APP_ID"] == "42" and merged["PATH"] == "/bin"
    assert with_env_file({"PORT": "1"}, None) == {"PORT": "1"}


@pytest.mark.parametrize("content, problem", [("GITHUB_APP_ID 42\n", ":1 is not a KEY=VALUE line"),
                                              ("A=1\n9X=2\n", ":2 is not a KEY=VALUE line")])
def test_a_malformed_env_file_names_the_line(tmp_path, content, problem):
    path = tmp_path / ".env"
    path.write_text(content)
    with pytest.raises(SettingsError, match=f"^--env-file: {re.escape(str(path))}{problem}$"):
        read_env_file(path)
    with pytest.raises(SettingsError, match="cannot read"):
        read_env_file(tmp_path / "missing.env")


@pytest.mark.parametrize("name, value", [("PORT", "eighty"), ("BOT_CONCURRENCY", "0"),
                                         ("GITHUB_WRITE_LIMITS", "80/day"), ("LOG_FORMAT", "xml"),
                                         ("DATABASE_URL", "mysql://x")])
def test_invalid_values_are_refused_with_the_variable_named(name, value):
    with pytest.raises(SettingsError, match=name):
        from_env({**BASE, name: value})


def test_cli_exits_2_with_one_line(monkeypatch, capsys):
    from bot.__main__ import main
    for key in ("GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "GITHUB_PRIVATE_KEY_PATH", "GITHUB_WEBHOOK_SECRET"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["serve"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "GITHUB_APP_ID" in err[0]


def test_help_lists_every_subcommand(capsys):
    from bot.__main__ import main
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("serve", "web", "worker", "demo", "eval", "register", "receive"):
        assert f"    {command} " in out
