"""What a model call uses and costs, shared by triage and the stage agents: token usage, list prices, and the
error that says no usable answer came back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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


@dataclass(frozen=True)
class Price:
    """USD per million tokens; cache reads cost a tenth of input, cache writes a quarter more."""

    input: float
    output: float

    def cost(self, usage: Usage) -> float:
        return (usage.input_tokens * self.input + usage.output_tokens * self.output
                + usage.cache_read_input_tokens * self.input * 0.1
                + usage.cache_creation_input_tokens * self.input * 1.25) / 1e6


PRICES = {"opus": Price(5.0, 25.0), "sonnet": Price(3.0, 15.0), "haiku": Price(1.0, 5.0)}


def price(model: str) -> Price:
    """The price of a model by its family (sonnet's when the name says nothing)."""
    return next((p for family, p in PRICES.items() if family in model), PRICES["sonnet"])
