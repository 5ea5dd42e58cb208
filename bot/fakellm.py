"""A fake Anthropic Messages API (aiohttp): validation, schema-valid tool answers, cache accounting, faults."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import math
import re
import time
import uuid
from typing import Any, Callable

from aiohttp import web

KNOWN_FIELDS = frozenset({
    "model", "messages", "max_tokens", "cache_control", "container", "diagnostics", "inference_geo", "metadata",
    "output_config", "service_tier", "speed", "stop_sequences", "stream", "system", "thinking", "tool_choice", "tools",
})
SAMPLING_FIELDS = frozenset({"temperature", "top_p", "top_k"})  # rejected from API version 2026-10-21 on
TTL_SECONDS = {"5m": 300, "1h": 3600}
MAX_CACHE_MARKS = 4
FAULTS = {  # kind -> (status, error type, message)
    "rate_limit": (429, "rate_limit_error", "Number of request tokens has exceeded your rate limit."),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "server_error": (500, "api_error", "Internal server error"),
}
KINDS = frozenset(FAULTS) | {"hang", "malformed", "invalid_tool_input", "refusal", "tool_input"}

# Issue classes and the words that point to them; ties go to the earlier class.
CLASS_HINTS = {
    "bug": r"crash|error|exception|traceback|\bfail(?:s|ed|ing|ure)?\b",
    "feature": r"would be nice|feature|support for|\badd\b|please add",
    "question": r"how do i|how to|\?",
    "documentation": r"\bdocs?\b|documentation|typo|readme",
}
FOLLOW_UP = {"bug": "needs-reproduction", "feature": "ready-for-research", "question": "needs-info",
             "documentation": "ready-for-research"}
NEUTRAL = ("medium", "degraded", "partial")  # preferred over the first value of an ordinal enum
SHORT_TEXT = 800  # characters of user text below which the issue counts as thin


def classify(text: str) -> str | None:
    """The issue class the keyword rules pick for `text`, or None when no rule matches."""
    lowered = text.lower()
    scores = {name: len(re.findall(pattern, lowered)) for name, pattern in CLASS_HINTS.items()}
    best = max(scores.values())
    return next(name for name, score in scores.items() if score == best) if best else None


class _Filler:
    """Builds a value that validates against a (simple) JSON schema, guided by the user text."""

    def __init__(self, text: str) -> None:
        self.cls = classify(text)
        self.short = len(text) < SHORT_TEXT

    def value(self, schema: Any, name: str = "") -> Any:
        if not isinstance(schema, dict):
            return self.string({}, name)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.choose(schema["enum"])
        kind = schema.get("type")
        if isinstance(kind, list):
            if "null" in kind:
                return None
            kind = kind[0]
        kind = kind or ("object" if "properties" in schema else "string")
        return {"object": self.object, "array": self.array, "integer": self.integer, "number": self.number,
                "boolean": lambda s, n: False, "null": lambda s, n: None}.get(kind, self.string)(schema, name)

    def choose(self, values: list) -> Any:
        for wanted in (self.cls, FOLLOW_UP.get(self.cls or ""), *NEUTRAL):
            if wanted in values:
                return wanted
        return values[0]

    def object(self, schema: dict, name: str) -> dict:
        return {key: self.value(sub, key) for key, sub in schema.get("properties", {}).items()}

    def array(self, schema: dict, name: str) -> list:
        thin_only = re.search(r"question|missing", name.lower())
        count = 1 if self.short or not thin_only else 0
        count = min(max(count, schema.get("minItems", 0)), schema.get("maxItems", count))
        return [self.value(schema.get("items", {}), name) for _ in range(count)]

    def string(self, schema: dict, name: str) -> str:
        n, kind = name.lower(), self.cls or "general"
        if "question" in n:
            text = "Which version are you using, and what are the exact steps to reproduce this?"
        elif "missing" in n:
            text = "steps to reproduce"
        elif "summary" in n or "title" in n:
            text = f"The reporter describes what looks like a {kind} report."
        elif "rationale" in n or "reason" in n:
            text = f"The wording of the report points to {kind}."
        else:
            text = "See the issue description for details."
        text = text.ljust(schema.get("minLength", 0), ".")
        return text[:schema["maxLength"]] if "maxLength" in schema else text

    @staticmethod
    def integer(schema: dict, name: str) -> int:
        return int(schema.get("minimum", 1))

    @staticmethod
    def number(schema: dict, name: str) -> float:
        return float(schema.get("minimum", 0.5))


def fill(schema: dict, text: str) -> Any:
    """A value valid for `schema`; `text` (the user turns) drives the enum choices."""
    return _Filler(text).value(schema)


def violate(schema: dict, text: str) -> dict:
    """A tool input that does NOT validate against `schema`: a broken first field, a missing one, an extra one."""
    bad = fill(schema, text)
    bad = bad if isinstance(bad, dict) else {}
    props = schema.get("properties", {})
    if props:
        key, sub = next(iter(props.items()))
        bad[key] = "not-in-enum" if "enum" in sub else 12345 if sub.get("type") != "integer" else "twelve"
    for key in schema.get("required", [])[1:2]:
        bad.pop(key, None)
    bad["unexpected_field"] = True
    return bad


def _tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _plain(block: dict) -> str:
    return json.dumps({k: v for k, v in block.items() if k != "cache_control"}, sort_keys=True)


def prompt_blocks(body: dict) -> list[tuple[str, dict | None]]:
    """The prompt in cache-prefix order (tools, system, messages): (text, cache_control) per block."""
    out: list[tuple[str, dict | None]] = [(_plain(t), t.get("cache_control")) for t in body.get("tools") or []]
    system = body.get("system")
    if isinstance(system, str):
        out.append((system, None))
    for block in system if isinstance(system, list) else []:
        out.append((block.get("text", ""), block.get("cache_control")))
    for msg in body.get("messages") or []:
        content = msg.get("content")
        if isinstance(content, str):
            out.append((msg["role"] + ":" + content, None))
        for block in content if isinstance(content, list) else []:
            text = block.get("text") if block.get("type") == "text" else _plain(block)
            out.append((msg["role"] + ":" + str(text), block.get("cache_control")))
    return out


def user_text(body: dict) -> str:
    """Every user turn's text: what the keyword rules and script matches read."""
    parts = []
    for msg in body.get("messages") or []:
        if msg.get("role") != "user":
            continue
        content = msg.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        parts += [str(b.get("text", "")) for b in blocks if b.get("type") == "text"]
    return "\n".join(parts)


def problems(body: Any, *, count_only: bool = False) -> list[str]:
    """What the real API would answer 400 for (a subset, the parts chantbot can get wrong)."""
    if not isinstance(body, dict):
        return ["request body must be a JSON object"]
    errors = []
    for key in body:
        if key in SAMPLING_FIELDS:
            errors.append(f"{key}: is not supported with anthropic-version 2026-10-21 and later")
        elif key not in KNOWN_FIELDS:
            errors.append(f"{key}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str) or not body["model"]:
        errors.append("model: Field required")
    max_tokens = body.get("max_tokens")
    if not count_only and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        errors.append("max_tokens: must be an integer >= 1")
    if body.get("stream"):
        errors.append("stream: streaming is not offered by this server")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return errors + ["messages: at least one message is required"]
    for i, msg in enumerate(messages):
        content = msg.get("content") if isinstance(msg, dict) else None
        if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
            errors.append(f"messages.{i}.role: must be 'user' or 'assistant'")
        elif not content or not isinstance(content, (str, list)) or \
                (isinstance(content, list) and not all(isinstance(b, dict) and b.get("type") for b in content)):
            errors.append(f"messages.{i}.content: must be a non-empty string or list of blocks")
    if errors:
        return errors
    system = body.get("system")
    if system is not None and not isinstance(system, str) and not (
            isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text" and b.get("text")
                                             for b in system)):
        errors.append("system: must be a string or a list of non-empty text blocks")
    return errors or _tool_problems(body) or _cache_problems(body)


def _tool_problems(body: dict) -> list[str]:
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        return ["tools: must be a list of objects"]
    errors, names = [], [t.get("name") for t in tools]
    for i, tool in enumerate(tools):
        if not re.fullmatch(r"[a-zA-Z0-9_-]{1,128}", str(tool.get("name"))):
            errors.append(f"tools.{i}.name: must match ^[a-zA-Z0-9_-]{{1,128}}$")
        schema = tool.get("input_schema")
        if tool.get("type", "custom") == "custom" and not (isinstance(schema, dict) and schema.get("type") == "object"):
            errors.append(f"tools.{i}.input_schema: must be a JSON schema of type 'object'")
    choice = body.get("tool_choice")
    if choice is not None:
        kind = choice.get("type") if isinstance(choice, dict) else None
        if kind not in ("auto", "any", "none", "tool"):
            errors.append("tool_choice.type: must be auto, any, none or tool")
        elif kind == "tool" and choice.get("name") not in names:
            errors.append(f"tool_choice.name: no tool named {choice.get('name')!r}")
        elif kind == "any" and not tools:
            errors.append("tool_choice: may only be specified while providing tools")
    return errors


def _cache_problems(body: dict) -> list[str]:
    marks = [cc for _, cc in prompt_blocks(body) if cc is not None]
    marks += [body["cache_control"]] if body.get("cache_control") is not None else []
    errors = [f"cache_control: must be {{type: ephemeral, ttl?: 5m|1h}}, got {cc!r}" for cc in marks
              if not isinstance(cc, dict) or cc.get("type") != "ephemeral" or cc.get("ttl", "5m") not in TTL_SECONDS]
    if len(marks) > MAX_CACHE_MARKS:
        errors.append(f"A maximum of {MAX_CACHE_MARKS} blocks with cache_control may be provided. Found {len(marks)}.")
    return errors


def _request_id() -> str:
    return "req_" + uuid.uuid4().hex[:24]


def error_response(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """The API's error envelope with a `request-id` header."""
    rid = _request_id()
    return web.json_response({"type": "error", "error": {"type": kind, "message": message}, "request_id": rid},
                             status=status, headers={"request-id": rid, **(headers or {})})


class FakeMessagesAPI:
    """A local Messages API: validates like the real one, answers plausibly, counts tokens, plays a script."""

    def __init__(self, *, min_cacheable_tokens: int = 1024, clock: Callable[[], float] = time.time) -> None:
        self.min_cacheable_tokens = min_cacheable_tokens
        self.clock = clock
        self.base_url = ""
        self.requests: list[dict] = []
        self.usage: collections.Counter = collections.Counter()
        self._script: list[dict] = []
        self._cache: dict[str, float] = {}  # prefix digest -> expiry time
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    # -- wiring ------------------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_get("/_fake/requests", self._get_requests)
        app.router.add_get("/_fake/usage", self._get_usage)
        app.router.add_post("/_fake/script", self._post_script)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 picks a free port); returns the base URL to give the SDK."""
        self._stopping.clear()
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        self._stopping.set()  # releases "hang" answers at once
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- control -----------------------------------------------------------------------------
    def script(self, kind: str, *, match: str | None = None, times: int = 1, **params: Any) -> None:
        """Queue a canned answer for the next request whose user text contains `match` (times=-1: always)."""
        if kind not in KINDS:
            raise ValueError(f"unknown script kind {kind!r}; expected one of {sorted(KINDS)}")
        self._script.append({"kind": kind, "match": match, "times": times, "params": params, "used": 0})

    def cached_share(self) -> float:
        """Share of all input tokens that were read from the prompt cache."""
        u = self.usage
        total = u["input_tokens"] + u["cache_read_input_tokens"] + u["cache_creation_input_tokens"]
        return u["cache_read_input_tokens"] / total if total else 0.0

    def _next_script(self, body: dict) -> dict | None:
        text = user_text(body).lower()
        for item in self._script:
            if item["times"] != -1 and item["used"] >= item["times"]:
                continue
            if item["match"] and item["match"].lower() not in text:
                continue
            item["used"] += 1
            return item
        return None

    async def _get_requests(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": self.requests})

    async def _get_usage(self, request: web.Request) -> web.Response:
        return web.json_response({**self.usage, "cached_share": round(self.cached_share(), 4)})

    async def _post_script(self, request: web.Request) -> web.Response:
        data = await request.json()
        items = data if isinstance(data, list) else [data]
        try:
            for item in items:
                item = dict(item)
                self.script(item.pop("kind", ""), match=item.pop("match", None), times=item.pop("times", 1), **item)
        except (ValueError, TypeError, AttributeError) as exc:
            return error_response(400, "invalid_request_error", str(exc))
        return web.json_response({"queued": len(items)})

    # -- the API -----------------------------------------------------------------------------
    async def _read(self, request: web.Request, *, count_only: bool) -> tuple[dict | None, web.Response | None]:
        """The validated body, or the error answer."""
        auth = request.headers.get("authorization", "")
        if not (auth.lower().startswith("bearer ") and auth[7:].strip()) and not request.headers.get("x-api-key"):
            return None, error_response(401, "authentication_error", "x-api-key or authorization header is required")
        if not request.headers.get("anthropic-version"):
            return None, error_response(400, "invalid_request_error", "anthropic-version: header is required")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return None, error_response(400, "invalid_request_error", "request body is not valid JSON")
        errors = problems(body, count_only=count_only)
        if errors:
            return body, error_response(400, "invalid_request_error", "; ".join(errors))
        return body, None

    async def _messages(self, request: web.Request) -> web.Response:
        self.usage["requests"] += 1
        headers = {k.lower(): ("***" if k.lower() in ("authorization", "x-api-key") else v)
                   for k, v in request.headers.items()}
        record: dict[str, Any] = {"body": None, "headers": headers, "status": None, "answer": None}
        self.requests.append(record)
        body, failure = await self._read(request, count_only=False)
        record["body"] = body
        if failure is not None:
            record.update(status=failure.status, answer="rejected")
            return failure
        item = self._next_script(body) or {"kind": "answer", "params": {}}
        kind, params = item["kind"], item["params"]
        record.update(status=200, answer=kind)
        if kind in FAULTS:
            status, error_type, message = FAULTS[kind]
            record["status"] = status
            wait = params.get("retry_after", 1 if kind == "rate_limit" else None)
            extra = {} if wait is None else {"retry-after": str(math.ceil(wait)),
                                             "retry-after-ms": str(int(wait * 1000))}
            return error_response(status, error_type, message, extra)
        if kind == "malformed":
            return web.Response(text='{"id": "msg_broken", "type": "message", "content": [{"type": "te',
                                content_type="application/json", headers={"request-id": _request_id()})
        if kind == "hang":
            try:
                await asyncio.wait_for(self._stopping.wait(), float(params.get("seconds", 30)))
            except asyncio.TimeoutError:
                pass
        content, stop_reason = self._compose(body, kind, params)
        if kind == "answer":
            record["answer"] = "tool_use" if stop_reason == "tool_use" else "text"
        return web.json_response(self._message(body, content, stop_reason), headers={"request-id": _request_id()})

    def _compose(self, body: dict, kind: str, params: dict) -> tuple[list[dict], str]:
        """Content blocks and stop reason for a 200 answer."""
        if kind == "refusal":
            return [], "refusal"
        text = user_text(body)
        tools = body.get("tools") or []
        choice = body.get("tool_choice") or {}
        name = params.get("name") or (choice.get("name") if choice.get("type") == "tool"
                                      else tools[0]["name"] if choice.get("type") == "any" and tools else None)
        tool = next((t for t in tools if t.get("name") == name), None)
        if tool is None:
            return [{"type": "text", "text": f"This looks like a {classify(text) or 'general'} report."}], "end_turn"
        if kind == "tool_input":
            tool_input = params["input"]
        elif kind == "invalid_tool_input":
            tool_input = violate(tool["input_schema"], text)
        else:
            tool_input = fill(tool["input_schema"], text)
        return [{"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:24], "name": name,
                 "input": tool_input}], "tool_use"

    def _message(self, body: dict, content: list[dict], stop_reason: str) -> dict:
        usage = self._account(body)
        output_tokens = _tokens(json.dumps(content)) if content else 0
        if output_tokens > body["max_tokens"]:  # out of room: the tool input is cut off
            output_tokens, stop_reason = body["max_tokens"], "max_tokens"
            content = [{**b, "input": {}} if b["type"] == "tool_use" else b for b in content]
        usage["output_tokens"] = output_tokens
        self.usage.update(usage)
        return {"id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant",
                "model": body["model"], "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                "usage": usage}

    def _account(self, body: dict) -> dict[str, int]:
        """Input usage: the prefix up to the last cache mark is read from (or written to) the cache."""
        blocks = prompt_blocks(body)
        sizes = [_tokens(text) for text, _ in blocks]
        marks = [i for i, (_, cc) in enumerate(blocks) if cc is not None]
        top = body.get("cache_control")
        if top is not None and blocks:
            marks.append(len(blocks) - 1)
        usage = {"input_tokens": sum(sizes), "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        if not marks:
            return usage
        last = marks[-1]
        prefix = sum(sizes[:last + 1])
        if prefix < self.min_cacheable_tokens:
            return usage
        ttl = TTL_SECONDS[(blocks[last][1] or top or {}).get("ttl", "5m")]
        digest = hashlib.sha256(body["model"].encode())
        for text, _ in blocks[:last + 1]:
            digest.update(text.encode() + b"\0")
        key, now = digest.hexdigest(), self.clock()
        hit = self._cache.get(key, 0.0) > now
        self._cache[key] = now + ttl  # a hit refreshes the entry
        usage["cache_read_input_tokens" if hit else "cache_creation_input_tokens"] = prefix
        usage["input_tokens"] -= prefix
        return usage

    async def _count_tokens(self, request: web.Request) -> web.Response:
        body, failure = await self._read(request, count_only=True)
        if failure is not None:
            return failure
        return web.json_response({"input_tokens": sum(_tokens(text) for text, _ in prompt_blocks(body))})
