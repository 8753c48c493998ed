"""Clock-aligned N-minute bars from finer bars.

The aggregator takes bars of any size that divides the strategy size (IB's 5-second bars, recorded
1-minute bars, or bars already at the strategy size) and builds buckets aligned to the clock
(``[k*N, (k+1)*N)`` in epoch seconds, which for N dividing 60 minutes is aligned to every hour and to
the 18:00 ET session open). When a session calendar is given, a bucket never spans a halt: it is cut
at the session close and the cut bar is emitted at the close.

A bucket is emitted as soon as it is complete, meaning a bar arrived whose end reaches the bucket's end,
or time has moved past it (:meth:`BarAggregator.close_before`, called by the caller with the start of the
next bar, or with the clock in a live feed). Irregular input is handled and counted in
:class:`AggregationStats`:

* gaps (a bar starting after the previous one ended, within a session) are counted; the bucket is built
  from the bars that did arrive;
* duplicates (a start already seen in the open bucket, or the start of the bar just before it) are dropped;
  a duplicate whose fields differ is counted separately as a conflict and the first version is kept;
* out-of-order bars that still belong to the open bucket are merged in their right place (open from the
  earliest bar, close from the latest); older ones arrive too late and are dropped and counted;
* bars that straddle a bucket boundary, or that fall while the calendar says the market is closed, are
  dropped and counted.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import NamedTuple

from domain.bar import Bar
from domain.calendar import SessionCalendar
from domain.errors import CalendarCoverageError, DomainError

_NO_BARS: tuple[Bar, ...] = ()
_NO_LIMIT = 2**63 - 1


class PassRun(NamedTuple):
    """Bars ``[start, stop)`` of a batch (see :meth:`BarAggregator.pass_through_runs`)."""

    start: int
    stop: int
    passes: bool
    sessions: tuple[tuple[int, int, int], ...]
    """For a run that passes: ``(first index, open, close)`` of each session its bars lie in."""


@dataclass(slots=True)
class AggregationStats:
    """Counters of what the aggregator saw. All counts are of input bars unless named otherwise."""

    bars_in: int = 0
    bars_out: int = 0
    gaps: int = 0
    duplicates: int = 0
    conflicting_duplicates: int = 0
    out_of_order_merged: int = 0
    late_dropped: int = 0
    misaligned_dropped: int = 0
    outside_session_dropped: int = 0
    cut_at_halt: int = 0
    """Emitted bars shortened because a session opened or closed inside their clock window."""
    uncovered: int = 0
    """Bars whose time the calendar does not cover (aggregated without halt knowledge)."""

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class _Bucket:
    __slots__ = (
        "close",
        "end",
        "first_epoch",
        "high",
        "last_epoch",
        "low",
        "open",
        "seen",
        "start",
        "volume",
    )

    def __init__(self, start: int, end: int, bar: Bar) -> None:
        self.start = start
        self.end = end
        self.open = bar.open
        self.high = bar.high
        self.low = bar.low
        self.close = bar.close
        self.volume = bar.volume
        self.first_epoch = bar.epoch
        self.last_epoch = bar.epoch
        self.seen: dict[int, Bar] = {bar.epoch: bar}

    def merge(self, bar: Bar) -> None:
        # Comparisons, not max()/min() (PLR1730): this runs for every finer bar of a replay.
        if bar.high > self.high:  # noqa: PLR1730
            self.high = bar.high
        if bar.low < self.low:  # noqa: PLR1730
            self.low = bar.low
        self.volume += bar.volume
        if bar.epoch < self.first_epoch:
            self.first_epoch = bar.epoch
            self.open = bar.open
        if bar.epoch > self.last_epoch:
            self.last_epoch = bar.epoch
            self.close = bar.close
        self.seen[bar.epoch] = bar

    def to_bar(self) -> Bar:
        return Bar.at_epoch(
            self.start,
            self.end - self.start,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
        )


class BarAggregator:
    """Builds clock-aligned bars of ``bar_seconds`` from finer bars; see the module docstring."""

    def __init__(self, bar_seconds: int, calendar: SessionCalendar | None = None) -> None:
        if bar_seconds <= 0 or 3600 % bar_seconds:
            raise DomainError(f"strategy bar size {bar_seconds}s must divide an hour")
        self._n = bar_seconds
        self._calendar = calendar
        self.stats = AggregationStats()
        self._bucket: _Bucket | None = None
        # Start of the last bucket emitted or passed through, and the bars it held (for duplicates).
        self._done_start = -1
        self._done_seen: dict[int, Bar] = {}
        self._prev_end = -1  # end of the latest bar accepted, for gap counting
        # Cached session bounds: [open, close) known open; None when no calendar.
        self._session_open = 0
        self._session_close = -1

    @property
    def bar_seconds(self) -> int:
        return self._n

    def accepts_pass_through(self, first_epoch: int) -> bool:
        """Whether clock-aligned, increasing bars of one size starting at ``first_epoch`` may be
        accounted for without :meth:`add` (as far as :meth:`pass_through_window` allows): no
        bucket is open, and they start where every bar accepted so far has ended, so none of them
        repeats or precedes one (a repeated finer bar can start after the last emitted bucket's
        start, and add() would drop it)."""
        return (
            self._bucket is None
            and first_epoch > self._done_start
            and first_epoch >= self._prev_end
        )

    def pass_through_window(self) -> tuple[int, int]:
        """``(start, end)`` in epoch seconds: strategy-sized, clock-aligned bars that start at or
        after ``start`` and end at or before ``end`` pass through untouched now (and once
        :meth:`accepts_pass_through` holds). Without a calendar, any bar; with one, the bars of the
        session last entered, since a bar past it may open the next session, fall in a halt or be
        cut at the close. An empty window (``end <= start``): every bar must be added."""
        if self._calendar is None:
            return (0, _NO_LIMIT)
        if self._bucket is not None:
            return (0, -1)
        # (0, -1) before any session or when the calendar does not cover the time; (0, 0) when the
        # market was closed: empty either way.
        return (self._session_open, self._session_close)

    def pass_through_runs(self, starts: Sequence[int], seconds: int) -> list[PassRun]:
        """Splits increasing, clock-aligned bars of one size (their ``starts``) into runs of indices,
        in order: a run that passes holds bars that each lie wholly in a session (the calendar lets
        them through), one that does not holds bars the calendar drops (in a halt or a closed day,
        or running past a close). Without a calendar, one run that passes. From the first bar the
        calendar does not cover, one last run that does not pass."""
        n = len(starts)
        calendar = self._calendar
        if calendar is None:
            return [PassRun(0, n, True, ((0, 0, _NO_LIMIT),))] if n else []
        runs: list[PassRun] = []

        def run(i: int, j: int, session: tuple[int, int, int] | None) -> None:
            if j <= i:
                return
            passes = session is not None
            sessions = () if session is None else (session,)
            if runs and runs[-1].passes == passes:
                last = runs[-1]
                runs[-1] = PassRun(last.start, j, passes, last.sessions + sessions)
            else:
                runs.append(PassRun(i, j, passes, sessions))

        i = 0
        try:
            while i < n:
                session = calendar.session_at(starts[i])
                if session is None:  # closed until the next session opens
                    j = bisect_left(starts, calendar.next_session(starts[i]).open_epoch, i)
                    run(i, j, None)
                    i = j
                    continue
                close = session.close_epoch
                whole = bisect_right(starts, close - seconds, i)  # bars ending by the close
                cut = bisect_left(starts, close, whole)  # the rest of those starting before it
                run(i, whole, (i, session.open_epoch, close))
                run(whole, cut, None)
                i = cut
        except CalendarCoverageError:
            run(i, n, None)
        return runs

    def note_pass_through(self, count: int, first_epoch: int, gaps: int, last: Bar) -> None:
        """Account for ``count`` strategy-sized bars that passed through without :meth:`add`
        (within :meth:`pass_through_window`); see :meth:`note_buckets`."""
        self.note_buckets(count, first_epoch, gaps, count, 0, last.epoch, (last,))

    def note_buckets(
        self,
        count: int,
        first_epoch: int,
        gaps: int,
        buckets: int,
        cut: int,
        last_start: int,
        last_bars: Sequence[Bar],
    ) -> None:
        """Account for ``count`` bars that were not added, all within :meth:`pass_through_window`
        and making ``buckets`` whole strategy bars (``cut`` of them cut at a halt) that were not
        emitted: the first bar starts at ``first_epoch``, ``gaps`` of the others start after the bar
        before them ended, and the last strategy bar starts at ``last_start`` and holds
        ``last_bars`` (in order). The state and counters end up as if each bar had been added and
        each strategy bar emitted."""
        stats = self.stats
        stats.bars_in += count
        stats.bars_out += buckets
        stats.cut_at_halt += cut
        # The first bar is compared with the latest bar accepted before it, as add() does (a bar
        # opening the session after a halt is no gap); the others follow a bar of the same session.
        if (
            self._prev_end != -1
            and first_epoch > self._prev_end
            and not self._after_halt(first_epoch)
        ):
            gaps += 1
        stats.gaps += gaps
        self._done_start = last_start
        self._done_seen = {bar.epoch: bar for bar in last_bars}
        self._prev_end = last_bars[-1].end_epoch

    @property
    def last_end(self) -> int:
        """End of the latest bar accepted (-1 before the first)."""
        return self._prev_end

    @property
    def open_until(self) -> int | None:
        """End (epoch seconds) of the strategy bar being built (None: none is open)."""
        bucket = self._bucket
        return None if bucket is None else bucket.end

    def close_before(self, epoch: int) -> Bar | None:
        """Emit the open bucket if it ends at or before ``epoch`` (time has passed it)."""
        bucket = self._bucket
        if bucket is None or bucket.end > epoch:
            return None
        return self._emit(bucket)

    def flush(self) -> Bar | None:
        """Emit the open bucket, whatever time it is: the input has ended inside it (a recording
        that stops mid-bucket still makes its last bar, as any resampling of it would)."""
        bucket = self._bucket
        return None if bucket is None else self._emit(bucket)

    def add(self, bar: Bar) -> tuple[Bar, ...]:
        """Add one finer bar; returns the bars it completes (usually none or one)."""
        stats = self.stats
        stats.bars_in += 1
        n = self._n
        epoch = bar.epoch
        if bar.seconds > n or n % bar.seconds:
            raise DomainError(
                f"input bars of {bar.seconds}s cannot build {n}s bars (the size must divide it)"
            )
        start = epoch - epoch % n
        end = start + n
        if bar.end_epoch > end:
            stats.misaligned_dropped += 1
            return _NO_BARS
        if self._calendar is not None:
            if not (self._session_open <= epoch < self._session_close) and not self._enter_session(
                epoch
            ):
                if self._session_close == -1:
                    stats.uncovered += 1
                else:
                    stats.outside_session_dropped += 1
                    return _NO_BARS
            if self._session_close != -1:
                start = max(start, self._session_open)
                if end > self._session_close:
                    end = self._session_close
                    if bar.end_epoch > end:
                        stats.outside_session_dropped += 1
                        return _NO_BARS

        bucket = self._bucket
        emitted: tuple[Bar, ...] = _NO_BARS
        if bucket is not None:
            if start == bucket.start:
                return self._merge(bucket, bar)
            if start < bucket.start:
                self._drop_old(bar)
                return _NO_BARS
            emitted = (self._emit(bucket),)
        elif start <= self._done_start:
            self._drop_old(bar)
            return _NO_BARS

        if self._prev_end != -1 and epoch > self._prev_end and not self._after_halt(epoch):
            stats.gaps += 1
        if bar.end_epoch > self._prev_end:  # noqa: PLR1730 (a builtin call per bar)
            self._prev_end = bar.end_epoch
        if bar.epoch == start and bar.end_epoch == end:
            # The bar is exactly one strategy bar: pass it through untouched.
            self._done_start = start
            self._done_seen = {epoch: bar}
            stats.bars_out += 1
            return (*emitted, bar)
        new = _Bucket(start, end, bar)
        if bar.end_epoch == end:
            return (*emitted, self._emit(new))
        self._bucket = new
        return emitted

    # -- internals -------------------------------------------------------------------------

    def _merge(self, bucket: _Bucket, bar: Bar) -> tuple[Bar, ...]:
        stats = self.stats
        known = bucket.seen.get(bar.epoch)
        if known is not None:
            stats.duplicates += 1
            if known != bar:
                stats.conflicting_duplicates += 1
            return _NO_BARS
        if bar.epoch < bucket.last_epoch:
            stats.out_of_order_merged += 1
        elif bar.epoch > self._prev_end and not self._after_halt(bar.epoch):
            stats.gaps += 1
        bucket.merge(bar)
        if bar.end_epoch > self._prev_end:  # noqa: PLR1730 (a builtin call per bar)
            self._prev_end = bar.end_epoch
        if bar.end_epoch == bucket.end:
            return (self._emit(bucket),)
        return _NO_BARS

    def _drop_old(self, bar: Bar) -> None:
        known = self._done_seen.get(bar.epoch)
        if known is not None:
            self.stats.duplicates += 1
            if known != bar:
                self.stats.conflicting_duplicates += 1
        else:
            self.stats.late_dropped += 1

    def _emit(self, bucket: _Bucket) -> Bar:
        self._bucket = None
        self._done_start = bucket.start
        self._done_seen = bucket.seen
        self.stats.bars_out += 1
        if bucket.end - bucket.start < self._n:
            self.stats.cut_at_halt += 1
        return bucket.to_bar()

    def _enter_session(self, epoch: int) -> bool:
        """Cache the session containing ``epoch``. False if the market is closed or uncovered."""
        assert self._calendar is not None
        try:
            session = self._calendar.session_at(epoch)
        except CalendarCoverageError:
            self._session_open, self._session_close = 0, -1
            return False
        if session is None:
            self._session_open, self._session_close = 0, 0
            return False
        self._session_open, self._session_close = session.open_epoch, session.close_epoch
        return True

    def _after_halt(self, epoch: int) -> bool:
        """True when the previous bar ended at or before this session's open (no gap: a halt)."""
        return self._calendar is not None and self._prev_end <= self._session_open <= epoch
