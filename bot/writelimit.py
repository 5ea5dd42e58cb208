"""Pacing of content-creating GitHub requests per installation (GitHub's secondary limits)."""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "hour": 3600.0, "h": 3600.0}


@dataclass(frozen=True)
class WriteLimit:
    """At most `count` content-creating requests in any `window` seconds."""

    count: int
    window: float


def parse_write_limits(text: str) -> tuple[WriteLimit, ...]:
    """Parse `80/min,500/hour` (UNIT s, min or hour)."""
    limits = []
    for part in text.split(","):
        count, sep, unit = part.strip().partition("/")
        if not sep or unit.strip() not in UNITS or not count.strip().isdigit() or int(count) < 1:
            raise ValueError(f"{part.strip()!r} is not N/UNIT with UNIT s, min or hour")
        limits.append(WriteLimit(int(count), UNITS[unit.strip()]))
    return tuple(limits)


def next_slot(stamps: "collections.deque[float]", limits: tuple[WriteLimit, ...], now: float,
              margin: float) -> float:
    """The earliest time >= now a new write fits every limit, given past write times (pure)."""
    at = now
    for limit in limits:
        window = limit.window * (1 + margin) + 0.02
        recent = [s for s in stamps if s > at - window]
        if len(recent) >= limit.count:
            at = max(at, recent[len(recent) - limit.count] + window)
    return at


class WritePacer:
    """Spaces writes per installation so that no window of any limit is ever exceeded."""

    def __init__(self, limits: tuple[WriteLimit, ...], *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, margin: float = 0.05) -> None:
        self.limits = limits
        self.clock, self.sleep, self.margin = clock, sleep, margin
        self._stamps: dict[int, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._locks: dict[int, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self._blocked_until: dict[int, float] = {}
        self._longest = max((lim.window for lim in limits), default=0.0) * (1 + margin) + 0.02

    def pending_delay(self, installation: int) -> float:
        """How long a write for `installation` would wait now."""
        now = self.clock()
        at = max(next_slot(self._stamps[installation], self.limits, now, self.margin),
                 self._blocked_until.get(installation, 0.0))
        return max(0.0, at - now)

    async def acquire(self, installation: int) -> None:
        """Wait until a write fits, then count it."""
        async with self._locks[installation]:
            stamps = self._stamps[installation]
            while True:
                now = self.clock()
                while stamps and stamps[0] <= now - self._longest:
                    stamps.popleft()
                at = max(next_slot(stamps, self.limits, now, self.margin), self._blocked_until.get(installation, 0.0))
                if at <= now:
                    stamps.append(now)
                    return
                await self.sleep(at - now)

    def push_back(self, installation: int, seconds: float) -> None:
        """GitHub asked us to wait (retry-after): no write for this installation before then."""
        until = self.clock() + seconds
        self._blocked_until[installation] = max(until, self._blocked_until.get(installation, 0.0))
