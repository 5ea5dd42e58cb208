"""`python -m bot register`: GitHub's App manifest flow, as Probot runs it, ending in an env file for `serve`.

A local page posts the manifest (from `app.yaml`) to GitHub's "new App" form; GitHub sends the
browser back with a one-hour `code`, which is exchanged for the App's id, private key and webhook
secret (`POST /app-manifests/{code}/conversions`, no authentication).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import re
import secrets
import signal
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import yaml
from aiohttp import web
from gidgethub import HTTPException
from gidgethub.aiohttp import GitHubAPI

from bot.settings import GITHUB_API_URL, GITHUB_WEB_URL, Settings

DESCRIPTION = """\
Create chantbot's GitHub App with GitHub's manifest flow and write its credentials to an env file.

It serves a page on 127.0.0.1; open it in a browser signed in to GitHub (as an owner of --org for an
organisation's App), press the button, check the App on GitHub's page and create it. GitHub sends the
browser back to this command, which writes GITHUB_APP_ID, GITHUB_PRIVATE_KEY_PATH (the PEM, mode 0600)
and GITHUB_WEBHOOK_SECRET to --env-file for `python -m bot serve --env-file FILE`.

GitHub Enterprise Server: set GITHUB_URL (and GITHUB_API_URL when it is not GITHUB_URL/api/v3)."""
PACKAGE = Path(__file__).resolve().parent
TEMPLATES = PACKAGE / "templates"
KEY_FILE = "chantbot.private-key.pem"
_ORG = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}")
_CODE = re.compile(r"[A-Za-z0-9_.-]{1,200}")
_SECRET = re.compile(r"[A-Za-z0-9_.~+/=-]{1,200}")  # no comma: GITHUB_WEBHOOK_SECRET separates secrets by commas
MAX_MANIFEST = 64 * 1024


class RegisterError(Exception):
    """Registration cannot go on; the message is the one line an operator sees."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--webhook-url", metavar="URL",
                        help="where GitHub sends deliveries, e.g. https://chantbot.example.com/webhook "
                             "(asked for when not given)")
    parser.add_argument("--org", metavar="ORG", help="register the App for this organisation instead of your account")
    parser.add_argument("--env-file", metavar="PATH", default=".env", help="the env file to write [.env]")
    parser.add_argument("--key-file", metavar="PATH",
                        help=f"where the private key goes [{KEY_FILE} beside the env file]")
    parser.add_argument("--force", action="store_true", help="replace an existing env file and key file")
    parser.add_argument("--name", help="the App's name (GitHub's are unique; app.yaml's by default)")
    parser.add_argument("--manifest", metavar="PATH", help="the manifest [./app.yaml, else chantbot's own]")
    parser.add_argument("--port", type=int, default=0, help="port of the local page [a free one]")
    parser.add_argument("--open", action="store_true", help="open the local page in the default browser")


# ---------------------------------------------------------------------------------------------- pure parts
def manifest_path(given: str | None) -> Path:
    """The manifest to use: the one given, else ./app.yaml, else the copy that ships with chantbot."""
    if given:
        return Path(given)
    for candidate in (Path("app.yaml"), PACKAGE / "app.yaml", PACKAGE.parent / "app.yaml"):
        if candidate.is_file():
            return candidate
    raise RegisterError("no app.yaml here or in chantbot's package; pass --manifest PATH")


def load_manifest(path: Path) -> dict[str, Any]:
    """The manifest fields of an app.yaml (GitHub's names); raises RegisterError."""
    try:
        text = path.read_text(encoding="utf-8")[:MAX_MANIFEST + 1]
    except (OSError, UnicodeDecodeError) as exc:
        raise RegisterError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(text) > MAX_MANIFEST:
        raise RegisterError(f"{path} is larger than {MAX_MANIFEST} bytes")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RegisterError(f"{path} is not valid YAML: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise RegisterError(f"{path} must be a mapping with at least a name")
    return data


def build_manifest(base: dict[str, Any], *, webhook_url: str, redirect_url: str,
                   name: str | None = None) -> dict[str, Any]:
    """app.yaml's fields with the webhook URL and the redirect back to the local page filled in."""
    manifest = dict(base)
    manifest["hook_attributes"] = {**(base.get("hook_attributes") or {}), "url": webhook_url}
    manifest["redirect_url"] = redirect_url
    if name:
        manifest["name"] = name
    return manifest


def new_app_url(github_url: str, org: str | None, state: str) -> str:
    """GitHub's "new App from a manifest" form for an account or an organisation."""
    path = f"/organizations/{org}/settings/apps/new" if org else "/settings/apps/new"
    return f"{github_url.rstrip('/')}{path}?{urlencode({'state': state})}"


def checked_webhook_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or len(url) > 2000 or any(c.isspace() for c in url):
        raise RegisterError(f"the webhook URL must be an http(s) URL such as https://chantbot.example.com/webhook, "
                            f"got {url[:100]!r}")
    return url


def checked_org(org: str | None) -> str | None:
    if org is not None and not _ORG.fullmatch(org):
        raise RegisterError(f"--org must be a GitHub organisation's login, got {org[:60]!r}")
    return org


def _env_value(value: str) -> str:
    if value and not any(c.isspace() or c in "\"'#" for c in value):
        return value
    return f"'{value}'" if "'" not in value else f'"{value}"'


def env_file_text(app: dict[str, Any], key_file: Path, settings: Settings) -> str:
    """The env file `serve --env-file` reads: the App's id, key path and webhook secret (and GitHub's URLs if not
    github.com's)."""
    lines = [f"# The GitHub App {app.get('name')} ({app.get('html_url')}), written by `python -m bot register`.",
             f"GITHUB_APP_ID={int(app['id'])}",
             f"GITHUB_PRIVATE_KEY_PATH={_env_value(str(key_file.resolve()))}"]
    secret = app.get("webhook_secret")
    if isinstance(secret, str) and _SECRET.fullmatch(secret):
        lines.append(f"GITHUB_WEBHOOK_SECRET={secret}")
    else:
        lines.append("# GitHub sent no usable webhook secret: set one on the App's settings page and here.")
        lines.append("# GITHUB_WEBHOOK_SECRET=")
    if settings.github_url != GITHUB_WEB_URL:
        lines.append(f"GITHUB_URL={_env_value(settings.github_url)}")
    if settings.github_api_url != GITHUB_API_URL:
        lines.append(f"GITHUB_API_URL={_env_value(settings.github_api_url)}")
    return "\n".join(lines) + "\n"


def render(template: str, **values: Any) -> str:
    """A page from `bot/templates/`, every value HTML-escaped."""
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    return string.Template(text).substitute({k: html.escape(str(v), quote=True) for k, v in values.items()})


# ---------------------------------------------------------------------------------------------- files
@dataclass(frozen=True)
class Files:
    """Where the credentials go."""

    env_file: Path
    key_file: Path

    def check_free(self, *, force: bool) -> None:
        """Refuse, before anything is registered, to replace a file without --force."""
        for path in (self.env_file, self.key_file):
            if path.is_dir():
                raise RegisterError(f"{path} is a directory")
            if path.exists() and not force:
                raise RegisterError(f"{path} exists; pass --force to replace it (or choose another with "
                                    f"{'--env-file' if path == self.env_file else '--key-file'})")
            if not path.parent.is_dir():
                raise RegisterError(f"the folder {path.parent} does not exist")

    def write(self, app: dict[str, Any], settings: Settings, *, force: bool) -> None:
        _write_private(self.key_file, str(app["pem"]).strip() + "\n", force=force)
        _write_private(self.env_file, env_file_text(app, self.key_file, settings), force=force)


def _write_private(path: Path, text: str, *, force: bool) -> None:
    """Write a file only its owner can read; without `force`, never one that exists."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a replaced file keeps its old mode otherwise
        os.write(fd, text.encode())
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------- the flow
class Registration:
    """The local page and the callback of one manifest flow; `wait()` gives the App GitHub created."""

    def __init__(self, *, manifest: dict[str, Any], webhook_url: str, settings: Settings, files: Files,
                 org: str | None = None, force: bool = False, name: str | None = None) -> None:
        self.base, self.webhook_url, self.settings, self.files = manifest, webhook_url, settings, files
        self.org, self.force, self.name = org, force, name
        self.state = secrets.token_urlsafe(24)
        self.url = ""
        self._done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._runner: web.AppRunner | None = None

    def manifest(self) -> dict[str, Any]:
        return build_manifest(self.base, webhook_url=self.webhook_url, redirect_url=f"{self.url}callback",
                              name=self.name)

    async def start(self, port: int = 0) -> str:
        """Serve the page on 127.0.0.1; its URL."""
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/callback", self._callback)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, "127.0.0.1", port).start()
        except OSError as exc:
            await self.stop()
            raise RegisterError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait(self) -> dict[str, Any]:
        """The App, once GitHub has sent the browser back and its credentials are written."""
        return await asyncio.shield(self._done)

    async def _page(self, request: web.Request) -> web.Response:
        manifest = self.manifest()
        page = render("register.html", name=manifest["name"], owner=self.org or "your GitHub account",
                      github_url=self.settings.github_url, env_file=self.files.env_file,
                      webhook_url=self.webhook_url, action=new_app_url(self.settings.github_url, self.org, self.state),
                      manifest=json.dumps(manifest), manifest_pretty=json.dumps(manifest, indent=2))
        return web.Response(text=page, content_type="text/html")

    async def _callback(self, request: web.Request) -> web.Response:
        code, state = request.query.get("code", ""), request.query.get("state", "")
        if self._done.done():
            return self._failed("This registration has already finished.", status=409)
        if not secrets.compare_digest(state.encode(), self.state.encode()):
            return self._failed(f"This address was not reached from this registration's page (its state does not "
                                f"match). Start again from {self.url}", status=400)
        if not _CODE.fullmatch(code):
            return self._failed("GitHub sent no usable code.", status=400)
        try:
            app = await self._convert(code)
        except RegisterError as exc:
            self._done.set_exception(exc)
            return self._failed(str(exc), status=502)
        try:
            self.files.write(app, self.settings, force=self.force)
        except OSError as exc:
            error = RegisterError(f"GitHub created the App {app.get('html_url')} (id {app.get('id')}) but its "
                                  f"credentials could not be written ({exc.strerror or exc}): generate a private "
                                  f"key and a webhook secret on the App's settings page")
            self._done.set_exception(error)
            return self._failed(str(error), status=500)
        self._done.set_result(app)
        return web.Response(content_type="text/html", text=render(
            "registered.html", name=app.get("name", ""), html_url=app.get("html_url", ""), app_id=app["id"],
            env_file=self.files.env_file, key_file=self.files.key_file, install_url=install_url(app)))

    async def _convert(self, code: str) -> dict[str, Any]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            gh = GitHubAPI(session, "chantbot", base_url=self.settings.github_api_url)
            try:
                app = await gh.post("/app-manifests{/code}/conversions", {"code": code}, data=b"")
            except HTTPException as exc:
                raise RegisterError(f"GitHub answered {int(exc.status_code)} to the code exchange ({exc}); "
                                    f"the code is valid for one hour and once: start again") from None
            except aiohttp.ClientError as exc:
                raise RegisterError(f"cannot reach {self.settings.github_api_url} (GITHUB_API_URL): {exc}") from None
        if not (isinstance(app, dict) and isinstance(app.get("id"), int) and isinstance(app.get("pem"), str)):
            raise RegisterError("GitHub's answer to the code exchange has no App id and private key")
        return app

    def _failed(self, message: str, *, status: int) -> web.Response:
        return web.Response(text=render("register-failed.html", message=message), content_type="text/html",
                            status=status)


def install_url(app: dict[str, Any]) -> str:
    return f"{str(app.get('html_url', '')).rstrip('/')}/installations/new"


def ask_webhook_url() -> str:
    if not sys.stdin.isatty():
        raise RegisterError("pass --webhook-url URL (where GitHub sends deliveries; standard input is not a terminal)")
    try:
        return input("Webhook URL (where GitHub will send deliveries, e.g. https://chantbot.example.com/webhook): ")
    except EOFError:
        raise RegisterError("no webhook URL given") from None


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """The whole command: check, serve the page, wait for GitHub, write, say what to do next."""
    env_file = Path(args.env_file)
    files = Files(env_file, Path(args.key_file) if args.key_file else env_file.parent / KEY_FILE)
    files.check_free(force=args.force)
    org = checked_org(args.org)
    base = load_manifest(manifest_path(args.manifest))
    webhook_url = checked_webhook_url(args.webhook_url if args.webhook_url is not None else ask_webhook_url())
    registration = Registration(manifest=base, webhook_url=webhook_url, settings=settings, files=files, org=org,
                                force=args.force, name=args.name)
    url = await registration.start(args.port)
    print(f"Open {url} in a browser signed in to {settings.github_url}"
          f"{f' as an owner of {org}' if org else ''} and press the button (Ctrl-C stops).", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiting, stopping = asyncio.ensure_future(registration.wait()), asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        await registration.stop()
    if not waiting.done():
        waiting.cancel()
        print("Stopped; no App was registered.", file=sys.stderr)
        return 130
    app = waiting.result()  # raises the RegisterError of a failed exchange
    secret_written = isinstance(app.get("webhook_secret"), str) and bool(_SECRET.fullmatch(app["webhook_secret"]))
    print(f"Registered the GitHub App {app.get('name')} (id {app['id']}): {app.get('html_url')}\n"
          f"Wrote GITHUB_APP_ID, GITHUB_PRIVATE_KEY_PATH{' and GITHUB_WEBHOOK_SECRET' if secret_written else ''} "
          f"to {files.env_file}; the private key is in {files.key_file} (mode 0600).")
    if not secret_written:
        print("GitHub sent no usable webhook secret: set one on the App's settings page and put it in "
              f"GITHUB_WEBHOOK_SECRET in {files.env_file}.")
    print(f"Next:\n"
          f"  1. install the App on the repositories chantbot should look after: {install_url(app)}\n"
          f"  2. start chantbot where {webhook_url} reaches it: python -m bot serve --env-file {files.env_file}")
    return 0
