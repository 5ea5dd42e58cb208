"""What model calls may spend: a reservation before each call, settled after it, against the operator's daily cap
per installation (`CHANTBOT_DAILY_USD`) and a repository's own share (`budget.daily_usd`, which can only lower
it); and the issue author's daily allowance of automatic stage runs (`budget.auto_per_author`).

A reservation is added to the day's spend before the call and checked against the cap in the same atomic
update, so runs in several workers cannot overshoot together: the call's `max_tokens` shrinks to what the
remaining budget can pay for, and the difference is given back when the call's real cost is known.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from bot.context import Context
from bot.modelcalls import Price
from bot.repoconfig import RepoConfig

MIN_OUTPUT = 512  # output tokens below which a call is not worth making
CHARS_PER_TOKEN = 3.0  # a generous count of the request's tokens (about 4 characters a token in practice)


def day(ctx: Context) -> str:
    return datetime.datetime.fromtimestamp(ctx.clock(), datetime.timezone.utc).date().isoformat()


def repo_day(today: str, repo: str) -> str:
    """The spend ledger's key for one repository's share of a day (installations are keyed by the day alone)."""
    return f"{today} {repo}"


def caps(ctx: Context, config: RepoConfig) -> tuple[float, float]:
    """(the installation's daily cap, this repository's share of it)."""
    cap = float(ctx.settings.daily_usd)
    share = config.daily_usd if config.daily_usd is not None else cap
    return cap, min(cap, float(share))


@dataclass
class Grant:
    """A reservation: the call may produce `max_tokens`; `settle` replaces the reservation by the real cost."""

    ctx: Context
    installation_id: int
    keys: tuple[str, str]
    reserved: float
    max_tokens: int

    async def settle(self, usd: float) -> None:
        for key in self.keys:
            await self.ctx.store.add_spend(self.installation_id, key, usd - self.reserved)
        self.reserved = usd
        _count(self.ctx, self.installation_id, usd)


async def reserve(ctx: Context, installation_id: int, repo: str, config: RepoConfig, price: Price, request_chars: int,
                  max_tokens: int, *, room: float = float("inf")) -> Grant | None:
    """Reserve the most one call can cost (its request at the cache-write price, `max_tokens` of output), with
    `max_tokens` cut to what the budgets and `room` (e.g. the run's own cap) leave; None when not even
    MIN_OUTPUT tokens fit."""
    today = day(ctx)
    keys = (today, repo_day(today, repo))
    cap, share = caps(ctx, config)
    spent = await ctx.store.spends(installation_id, keys)
    left = min(cap - spent[0], share - spent[1], room)
    tokens = min(max_tokens, affordable(price, request_chars, left))
    request = _request_cost(price, request_chars)
    per_token = price.output / 1e6
    if tokens < MIN_OUTPUT:
        return None
    reserved = request + tokens * per_token
    taken: list[str] = []
    for key, limit in zip(keys, (cap, share)):
        total = await ctx.store.add_spend(installation_id, key, reserved)
        taken.append(key)
        if total > limit + 1e-9:  # another run reserved meanwhile: give back everything taken
            for back in taken:
                await ctx.store.add_spend(installation_id, back, -reserved)
            return None
    return Grant(ctx, installation_id, keys, reserved, tokens)


def _request_cost(price: Price, request_chars: int) -> float:
    """The most the request can cost: every token written to the cache (the dearest way to send it)."""
    return request_chars / CHARS_PER_TOKEN * max(price.input, price.cache_write) / 1e6


def affordable(price: Price, request_chars: int, left: float) -> int:
    """Output tokens that `left` dollars pay for once the request itself is paid."""
    per_token = price.output / 1e6
    return int((left - _request_cost(price, request_chars)) / per_token) if per_token else 1 << 30


async def charge(ctx: Context, installation_id: int, repo: str, usd: float) -> None:
    """Count a call already made (triage) against the day's budgets."""
    today = day(ctx)
    await ctx.store.add_spends(installation_id, (today, repo_day(today, repo)), usd)
    _count(ctx, installation_id, usd)


def _count(ctx: Context, installation_id: int, usd: float) -> None:
    """This process's share of the spend, for `GET /metrics` (a counter: Prometheus sums the processes)."""
    if ctx.metrics is not None and usd > 0:
        ctx.metrics.spend.labels(installation=str(installation_id)).inc(usd)


async def available(ctx: Context, installation_id: int, repo: str, config: RepoConfig) -> bool:
    """Whether the installation and the repository have budget left today."""
    today = day(ctx)
    cap, share = caps(ctx, config)
    installation, repository = await ctx.store.spends(installation_id, (today, repo_day(today, repo)))
    return installation < cap and repository < share


def refusal(ctx: Context, config: RepoConfig) -> str:
    cap, share = caps(ctx, config)
    mine = f"; this repository's share, budget.daily_usd, is ${share:g}" if share < cap else ""
    return f"the daily budget for model calls is spent (CHANTBOT_DAILY_USD ${cap:g} for the installation{mine})"


async def take_automatic(ctx: Context, repo: str, author: str, config: RepoConfig) -> bool:
    """Count one automatic stage run for the issue's author today; False when their allowance is used up."""
    key = f"auto-runs {day(ctx)} {author.lower()}"
    used = int(await ctx.store.repo_meta(repo, key) or 0)
    if used >= config.auto_per_author:
        return False
    await ctx.store.set_repo_meta(repo, key, str(used + 1))
    return True
