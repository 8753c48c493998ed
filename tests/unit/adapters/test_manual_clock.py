"""The manual clock's sleep: it ends when the test moves time to its deadline, never sooner, and
the sleepers wake in deadline order; a test can wait for sleepers and see how long each asked for."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from adapters.simulated.clock import ManualClock
from domain.bar import Bar

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
DEADLINE_S = 10.0  # generous: every wait below is for an event that is due at once


async def _sleep_and_note(
    clock: ManualClock, seconds: float, woke: list[tuple[float, datetime]]
) -> None:
    await clock.sleep(seconds)
    woke.append((seconds, clock.now()))


async def test_a_sleep_ends_only_when_time_reaches_its_deadline() -> None:
    clock = ManualClock(T0)
    task = asyncio.create_task(clock.sleep(60))
    await asyncio.wait_for(clock.sleepers(1), DEADLINE_S)
    clock.advance(59.999)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not task.done()
    assert clock.sleeping == [60]
    clock.advance(timedelta(milliseconds=1))
    await asyncio.wait_for(task, DEADLINE_S)
    assert clock.sleeping == []
    assert clock.now() == T0 + timedelta(seconds=60)


async def test_sleepers_wake_in_deadline_order_and_equal_deadlines_in_arrival_order() -> None:
    clock = ManualClock(T0)
    woke: list[tuple[float, datetime]] = []
    tasks = [
        asyncio.create_task(_sleep_and_note(clock, seconds, woke)) for seconds in (30, 10, 20, 10.0)
    ]
    await asyncio.wait_for(clock.sleepers(4), DEADLINE_S)
    assert clock.sleeping == [10, 10.0, 20, 30]
    assert clock.next_deadline == T0 + timedelta(seconds=10)
    clock.advance(25)  # ends three sleeps at once; each sees the time after the jump
    await asyncio.wait_for(asyncio.gather(*tasks[1:]), DEADLINE_S)
    end = T0 + timedelta(seconds=25)
    assert woke == [(10, end), (10.0, end), (20, end)]
    assert [type(s) for s, _ in woke] == [int, float, int]  # the two tens in the order they began
    assert clock.sleeping == [30]
    clock.set(T0 + timedelta(hours=1))
    await asyncio.wait_for(tasks[0], DEADLINE_S)
    assert clock.sleeping == []
    assert clock.next_deadline is None


async def test_a_bar_that_ends_past_a_deadline_wakes_the_sleeper() -> None:
    clock = ManualClock(T0)
    task = asyncio.create_task(clock.sleep(120))
    await asyncio.wait_for(clock.sleepers(), DEADLINE_S)
    clock.on_bar(Bar(T0 - timedelta(minutes=3), 60, 1.0, 1.0, 1.0, 1.0, 1))  # ends in the past
    clock.on_bar(Bar(T0, 60, 1.0, 1.0, 1.0, 1.0, 1))  # ends at T0 + 1 min
    await asyncio.sleep(0)
    assert not task.done()
    clock.skip(Bar(T0 + timedelta(minutes=1), 60, 1.0, 1.0, 1.0, 1.0, 1))
    await asyncio.wait_for(task, DEADLINE_S)
    assert clock.now() == T0 + timedelta(minutes=2)


@pytest.mark.parametrize("seconds", [0, -5, float("nan")])
async def test_a_sleep_of_nothing_returns_at_once(seconds: float) -> None:
    clock = ManualClock(T0)
    await asyncio.wait_for(clock.sleep(seconds), DEADLINE_S)
    assert clock.now() == T0
    assert clock.sleeping == []


async def test_a_cancelled_sleep_is_no_longer_pending_and_an_endless_one_waits_for_ever() -> None:
    clock = ManualClock(T0)
    endless = asyncio.create_task(clock.sleep(float("inf")))
    short = asyncio.create_task(clock.sleep(1))
    await asyncio.wait_for(clock.sleepers(2), DEADLINE_S)
    assert clock.next_deadline == T0 + timedelta(seconds=1)
    short.cancel()
    with pytest.raises(asyncio.CancelledError):
        await short
    assert clock.sleeping == [float("inf")]
    assert clock.next_deadline is None  # the endless sleep has no deadline
    clock.advance(timedelta(days=3650))
    await asyncio.sleep(0)
    assert not endless.done()
    endless.cancel()
    with pytest.raises(asyncio.CancelledError):
        await endless
    assert clock.sleeping == []


async def test_wake_next_ends_the_first_sleep_early_without_moving_time() -> None:
    clock = ManualClock(T0)
    woke: list[tuple[float, datetime]] = []
    tasks = [asyncio.create_task(_sleep_and_note(clock, s, woke)) for s in (90, 30)]
    await asyncio.wait_for(clock.sleepers(2), DEADLINE_S)
    clock.wake_next()
    await asyncio.wait_for(tasks[1], DEADLINE_S)
    assert woke == [(30, T0)]
    assert clock.sleeping == [90]
    clock.wake_next()
    await asyncio.wait_for(tasks[0], DEADLINE_S)
    with pytest.raises(LookupError, match="nobody sleeps"):
        clock.wake_next()


async def test_sleepers_waits_for_the_count_and_returns_at_once_when_it_is_reached() -> None:
    clock = ManualClock(T0)
    waiting = asyncio.create_task(clock.sleepers(2))
    first = asyncio.create_task(clock.sleep(5))
    await asyncio.wait_for(clock.sleepers(1), DEADLINE_S)
    assert not waiting.done()
    second = asyncio.create_task(clock.sleep(5))
    await asyncio.wait_for(waiting, DEADLINE_S)
    await asyncio.wait_for(clock.sleepers(2), DEADLINE_S)  # already true
    clock.advance(5)
    await asyncio.wait_for(asyncio.gather(first, second), DEADLINE_S)


def test_moving_time_backwards_is_refused_or_ignored() -> None:
    clock = ManualClock(T0)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(timedelta(seconds=-1))
    clock.set(T0 - timedelta(days=1))
    assert clock.now() == T0
