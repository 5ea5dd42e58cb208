"""What a model call costs: one price table, dated, by model id; an unknown id is warned about and priced high."""

from __future__ import annotations

import logging

import pytest

from bot import modelcalls
from bot.modelcalls import PRICES, PRICES_SOURCE, PRICES_TAKEN, Price, Usage, price
from bot.settings import DEFAULT_MODEL


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(modelcalls, "_warned", set())


def test_the_table_is_dated_sourced_and_covers_the_default_model():
    assert PRICES_TAKEN.count("-") == 2 and PRICES_SOURCE.startswith("https://platform.claude.com/")
    assert DEFAULT_MODEL in PRICES
    assert price(f"{DEFAULT_MODEL}-20261001") is PRICES[DEFAULT_MODEL]  # a dated id is the same model
    assert price("claude-sonnet-5") is not price("claude-sonnet-5-5")  # an id is not a prefix of another's


def test_a_call_costs_its_tokens_at_each_rate():
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cache_read_input_tokens=1_000_000,
                  cache_creation_input_tokens=1_000_000)
    assert Price(2.0, 10.0, 2.5, 0.1).cost(usage) == pytest.approx(14.6)


def test_a_long_prompt_pays_the_long_prompt_rate_where_a_model_has_one():
    haiku = price("claude-haiku-5-5")
    short, long = Usage(input_tokens=100_000, output_tokens=1000), Usage(input_tokens=100_001, output_tokens=1000)
    assert haiku.cost(short) == pytest.approx((100_000 * 0.1 + 1000 * 0.5) / 1e6)
    assert haiku.cost(long) == pytest.approx((100_001 * 0.5 + 1000 * 2.5) / 1e6)


def test_an_unknown_model_is_warned_about_once_and_priced_at_the_most_expensive(caplog):
    with caplog.at_level(logging.WARNING, logger="bot.modelcalls"):
        first, again = price("claude-nova-7"), price("claude-nova-7")
    most = max(PRICES.values(), key=lambda p: p.output)
    usage = Usage(input_tokens=5000, output_tokens=500)
    assert first is again and first.cost(usage) == most.cost(usage)
    assert all(first.cost(usage) >= known.cost(usage) for known in PRICES.values())
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("no list price for model 'claude-nova-7' (prices of ")
