"""`python -m bot demo`: chantbot's whole flow offline, against the built-in GitHub simulator.

It starts the simulator and chantbot (web and workers) on this machine, opens realistic issues,
lets maintainers and an outsider comment commands, and prints what each person would see.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import textwrap
import time
from pathlib import Path

from aiohttp import web

from bot.runtime import Runtime
from bot.settings import Settings
from bot.simulator import GitHubSimulator, app_key_pair
from bot.writelimit import parse_write_limits

REPO = "acme/widgets"
INSTALLATION = 1
APP_ID = 1
SECRET = "demo-secret"
PEOPLE = {"maria": "maintain", "tom": "triage", "outsider": "none"}
FILES = {
    "README.md": "# widgets\n\nSmall widgets for acme.\n",
    "src/widgets/core.py": "class Widget:\n    def __init__(self, size: int) -> None:\n        self.size = size\n",
}

HISTORY = [  # closed, labelled issues the local triager learns from
    ("Crash when resizing a widget to zero", "Traceback (most recent call last): ZeroDivisionError", "bug"),
    ("Widget.grow raises TypeError with floats", "Calling grow(1.5) raises TypeError: expected int", "bug"),
    ("Export fails with UnicodeEncodeError", "Exporting a widget named 'café' fails with an exception", "bug"),
    ("Add support for widget themes", "It would be nice to support themes for widgets.", "enhancement"),
    ("Feature request: async widget loading", "Please add an async API to load widgets.", "enhancement"),
    ("Allow custom widget colours", "Would be great to allow custom colours in the config.", "enhancement"),
    ("How do I set a default size?", "How can I configure the default widget size?", "question"),
    ("Is there a way to clone a widget?", "How do I copy a widget with all its settings?", "question"),
    ("What does grow() return?", "Does grow return the new size or None?", "question"),
]

CASES = [
    ("a bug with a stack trace", "Saving a widget crashes with KeyError 'size'",
     "Steps to reproduce:\n1. `w = Widget(3)`\n2. `w.save('/tmp/w.json')`\n\nExpected: the file is written.\n"
     "Actual: it crashes:\n\n```\nTraceback (most recent call last):\n  File \"app.py\", line 4, in <module>\n"
     "    w.save('/tmp/w.json')\n  File \"widgets/core.py\", line 88, in save\n    data['size']\nKeyError: 'size'\n```\n\n"
     "widgets 2.3.1, Python 3.11 on Ubuntu 22.04.", "alice"),
    ("a vague bug", "widgets broken", "It doesn't work anymore after the update. Please fix.", "bob"),
    ("a feature request", "Support exporting widgets to YAML",
     "It would be nice to add support for exporting a Widget to YAML, next to the JSON export.\n\n"
     "Use case: our deployment tooling reads YAML only.", "carol"),
    ("a question", "How do I change the colour of a widget?",
     "I read docs/usage.md but could not find how to set a widget's colour. Is there an option?", "dave"),
    ("a duplicate", "Saving a widget crashes with KeyError 'size'",
     "Same here: saving a widget crashes with KeyError 'size' after upgrading to 2.3.1.", "erin"),
]


async def _idle(runtime: Runtime, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        depth = await runtime.store.queue_depth()
        if not depth.get("queued") and not depth.get("running"):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("chantbot did not finish within the demo's time")


def _rule(title: str) -> str:
    return f"\n{'=' * 100}\n{title}\n{'=' * 100}"


def _show(body: str) -> None:
    """A comment as GitHub shows it, with the collapsed commands section left collapsed."""
    body = re.sub(r"<details><summary>(.*?)</summary>.*?</details>", r"▸ \1 (collapsed)", body, flags=re.S)
    print(textwrap.indent(body.strip(), "    │ ", lambda line: True))


def _show_issue(sim: GitHubSimulator, number: int, *, quiet: bool) -> None:
    comments = sim.comments(REPO, number, bot_only=True)
    print(f"labels: {', '.join(sorted(sim.labels_on(REPO, number))) or '(none)'}")
    if comments and not quiet:
        print("chantbot's comment, as the reporter sees it:\n")
        _show(comments[-1]["body"])


async def run(*, quiet: bool = False, api_key: str | None = None) -> int:
    """Run the showcase; returns the process exit status."""
    private, public = app_key_pair()
    sim = GitHubSimulator(app_id=APP_ID, public_key_pem=public, app_slug="chantbot")
    sim.add_repo(REPO, files=dict(FILES), collaborators=dict(PEOPLE))
    sim.add_installation(INSTALLATION, "acme", [REPO])
    for title, body, label in HISTORY:
        sim.add_issue(REPO, title=title, body=body, user="someone", labels=[label], state="closed")
    await sim.start()
    with tempfile.TemporaryDirectory(prefix="chantbot-demo-") as tmp:
        settings = Settings(port=0, host="127.0.0.1", app_id=str(APP_ID), private_key=private,
                            webhook_secrets=(SECRET,), github_api_url=sim.base_url, anthropic_api_key=api_key,
                            database_url=f"sqlite:///{Path(tmp) / 'chantbot.db'}", concurrency=4,
                            write_limits=parse_write_limits("80/min,500/hour"))
        runtime = Runtime(settings)
        await runtime.open()
        runner = web.AppRunner(runtime.web_app(with_workers=True), shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        url = f"http://127.0.0.1:{port}/webhook"
        try:
            print(_rule("chantbot demo: the built-in GitHub simulator at " + sim.base_url))
            print(f"triager: {'Claude (' + settings.model + ')' if api_key else 'local (no ANTHROPIC_API_KEY set)'}")
            status = await sim.deliver(url, SECRET, "installation_repositories", {
                "action": "added", "installation": {"id": INSTALLATION},
                "repositories_added": [{"full_name": REPO}], "sender": {"login": "maria", "type": "User"}})
            print(f"installation event -> HTTP {status}; chantbot indexes {REPO}'s closed issues")
            await _idle(runtime)
            numbers = []
            for what, title, body, user in CASES:
                issue = sim.add_issue(REPO, title=title, body=body, user=user)
                numbers.append(issue["number"])
                status = await sim.deliver(url, SECRET, "issues", sim.issue_payload("opened", REPO, issue["number"]))
                print(_rule(f"#{issue['number']} {what}: {title!r} by {user} -> HTTP {status}"))
                await _idle(runtime)
                _show_issue(sim, issue["number"], quiet=quiet)
            await _idle(runtime)
            specs = sorted(p for p in sim.files(REPO, branch="chant-specs") if p.startswith(".chant/"))
            print(_rule("spec files on the chant-specs branch"))
            print("\n".join("  " + p for p in specs) or "  (none)")

            feature = numbers[2]
            for user, body in (("maria", "/priority high"), ("maria", "/research"), ("outsider", "/approve")):
                comment = sim.add_comment(REPO, feature, body=body, user=user)
                status = await sim.deliver(url, SECRET, "issue_comment",
                                           sim.comment_payload("created", REPO, feature, comment["id"]))
                await _idle(runtime)
                print(_rule(f"#{feature}: {user} ({PEOPLE.get(user, 'read')}) comments {body!r} -> HTTP {status}"))
                print(f"reactions on the comment: {' '.join(sim.reactions(comment['id'])) or '(none)'}")
                print(f"labels: {', '.join(sorted(sim.labels_on(REPO, feature)))}")
                replies = [c for c in sim.comments(REPO, feature, bot_only=True) if "chantbot:reply" in c["body"]]
                if replies and body != "/priority high":
                    print("chantbot's reply:\n")
                    _show(replies[-1]["body"])
            specs = sorted(p for p in sim.files(REPO, branch="chant-specs") if p.startswith(".chant/specs/"))
            print(_rule(f"{len(specs)} specs on chant-specs; GitHub requests made: {len(sim.requests)}"))
        finally:
            await runner.cleanup()
            await runtime.close()
            await sim.stop()
    return 0
