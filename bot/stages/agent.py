"""One model turn of a stage agent (anthropic SDK tool use), its usage, and what it costs."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import anthropic

from bot.modelcalls import LLMUnavailable, Usage
from bot.stages.tools import MAX_WRITE_BYTES

MAX_TOKENS = 8192
MAX_KEPT_INPUT = MAX_WRITE_BYTES  # characters of one tool input kept: more than any tool accepts


@dataclass(frozen=True)
class Turn:
    """What one model call gave: the assistant message (JSON-ready) and its usage."""

    message: dict[str, Any]
    usage: Usage


def _block(block: Any) -> dict[str, Any] | None:
    if block.type == "text":
        return {"type": "text", "text": block.text} if block.text else None
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return None  # thinking and server blocks are not part of the stored conversation


def cached(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation with a cache mark on its last block, so each turn pays full price only for what is new."""
    if not messages:
        return messages
    out = list(messages)
    last = copy.deepcopy(out[-1])
    content = last["content"]
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if content:
        content[-1] = {**content[-1], "cache_control": {"type": "ephemeral"}}
    last["content"] = content
    out[-1] = last
    return out


def stored(message: dict[str, Any]) -> dict[str, Any]:
    """The assistant message as the run keeps it: a tool input too large for any tool to accept is replaced
    by `{"cut": <characters>}`, which the tools refuse with the size (so a resumed run answers the same)."""
    content = []
    for block in message["content"]:
        if block.get("type") == "tool_use":
            raw = block.get("input")
            inputs = {k: ({"cut": len(v)} if isinstance(v, str) and len(v) > MAX_KEPT_INPUT else v)
                      for k, v in raw.items()} if isinstance(raw, dict) else {}
            block = {**block, "input": inputs}
        content.append(block)
    return {"role": "assistant", "content": content}


async def turn(client: anthropic.AsyncAnthropic, *, model: str, system: list[dict[str, Any]],
               tools: list[dict[str, Any]], messages: list[dict[str, Any]], max_tokens: int = MAX_TOKENS) -> Turn:
    """One call: system prompt and tool definitions cached, the conversation marked for caching.

    Raises LLMUnavailable when no answer came back (after the SDK's own retries).
    """
    tools = [dict(t) for t in tools]
    if tools:
        tools[-1]["cache_control"] = {"type": "ephemeral"}
    try:
        message = await client.messages.create(model=model, max_tokens=max_tokens, system=system, tools=tools,
                                               messages=cached(messages))
    except anthropic.RateLimitError as exc:
        raise LLMUnavailable("rate limited by the Claude API (429)") from exc
    except anthropic.APIStatusError as exc:
        raise LLMUnavailable(f"Claude API error {exc.status_code} ({exc.type or 'unknown'})") from exc
    except anthropic.APITimeoutError as exc:
        raise LLMUnavailable("Claude API timed out") from exc
    except anthropic.APIConnectionError as exc:
        raise LLMUnavailable("cannot reach the Claude API") from exc
    except (anthropic.AnthropicError, ValueError) as exc:
        raise LLMUnavailable("unreadable answer from the Claude API") from exc
    if not isinstance(message, anthropic.types.Message):
        raise LLMUnavailable("unreadable answer from the Claude API")
    content = [b for b in (_block(block) for block in message.content or ()) if b is not None]
    if not content:
        content = [{"type": "text", "text": "(no answer)"}]
    usage = Usage.of(message.usage)
    # The API never bills more output than max_tokens; a larger report is not a real charge.
    usage = Usage(usage.input_tokens, min(usage.output_tokens, max_tokens), usage.cache_read_input_tokens,
                  usage.cache_creation_input_tokens)
    return Turn({"role": "assistant", "content": content}, usage)
