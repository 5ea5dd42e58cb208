"""GitHub's limits per installation, held together by every chantbot process.

Content-creating requests are paced under `GITHUB_WRITE_LIMITS` (GitHub's secondary limits) in a
ledger all processes share (the store), in two steps: a write first reserves a slot (so waiting
writers queue up in order instead of all retrying at once), then, when its slot comes, it is
admitted against the writes really sent. GitHub counts a write when it arrives, which may be any
time until its answer comes back (a busy event loop on either side delays it), so the ledger
counts each write from its answer once it has one, and a write still unanswered as sent just now:
then no window of GitHub's can hold more writes than the ledger's does, however unevenly requests
travel. `retry-after` and `x-ratelimit-reset` back-offs and refused tokens are kept in the ledger
too, as holds.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol, Sequence

log = logging.getLogger(__name__)

UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "hour": 3600.0, "h": 3600.0}
MARGIN = 0.001  # each window is counted this much longer than GitHub's: its clock and ours run at rates that
# differ by far less (NTP keeps a clock within 500 ppm); the time writes take to travel is counted from answers
UNANSWERED_POLL = 0.05  # seconds between looks while the writes filling a window are all unanswered
LOST_AFTER = 120.0  # seconds after which an unanswered write is taken as lost (requests time out sooner)
MAX_READ_WAIT = 120.0  # a request hold longer than this is not slept out in a request; the job retries later
HOLD_REFRESH = 1.0  # seconds a process trusts its copy of the shared holds


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


def reserve(stamps: Sequence[float], limits: tuple[WriteLimit, ...], now: float, margin: float,
            not_before: float = 0.0) -> tuple[float, list[float]]:
    """The next write slot and the stamps to keep (with it), given earlier slots in order (pure).

    Slots are handed out in order (never before an earlier reservation), so one pass over the
    limits finds the earliest time at which every window still has room.
    """
    longest = max((lim.window for lim in limits), default=0.0) * (1 + margin)
    kept = [s for s in stamps if s > now - longest]
    at = max(now, not_before, kept[-1] if kept else now)
    for limit in limits:
        window = limit.window * (1 + margin)
        recent = [s for s in kept if s > at - window]
        if len(recent) >= limit.count:
            at = recent[len(recent) - limit.count] + window
    kept.append(at)
    return at, kept


def admit(sent: Sequence[float], limits: tuple[WriteLimit, ...], now: float, margin: float,
          not_before: float = 0.0, flying: Sequence[float] = ()) -> tuple[float, list[float]]:
    """(0, the times to keep with `now`) when a write may go now, else (seconds to wait, unchanged) (pure).

    `sent`: when each write was answered, or, until then, admitted; `flying`: the admissions of this
    process's writes not answered yet, which count as sent just now however long ago they went out.
    """
    longest = max((lim.window for lim in limits), default=0.0) * (1 + margin)
    kept = sorted(s for s in sent if s > now - longest)
    wait = max(0.0, not_before - now)
    for limit in limits:
        window = limit.window * (1 + margin)
        recent = [s for s in kept if s > now - window]
        stuck = sum(1 for f in flying if f <= now - window)
        over = len(recent) + stuck - limit.count  # writes to see out of the window first
        if over >= 0:
            wait = max(wait, recent[over] + window - now if over < len(recent) else UNANSWERED_POLL)
    if wait > 0:
        return wait, list(sent)
    kept.append(now)
    return 0.0, kept


def count_from_answer(sent: Sequence[float], admitted: float, at: float) -> list[float]:
    """The ledger's times with the write admitted at `admitted` counted from its answer at `at` (pure)."""
    kept = list(sent)
    if admitted in kept:
        kept.remove(admitted)
    return sorted([*kept, max(at, admitted)])


class Ledger(Protocol):
    """Where write slots and holds are kept: the store (shared by processes) or memory (one process)."""

    clock: Callable[[], float]

    async def reserve_write(self, installation_id: int, limits: tuple[WriteLimit, ...], margin: float) -> float: ...
    async def admit_write(self, installation_id: int, limits: tuple[WriteLimit, ...], margin: float,
                          flying: Sequence[float] = ()) -> tuple[float, float]: ...
    async def answered(self, installation_id: int, admitted: float, at: float) -> None: ...
    async def hold(self, installation_id: int, kind: str, until: float) -> None: ...
    async def holds(self, installation_id: int) -> dict[str, float]: ...


class MemoryLedger:
    """A ledger for one process (tests, tools); a deployment uses the store."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._stamps: dict[int, list[float]] = collections.defaultdict(list)
        self._sent: dict[int, list[float]] = collections.defaultdict(list)
        self._holds: dict[int, dict[str, float]] = collections.defaultdict(dict)

    async def reserve_write(self, installation_id: int, limits: tuple[WriteLimit, ...], margin: float) -> float:
        at, self._stamps[installation_id] = reserve(self._stamps[installation_id], limits, self.clock(), margin,
                                                    self._holds[installation_id].get("writes", 0.0))
        return at

    async def admit_write(self, installation_id: int, limits: tuple[WriteLimit, ...], margin: float,
                          flying: Sequence[float] = ()) -> tuple[float, float]:
        now = self.clock()
        wait, self._sent[installation_id] = admit(self._sent[installation_id], limits, now, margin,
                                                  self._holds[installation_id].get("writes", 0.0), flying)
        return (wait, 0.0) if wait > 0 else (0.0, now)

    async def answered(self, installation_id: int, admitted: float, at: float) -> None:
        self._sent[installation_id] = count_from_answer(self._sent[installation_id], admitted, at)

    async def hold(self, installation_id: int, kind: str, until: float) -> None:
        held = self._holds[installation_id]
        held[kind] = max(until, held.get(kind, 0.0))

    async def holds(self, installation_id: int) -> dict[str, float]:
        return dict(self._holds[installation_id])


class WritePacer:
    """One process's view of GitHub's limits per installation, kept in a shared ledger."""

    def __init__(self, limits: tuple[WriteLimit, ...], ledger: Ledger | None = None, *,
                 clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, margin: float = MARGIN) -> None:
        self.limits = limits
        self.ledger = ledger if ledger is not None else MemoryLedger(clock or time.time)
        self._clock = clock
        self.sleep, self.margin = sleep, margin
        self._cached: dict[int, tuple[float, dict[str, float]]] = {}
        self._flying: dict[int, collections.Counter[float]] = collections.defaultdict(collections.Counter)

    def clock(self) -> float:
        """The ledger's clock (slots are times on it), unless this pacer was given its own."""
        return (self._clock or self.ledger.clock)()

    async def acquire(self, installation: int) -> float:
        """Wait for the installation's next write slot (shared by every process), then until it is admitted;
        returns the write's stamp in the ledger, for `done` once GitHub has answered it."""
        wait = await self.ledger.reserve_write(installation, self.limits, self.margin) - self.clock()
        flying = self._flying[installation]
        while True:
            if wait > 0:
                await self.sleep(wait)
            for lost in [at for at in flying if at < self.clock() - LOST_AFTER]:
                del flying[lost]
            wait, stamp = await self.ledger.admit_write(installation, self.limits, self.margin, list(flying))
            if wait <= 0:
                flying[stamp] += 1
                return stamp

    async def done(self, installation: int, stamp: float) -> None:
        """GitHub answered the write `acquire` admitted as `stamp` (or it failed): it counts from now on.

        It counts as sent just now until the ledger has its answer: never, meanwhile, from its admission only."""
        try:
            await self.ledger.answered(installation, stamp, self.clock())
        except Exception as exc:  # noqa: BLE001 - the write stays counted from its admission, a little early
            log.warning("could not record when a write was answered: %s", exc)
        finally:
            flying = self._flying[installation]
            flying[stamp] -= 1
            if flying[stamp] <= 0:
                del flying[stamp]

    async def push_back(self, installation: int, seconds: float) -> None:
        """GitHub asked us to wait (retry-after): no process writes for this installation before then."""
        await self.ledger.hold(installation, "writes", self.clock() + seconds)
        self._cached.pop(installation, None)

    async def hold_requests(self, installation: int, until: float) -> None:
        """The primary limit is spent until `until` (x-ratelimit-reset): no process asks before then."""
        await self.ledger.hold(installation, "requests", until)
        self._cached.pop(installation, None)

    async def request_delay(self, installation: int) -> float:
        """How long any request for `installation` should wait for a shared hold."""
        return max(0.0, (await self._holds(installation)).get("requests", 0.0) - self.clock())

    async def revoke_tokens(self, installation: int) -> None:
        """GitHub refused a token: every process drops the tokens it minted before now."""
        await self.ledger.hold(installation, "tokens", self.clock())
        self._cached.pop(installation, None)

    async def tokens_revoked_at(self, installation: int) -> float:
        """Tokens minted at or before this time were refused somewhere; 0.0 when none were."""
        return (await self._holds(installation)).get("tokens", 0.0)

    async def _holds(self, installation: int) -> dict[str, float]:
        now = self.clock()
        cached = self._cached.get(installation)
        if cached is None or now - cached[0] > HOLD_REFRESH:
            cached = (now, await self.ledger.holds(installation))
            self._cached[installation] = cached
        return cached[1]
