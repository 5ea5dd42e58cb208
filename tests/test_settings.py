"""Settings from the environment: defaults, rotation, key forms, clear errors."""

import pytest

from bot.settings import SettingsError, from_env
from bot.simulator import app_key_pair
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
    for command in ("serve", "web", "worker", "demo", "eval"):
        assert f"    {command} " in out
