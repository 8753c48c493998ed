"""OHLCV bars.

A :class:`Bar` cannot exist in an invalid state: its start is a timezone-aware UTC instant on a whole
second, its prices are finite and positive with ``low <= open, close <= high``, its volume is a
non-negative integer. It also keeps its start and end as integer epoch seconds, which is what the
per-bar arithmetic (bucketing, comparisons) runs on; ``ts`` stays the authoritative aware datetime.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.errors import InvalidBar

_INF = float("inf")
_ZERO = timedelta(0)


class Bar:
    """One OHLCV bar covering ``[ts, ts + seconds)``.

    Immutable by contract: slots, and nothing assigns after construction. ``ts`` and ``end`` are aware
    UTC datetimes built on first use, since the hot paths (aggregation, replay) only need the epochs.
    """

    __slots__ = (
        "_end",
        "_ts",
        "close",
        "end_epoch",
        "epoch",
        "high",
        "low",
        "open",
        "seconds",
        "volume",
    )

    epoch: int
    end_epoch: int
    seconds: int
    open: float
    high: float
    low: float
    close: float
    volume: int
    _ts: datetime | None
    _end: datetime | None

    def __init__(
        self,
        ts: datetime,
        seconds: int,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: int,
    ) -> None:
        offset = ts.utcoffset()
        if offset is None or offset != _ZERO:
            raise InvalidBar(f"bar time {ts!r} must be timezone-aware UTC")
        if ts.microsecond:
            raise InvalidBar(f"bar time {ts.isoformat()} must be on a whole second")
        # A zone that is at UTC+0 only today (Europe/London in winter) would make `end` wall-clock
        # arithmetic in that zone, an hour off across its DST switch: keep the instant in UTC.
        self._ts = ts if ts.tzinfo is UTC else ts.astimezone(UTC)
        self._end = None
        self._fill(int(ts.timestamp()), seconds, open, high, low, close, volume)

    @classmethod
    def at_epoch(
        cls,
        epoch: int,
        seconds: int,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: int,
    ) -> Bar:
        """Build a bar from its start as epoch seconds (the form feeds and aggregation work in)."""
        bar = cls.__new__(cls)
        bar._ts = bar._end = None
        bar._fill(epoch, seconds, open, high, low, close, volume)
        return bar

    def _fill(
        self,
        epoch: int,
        seconds: int,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: int,
    ) -> None:
        if seconds <= 0:
            raise InvalidBar(f"bar at epoch {epoch}: duration must be positive, got {seconds}s")
        # Chained comparisons are False for NaN, so this also refuses NaN; `high < inf` refuses inf.
        if not (0.0 < low <= open <= high < _INF and low <= close <= high):
            raise InvalidBar(
                f"bar at epoch {epoch}: prices must be finite, positive and satisfy "
                f"low <= open, close <= high (o={open} h={high} l={low} c={close})"
            )
        if volume < 0:
            raise InvalidBar(f"bar at epoch {epoch}: negative volume {volume}")
        self.epoch = epoch
        self.end_epoch = epoch + seconds
        self.seconds = seconds
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume

    @property
    def ts(self) -> datetime:
        """The instant the bar opens (aware UTC)."""
        ts = self._ts
        if ts is None:
            ts = self._ts = datetime.fromtimestamp(self.epoch, UTC)
        return ts

    @property
    def end(self) -> datetime:
        """The instant the bar closes (exclusive end of its interval)."""
        end = self._end
        if end is None:  # built once: a decision on a bar reads it several times
            end = self._end = datetime.fromtimestamp(self.end_epoch, UTC)
        return end

    def _key(self) -> tuple[int, int, float, float, float, float, int]:
        return (self.epoch, self.seconds, self.open, self.high, self.low, self.close, self.volume)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Bar):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Bar({self.ts.isoformat()}, {self.seconds}s, o={self.open} h={self.high} "
            f"l={self.low} c={self.close} v={self.volume})"
        )
