"""The accelerated clock of soak runs: market time runs ``speed`` times faster than wall time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from adapters.clock import AcceleratedClock

START = datetime(2026, 10, 8, 16, 0, tzinfo=UTC)


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_now_runs_speed_times_faster_than_wall_time() -> None:
    wall = FakeMonotonic()
    clock = AcceleratedClock(START, 600.0, monotonic=wall)
    assert clock.now() == START
    wall.t += 1.5
    assert clock.now() == START + timedelta(minutes=15)


async def test_sleep_waits_the_matching_wall_time() -> None:
    clock = AcceleratedClock(START, 1000.0)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await clock.sleep(50.0)  # 50 market seconds: 50 ms of wall time
    assert loop.time() - began >= 0.045
    assert clock.now() >= START + timedelta(seconds=45)


@pytest.mark.parametrize(
    ("start", "speed", "problem"),
    [
        (datetime(2026, 10, 8, 16, 0), 10.0, "timezone-aware"),
        (START, 0.0, "speed must be positive"),
        (START, -2.0, "speed must be positive"),
    ],
)
def test_bad_arguments_are_refused(start: datetime, speed: float, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        AcceleratedClock(start, speed)
