"""POST /webhook: every bad delivery gets a clear answer and nothing is stored; good ones once."""

import hashlib
import hmac
import json
import uuid

import aiohttp
import pytest

from bot import intake
from tests.conftest import REPO, SECRET, ManualClock, eventually


def signed(body: bytes, *, secret: str = SECRET, event: str | None = "issues", delivery: str | None = "new") -> dict:
    headers = {"Content-Type": "application/json",
               "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
    if event:
        headers["X-GitHub-Event"] = event
    if delivery:
        headers["X-GitHub-Delivery"] = str(uuid.uuid4()) if delivery == "new" else delivery
    return headers


async def post(url: str, body: bytes, headers: dict) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=body, headers=headers) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def bot(start_bot):
    return await start_bot(webhook_secrets=("previous", SECRET))


@pytest.fixture
def opened(bot):
    issue = bot.sim.add_issue(REPO, title="Crash on save", body="Traceback: KeyError", user="reporter")
    return json.dumps(bot.sim.issue_payload("opened", REPO, issue["number"])).encode(), issue["number"]


async def test_bad_deliveries_are_refused_and_nothing_is_stored(bot, opened):
    body, _ = opened
    headers = signed(body)
    cases = [
        (signed(body, secret="wrong"), body, 401),
        ({k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}, body, 401),
        (signed(body, event=None), body, 400),
        (signed(body, delivery=None), body, 400),
        (signed(b"action=opened"), b"action=opened", 400),
        (signed(b"[1, 2]"), b"[1, 2]", 400),
    ]
    for hdrs, payload, expected in cases:
        status, answer = await post(bot.url, payload, hdrs)
        assert status == expected, (hdrs, answer)
        assert answer["message"]
    assert await bot.runtime.store.queue_depth() == {}
    assert not [r for r in bot.sim.requests if r["write"]]


async def test_a_wrong_secret_is_logged_once_a_minute_with_its_likely_cause(bot, opened, caplog):
    body, _ = opened
    clock = ManualClock()
    bot.server.app[intake.REFUSALS].clock = clock
    wrong = signed(body, secret="not-the-apps", delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    with caplog.at_level("WARNING", logger="bot.intake"):
        for _ in range(3):
            assert (await post(bot.url, body, wrong))[0] == 401
        clock.now += 61
        unsigned = {k: v for k, v in signed(body, delivery="<script>").items() if k != "X-Hub-Signature-256"}
        assert (await post(bot.url, body, unsigned))[0] == 401
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.intake"]
    assert warnings == [
        "refused delivery 72d3162e-cc78-11e3-81ab-4c9367dc0958 (401): its X-Hub-Signature-256 matches none of "
        "GITHUB_WEBHOOK_SECRET's secrets; the webhook secret on the App's settings page on GitHub likely differs "
        "from GITHUB_WEBHOOK_SECRET (set the same value in both)",
        "refused a delivery (401): it has no X-Hub-Signature-256 header; the App's webhook on GitHub likely has "
        "no secret (set it to GITHUB_WEBHOOK_SECRET's value), or the sender is not GitHub (2 more refused since "
        "the last warning)"]


async def test_oversized_body_is_413(bot):
    body = b'{"pad": "' + b"x" * (25 * 1024 * 1024 + 10) + b'"}'
    status, _ = await post(bot.url, body, signed(body))
    assert status == 413


async def test_ping_rotation_and_unhandled_events_answer_200(bot):
    ping = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    assert (await post(bot.url, ping, signed(ping, event="ping")))[0] == 200
    assert (await post(bot.url, ping, signed(ping, event="ping", secret="previous")))[0] == 200
    other = json.dumps({"action": "created"}).encode()
    assert (await post(bot.url, other, signed(other, event="sponsorship")))[0] == 200
    assert await bot.runtime.store.queue_depth() == {}


async def test_redelivery_is_200_and_processed_once(bot, opened):
    body, number = opened
    headers = signed(body, delivery="fixed-id")
    statuses = sorted([(await post(bot.url, body, headers))[0] for _ in range(3)])
    assert statuses == [200, 200, 202]
    await bot.triaged(number)
    assert len(bot.bot_comments(number)) == 1


async def test_a_refused_delivery_id_can_be_sent_again(bot, opened):
    body, number = opened
    assert (await post(bot.url, body, signed(body, secret="wrong", delivery="d-401")))[0] == 401
    assert (await post(bot.url, body, signed(body, delivery="d-401")))[0] == 202
    await eventually(lambda: bot.bot_comments(number))


async def test_comment_without_a_command_costs_no_github_request(bot, opened):
    _, number = opened
    comment = bot.sim.add_comment(REPO, number, body="Thanks, same here.", user="someone")
    before = len(bot.sim.requests)
    assert await bot.deliver("issue_comment", bot.sim.comment_payload("created", REPO, number, comment["id"])) == 200
    await bot.idle()
    assert len(bot.sim.requests) == before


async def test_healthz_and_metrics(bot, opened):
    async with aiohttp.ClientSession() as session:
        async with session.get(str(bot.server.make_url("/healthz"))) as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "ok"
        body, _ = opened
        await post(bot.url, body, signed(body))
        async with session.get(str(bot.server.make_url("/metrics"))) as resp:
            text = await resp.text()
    assert 'chantbot_deliveries_total{event="issues",outcome="accepted"} 1.0' in text
    assert "chantbot_queue_depth" in text
