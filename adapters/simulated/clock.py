"""A manual clock for replay and tests: time moves only when told, here by the recorded bars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from application.bar_columns import BarColumns
from domain.bar import Bar


class ManualClock:
    """Clock port whose time is set from outside. As a bar listener it follows the market bars."""

    def __init__(self, start: datetime | None = None) -> None:
        now = start if start is not None else datetime(1970, 1, 1, tzinfo=UTC)
        if now.utcoffset() is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._set(now)

    def _set(self, now: datetime) -> None:
        self._when: datetime | None = now
        self._epoch = now.timestamp()  # compared with every bar the replay visits

    def now(self) -> datetime:
        when = self._when
        if when is None:  # moved by a bar: the datetime is built when someone asks the time
            when = self._when = datetime.fromtimestamp(self._epoch, UTC)
        return when

    async def sleep(self, seconds: float) -> None:
        """Sleeping on a manual clock just moves it forward."""
        self.advance(timedelta(seconds=seconds))

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError("a clock does not move backwards")
        self._set(self.now() + delta)

    def set(self, when: datetime) -> None:
        """Move to ``when``; an earlier time is ignored, so time never runs backwards."""
        self._set(max(self.now(), when))

    def on_bar(self, bar: Bar) -> None:
        """Replay time: a bar has been seen once it has ended."""
        end = bar.end_epoch
        if end > self._epoch:
            self._epoch = end
            self._when = None

    def next_wake(self, bars: BarColumns, start: int) -> int:
        """The clock never needs a bar in particular: it catches up in :meth:`skip`."""
        return len(bars)

    skip = on_bar
