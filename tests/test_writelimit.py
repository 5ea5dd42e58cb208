"""Write pacing: no window of any limit is ever exceeded, by one process or several; holds are shared."""

import asyncio

import pytest

from bot.store import open_store
from bot.writelimit import (LOST_AFTER, UNANSWERED_POLL, MemoryLedger, WriteLimit, WritePacer, admit,
                            count_from_answer, parse_write_limits, reserve)


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


def assert_within(stamps: list[float], limits: tuple[WriteLimit, ...]) -> None:
    for limit in limits:
        for i, start in enumerate(stamps):
            assert len([s for s in stamps[i:] if s < start + limit.window]) <= limit.count


async def test_pacer_never_exceeds_any_window():
    t = FakeTime()
    limits = (WriteLimit(5, 1.0), WriteLimit(12, 10.0))
    pacer = WritePacer(limits, clock=t.clock, sleep=t.sleep)
    stamps = []
    for _ in range(40):
        await pacer.done(7, await pacer.acquire(7))
        stamps.append(t.now)
    assert_within(stamps, limits)
    assert stamps[4] == stamps[0]  # a burst up to the limit goes out at once
    assert stamps[-1] - stamps[0] < 40  # and no slower than the limits ask


async def test_installations_are_paced_separately():
    t = FakeTime()
    pacer = WritePacer((WriteLimit(1, 60.0),), clock=t.clock, sleep=t.sleep)
    await pacer.acquire(1)
    await pacer.acquire(2)
    assert t.now == 1000.0
    await pacer.acquire(1)
    assert t.now > 1060.0


async def test_push_back_delays_the_next_write():
    t = FakeTime()
    pacer = WritePacer((WriteLimit(100, 60.0),), clock=t.clock, sleep=t.sleep)
    await pacer.push_back(3, 30)
    await pacer.acquire(3)
    assert t.now == pytest.approx(1030.0)


async def test_a_push_back_while_waiting_moves_the_write_after_it():
    t = FakeTime()
    pacer = WritePacer((WriteLimit(1, 10.0),), clock=t.clock, sleep=t.sleep)
    await pacer.acquire(3)

    async def sleep_then_pushed(seconds: float) -> None:
        await t.sleep(seconds)
        pacer.sleep = t.sleep
        await pacer.push_back(3, 50)  # a 403 with retry-after arrived while this write slept

    pacer.sleep = sleep_then_pushed
    await pacer.acquire(3)
    assert t.now >= 1010.0 + 50


async def test_a_write_sent_late_moves_the_next_window():
    """A busy process may send a write after its slot; the next one counts from when it really went out."""
    t = FakeTime()
    ledger = MemoryLedger(clock=t.clock)
    limits = (WriteLimit(1, 1.0),)
    pacer = WritePacer(limits, ledger, sleep=t.sleep, margin=0.0)
    assert await ledger.reserve_write(5, limits, 0.0) == 1000.0  # its slot is now...
    t.now += 0.5
    assert await ledger.admit_write(5, limits, 0.0) == (0.0, 1000.5)  # ...but it goes out half a second later
    await pacer.acquire(5)
    assert t.now >= 1000.5 + 1.0


async def test_a_write_counts_from_its_answer_and_an_unanswered_one_as_sent_just_now():
    """GitHub counts a write when it arrives, any time until its answer comes back: the window counts each
    write from its answer, and one not answered yet as if it had just gone out."""
    t = FakeTime()
    limits = (WriteLimit(2, 1.0),)
    pacer = WritePacer(limits, clock=t.clock, sleep=t.sleep, margin=0.0)
    slow = await pacer.acquire(8)
    t.now += 0.3
    await pacer.done(8, slow)  # answered 0.3 s after it went out
    await pacer.done(8, await pacer.acquire(8))
    await pacer.acquire(8)
    assert t.now == pytest.approx(slow + 1.3)  # a window after the answer, not after the admission
    stuck = t.now
    t.now += 5.0  # unanswered all along: it still holds its place in every window
    other = await pacer.acquire(8)
    assert t.now == pytest.approx(stuck + 5.0)
    assert other == pytest.approx(stuck + 5.0)
    # Both unanswered now: the next write waits until the first is given up as lost.
    assert await pacer.acquire(8) == pytest.approx(stuck + LOST_AFTER, abs=UNANSWERED_POLL)


async def test_an_answered_write_counts_as_sent_just_now_until_the_ledger_has_its_answer():
    """Recording an answer is a round trip to the store; meanwhile the write must not count from its admission,
    which may lie a whole window back."""
    t = FakeTime()
    limits = (WriteLimit(1, 1.0),)
    recorded = asyncio.Event()

    class SlowLedger(MemoryLedger):
        async def answered(self, installation_id, admitted, at):
            await recorded.wait()  # the store is busy for half a second
            await super().answered(installation_id, admitted, at)

    async def sleep(seconds: float) -> None:
        t.now += seconds
        await asyncio.sleep(0)
        if t.now >= answer + 0.5:
            recorded.set()

    pacer = WritePacer(limits, SlowLedger(clock=t.clock), sleep=sleep, margin=0.0)
    first = await pacer.acquire(3)
    t.now += 2.0  # a slow answer: the write's admission is out of the window by now
    answer = t.now
    answering = asyncio.ensure_future(pacer.done(3, first))
    await asyncio.sleep(0)
    second = await pacer.acquire(3)  # asked for while the answer is being recorded
    recorded.set()
    await answering
    assert second == pytest.approx(answer + 1.0, abs=UNANSWERED_POLL)  # a window after the answer


def test_answered_moves_a_write_to_its_answer():
    assert count_from_answer([1.0, 2.0, 3.0], 2.0, 3.5) == [1.0, 3.0, 3.5]
    assert count_from_answer([5.0], 1.0, 2.0) == [2.0, 5.0]  # forgotten meanwhile: counted from its answer
    assert admit([10.0], (WriteLimit(2, 1.0),), 10.5, 0.0, flying=[8.0]) == (pytest.approx(0.5), [10.0])
    assert admit([10.0], (WriteLimit(1, 1.0),), 10.5, 0.0, flying=[8.0])[0] == UNANSWERED_POLL  # its answer


def test_reserve_hands_out_slots_in_order():
    limits = (WriteLimit(2, 10.0),)
    at, kept = reserve([], limits, 100.0, 0.0)
    at2, kept = reserve(kept, limits, 100.0, 0.0)
    at3, kept = reserve(kept, limits, 100.0, 0.0)
    assert (at, at2) == (100.0, 100.0) and at3 == pytest.approx(110.0)
    assert reserve(kept, limits, 200.0, 0.0)[1] == [200.0]  # old slots are forgotten


def test_admit_counts_what_was_sent():
    limits = (WriteLimit(2, 10.0),)
    assert admit([100.0, 105.0], limits, 108.0, 0.0) == (pytest.approx(2.0), [100.0, 105.0])
    assert admit([100.0, 105.0], limits, 111.0, 0.0) == (0.0, [105.0, 111.0])
    assert admit([], limits, 50.0, 0.0, not_before=60.0) == (10.0, [])


async def test_three_processes_share_one_installations_budget(tmp_path):
    """Three workers (three store connections, one database) together stay under the limit."""
    t = FakeTime()
    stores = [open_store(f"sqlite:///{tmp_path / 'shared.db'}", clock=t.clock) for _ in range(3)]
    for store in stores:
        await store.open()
    limits = (WriteLimit(4, 1.0),)
    pacers = [WritePacer(limits, store, sleep=t.sleep) for store in stores]
    try:
        stamps = []
        for i in range(30):
            await pacers[i % 3].acquire(77)
            stamps.append(t.now)
        assert_within(stamps, limits)
        await pacers[0].revoke_tokens(77)
        assert await pacers[2].tokens_revoked_at(77) == t.now  # another process sees the refusal
        await pacers[1].hold_requests(77, t.now + 30)
        t.now += 2  # each process trusts its copy of the holds for a second
        assert await pacers[2].request_delay(77) == pytest.approx(28)
    finally:
        for store in stores:
            await store.close()


async def test_memory_ledger_holds_only_grow():
    ledger = MemoryLedger(clock=lambda: 0.0)
    await ledger.hold(1, "writes", 10)
    await ledger.hold(1, "writes", 5)
    assert await ledger.holds(1) == {"writes": 10}
