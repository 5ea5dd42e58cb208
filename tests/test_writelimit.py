"""Write pacing: no window of any limit is ever exceeded, and retry-after pushes writes back."""

import collections

import pytest

from bot.writelimit import WriteLimit, WritePacer, next_slot, parse_write_limits


def test_parse():
    assert parse_write_limits("80/min,500/hour") == (WriteLimit(80, 60.0), WriteLimit(500, 3600.0))
    assert parse_write_limits("80/s") == (WriteLimit(80, 1.0),)
    for bad in ("80", "x/min", "80/day", "0/min"):
        with pytest.raises(ValueError):
            parse_write_limits(bad)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_pacer_never_exceeds_any_window():
    t = FakeTime()
    limits = (WriteLimit(5, 1.0), WriteLimit(12, 10.0))
    pacer = WritePacer(limits, clock=t.clock, sleep=t.sleep)
    stamps = []
    for _ in range(40):
        await pacer.acquire(7)
        stamps.append(t.now)
    for limit in limits:
        for i, start in enumerate(stamps):
            inside = [s for s in stamps[i:] if s < start + limit.window]
            assert len(inside) <= limit.count
    assert stamps[4] == stamps[0]  # a burst up to the limit goes out at once


async def test_installations_are_paced_separately():
    t = FakeTime()
    pacer = WritePacer((WriteLimit(1, 60.0),), clock=t.clock, sleep=t.sleep)
    await pacer.acquire(1)
    await pacer.acquire(2)
    assert t.now == 1000.0
    assert pacer.pending_delay(1) > 60


async def test_push_back_delays_the_next_write():
    t = FakeTime()
    pacer = WritePacer((WriteLimit(100, 60.0),), clock=t.clock, sleep=t.sleep)
    pacer.push_back(3, 30)
    await pacer.acquire(3)
    assert t.now == pytest.approx(1030.0)


def test_next_slot_is_now_when_room_is_left():
    assert next_slot(collections.deque([1.0, 2.0]), (WriteLimit(3, 60.0),), 10.0, 0.0) == 10.0
