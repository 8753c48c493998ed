"""A manual clock for replay and tests: time moves only when told, here by the recorded bars.

Replay moves it with every bar (:meth:`ManualClock.on_bar`) and never sleeps on it. Anything that
does sleep on it (a timer, a backoff, a rate limiter under test) waits until the clock is moved to
the end of its sleep or past it, as on a real clock, only the test decides when time passes:

    clock = ManualClock(start)
    task = asyncio.create_task(timer.run())
    await clock.sleepers(1)          # the timer is asleep
    assert clock.sleeping == [60.0]  # for a minute
    clock.advance(60)                # it wakes (and sees now() == start + 60 s)

Sleeps end in the order of their deadlines (equal deadlines in the order they began), so tasks
woken by one jump resume in that order; each sees the clock's time after the jump.
"""

from __future__ import annotations

import asyncio
import bisect
import math
from datetime import UTC, datetime, timedelta

from application.bar_columns import BarColumns
from domain.bar import Bar


class _Sleep:
    """One pending :meth:`ManualClock.sleep`: its deadline (epoch seconds) and how long it asked."""

    __slots__ = ("deadline", "future", "order", "seconds")

    def __init__(
        self, deadline: float, order: int, seconds: float, future: asyncio.Future[None]
    ) -> None:
        self.deadline = deadline
        self.order = order
        self.seconds = seconds
        self.future = future

    def __lt__(self, other: _Sleep) -> bool:
        return (self.deadline, self.order) < (other.deadline, other.order)


class ManualClock:
    """Clock port whose time is set from outside. As a bar listener it follows the market bars."""

    def __init__(self, start: datetime | None = None) -> None:
        now = start if start is not None else datetime(1970, 1, 1, tzinfo=UTC)
        if now.utcoffset() is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._sleeps: list[_Sleep] = []  # pending, earliest deadline first
        self._began = 0  # sleeps begun so far: orders equal deadlines
        self._watchers: list[tuple[int, asyncio.Future[None]]] = []  # (count, waiter)
        self._set(now)

    def _set(self, now: datetime) -> None:
        self._when: datetime | None = now
        self._epoch = now.timestamp()  # compared with every bar the replay visits
        if self._sleeps and self._sleeps[0].deadline <= self._epoch:
            self._wake_due()

    def now(self) -> datetime:
        when = self._when
        if when is None:  # moved by a bar: the datetime is built when someone asks the time
            when = self._when = datetime.fromtimestamp(self._epoch, UTC)
        return when

    async def sleep(self, seconds: float) -> None:
        """Return once the clock has been moved ``seconds`` on from now, or further.

        A sleep of zero or less (or NaN) returns at once; an infinite one only when cancelled.
        """
        if not seconds > 0:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._began += 1
        try:  # through a datetime, as advance() goes: the same instant is the same float
            deadline = (self.now() + timedelta(seconds=seconds)).timestamp()
        except OverflowError:  # beyond year 9999: never
            deadline = math.inf
        entry = _Sleep(deadline, self._began, seconds, future)
        bisect.insort(self._sleeps, entry)
        self._notify_watchers()
        try:
            await future
        finally:
            if not future.done():  # cancelled while asleep
                future.cancel()
            if entry in self._sleeps:
                self._sleeps.remove(entry)

    def advance(self, delta: timedelta | float) -> None:
        """Move time on by ``delta`` (a timedelta or seconds), waking every sleep it ends."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        if not seconds >= 0:
            raise ValueError("a clock does not move backwards")
        self._set(self.now() + timedelta(seconds=seconds))

    def set(self, when: datetime) -> None:
        """Move to ``when``; an earlier time is ignored, so time never runs backwards."""
        self._set(max(self.now(), when))

    def on_bar(self, bar: Bar) -> None:
        """Replay time: a bar has been seen once it has ended."""
        end = bar.end_epoch
        if end > self._epoch:
            self._epoch = end
            self._when = None
            if self._sleeps and self._sleeps[0].deadline <= end:
                self._wake_due()

    def next_wake(self, bars: BarColumns, start: int) -> int:
        """The clock never needs a bar in particular: it catches up in :meth:`skip`."""
        return len(bars)

    skip = on_bar

    # -- what a test needs to drive the sleepers ----------------------------------------------

    @property
    def sleeping(self) -> list[float]:
        """How long each pending sleep asked for, the one that ends first first."""
        return [s.seconds for s in self._sleeps if not s.future.done()]

    @property
    def next_deadline(self) -> datetime | None:
        """When the first pending sleep ends (None: nobody sleeps)."""
        for s in self._sleeps:
            if not s.future.done():
                if math.isinf(s.deadline):
                    return None
                return datetime.fromtimestamp(s.deadline, UTC)
        return None

    async def sleepers(self, count: int = 1) -> None:
        """Return once at least ``count`` sleeps are pending (wrap it in a timeout in a test)."""
        if len(self.sleeping) >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._watchers.append((count, future))
        try:
            await future
        finally:
            self._watchers = [(n, f) for n, f in self._watchers if f is not future]

    def wake_next(self) -> None:
        """End the first pending sleep now, before its deadline: a clock that wakes early."""
        for s in self._sleeps:
            if not s.future.done():
                self._sleeps.remove(s)
                s.future.set_result(None)
                return
        raise LookupError("nobody sleeps on this clock")

    def _wake_due(self) -> None:
        due = 0
        while due < len(self._sleeps) and self._sleeps[due].deadline <= self._epoch:
            due += 1
        woken, self._sleeps = self._sleeps[:due], self._sleeps[due:]
        for s in woken:
            if not s.future.done():
                s.future.set_result(None)

    def _notify_watchers(self) -> None:
        pending = len(self.sleeping)
        for count, future in self._watchers:
            if count <= pending and not future.done():
                future.set_result(None)
