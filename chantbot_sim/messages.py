"""A fake Anthropic Messages API (aiohttp): validation, schema-valid answers, scripted stage agents, caching, faults."""

from __future__ import annotations

import asyncio
import collections
import copy
import hashlib
import json
import math
import re
import time
import uuid
from typing import Any, Callable, Iterator

import jsonschema
from aiohttp import web

KNOWN_FIELDS = frozenset({
    "model", "messages", "max_tokens", "cache_control", "container", "diagnostics", "inference_geo", "metadata",
    "output_config", "service_tier", "speed", "stop_sequences", "stream", "system", "thinking", "tool_choice", "tools",
})
SAMPLING_FIELDS = frozenset({"temperature", "top_p", "top_k"})  # rejected from API version 2026-10-21 on
TTL_SECONDS = {"5m": 300, "1h": 3600}
MAX_CACHE_MARKS = 4
CACHE_LOOKBACK = 20  # blocks before a cache mark where the API also looks for a cached prefix
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
MAX_REF_DEPTH = 8

# Stage agents: requests offering these tools, their stage named by a marker line in the prompt.
AGENT_TOOLS = frozenset({"read_file", "submit"})
# A stage's name as a marker gives it: the fake knows no stage vocabulary of its own (chantbot's stages, and any
# a test invents, are scripted alike).
STAGE_NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")
STAGE_MARKER = re.compile(r"(?<![\w-])(?:chantbot|acceptance)-stage:[ \t]*([a-z][a-z0-9-]{0,39})(?![\w-])")
MARKER_SCAN = 1 << 20  # characters of each prompt text searched for the marker


def classify(text: str) -> str | None:
    """The issue class the keyword rules pick for `text`, or None when no rule matches."""
    lowered = text.lower()
    scores = {name: len(re.findall(pattern, lowered)) for name, pattern in CLASS_HINTS.items()}
    best = max(scores.values())
    return next(name for name, score in scores.items() if score == best) if best else None


class _Filler:
    """Builds a value that validates against a (simple) JSON schema, guided by the user text."""

    def __init__(self, text: str, *, root: Any = None, free_text: str | None = None) -> None:
        self.cls = classify(text)
        self.short = len(text) < SHORT_TEXT
        self.root = root  # where local "$ref"s point
        self.free_text = free_text  # given: every string without enum, format or pattern
        self.refs = 0

    def value(self, schema: Any, name: str = "") -> Any:
        if not isinstance(schema, dict):
            return self.string({}, name)
        if isinstance(schema.get("$ref"), str):
            if self.refs >= MAX_REF_DEPTH:  # a recursive schema: stop where an empty value may do
                return None
            self.refs += 1
            try:
                return self.value(self.resolve(schema["$ref"]), name)
            finally:
                self.refs -= 1
        options = schema.get("anyOf") or schema.get("oneOf")
        if isinstance(options, list) and options:
            nullable = any(isinstance(o, dict) and o.get("type") == "null" for o in options)
            return None if nullable else self.value(options[0], name)
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

    def resolve(self, ref: str) -> Any:
        node = self.root
        for part in ref.removeprefix("#/").split("/") if ref.startswith("#/") else ():
            node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else {}

    def string(self, schema: dict, name: str) -> str:
        n, kind = name.lower(), self.cls or "general"
        if self.free_text is not None and "format" not in schema and "pattern" not in schema:
            text = self.free_text
        elif "question" in n:
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


def fill(schema: dict, text: str, *, free_text: str | None = None) -> Any:
    """A value valid for `schema`; `text` (the user turns) drives the enum choices, `free_text` fills free strings."""
    return _Filler(text, root=schema, free_text=free_text).value(schema)


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


def _texts(content: Any) -> Iterator[str]:
    """The text of a message's content or a system prompt: text blocks and tool_result contents."""
    if isinstance(content, str):
        yield content
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            yield block["text"]
        elif block.get("type") == "tool_result":
            yield from _texts(block.get("content"))


def agent_tools(body: dict) -> dict[str, dict]:
    """A stage agent's tools by name (its request offers `read_file` and `submit`), or {} for any other request."""
    tools = {t.get("name"): t for t in body.get("tools") or [] if t.get("type", "custom") == "custom"}
    return tools if AGENT_TOOLS <= tools.keys() else {}


def stage_of(body: dict) -> str | None:
    """The stage a `chantbot-stage: <name>` (or `acceptance-stage: <name>`) marker names: the system prompt's
    first, else the first anywhere in the messages."""
    parts = [list(_texts(body.get("system")))] + [list(_texts(m.get("content"))) for m in body.get("messages", [])]
    for texts in (parts[0], [text for part in parts[1:] for text in part]):
        for text in texts:
            found = STAGE_MARKER.search(text[:MARKER_SCAN])
            if found:
                return found.group(1)
    return None


def step_of(body: dict) -> int:
    """The agent's step: the assistant turns already in the conversation (a retry asks for the same step)."""
    return sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")


def submit_input(schema: dict, text: str, step: dict) -> tuple[Any, list[str], list[str]]:
    """A scripted `submit` input made valid for the `schema` the client declared: a fill (free strings set to the
    step's `fill_text` when given; optional keys it got wrong left out), then the step's `input` keys laid over.
    Returns (input, what still fails validation, the step's keys the schema refused)."""
    validator = jsonschema.validators.validator_for(schema)(schema)

    def errors(value: Any) -> set[tuple[tuple, str]]:
        return {(tuple(e.absolute_path), e.message) for e in validator.iter_errors(value)}

    value = fill(schema, text, free_text=step.get("fill_text"))
    if isinstance(value, dict):
        required, wrong = set(schema.get("required") or []), {path[0] for path, _ in errors(value) if path}
        value = {key: item for key, item in value.items() if key in required or key not in wrong}
    dropped = []
    for key, given in (step.get("input") or {}).items():
        trial = {**value, key: given} if isinstance(value, dict) else None
        if trial is None or errors(trial) - errors(value):
            dropped.append(key)
        else:
            value = trial
    remaining = sorted(f"{'/'.join(map(str, path)) or '(root)'}: {message}" for path, message in errors(value))
    return value, remaining, dropped


def tool_result_text(block: dict) -> str:
    """The text a tool_result block carries."""
    return "\n".join(_texts(block.get("content")))


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
    errors = _turn_problems(messages)
    system = body.get("system")
    if system is not None and not isinstance(system, str) and not (
            isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text" and b.get("text")
                                             for b in system)):
        errors.append("system: must be a string or a list of non-empty text blocks")
    return errors or _tool_problems(body) or _cache_problems(body)


def _turn_problems(messages: list[dict]) -> list[str]:
    """Roles alternate; tool_use blocks are the assistant's, and each is answered by a tool_result in the next turn."""
    errors: list[str] = []
    asked: list[str] = []  # tool_use ids of the previous (assistant) turn
    for i, msg in enumerate(messages):
        role, content = msg["role"], msg["content"]
        if i and role == messages[i - 1]["role"]:
            errors.append(f"messages.{i}.role: roles must alternate between 'user' and 'assistant'")
        blocks = content if isinstance(content, list) else []
        answered = []
        for j, block in enumerate(blocks):
            where, kind = f"messages.{i}.content.{j}", block["type"]
            if kind == "tool_use":
                if role != "assistant":
                    errors.append(f"{where}: tool_use blocks may only appear in assistant messages")
                elif not (isinstance(block.get("id"), str) and isinstance(block.get("name"), str)
                          and isinstance(block.get("input"), dict)):
                    errors.append(f"{where}: tool_use needs a string id and name and an object input")
            elif kind == "tool_result":
                if role != "user":
                    errors.append(f"{where}: tool_result blocks may only appear in user messages")
                    continue
                answered.append(block.get("tool_use_id"))
                if block.get("tool_use_id") not in asked:
                    errors.append(f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
                                  f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                                  f"`tool_use` block in the previous message.")
                if "is_error" in block and not isinstance(block["is_error"], bool):
                    errors.append(f"{where}.is_error: Input should be a valid boolean")
                result = block.get("content", "")
                if not isinstance(result, str) and not (
                        isinstance(result, list) and all(isinstance(b, dict) and b.get("type") for b in result)):
                    errors.append(f"{where}.content: must be a string or a list of blocks")
        missing = [tool_id for tool_id in asked if tool_id not in answered]
        if missing:
            errors.append(f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                          f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` "
                          f"block in the next message.")
        asked = [b["id"] for b in blocks if b["type"] == "tool_use" and isinstance(b.get("id"), str)] \
            if role == "assistant" else []
    return errors


def _tool_problems(body: dict) -> list[str]:
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        return ["tools: must be a list of objects"]
    errors, names = [], [t.get("name") for t in tools]
    for i, tool in enumerate(tools):
        if not re.fullmatch(r"[a-zA-Z0-9_-]{1,128}", str(tool.get("name"))):
            errors.append(f"tools.{i}.name: must match ^[a-zA-Z0-9_-]{{1,128}}$")
        schema = tool.get("input_schema")
        if tool.get("type", "custom") != "custom":
            continue
        if not (isinstance(schema, dict) and schema.get("type") == "object"):
            errors.append(f"tools.{i}.input_schema: must be a JSON schema of type 'object'")
            continue
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            errors.append(f"tools.{i}.custom.input_schema: JSON schema is invalid: {exc.message}")
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
    """A local Messages API: validates like the real one, answers plausibly, counts tokens, plays scripts.

    Stage agents (requests offering `read_file` and `submit`) are answered from per-stage scripts, step k for the
    conversation's k-th assistant turn; their calls and the tool_results sent back are kept in `agent_calls` and
    `tool_results`, and `hold` keeps chosen calls unanswered until `release`.
    """

    def __init__(self, *, min_cacheable_tokens: int = 1024, clock: Callable[[], float] = time.time) -> None:
        self.min_cacheable_tokens = min_cacheable_tokens
        self.clock = clock
        self.base_url = ""
        self.requests: list[dict] = []
        self.usage: collections.Counter = collections.Counter()
        self.agent_scripts: dict[str, dict] = {}  # stage -> {"steps": [...], "loop": bool}
        self.agent_calls: list[dict] = []
        self.tool_results: list[dict] = []
        self.hold_rules: list[dict] = []
        self.holds: list[dict] = []
        self._script: list[dict] = []
        self._issued: dict[str, dict] = {}  # tool_use id -> what it answered, for the tool_result that comes back
        self._releases: dict[int, asyncio.Event] = {}  # hold id -> set to answer it
        self._settled: dict[int, asyncio.Event] = {}  # hold id -> set once it is answered or abandoned
        self._hold_news = asyncio.Event()  # set and replaced whenever a hold changes state
        self._cache: dict[str, tuple[float, int]] = {}  # prefix digest -> (expiry time, ttl)
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
        app.router.add_get("/_fake/agent", self._get_agent)
        app.router.add_post("/_fake/agent", self._post_agent)
        app.router.add_post("/_fake/agent/hold", self._post_hold)
        app.router.add_post("/_fake/agent/release", self._post_release)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 picks a free port); returns the base URL to give the SDK."""
        self._stopping.clear()
        # A client that goes away cancels its handler, so a held request learns it was abandoned.
        self._runner = web.AppRunner(self.make_app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        self._stopping.set()  # releases "hang" answers at once
        for event in self._releases.values():
            event.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- control -----------------------------------------------------------------------------
    def script(self, kind: str, *, match: str | None = None, times: int = 1, **params: Any) -> None:
        """Queue a canned answer for the next request whose user text contains `match` (times=-1: always).

        A queued answer takes precedence over a stage agent's script."""
        if kind not in KINDS:
            raise ValueError(f"unknown script kind {kind!r}; expected one of {sorted(KINDS)}")
        self._script.append({"kind": kind, "match": match, "times": times, "params": params, "used": 0})

    def agent_script(self, stage: str, steps: list[dict], *, loop: bool = False) -> None:
        """Script `stage`'s agent: step k answers the conversation's k-th assistant turn.

        A step is `{"name": tool, "input": {...}, "text"?: leading text, "fill_text"?: for submit}` (one tool_use)
        or `{"text": ...}` (an end_turn answer). Past the last step the last repeats, or with `loop` they cycle."""
        if not isinstance(stage, str) or not STAGE_NAME.fullmatch(stage):
            raise ValueError(f"a stage is named by 1 to 40 lower-case letters, digits and dashes, not {stage!r}")
        if not isinstance(steps, list) or not steps:
            raise ValueError(f"stage {stage!r}: a script needs at least one step")
        for k, step in enumerate(steps):
            problem = _step_problem(step)
            if problem:
                raise ValueError(f"stage {stage!r}, step {k}: {problem}")
        self.agent_scripts[stage] = {"steps": copy.deepcopy(steps), "loop": bool(loop)}

    def hold(self, stage: str | None, step: int | None, *, times: int = 1) -> None:
        """Keep the next `times` agent requests of `stage` at `step` unanswered until `release` (None: any;
        times=-1: every one)."""
        if stage is not None and (not isinstance(stage, str) or not STAGE_NAME.fullmatch(stage)):
            raise ValueError(f"a stage is named by 1 to 40 lower-case letters, digits and dashes, not {stage!r}")
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in (times, 0 if step is None else step)):
            raise ValueError("step and times must be integers")
        self.hold_rules.append({"stage": stage, "step": step, "times": times, "used": 0})

    async def held(self, stage: str | None, step: int | None, *, state: str = "waiting") -> dict:
        """The first hold of `stage` at `step` in `state` (waiting, answered, abandoned), once there is one."""
        while True:
            news = self._hold_news
            found = next((h for h in self.holds if h["state"] == state
                          and stage in (None, h["stage"]) and step in (None, h["step"])), None)
            if found is not None:
                return found
            await news.wait()

    async def release(self, hold_id: int | None = None) -> list[dict]:
        """Answer every waiting held request (or hold `hold_id`); returns them once each is answered or abandoned."""
        holds = [h for h in self.holds if h["state"] == "waiting" and hold_id in (None, h["id"])]
        for hold in holds:
            self._releases[hold["id"]].set()
        for hold in holds:
            await self._settled[hold["id"]].wait()
        return holds

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

    async def _get_agent(self, request: web.Request) -> web.Response:
        return web.json_response({"scripts": self.agent_scripts, "calls": self.agent_calls,
                                  "tool_results": self.tool_results, "hold_rules": self.hold_rules,
                                  "holds": self.holds})

    async def _post_agent(self, request: web.Request) -> web.Response:
        """Replace the stage scripts: {"stages": {stage: {"steps": [...], "loop": bool} | [...steps]}}."""
        data = await request.json()
        stages = data.get("stages") if isinstance(data, dict) else None
        if not isinstance(stages, dict):
            return error_response(400, "invalid_request_error", "expected {\"stages\": {stage: script}}")
        previous, self.agent_scripts = self.agent_scripts, {}
        try:
            for stage, script in stages.items():
                script = {"steps": script} if isinstance(script, list) else script
                if not isinstance(script, dict):
                    raise ValueError(f"stage {stage!r}: a script is a list of steps or {{steps, loop}}")
                self.agent_script(stage, script.get("steps"), loop=script.get("loop", False))
        except ValueError as exc:
            self.agent_scripts = previous
            return error_response(400, "invalid_request_error", str(exc))
        return web.json_response({"stages": sorted(self.agent_scripts)})

    async def _post_hold(self, request: web.Request) -> web.Response:
        """Add hold rules: {"rules": [{"stage": ..., "step": ..., "times": 1}]}."""
        data = await request.json()
        rules = data.get("rules") if isinstance(data, dict) else None
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            return error_response(400, "invalid_request_error", "expected {\"rules\": [{stage, step, times}]}")
        try:
            for rule in rules:
                self.hold(rule.get("stage"), rule.get("step"), times=rule.get("times", 1))
        except ValueError as exc:
            return error_response(400, "invalid_request_error", str(exc))
        return web.json_response({"hold_rules": self.hold_rules})

    async def _post_release(self, request: web.Request) -> web.Response:
        """Answer held requests: {} for all, {"id": N} for one; "clear_rules": true also drops the rules."""
        data = await request.json() if request.can_read_body else {}
        data = data if isinstance(data, dict) else {}
        released = await self.release(data.get("id"))
        if data.get("clear_rules"):
            self.hold_rules = []
        return web.json_response({"released": released})

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
        self._record_tool_results(body)
        item = self._next_script(body)
        tools = agent_tools(body) if item is None else {}
        if tools:
            return await self._agent(request, body, tools, record)
        item = item or {"kind": "answer", "params": {}}
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
        return [{"type": "tool_use", "id": _tool_use_id(), "name": name, "input": tool_input}], "tool_use"

    # -- stage agents ------------------------------------------------------------------------
    async def _agent(self, request: web.Request, body: dict, tools: dict[str, dict], record: dict) -> web.Response:
        """Answer a stage agent's turn from its stage's script (held first when a hold rule matches)."""
        stage, step = stage_of(body), step_of(body)
        call: dict[str, Any] = {"stage": stage, "step": step, "scripted": stage in self.agent_scripts, "tool": None,
                                "tool_use_id": None, "submit_errors": [], "dropped": [], "held": None,
                                "abandoned": False}
        self.agent_calls.append(call)
        record["agent"] = {"stage": stage, "step": step}
        content, stop_reason = self._agent_answer(body, tools, call)
        hold = self._take_hold(stage, step)
        if hold is not None:
            call["held"] = hold["id"]
            try:
                await self._releases[hold["id"]].wait()
            except asyncio.CancelledError:  # the client went away while held
                self._settle(hold, call, record, abandoned=True)
                raise
            transport = request.transport
            if transport is None or transport.is_closing():
                self._settle(hold, call, record, abandoned=True)
                return web.Response(status=499, text="client closed request")
            self._settle(hold, call, record, abandoned=False)
        for block in content:
            if block["type"] == "tool_use":
                block["id"] = call["tool_use_id"] = _tool_use_id()
                self._issued[block["id"]] = {"stage": stage, "step": step, "tool": block["name"],
                                             "input": block["input"], "answered": False}
        record.update(status=200, answer="tool_use" if stop_reason == "tool_use" else "text")
        message = self._message(body, content, stop_reason, clip=False)  # a scripted step is served whole
        return web.json_response(message, headers={"request-id": _request_id()})

    def _agent_answer(self, body: dict, tools: dict[str, dict], call: dict) -> tuple[list[dict], str]:
        """The content (tool_use ids still to issue) and stop reason for the call's step of its stage's script."""
        script = self.agent_scripts.get(call["stage"] or "")
        if script is None:  # no script: end the run at once
            step: dict = {"name": "submit", "input": {}}
        else:
            steps, k = script["steps"], call["step"]
            step = steps[k % len(steps)] if script["loop"] else steps[min(k, len(steps) - 1)]
        if "name" not in step:
            return [{"type": "text", "text": step["text"]}], "end_turn"
        name, tool_input = step["name"], copy.deepcopy(step.get("input") or {})
        if name == "submit":
            tool_input, call["submit_errors"], call["dropped"] = submit_input(
                tools["submit"]["input_schema"], user_text(body), step)
        call["tool"] = name
        lead = [{"type": "text", "text": step["text"]}] if step.get("text") else []
        return lead + [{"type": "tool_use", "id": "", "name": name, "input": tool_input}], "tool_use"

    def _take_hold(self, stage: str | None, step: int) -> dict | None:
        """A new waiting hold when a rule with uses left matches this request, else None."""
        rule = next((r for r in self.hold_rules if r["stage"] in (None, stage) and r["step"] in (None, step)
                     and (r["times"] == -1 or r["used"] < r["times"])), None)
        if rule is None:
            return None
        rule["used"] += 1
        hold = {"id": len(self.holds) + 1, "stage": stage, "step": step, "state": "waiting"}
        self.holds.append(hold)
        self._releases[hold["id"]] = asyncio.Event()
        self._settled[hold["id"]] = asyncio.Event()
        if self._stopping.is_set():
            self._releases[hold["id"]].set()
        self._announce()
        return hold

    def _settle(self, hold: dict, call: dict, record: dict, *, abandoned: bool) -> None:
        hold["state"] = "abandoned" if abandoned else "answered"
        call["abandoned"] = abandoned
        if abandoned:
            record.update(status=499, answer="abandoned")
        self._settled[hold["id"]].set()
        self._announce()

    def _announce(self) -> None:
        self._hold_news.set()
        self._hold_news = asyncio.Event()

    def _record_tool_results(self, body: dict) -> None:
        """Keep each tool_result sent back for a tool_use this fake issued, once."""
        for msg in body["messages"]:
            if msg["role"] != "user" or not isinstance(msg["content"], list):
                continue
            for block in msg["content"]:
                issued = self._issued.get(block.get("tool_use_id")) if block["type"] == "tool_result" else None
                if issued is None or issued["answered"]:
                    continue
                issued["answered"] = True
                self.tool_results.append({"stage": issued["stage"], "step": issued["step"], "tool": issued["tool"],
                                          "input": issued["input"], "is_error": block.get("is_error", False),
                                          "text": tool_result_text(block), "tool_use_id": block["tool_use_id"]})

    # -- answers and accounting --------------------------------------------------------------
    def _message(self, body: dict, content: list[dict], stop_reason: str, *, clip: bool = True) -> dict:
        usage = self._account(body)
        output_tokens = _tokens(json.dumps(content)) if content else 0
        if clip and output_tokens > body["max_tokens"]:  # out of room: the tool input is cut off
            output_tokens, stop_reason = body["max_tokens"], "max_tokens"
            content = [{**b, "input": {}} if b["type"] == "tool_use" else b for b in content]
        usage["output_tokens"] = output_tokens
        self.usage.update(usage)
        return {"id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant",
                "model": body["model"], "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                "usage": usage}

    def _account(self, body: dict) -> dict[str, int]:
        """Input usage: the longest cached prefix ending near a cache mark is read, the rest up to the last mark
        is written to the cache, what follows it is plain input."""
        blocks = prompt_blocks(body)
        sizes = [_tokens(text) for text, _ in blocks]
        marks = {i: cc for i, (_, cc) in enumerate(blocks) if cc is not None}
        top = body.get("cache_control")
        if top is not None and blocks:
            marks.setdefault(len(blocks) - 1, top)
        usage = {"input_tokens": sum(sizes), "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        if not marks:
            return usage
        prefix, keys, running = [], [], 0
        digest = hashlib.sha256(body["model"].encode())
        for (text, _), size in zip(blocks, sizes):
            digest.update(text.encode() + b"\0")
            running += size
            prefix.append(running)
            keys.append(digest.hexdigest())
        now = self.clock()
        looked_at = {p for m in marks for p in range(max(0, m - CACHE_LOOKBACK), m + 1)}
        hits = [p for p in looked_at if self._cache.get(keys[p], (0.0, 0))[0] > now]
        hit = max(hits, default=-1)
        written = [m for m in marks if prefix[m] >= self.min_cacheable_tokens]
        if hit >= 0:
            self._cache[keys[hit]] = (now + self._cache[keys[hit]][1], self._cache[keys[hit]][1])  # a hit refreshes
        for m in written:
            ttl = TTL_SECONDS[(marks[m] or {}).get("ttl", "5m")]
            self._cache[keys[m]] = (max(now + ttl, self._cache.get(keys[m], (0.0, 0))[0]), ttl)
        read = prefix[hit] if hit >= 0 else 0
        cached = max([prefix[m] for m in written] + [read])
        usage["cache_read_input_tokens"] = read
        usage["cache_creation_input_tokens"] = cached - read
        usage["input_tokens"] -= cached
        return usage

    async def _count_tokens(self, request: web.Request) -> web.Response:
        body, failure = await self._read(request, count_only=True)
        if failure is not None:
            return failure
        return web.json_response({"input_tokens": sum(_tokens(text) for text, _ in prompt_blocks(body))})


def _tool_use_id() -> str:
    return "toolu_" + uuid.uuid4().hex[:24]


def _step_problem(step: Any) -> str | None:
    """Why a scripted agent step is unusable, or None."""
    if not isinstance(step, dict):
        return "a step is an object"
    if "name" not in step:
        return None if isinstance(step.get("text"), str) else "a step needs a tool 'name' or a 'text'"
    if not isinstance(step["name"], str) or not re.fullmatch(r"[a-zA-Z0-9_-]{1,128}", step["name"]):
        return "'name' must be a tool name"
    if not isinstance(step.get("input", {}), dict):
        return "'input' must be an object"
    if not all(isinstance(step.get(key, ""), str) for key in ("text", "fill_text")):
        return "'text' and 'fill_text' must be strings"
    return None
