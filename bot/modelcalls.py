"""What a model call uses and costs, shared by triage and the stage agents: token usage, list prices, and the
error that says no usable answer came back."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Usage:
    """Tokens one or more calls used, as the API reported them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
                     self.cache_read_input_tokens + other.cache_read_input_tokens,
                     self.cache_creation_input_tokens + other.cache_creation_input_tokens)

    @classmethod
    def of(cls, usage: Any) -> "Usage":
        """From the SDK's `message.usage` (any field may be missing or None)."""
        return cls(*(getattr(usage, name, None) or 0 for name in
                     ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")))


class LLMUnavailable(Exception):
    """A model call gave no usable answer (after the SDK's retries): the reason in str(), what it used in `usage`."""

    def __init__(self, reason: str, usage: Usage = Usage()) -> None:
        super().__init__(reason)
        self.usage = usage


# List prices of the Claude API (USD per million tokens), taken on PRICES_TAKEN from PRICES_SOURCE. This table is
# the only place chantbot knows a price: stage caps (`max_usd`), the daily budget and `python -m bot eval` read it.
PRICES_TAKEN = "2026-12-07"
PRICES_SOURCE = ("https://platform.claude.com/docs/en/about-claude/pricing and each model's page under "
                 "https://platform.claude.com/docs/en/models/ (Specifications, Pricing)")
LONG_PROMPT = 100_000  # Haiku 5.5 prices a call whose prompt (input, cache reads and writes) is longer at 5x


@dataclass(frozen=True)
class Price:
    """USD per million tokens of one model: input, output, prompt-cache writes (5 minutes) and cache reads."""

    input: float
    output: float
    cache_write: float
    cache_read: float
    long_prompt: "Price | None" = None  # the rates of a call whose prompt is over LONG_PROMPT tokens, if different

    def cost(self, usage: Usage) -> float:
        """What one call cost (a call's usage, not a sum of calls: the long-prompt rate is per call)."""
        prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
        rates = self.long_prompt if self.long_prompt is not None and prompt > LONG_PROMPT else self
        return (usage.input_tokens * rates.input + usage.output_tokens * rates.output
                + usage.cache_read_input_tokens * rates.cache_read
                + usage.cache_creation_input_tokens * rates.cache_write) / 1e6


_FABLE_5_1 = Price(10.0, 50.0, 12.5, 0.25)
_FABLE_5 = Price(10.0, 50.0, 12.5, 1.0)
_OPUS_4_5 = Price(5.0, 25.0, 6.25, 0.5)  # Opus 4.5 to Opus 5
_SONNET_4 = Price(3.0, 15.0, 3.75, 0.3)

# Model id -> price, for the models the Claude API serves (retired ones left out). An id with a date after it
# (`claude-sonnet-4-5-20250929`) is the same model.
PRICES: dict[str, Price] = {
    "claude-fable-5-2": Price(8.0, 40.0, 10.0, 0.2),
    "claude-fable-5-1": _FABLE_5_1, "claude-mythos-5-1": _FABLE_5_1,
    "claude-fable-5": _FABLE_5, "claude-mythos-5": _FABLE_5,
    "claude-opus-5-5": Price(4.0, 20.0, 5.0, 0.2),
    "claude-opus-5": _OPUS_4_5, "claude-opus-4-8": _OPUS_4_5, "claude-opus-4-7": _OPUS_4_5,
    "claude-opus-4-6": _OPUS_4_5, "claude-opus-4-5": _OPUS_4_5,
    "claude-sonnet-5-5": Price(2.0, 10.0, 2.5, 0.1),  # cache reads since 2026-10-07 (0.2 before)
    "claude-sonnet-5": Price(2.0, 10.0, 2.5, 0.2),
    "claude-sonnet-4-6": _SONNET_4, "claude-sonnet-4-5": _SONNET_4, "claude-sonnet-4": _SONNET_4,
    "claude-haiku-5-5": Price(0.1, 0.5, 0.125, 0.01, long_prompt=Price(0.5, 2.5, 0.625, 0.05)),
    "claude-haiku-4-5": Price(1.0, 5.0, 1.25, 0.1),
}
# What a model id the table does not know is charged: the most expensive price in it, so that caps stop a run
# too early rather than too late.
UNKNOWN = max(PRICES.values(), key=lambda p: (p.output, p.input, p.cache_write, p.cache_read))
_DATED = re.compile(r"-[0-9]{8}")
_warned: set[str] = set()
MAX_WARNED = 256  # distinct unknown ids warned about per process (a repository's config names its model)


def price(model: str) -> Price:
    """The list price of a model id (or its dated variant); an unknown id is warned about once and priced at
    the most expensive known model."""
    bounded = model[:100]
    known = PRICES.get(bounded) or PRICES.get(bounded[:-9] if _DATED.fullmatch(bounded[-9:]) else "")
    if known is not None:
        return known
    if bounded not in _warned and len(_warned) < MAX_WARNED:
        _warned.add(bounded)
        log.warning("no list price for model %r (prices of %s): charging it at the most expensive known model's "
                    "($%g/$%g per million input/output tokens); add it to PRICES in bot/modelcalls.py",
                    bounded, PRICES_TAKEN, UNKNOWN.input, UNKNOWN.output)
    return UNKNOWN
