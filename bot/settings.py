"""Settings from the environment (the operator contract); parsed once, in `__main__`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from bot.writelimit import WriteLimit, parse_write_limits

DEFAULT_MODEL = "claude-sonnet-5-5"
GITHUB_WEB_URL = "https://github.com"
GITHUB_API_URL = "https://api.github.com"
MAX_ENV_FILE = 1024 * 1024
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")

# (variable, default, meaning): what `serve --help` lists; docs/operating.md says the same at more length.
ENVIRONMENT = (
    ("PORT", "8000", "HTTP port"),
    ("HOST", "0.0.0.0", "bind address"),
    ("GITHUB_APP_ID", "required", "the App's id (a number)"),
    ("GITHUB_PRIVATE_KEY", "", "the App's PEM private key as text (literal \\n accepted), or"),
    ("GITHUB_PRIVATE_KEY_PATH", "", "a file holding it; one of the two is required"),
    ("GITHUB_WEBHOOK_SECRET", "required", "webhook secrets, comma-separated for rotation (not by worker)"),
    ("GITHUB_API_URL", GITHUB_API_URL, "REST base URL (GitHub Enterprise Server: GITHUB_URL/api/v3)"),
    ("GITHUB_URL", GITHUB_WEB_URL, "GitHub's web address (register; GitHub Enterprise Server)"),
    ("ANTHROPIC_API_KEY", "", "Claude; without it the local triager"),
    ("ANTHROPIC_BASE_URL", "the SDK's", "read by the anthropic SDK itself"),
    ("BOT_MODEL", DEFAULT_MODEL, "the model, unless a repository's config names one"),
    ("DATABASE_URL", "sqlite:///chantbot.db", "sqlite:///PATH or postgresql://..."),
    ("BOT_CONCURRENCY", "8", "jobs a worker process runs at once"),
    ("GITHUB_WRITE_LIMITS", "80/min,500/hour", "content-creating requests allowed per installation"),
    ("BOT_RETENTION_DAYS", "14", "days finished work (deliveries, done jobs, finished runs) is kept"),
    ("BOT_DEAD_JOB_RETENTION_DAYS", "30", "days a job that failed for good is kept, unless requeued"),
    ("LOG_FORMAT", "text", "text, or json for one JSON object per line"),
    ("CHANTBOT_DAILY_USD", "20", "what all model calls of one installation may cost in a day (UTC)"),
    ("CHANTBOT_SANDBOX", "bwrap where it works", "where agents' tests run: bwrap, or none (CI alone judges)"),
    ("CHANTBOT_SANDBOX_PYTHON", "chantbot's interpreter", "python3 inside the sandbox when setup made none"),
)


class SettingsError(Exception):
    """A missing or invalid variable; the message is the one line an operator sees."""


@dataclass(frozen=True)
class Settings:
    """Everything chantbot reads from its environment."""

    port: int = 8000
    host: str = "0.0.0.0"
    app_id: str | None = None
    private_key: str | None = None
    webhook_secrets: tuple[str, ...] = ()
    github_api_url: str = GITHUB_API_URL
    github_url: str = GITHUB_WEB_URL
    anthropic_api_key: str | None = None
    model: str = DEFAULT_MODEL
    database_url: str = "sqlite:///chantbot.db"
    concurrency: int = 8
    write_limits: tuple[WriteLimit, ...] = field(default_factory=lambda: parse_write_limits("80/min,500/hour"))
    log_format: str = "text"
    retention_days: int = 14  # finished work (deliveries, done jobs, committed files, finished runs)
    dead_retention_days: int = 30  # jobs that failed for good, unless retried first
    daily_usd: float = 20.0  # what all model calls of one installation may cost in a day (UTC)
    sandbox: str | None = None  # CHANTBOT_SANDBOX: "bwrap", "none", or None for bwrap where it works
    sandbox_python: str | None = None


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _private_key(env: Mapping[str, str]) -> str | None:
    text = env.get("GITHUB_PRIVATE_KEY", "").strip()
    if text:
        return text.replace("\\n", "\n")
    path = env.get("GITHUB_PRIVATE_KEY_PATH", "").strip()
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read()
        except OSError as exc:
            raise SettingsError(f"GITHUB_PRIVATE_KEY_PATH: cannot read {path}: {exc.strerror}") from None
    return None


def _check_key(pem: str) -> None:
    """Refuse at start-up a key that could never sign a JWT (rather than failing every job later)."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise SettingsError("GITHUB_PRIVATE_KEY (or the file at GITHUB_PRIVATE_KEY_PATH) is not a readable, "
                            "unencrypted PEM private key") from None


def read_env_file(path: str | Path) -> dict[str, str]:
    """`KEY=VALUE` lines (blank lines, `#` comments, `export ` and one pair of quotes allowed); raises SettingsError."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(MAX_ENV_FILE + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"--env-file: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(text) > MAX_ENV_FILE:
        raise SettingsError(f"--env-file: {path} is larger than {MAX_ENV_FILE} bytes")
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not _ENV_NAME.fullmatch(name):
            raise SettingsError(f"--env-file: {path}:{number} is not a KEY=VALUE line")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values


def with_env_file(environ: Mapping[str, str], path: str | Path | None) -> dict[str, str]:
    """The environment plus an env file's variables; a variable already in the environment wins."""
    return {**(read_env_file(path) if path else {}), **environ}


def _app_id(env: Mapping[str, str]) -> str | None:
    raw = env.get("GITHUB_APP_ID", "").strip()
    if raw and not raw.isdecimal():
        raise SettingsError(f"GITHUB_APP_ID must be a number (the App's id on its settings page), got {raw[:40]!r}")
    return raw or None


def _github_urls(env: Mapping[str, str]) -> tuple[str, str]:
    """(web URL, REST URL); with only GITHUB_URL set (GitHub Enterprise Server) the REST URL is GITHUB_URL/api/v3."""
    web = (env.get("GITHUB_URL", "").strip() or GITHUB_WEB_URL).rstrip("/")
    api = env.get("GITHUB_API_URL", "").strip().rstrip("/")
    if not api:
        api = GITHUB_API_URL if web == GITHUB_WEB_URL else f"{web}/api/v3"
    for name, url in (("GITHUB_URL", web), ("GITHUB_API_URL", api)):
        if not url.startswith(("https://", "http://")):
            raise SettingsError(f"{name} must be an http(s) URL, got {url[:80]!r}")
    return web, api


def from_env(env: Mapping[str, str], *, require_app: bool = True, require_secret: bool | None = None) -> Settings:
    """Parse the environment; with `require_app`, the App's id and key (and, unless told otherwise, a webhook
    secret) must be set. Every missing variable is named in one error."""
    secrets = tuple(s.strip() for s in env.get("GITHUB_WEBHOOK_SECRET", "").split(",") if s.strip())
    app_id = _app_id(env)
    key = _private_key(env)
    if require_app:
        missing = []
        if not app_id:
            missing.append("GITHUB_APP_ID (the App's id)")
        if not key:
            missing.append("GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH (the App's PEM key)")
        if not secrets and require_secret is not False:
            missing.append("GITHUB_WEBHOOK_SECRET (comma-separate several to rotate)")
        if missing:
            raise SettingsError(f"missing required {'variable' if len(missing) == 1 else 'variables'}: "
                                f"{'; '.join(missing)} (`python -m bot register` writes them to an env file)")
    if key:
        _check_key(key)
    web_url, api_url = _github_urls(env)
    log_format = env.get("LOG_FORMAT", "text").strip().lower() or "text"
    if log_format not in ("text", "json"):
        raise SettingsError(f"LOG_FORMAT must be text or json, got {log_format!r}")
    database_url = env.get("DATABASE_URL", "").strip() or "sqlite:///chantbot.db"
    if not database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise SettingsError(f"DATABASE_URL must start with sqlite:/// or postgresql://, got {database_url!r}")
    try:
        limits = parse_write_limits(env.get("GITHUB_WRITE_LIMITS", "").strip() or "80/min,500/hour")
    except ValueError as exc:
        raise SettingsError(f"GITHUB_WRITE_LIMITS: {exc}") from None
    return Settings(
        port=_int(env, "PORT", 8000, minimum=0),
        host=env.get("HOST", "").strip() or "0.0.0.0",
        app_id=app_id,
        private_key=key,
        webhook_secrets=secrets,
        github_api_url=api_url,
        github_url=web_url,
        anthropic_api_key=env.get("ANTHROPIC_API_KEY", "").strip() or None,
        model=env.get("BOT_MODEL", "").strip() or DEFAULT_MODEL,
        database_url=database_url,
        concurrency=_int(env, "BOT_CONCURRENCY", 8),
        write_limits=limits,
        log_format=log_format,
        retention_days=_int(env, "BOT_RETENTION_DAYS", 14),
        dead_retention_days=_int(env, "BOT_DEAD_JOB_RETENTION_DAYS", 30),
        daily_usd=_usd(env, "CHANTBOT_DAILY_USD", 20.0),
        sandbox=_choice(env, "CHANTBOT_SANDBOX", ("bwrap", "none")),
        sandbox_python=env.get("CHANTBOT_SANDBOX_PYTHON", "").strip() or None,
    )


def _usd(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an amount in US dollars, got {raw!r}") from None
    if not 0 <= value <= 1_000_000:
        raise SettingsError(f"{name} must be between 0 and 1000000, got {raw}")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    raw = env.get(name, "").strip().lower()
    if raw and raw not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw or None
