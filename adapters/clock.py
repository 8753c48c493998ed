"""Clocks for the live daemon: the system clock, and an accelerated one for soak runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class AcceleratedClock:
    """Wall time sped up ``speed`` times from ``start``: market time for a soak run at high speed.

    ``now`` moves continuously (``speed`` market seconds per wall second) and ``sleep`` waits the
    matching wall time, so timers that sleep to a session boundary wake at the right market time.
    """

    def __init__(
        self,
        start: datetime,
        speed: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if start.utcoffset() is None:
            raise ValueError("AcceleratedClock needs a timezone-aware start time")
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self._start = start.astimezone(UTC)
        self.speed = speed
        self._monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(self._monotonic() - self._origin) * self.speed)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)
