"""Scripted stage agents in the fake Messages API, driven through the real anthropic SDK."""

import asyncio

import aiohttp
import anthropic
import jsonschema
import pytest

from bot.assessment import tool_schema
from chantbot_sim.messages import FakeMessagesAPI, stage_of

MODEL = "claude-sonnet-5-5"
LONG_PROMPT = "You research issues for a project and report what you found. " * 120  # ~1,900 tokens


def tool(name: str, properties: dict, required: list[str]) -> dict:
    return {"name": name, "description": f"The {name} tool.",
            "input_schema": {"type": "object", "properties": properties, "required": required,
                             "additionalProperties": False}}


SUBMIT_SCHEMA = {
    "type": "object",
    "properties": {
        "outcome": {"enum": ["explained", "not_reproducible", "needs_info"]},
        "summary": {"type": "string", "minLength": 1, "maxLength": 200},
        "files": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "ticket": {"type": "string", "pattern": "^[A-Z]+-[0-9]+$"},
    },
    "required": ["outcome", "summary", "files"],
    "additionalProperties": False,
}
TOOLS = [
    tool("list_files", {"path": {"type": "string"}}, ["path"]),
    tool("read_file", {"path": {"type": "string"}, "start_line": {"type": "integer"}, "end_line": {"type": "integer"}},
         ["path"]),
    tool("search_code", {"query": {"type": "string"}, "path": {"type": "string"}}, ["query"]),
    tool("write_file", {"path": {"type": "string"}, "content": {"type": "string"}}, ["path", "content"]),
    {"name": "submit", "description": "Submit the result; ends the run.", "input_schema": SUBMIT_SCHEMA},
]
RESEARCH = [
    {"name": "read_file", "input": {"path": "src/widgets/core.py"}, "text": "Reading the core first."},
    {"name": "read_file", "input": {"path": "../secrets"}},
    {"name": "search_code", "input": {"query": "class Widget"}},
    {"name": "submit", "input": {"outcome": "explained"}, "fill_text": "Widget never saves."},
]




def opening(stage: str | None) -> list[dict]:
    marker = f"chantbot-stage: {stage}\n" if stage else ""
    return [{"role": "user", "content": [{"type": "text", "text": f"{marker}Issue #7: saving a widget crashes."}]}]


def refused(path: str) -> bool:
    return ".." in path


def answer(call) -> dict:
    """What a runner sends back for one tool_use: the refusal of a path with '..' is an error."""
    if call.name == "read_file" and refused(call.input["path"]):
        return {"type": "tool_result", "tool_use_id": call.id, "is_error": True, "content": "path refused: '..'"}
    return {"type": "tool_result", "tool_use_id": call.id, "content": [{"type": "text", "text": f"ok {call.name}"}]}


async def run_agent(client, stage: str | None, *, max_turns: int = 10, **extra) -> tuple[list, list[dict]]:
    """A minimal agent loop: one model call per turn, tool_results back, until `submit` (or a text answer)."""
    messages, replies = opening(stage), []
    for _ in range(max_turns):
        reply = await client.messages.create(model=MODEL, max_tokens=1024, tools=TOOLS, messages=messages, **extra)
        replies.append(reply)
        calls = [b for b in reply.content if b.type == "tool_use"]
        if reply.stop_reason != "tool_use" or any(c.name == "submit" for c in calls):
            return replies, messages
        messages += [reply.to_param(), {"role": "user", "content": [answer(c) for c in calls]}]
    return replies, messages


async def test_a_scripted_conversation_plays_step_by_step_and_records_tool_results(client, fake):
    fake.agent_script("research", RESEARCH)
    replies, _ = await run_agent(client, "research")
    assert [r.stop_reason for r in replies] == ["tool_use"] * 4
    uses = [b for r in replies for b in r.content if b.type == "tool_use"]
    assert [(u.name, u.input.get("path")) for u in uses] == [
        ("read_file", "src/widgets/core.py"), ("read_file", "../secrets"), ("search_code", None), ("submit", None)]
    assert replies[0].content[0].text == "Reading the core first."
    assert len({u.id for u in uses}) == 4
    assert [(c["stage"], c["step"], c["tool"]) for c in fake.agent_calls] == [
        ("research", 0, "read_file"), ("research", 1, "read_file"), ("research", 2, "search_code"),
        ("research", 3, "submit")]
    # Each tool_result is kept once although every later turn sends the whole conversation again.
    assert [(t["step"], t["tool"], t["input"], t["is_error"], t["text"]) for t in fake.tool_results] == [
        (0, "read_file", {"path": "src/widgets/core.py"}, False, "ok read_file"),
        (1, "read_file", {"path": "../secrets"}, True, "path refused: '..'"),
        (2, "search_code", {"query": "class Widget"}, False, "ok search_code"),
    ]
    assert [t["tool_use_id"] for t in fake.tool_results] == [u.id for u in uses[:3]]
    assert [r["answer"] for r in fake.requests] == ["tool_use"] * 4


async def test_a_retried_request_gets_the_same_step_and_a_new_run_starts_over(client, fake):
    fake.agent_script("research", RESEARCH)
    first = await client.messages.create(model=MODEL, max_tokens=1024, tools=TOOLS, messages=opening("research"))
    messages = opening("research") + [first.to_param(), {"role": "user", "content": [answer(first.content[1])]}]
    again = [await client.messages.create(model=MODEL, max_tokens=1024, tools=TOOLS, messages=messages)
             for _ in range(2)]
    assert [a.content[0].input for a in again] == [{"path": "../secrets"}] * 2
    assert again[0].content[0].id != again[1].content[0].id
    restart = await client.messages.create(model=MODEL, max_tokens=1024, tools=TOOLS, messages=opening("research"))
    assert restart.content[1].input == {"path": "src/widgets/core.py"}
    assert [c["step"] for c in fake.agent_calls] == [0, 1, 1, 0]
    assert len(fake.tool_results) == 1  # the retry sent the same tool_result again


async def test_submit_is_made_valid_for_the_declared_schema(client, fake):
    fake.agent_script("review", [{"name": "submit", "fill_text": "Looks right.",
                                  "input": {"outcome": "needs_info", "confidence": 7, "verdict": "approve"}}])
    replies, _ = await run_agent(client, "review")
    (call,) = replies[-1].content
    jsonschema.validate(call.input, SUBMIT_SCHEMA)
    assert call.input["outcome"] == "needs_info"  # the step's valid key laid over the fill
    assert call.input["summary"] == "Looks right." and call.input["files"] == ["Looks right."]
    assert "ticket" not in call.input  # optional, and the fill cannot match its pattern
    assert fake.agent_calls[-1]["dropped"] == ["confidence", "verdict"]  # out of range; unknown to the schema
    assert fake.agent_calls[-1]["submit_errors"] == []


async def test_submit_follows_refs_and_enums_without_fill_text(client, fake):
    schema = {"type": "object", "$defs": {"Finding": {"type": "object", "properties": {
                  "file": {"type": "string"}, "severity": {"enum": ["low", "medium", "high"]}},
                  "required": ["file", "severity"]}},
              "properties": {"findings": {"type": "array", "items": {"$ref": "#/$defs/Finding"}, "minItems": 1}},
              "required": ["findings"]}
    tools = TOOLS[:4] + [{"name": "submit", "input_schema": schema}]
    reply = await client.messages.create(model=MODEL, max_tokens=1024, tools=tools, messages=opening("review"))
    jsonschema.validate(reply.content[0].input, schema)
    assert reply.content[0].input["findings"][0]["severity"] == "medium"


async def test_past_the_last_step_it_repeats_or_with_loop_cycles(client, fake):
    fake.agent_script("implement", [{"name": "list_files", "input": {"path": ""}},
                                    {"name": "read_file", "input": {"path": "README.md"}}], loop=True)
    fake.agent_script("document", [{"name": "list_files", "input": {"path": "docs"}}])
    looped, _ = await run_agent(client, "implement", max_turns=5)
    repeated, _ = await run_agent(client, "document", max_turns=3)
    assert [r.content[0].name for r in looped] == ["list_files", "read_file"] * 2 + ["list_files"]
    assert [r.content[0].input for r in repeated] == [{"path": "docs"}] * 3


async def test_a_text_step_ends_the_turn(client, fake):
    fake.agent_script("research", [{"text": "I think I am done."}])
    replies, _ = await run_agent(client, "research")
    assert replies[-1].stop_reason == "end_turn" and replies[-1].content[0].text == "I think I am done."
    assert fake.agent_calls[-1]["tool"] is None


async def test_a_3_mib_write_is_served_whole(client, fake):
    content = "x = 1\n" * (3 * 1024 * 1024 // 6 + 1)
    fake.agent_script("implement", [{"name": "write_file", "input": {"path": "src/big.py", "content": content}},
                                    {"name": "submit"}])
    replies, _ = await run_agent(client, "implement")
    write = replies[0].content[0]
    assert replies[0].stop_reason == "tool_use"
    assert write.input == {"path": "src/big.py", "content": content} and len(content) > 3 * 1024 * 1024
    assert replies[0].usage.output_tokens > 1024  # not clipped to max_tokens
    assert fake.tool_results[0]["input"]["content"] == content


async def test_an_unscripted_stage_submits_at_once(client, fake):
    fake.agent_script("research", RESEARCH)
    for stage in ("reproduce", None):
        replies, _ = await run_agent(client, stage)
        (call,) = replies[0].content
        assert call.name == "submit"
        jsonschema.validate(call.input, SUBMIT_SCHEMA)
    assert [(c["stage"], c["scripted"]) for c in fake.agent_calls] == [("reproduce", False), (None, False)]


async def test_a_held_request_waits_for_release(client, fake):
    fake.agent_script("research", RESEARCH)
    fake.hold("research", 1)
    run = asyncio.create_task(run_agent(client, "research"))
    hold = await asyncio.wait_for(fake.held("research", 1), 10)
    assert not run.done()
    assert fake.agent_calls[-1]["held"] == hold["id"] and fake.agent_calls[-1]["tool_use_id"] is None
    assert await fake.release() == [hold] and hold["state"] == "answered"
    replies, _ = await asyncio.wait_for(run, 10)
    assert len(replies) == 4 and not fake.agent_calls[1]["abandoned"]


async def test_a_held_request_whose_client_left_is_recorded_abandoned(client, fake):
    fake.agent_script("research", RESEARCH)
    fake.hold("research", 1)
    killed = asyncio.create_task(run_agent(client, "research"))
    await asyncio.wait_for(fake.held("research", 1), 10)
    killed.cancel()
    hold = await asyncio.wait_for(fake.held("research", 1, state="abandoned"), 10)
    call = next(c for c in fake.agent_calls if c["held"] == hold["id"])
    assert call["abandoned"] and call["tool_use_id"] is None
    assert fake.requests[-1]["answer"] == "abandoned"
    replies, _ = await run_agent(client, "research")  # the restarted run: the hold was used up
    assert replies[-1].content[0].name == "submit"
    assert await fake.release() == []


async def test_cache_accounting_across_turns(client, fake):
    """Tools and system are cached; each turn reads the previous turn's prefix and writes only what is new."""
    fake.agent_script("research", RESEARCH)
    tools = TOOLS[:-1] + [{**TOOLS[-1], "cache_control": {"type": "ephemeral"}}]
    system = [{"type": "text", "text": "chantbot-stage: research\n" + LONG_PROMPT,
               "cache_control": {"type": "ephemeral"}}]
    messages, usages = opening(None), []
    for _ in range(3):
        marked = messages[:-1] + [{"role": "user", "content": [
            *messages[-1]["content"][:-1], {**messages[-1]["content"][-1], "cache_control": {"type": "ephemeral"}}]}]
        params = {"model": MODEL, "tools": tools, "system": system, "messages": marked}
        reply = await client.messages.create(max_tokens=1024, **params)
        total = (await client.messages.count_tokens(**params)).input_tokens
        u = reply.usage
        usages.append(u)
        assert u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens == total
        messages += [reply.to_param(), {"role": "user", "content": [answer(b) for b in reply.content
                                                                    if b.type == "tool_use"]}]
    first, second, third = usages
    assert first.cache_read_input_tokens == 0 and first.cache_creation_input_tokens > 1024
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert third.cache_read_input_tokens == first.cache_creation_input_tokens + second.cache_creation_input_tokens
    assert 0 < second.cache_creation_input_tokens < 200 and second.input_tokens == 0
    assert fake.usage["cache_read_input_tokens"] == sum(u.cache_read_input_tokens for u in usages)
    assert fake.usage["output_tokens"] == sum(u.output_tokens for u in usages)


async def test_without_cache_marks_nothing_is_cached(client, fake):
    replies, _ = await run_agent(client, "research")
    u = replies[0].usage
    assert u.cache_creation_input_tokens == 0 and u.cache_read_input_tokens == 0 and u.input_tokens > 0


async def test_triage_requests_are_answered_as_before(client, fake):
    fake.agent_script("research", RESEARCH)
    triage = {"name": "record_triage", "input_schema": tool_schema()}
    reply = await client.messages.create(
        model=MODEL, max_tokens=1024, tools=[triage], messages=opening("research"),
        tool_choice={"type": "tool", "name": "record_triage"})
    assert reply.content[0].name == "record_triage"
    jsonschema.validate(reply.content[0].input, tool_schema())
    reader_only = await client.messages.create(model=MODEL, max_tokens=1024, tools=TOOLS[:2],
                                               messages=opening("research"))
    assert reader_only.stop_reason == "end_turn"
    assert fake.agent_calls == []


async def test_a_queued_fault_comes_before_the_agent_script(client, fake):
    fake.agent_script("research", RESEARCH)
    fake.script("overloaded")
    with pytest.raises(anthropic.OverloadedError):
        await run_agent(client, "research")
    replies, _ = await run_agent(client, "research")
    assert len(replies) == 4


@pytest.mark.parametrize("messages, complaint", [
    ([{"role": "user", "content": "hi"}, {"role": "user", "content": "again"}], "roles must alternate"),
    ([{"role": "user", "content": "hi"},
      {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "read_file",
                                         "input": {"path": "a"}}]},
      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2", "content": "x"}]}],
     "unexpected `tool_use_id`"),
    ([{"role": "user", "content": "hi"},
      {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "read_file",
                                         "input": {"path": "a"}}]},
      {"role": "user", "content": "done?"}], "without `tool_result` blocks"),
    ([{"role": "user", "content": "hi"},
      {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "read_file",
                                         "input": {"path": "a"}}]},
      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "x",
                                    "is_error": "yes"}]}], "is_error"),
    ([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}]}],
     "unexpected `tool_use_id`"),
])
async def test_broken_conversations_get_400(client, fake, messages, complaint):
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(model=MODEL, max_tokens=1024, tools=TOOLS, messages=messages)
    assert complaint in caught.value.api_message
    assert fake.agent_calls == [] and fake.requests[-1]["status"] == 400


async def test_an_invalid_tool_schema_gets_400(client):
    bad = {"name": "submit", "input_schema": {"type": "object", "properties": {"x": {"type": "strin"}}}}
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(model=MODEL, max_tokens=1024, tools=TOOLS[:4] + [bad], messages=opening(None))
    assert "JSON schema is invalid" in caught.value.api_message


@pytest.mark.parametrize("body, stage", [
    ({"system": "chantbot-stage: implement\nrules",
      "messages": [{"role": "user", "content": "chantbot-stage: review"}]}, "implement"),
    ({"system": [{"type": "text", "text": "no marker"}],
      "messages": [{"role": "user", "content": "<!-- acceptance-stage: document -->"}]}, "document"),
    ({"messages": [{"role": "user", "content": "not-chantbot-stage: review\nchantbot-stage: Review"}]}, None),
    ({"messages": [{"role": "user", "content": "chantbot-stage: any-name-2"}]}, "any-name-2"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                                 "content": [{"type": "text", "text": "chantbot-stage:research"}]}]}]},
     "research"),
])
def test_the_stage_is_the_first_marker_system_prompt_first(body, stage):
    assert stage_of(body) == stage


@pytest.mark.parametrize("steps", [[], [{"input": {}}], [{"name": "read file"}], [{"name": "submit", "input": []}]])
def test_unusable_scripts_are_refused(steps):
    with pytest.raises(ValueError):
        FakeMessagesAPI().agent_script("research", steps)
    with pytest.raises(ValueError):
        FakeMessagesAPI().agent_script("Research!", [{"text": "hi"}])


async def test_control_routes(client, fake):
    async with aiohttp.ClientSession(base_url=fake.base_url) as http:
        async with http.post("/_fake/agent", json={"stages": {"research": RESEARCH[:1],
                                                              "implement": {"steps": RESEARCH, "loop": True}}}) as r:
            assert r.status == 200 and (await r.json())["stages"] == ["implement", "research"]
        async with http.post("/_fake/agent", json={"stages": {"research": []}}) as r:
            assert r.status == 400
        async with http.post("/_fake/agent/hold", json={"rules": [{"stage": "research", "step": "0"}]}) as r:
            assert r.status == 400
        async with http.post("/_fake/agent/hold", json={"rules": [{"stage": "research", "step": 0}]}) as r:
            assert r.status == 200
        run = asyncio.create_task(run_agent(client, "research", max_turns=2))
        await asyncio.wait_for(fake.held("research", 0), 10)
        async with http.post("/_fake/agent/release", json={"clear_rules": True}) as r:
            assert [h["state"] for h in (await r.json())["released"]] == ["answered"]
        await asyncio.wait_for(run, 10)
        async with http.get("/_fake/agent") as r:
            state = await r.json()
    assert state["scripts"]["implement"]["loop"] is True
    assert [(c["step"], c["tool"], c["held"]) for c in state["calls"]] == [(0, "read_file", 1), (1, "read_file", None)]
    assert [(t["step"], t["tool"], t["is_error"]) for t in state["tool_results"]] == [(0, "read_file", False)]
    assert state["hold_rules"] == [] and state["holds"][0]["state"] == "answered"
