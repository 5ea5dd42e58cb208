"""Intake never answers 500: malformed signed bodies are 400, unverifiable ones 401, and what it accepts
the handlers can take. GitHub does not redeliver a 5xx, so a 500 loses the delivery."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import logging
import random
import uuid
from typing import Any

import aiohttp
import pytest

from tests.conftest import INSTALLATION, REPO, SECRET, eventually


def signed(body: bytes, event: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


async def post(bot, event: str, payload: Any = None, *, body: bytes | None = None) -> int:
    body = json.dumps(payload).encode() if body is None else body
    async with aiohttp.ClientSession() as session:
        async with session.post(bot.url, data=body, headers=signed(body, event)) as resp:
            await resp.read()
            return resp.status


def handled_payloads(sim) -> list[tuple[str, dict]]:
    """One payload of every event and action chantbot handles, as GitHub sends them."""
    issue = sim.add_issue(REPO, title="Crash on save", body="Traceback: KeyError 'size'", user="reporter",
                          labels=["needs-info"])
    n = issue["number"]
    command = sim.add_comment(REPO, n, body="/help", user="maint")
    answer = sim.add_comment(REPO, n, body="It happens on 2.3.1.", user="reporter")
    edited = sim.issue_payload("edited", REPO, n, changes={"body": {"from": "old"}})
    repo = sim.issue_payload("opened", REPO, n)["repository"]
    installation = {"id": INSTALLATION, "account": {"login": "acme"}}
    sender = {"login": "acme-admin", "type": "User"}
    return [
        ("issues", sim.issue_payload("opened", REPO, n)),
        ("issues", sim.issue_payload("reopened", REPO, n)),
        ("issues", edited),
        ("issues", sim.issue_payload("labeled", REPO, n, label="needs-info", sender="maint")),
        ("issues", sim.issue_payload("closed", REPO, n)),
        ("issue_comment", sim.comment_payload("created", REPO, n, command["id"])),
        ("issue_comment", sim.comment_payload("created", REPO, n, answer["id"])),
        ("issue_comment", sim.comment_payload("edited", REPO, n, command["id"], old_body="")),
        ("installation", {"action": "created", "installation": installation, "sender": sender,
                          "repositories": [{"id": 1, "name": "widgets", "full_name": REPO}]}),
        ("installation_repositories", {"action": "added", "installation": installation, "sender": sender,
                                       "repositories_added": [{"id": 1, "full_name": REPO}],
                                       "repositories_removed": [], "repository": repo}),
    ]


@pytest.fixture
async def bot(start_bot):
    bot = await start_bot()
    await bot.runtime.store.set_repo_meta(REPO, "indexed", "0")  # no background indexing in the way
    return bot


@pytest.mark.parametrize("event,path", [
    ("issue_comment", ("comment", "user")), ("issue_comment", ("issue", "user")),
    ("issue_comment", ("issue", "labels")), ("issue_comment", ("comment",)), ("issue_comment", ("changes", "body")),
    ("issues", ("repository",)), ("issues", ("installation",)), ("issues", ("issue",)), ("issues", ("sender",)),
    ("issues", ("label",)), ("issues", ("issue", "html_url")), ("installation_repositories", ("repositories_added",)),
])
async def test_null_where_an_object_is_expected_is_400_and_nothing_is_stored(bot, event, path):
    payloads = handled_payloads(bot.sim)
    kinds = {"issue_comment": "edited" if path[0] == "changes" else "created",
             "issues": "labeled" if path[0] == "label" else "opened"}
    payload = copy.deepcopy(next(p for e, p in payloads if e == event and p["action"] == kinds.get(event, p["action"])))
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = None
    assert await post(bot, event, payload) == 400
    assert await bot.runtime.store.queue_depth() == {}


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000,
                                  b'{"action": "opened", "issue": ' + b'{"a": ' * 200 + b"1" + b"}" * 201])
async def test_deeply_nested_json_is_400(bot, body):
    assert await post(bot, "issues", body=body) == 400
    assert await bot.runtime.store.queue_depth() == {}


async def test_signature_with_non_ascii_characters_is_401(bot):
    body = json.dumps(handled_payloads(bot.sim)[0][1]).encode()
    request = (f"POST /webhook HTTP/1.1\r\nHost: {bot.server.host}\r\nContent-Type: application/json\r\n"
               f"X-GitHub-Event: issues\r\nX-GitHub-Delivery: {uuid.uuid4()}\r\n"
               f"X-Hub-Signature-256: sha256=é{'0' * 63}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    reader, writer = await asyncio.open_connection(bot.server.host, bot.server.port)
    writer.write(request.encode("utf-8") + body)
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    assert status_line.split()[1] == b"401"


READ = {"action", "issue", "comment", "user", "labels", "repository", "installation", "sender", "number", "id",
        "login", "full_name", "body", "title", "changes", "label", "name", "html_url", "state", "author_association",
        "pull_request", "repositories", "repositories_added", "from", "type"}  # fields handlers read, mutated often
ODD_VALUES: list[Any] = [None, {}, [], "x", 0, -1, True, 1.5, {"a": {"b": {"c": None}}}, [[[]]]]


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in a JSON document."""
    found: list[tuple] = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append(prefix + (key,))
            found += paths(child, prefix + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value[:3]):
            found.append(prefix + (i,))
            found += paths(child, prefix + (i,))
    return found


def mutated(payload: dict, rng: random.Random) -> dict:
    """The payload with one to three values replaced by a value of another shape, or removed."""
    payload = copy.deepcopy(payload)
    for _ in range(rng.randint(1, 3)):
        every = paths(payload)
        read = [path for path in every if path[-1] in READ]
        path = rng.choice(read if read and rng.random() < 0.6 else every)
        parent = payload
        try:
            for key in path[:-1]:
                parent = parent[key]
            if rng.random() < 0.15 and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation already replaced this path
    return payload


def jobs(bot, outcome: str) -> float:
    return bot.runtime.metrics.registry.get_sample_value(
        "chantbot_jobs_total", {"kind": "event", "outcome": outcome}) or 0.0


async def test_payload_shape_fuzz_never_answers_500_and_accepted_deliveries_never_crash_a_handler(bot, caplog):
    rng = random.Random(20261124)
    payloads = handled_payloads(bot.sim)
    statuses: dict[int, int] = {}
    accepted = 0
    with caplog.at_level(logging.WARNING, logger="bot"):
        for i in range(70):
            event, payload = payloads[i % len(payloads)]
            status = await post(bot, event, mutated(payload, rng))
            statuses[status] = statuses.get(status, 0) + 1
            accepted += status == 202
        # Every accepted job ends, or one fails: a retry would come only after seconds, so stop at the first.
        await eventually(lambda: jobs(bot, "done") + jobs(bot, "dead") >= accepted or jobs(bot, "retry"), 30)
    assert set(statuses) <= {200, 202, 400}, statuses
    assert statuses.get(400, 0) > 20 and accepted > 10  # the fuzz reached both sides of the line
    crashes = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not crashes, crashes[:3]
    assert jobs(bot, "done") == accepted and jobs(bot, "retry") == 0 and jobs(bot, "dead") == 0


async def metrics_text(bot) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.get(str(bot.server.make_url("/metrics"))) as resp:
            return await resp.text()


async def test_metrics_label_only_verified_deliveries_and_unknown_events_as_other(bot):
    body = json.dumps({"action": "created"}).encode()
    async with aiohttp.ClientSession() as session:
        for i in range(30):  # unsigned, each with its own made-up event name
            headers = {"X-GitHub-Event": f"made-up-{i}", "X-GitHub-Delivery": str(uuid.uuid4())}
            async with session.post(bot.url, data=body, headers=headers) as resp:
                assert resp.status == 401
    for i in range(3):  # signed, but events chantbot does not know
        assert await post(bot, f"sponsorship-{i}", {"action": "created"}) == 200
    text = await metrics_text(bot)
    assert "made-up" not in text and "sponsorship" not in text
    assert 'chantbot_deliveries_total{event="unverified",outcome="bad_signature"} 30.0' in text
    assert 'chantbot_deliveries_total{event="other",outcome="ignored"} 3.0' in text
