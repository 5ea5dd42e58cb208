"""Settings from the environment (the operator contract); parsed once, in `__main__`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from bot.writelimit import WriteLimit, parse_write_limits

DEFAULT_MODEL = "claude-sonnet-5-5"


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
    github_api_url: str = "https://api.github.com"
    anthropic_api_key: str | None = None
    model: str = DEFAULT_MODEL
    database_url: str = "sqlite:///chantbot.db"
    concurrency: int = 8
    write_limits: tuple[WriteLimit, ...] = field(default_factory=lambda: parse_write_limits("80/min,500/hour"))
    log_format: str = "text"


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


def from_env(env: Mapping[str, str], *, require_app: bool = True) -> Settings:
    """Parse the environment; with `require_app`, the App's id, key and webhook secret must be set."""
    secrets = tuple(s.strip() for s in env.get("GITHUB_WEBHOOK_SECRET", "").split(",") if s.strip())
    key = _private_key(env)
    app_id = env.get("GITHUB_APP_ID", "").strip() or None
    if require_app:
        if not app_id:
            raise SettingsError("GITHUB_APP_ID is required (the GitHub App's id)")
        if not key:
            raise SettingsError("GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH is required (the App's PEM key)")
        if not secrets:
            raise SettingsError("GITHUB_WEBHOOK_SECRET is required (comma-separate several to rotate)")
    if key:
        _check_key(key)
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
        github_api_url=(env.get("GITHUB_API_URL", "").strip() or "https://api.github.com").rstrip("/"),
        anthropic_api_key=env.get("ANTHROPIC_API_KEY", "").strip() or None,
        model=env.get("BOT_MODEL", "").strip() or DEFAULT_MODEL,
        database_url=database_url,
        concurrency=_int(env, "BOT_CONCURRENCY", 8),
        write_limits=limits,
        log_format=log_format,
    )
