"""The fake Messages API, driven through the real anthropic SDK."""

import json

import aiohttp
import anthropic
import jsonschema
import pytest

from bot.assessment import tool_schema

MODEL = "claude-haiku-5-5"
TOOL = {"name": "record_triage", "description": "Record the triage.", "input_schema": tool_schema()}
FORCED = {"type": "tool", "name": "record_triage", "disable_parallel_tool_use": True}
LONG_PROMPT = "You triage issues for a project. " * 200  # ~1,650 tokens: above the cacheable minimum




def request(text: str, **extra):
    return {"model": MODEL, "max_tokens": 1024, "messages": [{"role": "user", "content": text}], **extra}


def forced(text: str, **extra):
    return request(text, tools=[TOOL], tool_choice=FORCED, **extra)


async def test_a_request_without_a_key_is_refused(fake):
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{fake.base_url}/v1/messages", json=request("hi"),
                                headers={"anthropic-version": "2026-10-21"}) as resp:
            assert resp.status == 401
            assert resp.headers["request-id"].startswith("req_")
            assert (await resp.json())["error"]["type"] == "authentication_error"
    assert fake.requests[-1]["status"] == 401


@pytest.mark.parametrize("params, complaint", [
    (request("hi", extra_body={"temperature": 0.2}), "temperature"),
    (request("hi", extra_body={"top_k": 5}), "top_k"),
    (request("hi", extra_body={"colour": "blue"}), "colour"),
    (request("hi", max_tokens=0), "max_tokens"),
    (forced("hi", system=[{"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}}
                          for i in range(5)]), "maximum of 4"),
    ({**request("hi"), "tools": [TOOL], "tool_choice": {"type": "tool", "name": "other"}}, "no tool named"),
])
async def test_invalid_requests_get_400(client, params, complaint):
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(**params)
    assert caught.value.type == "invalid_request_error"
    assert complaint in caught.value.api_message


@pytest.mark.parametrize("text, category", [
    ("Crash on start\nTraceback (most recent call last): ValueError", "bug"),
    ("How do I change the output directory?", "question"),
    ("It would be nice to have support for YAML output", "feature"),
    ("Typo in the README install section", "documentation"),
])
async def test_forced_tool_input_follows_the_schema_and_keyword_rules(client, text, category):
    message = await client.messages.create(**forced(text))
    assert message.stop_reason == "tool_use"
    (call,) = message.content
    assert call.type == "tool_use" and call.name == "record_triage"
    jsonschema.validate(call.input, tool_schema())
    assert call.input["category"] == category
    assert call.input["duplicate_of"] is None


async def test_a_thin_issue_gets_one_clarifying_question_a_detailed_one_none(client):
    thin = await client.messages.create(**forced("It fails."))
    detailed = await client.messages.create(**forced("It fails when saving. " + "Steps and logs follow. " * 60))
    assert len(thin.content[0].input["clarifying_questions"]) == 1
    assert detailed.content[0].input["clarifying_questions"] == []


async def test_without_tools_the_answer_is_text(client, fake):
    message = await client.messages.create(**request("The app crashes with an exception"))
    assert message.stop_reason == "end_turn"
    assert "bug" in message.content[0].text
    assert fake.requests[-1]["answer"] == "text"


async def test_an_identical_cached_prefix_is_read_from_the_cache(client, fake, clock):
    cached = {"type": "text", "text": LONG_PROMPT, "cache_control": {"type": "ephemeral"}}
    params = forced("It crashes", system=[cached])
    first = await client.messages.create(**params)
    second = await client.messages.create(**{**params, "messages": [{"role": "user", "content": "Other issue"}]})
    assert first.usage.cache_creation_input_tokens > 1024 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0
    clock.now += 301  # the default TTL is five minutes
    third = await client.messages.create(**params)
    assert third.usage.cache_read_input_tokens == 0 and third.usage.cache_creation_input_tokens > 0
    assert fake.usage["cache_read_input_tokens"] == second.usage.cache_read_input_tokens
    assert 0 < fake.cached_share() < 1


async def test_a_one_hour_ttl_outlives_five_minutes(client, clock):
    params = forced("x", system=[{"type": "text", "text": LONG_PROMPT,
                                  "cache_control": {"type": "ephemeral", "ttl": "1h"}}])
    await client.messages.create(**params)
    clock.now += 3000
    assert (await client.messages.create(**params)).usage.cache_read_input_tokens > 0


async def test_a_short_prefix_is_not_cached(client):
    params = forced("x", system=[{"type": "text", "text": "Short.", "cache_control": {"type": "ephemeral"}}])
    await client.messages.create(**params)
    usage = (await client.messages.create(**params)).usage
    assert usage.cache_read_input_tokens == 0 and usage.cache_creation_input_tokens == 0


async def test_a_rate_limit_is_retried_by_the_sdk(client, fake):
    fake.script("rate_limit", retry_after=0.01)
    message = await client.with_options(max_retries=2).messages.create(**forced("It crashes"))
    assert message.stop_reason == "tool_use"
    assert [r["status"] for r in fake.requests] == [429, 200]
    assert fake.requests[-1]["headers"]["x-stainless-retry-count"] == "1"


@pytest.mark.parametrize("kind, error", [
    ("rate_limit", anthropic.RateLimitError),
    ("overloaded", anthropic.OverloadedError),
    ("server_error", anthropic.InternalServerError),
])
async def test_scripted_faults_surface_as_sdk_errors(client, fake, kind, error):
    fake.script(kind)
    with pytest.raises(error):
        await client.messages.create(**forced("x"))
    assert (await client.messages.create(**forced("x"))).stop_reason == "tool_use"  # used up


async def test_scripts_apply_only_to_matching_requests_and_can_repeat(client, fake):
    fake.script("refusal", match="SECRET", times=-1)
    assert (await client.messages.create(**forced("normal"))).stop_reason == "tool_use"
    for _ in range(2):
        message = await client.messages.create(**forced("the secret plan"))
        assert message.stop_reason == "refusal" and message.content == []


async def test_a_malformed_body_fails_to_parse(client, fake):
    fake.script("malformed")
    with pytest.raises(json.JSONDecodeError):
        await client.messages.create(**forced("x"))


async def test_invalid_tool_input_violates_the_schema(client, fake):
    fake.script("invalid_tool_input")
    message = await client.messages.create(**forced("x"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(message.content[0].input, tool_schema())


async def test_tool_input_is_returned_verbatim(client, fake):
    hostile = {"category": "security-approved", "summary": "@everyone /approve"}
    fake.script("tool_input", input=hostile)
    assert (await client.messages.create(**forced("x"))).content[0].input == hostile


async def test_unknown_script_kinds_are_refused(fake):
    with pytest.raises(ValueError):
        fake.script("meteor")


async def test_count_tokens(client):
    short = await client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    long = await client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi " * 400}],
                                              system=LONG_PROMPT)
    assert 0 < short.input_tokens < 10 < 300 < long.input_tokens


async def test_control_endpoints(client, fake):
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{fake.base_url}/_fake/script", json={"kind": "overloaded"}) as resp:
            assert resp.status == 200
        with pytest.raises(anthropic.OverloadedError):
            await client.messages.create(**forced("x"))
        await client.messages.create(**forced("x"))
        async with session.get(f"{fake.base_url}/_fake/requests") as resp:
            records = (await resp.json())["requests"]
        async with session.get(f"{fake.base_url}/_fake/usage") as resp:
            usage = await resp.json()
    assert [(r["status"], r["answer"]) for r in records] == [(529, "overloaded"), (200, "tool_use")]
    assert records[0]["body"]["tool_choice"] == FORCED
    assert records[0]["headers"]["authorization"] == "***"
    assert usage["requests"] == 2 and usage["output_tokens"] > 0
