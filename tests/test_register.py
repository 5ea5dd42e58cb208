"""`python -m bot register`: the manifest from app.yaml, the files it writes, and the whole flow in a real browser."""

from __future__ import annotations

import asyncio
import dataclasses
import html
import os
import re
import signal
import socket
import stat
import sys
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
import pytest

from bot import register
from bot.settings import from_env
from chantbot_sim.github.manifest import manifest_errors
from tests.conftest import REPO, eventually

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CONTRACT_EVENTS = {"issues", "issue_comment", "pull_request", "check_suite", "check_run", "push"}
CONTRACT_PERMISSIONS = {"contents": "write", "issues": "write", "pull_requests": "write", "checks": "read",
                        "statuses": "write", "metadata": "read"}
CONTRACT_VARS = ("PORT", "HOST", "GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "GITHUB_PRIVATE_KEY_PATH",
                 "GITHUB_WEBHOOK_SECRET", "GITHUB_API_URL", "GITHUB_URL", "DATABASE_URL", "ANTHROPIC_API_KEY",
                 "ANTHROPIC_BASE_URL", "LOG_FORMAT")


def manifest(**overrides: str) -> dict:
    base = register.load_manifest(ROOT / "app.yaml")
    return register.build_manifest(base, webhook_url="https://bot.example.com/webhook",
                                   redirect_url="http://127.0.0.1:1234/callback", **overrides)


def test_app_yaml_asks_for_exactly_the_contracts_events_and_permissions_and_github_accepts_it():
    built = manifest()
    assert set(built["default_events"]) == CONTRACT_EVENTS
    assert built["default_permissions"] == CONTRACT_PERMISSIONS
    assert built["hook_attributes"] == {"url": "https://bot.example.com/webhook", "active": True}
    assert built["redirect_url"] == "http://127.0.0.1:1234/callback"
    assert manifest_errors(built) == []


def test_github_refuses_what_the_old_manifest_asked_for():
    built = manifest()
    built["default_events"] = [*built["default_events"], "installation_repositories"]
    del built["default_permissions"]["checks"]
    assert manifest_errors(built) == ["Default event check_suite needs the checks permission",
                                      "Default event check_run needs the checks permission",
                                      "Default events unsupported: installation_repositories"]


def test_new_app_form_for_an_account_an_organisation_and_enterprise_server():
    assert register.new_app_url("https://github.com", None, "s1") == "https://github.com/settings/apps/new?state=s1"
    assert (register.new_app_url("https://ghe.example.com/", "acme", "s2")
            == "https://ghe.example.com/organizations/acme/settings/apps/new?state=s2")
    settings = from_env({"GITHUB_URL": "https://ghe.example.com"}, require_app=False)
    assert (settings.github_url, settings.github_api_url) == ("https://ghe.example.com",
                                                              "https://ghe.example.com/api/v3")


def test_env_file_names_enterprise_urls_and_quotes_a_path_with_spaces(tmp_path):
    settings = from_env({"GITHUB_URL": "https://ghe.example.com"}, require_app=False)
    key = tmp_path / "my keys" / "app.pem"
    text = register.env_file_text({"id": 42, "name": "x", "html_url": "h", "webhook_secret": "abc123"}, key, settings)
    assert text.splitlines()[1:] == ["GITHUB_APP_ID=42", f"GITHUB_PRIVATE_KEY_PATH='{key}'",
                                     "GITHUB_WEBHOOK_SECRET=abc123", "GITHUB_URL=https://ghe.example.com",
                                     "GITHUB_API_URL=https://ghe.example.com/api/v3"]
    # a secret GitHub never sends (a comma would split it in two) is not written as one
    text = register.env_file_text({"id": 42, "webhook_secret": "a,b"}, key, settings)
    assert "\nGITHUB_WEBHOOK_SECRET=" not in text


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CONTRACT_VARS}
    env["PYTHONPATH"] = str(ROOT)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return {**env, **extra}


def test_an_existing_env_file_is_never_replaced_without_force(monkeypatch, capsys, tmp_path):
    from bot.__main__ import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("GITHUB_APP_ID=1\n")
    with pytest.raises(SystemExit) as exit_:
        main(["register", "--webhook-url", "https://bot.example.com/webhook"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == ["chantbot: .env exists; pass --force to replace it "
                                                            "(or choose another with --env-file)"]
    assert (tmp_path / ".env").read_text() == "GITHUB_APP_ID=1\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_chromium() -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"the register browser test needs Debian's Chromium at {CHROMIUM} (CHROMIUM= names another): "
                    f"run `make browser` (apt-get install -y chromium; .ci/run does)", pytrace=False)


async def read_until(stream: asyncio.StreamReader, pattern: str, timeout: float = 30.0) -> re.Match[str]:
    seen = []
    async def scan() -> re.Match[str]:
        while line := (await stream.readline()).decode():
            seen.append(line)
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"{pattern!r} never printed; output: {''.join(seen)}")
    return await asyncio.wait_for(scan(), timeout)


async def test_register_in_a_browser_then_serve_verifies_deliveries_with_the_new_secret(simulator, tmp_path):
    require_chromium()
    from playwright.async_api import async_playwright

    bot_port = free_port()
    webhook = f"http://127.0.0.1:{bot_port}/webhook"
    env_file = tmp_path / "chantbot.env"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "register", "--webhook-url", webhook, "--env-file", str(env_file),
        "--name", "chantbot e2e", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=clean_env(GITHUB_URL=simulator.base_url, GITHUB_API_URL=simulator.base_url))
    serve = None
    try:
        async with async_playwright() as playwright:
            printed, browser = await asyncio.gather(  # both take a moment to start
                read_until(proc.stdout, r"Open (http://127\.0\.0\.1:\d+/) "),
                playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS))
            page_url = printed[1]
            try:
                page = await browser.new_page()
                await page.goto(page_url)
                await page.click("#register")  # the form posts the manifest to the simulated GitHub
                await page.wait_for_selector("#create")
                assert await page.inner_text("h1") == "Create GitHub App for octocat"
                await page.click("#create")  # GitHub creates the App and sends the browser back with a code
                await page.wait_for_selector("#registered")
                assert await page.inner_text("#registered") == "chantbot e2e is registered"
            finally:
                await browser.close()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        out = (await proc.stdout.read()).decode()
        assert f"python -m bot serve --env-file {env_file}" in out

        (received,) = simulator.manifests.received
        assert received["manifest"]["hook_attributes"]["url"] == webhook
        assert set(received["manifest"]["default_events"]) == CONTRACT_EVENTS
        (app,) = simulator.manifests.created
        values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if not line.startswith("#"))
        key_file = Path(values["GITHUB_PRIVATE_KEY_PATH"])
        assert values["GITHUB_APP_ID"] == str(app["id"]) and values["GITHUB_WEBHOOK_SECRET"] == app["webhook_secret"]
        assert key_file.read_text().strip() == app["pem"].strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and stat.S_IMODE(env_file.stat().st_mode) == 0o600

        serve = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", "--env-file", str(env_file), cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            env=clean_env(PORT=str(bot_port), HOST="127.0.0.1", DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
                          GITHUB_WRITE_LIMITS="1000/s"))

        async def healthy() -> bool:
            try:
                async with aiohttp.ClientSession() as session:
                    async with session.get(f"http://127.0.0.1:{bot_port}/healthz") as resp:
                        return resp.status == 200
            except aiohttp.ClientError:
                assert serve.returncode is None, "serve exited"
                return False
        await eventually(healthy, timeout=30)

        issue = simulator.add_issue(REPO, title="Crash on save", body="KeyError: 'size' when saving", user="alice")
        payload = simulator.issue_payload("opened", REPO, issue["number"])
        assert await simulator.deliver(webhook, "not-the-secret", "issues", payload) == 401
        assert await simulator.deliver(webhook, app["webhook_secret"], "issues", payload) == 202
        # the worker authenticates as the new App with the written key: its bot user comments
        comments = await eventually(lambda: simulator.comments(REPO, issue["number"], bot_only=True), timeout=30)
        assert comments[0]["user"]["login"] == "chantbot-e2e[bot]"
    finally:
        for child in (proc, serve):
            if child is not None and child.returncode is None:
                child.send_signal(signal.SIGTERM)
                await asyncio.wait_for(child.wait(), 30)


async def follow_the_flow(session: aiohttp.ClientSession, page_url: str) -> tuple[str, aiohttp.ClientResponse]:
    """What the browser does, with plain form posts: the page's form to GitHub, GitHub's form back."""
    page = await (await session.get(page_url)).text()
    action = html.unescape(re.search(r'<form action="([^"]+)"', page)[1])
    manifest = html.unescape(re.search(r'name="manifest" value="([^"]*)"', page)[1])
    confirm = await (await session.post(action, data={"manifest": manifest})).text()
    create = html.unescape(re.search(r"<form method='post' action='([^']+)'", confirm)[1])
    answer = await session.post(urljoin(action, create), data={"manifest": manifest, "name": "chantbot"})
    return action, answer


async def test_an_organisations_app_and_a_redirect_that_did_not_start_here(simulator, tmp_path):
    settings = from_env({"GITHUB_URL": simulator.base_url}, require_app=False)  # the REST URL is GITHUB_URL/api/v3
    settings = dataclasses.replace(settings, github_api_url=simulator.base_url)
    files = register.Files(tmp_path / ".env", tmp_path / "app.pem")
    flow = register.Registration(manifest=register.load_manifest(ROOT / "app.yaml"), settings=settings, files=files,
                                 webhook_url="https://bot.example.com/webhook", org="acme")
    page_url = await flow.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{page_url}callback", params={"code": "abc", "state": "forged"}) as forged:
                assert forged.status == 400 and "state does not match" in await forged.text()
            action, answer = await follow_the_flow(session, page_url)
            assert action.startswith(f"{simulator.base_url}/organizations/acme/settings/apps/new?state=")
            assert answer.status == 200 and "chantbot is registered" in await answer.text()
        app = await asyncio.wait_for(flow.wait(), 5)
    finally:
        await flow.stop()
    assert (app["owner"]["login"], app["owner"]["type"]) == ("acme", "Organization")
    lines = files.env_file.read_text().splitlines()
    assert f"GITHUB_URL={simulator.base_url}" in lines and f"GITHUB_API_URL={simulator.base_url}" in lines


async def test_a_code_github_refuses_ends_the_flow_with_one_line(simulator, tmp_path):
    settings = from_env({"GITHUB_URL": simulator.base_url, "GITHUB_API_URL": simulator.base_url}, require_app=False)
    files = register.Files(tmp_path / ".env", tmp_path / "app.pem")
    flow = register.Registration(manifest=register.load_manifest(ROOT / "app.yaml"), settings=settings, files=files,
                                 webhook_url="https://bot.example.com/webhook")
    page_url = await flow.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{page_url}callback", params={"code": "expired", "state": flow.state}) as resp:
                assert resp.status == 502
        with pytest.raises(register.RegisterError, match=r"^GitHub answered 404 to the code exchange"):
            await asyncio.wait_for(flow.wait(), 5)
    finally:
        await flow.stop()
    assert not files.env_file.exists() and not files.key_file.exists()
