"""The fast replay: a recording through the trading service, visiting only the bars that matter.

The plain path (:meth:`TradingService.run <application.services.TradingService.run>`) hands every
bar to the listeners, the aggregator and the engine. A replay holds its bars as columns, so it can do
better with the same decisions: the engine's quiet rule (:mod:`domain.quiet`) and each listener's
``next_wake`` say which bars need someone, and the bars in between are accounted for in bulk (they
would produce no command). A visited bar goes through the listeners, the aggregator and
``Engine.on_bar`` exactly as in the plain path.

Bars of the strategy's size pass through the aggregator untouched, so each is a strategy bar; the
engine has no entry point for skipped bars, and a batch that ends quiet hands its last bar to
``Engine.on_bar`` (which, by the quiet rule, decides nothing there and keeps it as its last bar, as
the plain path leaves it). Finer bars (1-minute, IB's 5-second bars) are built into strategy bars
at once, as the aggregator builds them; the fast replay skips whole strategy bars and walks the
finer bars of the others one by one; the last strategy bar of a batch is carried into the next one
(or handed to the plain path, which closes it).

It is chosen explicitly (the replay command builds it); a batch it cannot skip through (bars whose
size does not divide the strategy's, not clock-aligned, repeated or out of order) goes down the
plain path, and so do the bars a session calendar drops (in a halt, on a closed day, running past a
close). A skip never crosses the end of the aggregator's session: the next session's first bar goes
through the aggregator, which enters it. Property tests compare the two paths on random series and
configurations.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from application.bar_columns import BarColumns, first_at_or_after, next_true
from application.ports import BarListener
from application.services import TradingService
from domain.bar import Bar
from domain.quiet import QuietRule, WakeSpec


class SkippableBarListener(BarListener, Protocol):
    """A bar listener that can say which bars it needs, so the others can be skipped in bulk."""

    def next_wake(self, bars: BarColumns, start: int) -> int:
        """The first index >= ``start`` of ``bars`` that this listener must see (``len(bars)``: none)."""
        ...

    def skip(self, bar: Bar) -> None:
        """Bars up to and including ``bar`` went by; none of them needed this listener."""
        ...


class ColumnFeed(Protocol):
    """Recorded bars, oldest first, in batches of columns."""

    def column_batches(self) -> AsyncIterator[BarColumns]: ...


class FastReplay:
    """Runs a recording through ``service``, skipping the bars that need neither the engine nor a
    listener. ``listeners`` are the service's own bar listeners, typed as able to skip."""

    def __init__(
        self, *, service: TradingService, listeners: Sequence[SkippableBarListener]
    ) -> None:
        if service.checkpointed:
            raise ValueError("the fast replay skips bars: it cannot checkpoint every strategy bar")
        if tuple(listeners) != service.bar_listeners:
            raise ValueError("the fast replay must drive the trading service's own bar listeners")
        self.service = service
        self._listeners = tuple(listeners)
        self._quiet = QuietRule(service.engine)

    async def run(self, feed: ColumnFeed) -> None:
        """Trade on the whole recording, then decide the strategy bar still open at its end."""
        service = self.service
        aggregator = service.aggregator
        carried: BarColumns | None = None  # finer bars of a strategy bar the last batch cut
        async for received in feed.column_batches():
            batch = received if carried is None else carried.joined(received)
            carried = None
            if not self._can_skip(batch):
                batch = await self._close_open_bar(batch)
                if not self._can_skip(batch):
                    await service.on_bars(batch)
                    continue
            fine = batch.seconds < aggregator.bar_seconds
            runs = aggregator.pass_through_runs(batch.epochs.tolist(), batch.seconds)
            for run in runs:
                part = batch if run.stop - run.start == len(batch) else batch[run.start : run.stop]
                assert isinstance(part, BarColumns)
                if not run.passes or not aggregator.accepts_pass_through(int(part.epochs[0])):
                    # Bars the calendar drops (their z-scores must not be computed), or a strategy
                    # bar left open by the plain path.
                    await service.on_bars(part)
                elif not fine:
                    await self._on_columns(part)
                else:
                    sessions = tuple((i - run.start, o, c) for i, o, c in run.sessions)
                    rest = await self._on_finer(part, sessions)
                    if run.stop < len(batch):
                        await service.on_bars(rest)  # the plain path closes it
                    else:
                        carried = rest  # the next batch may hold more of its bars
        if carried is not None:
            await service.on_bars(carried)
        await service.end_of_recording()
        await service.settle()

    async def _close_open_bar(self, bars: BarColumns) -> BarColumns:
        """After the plain path (a batch it could not skip through), the aggregator may be building
        a strategy bar from finer bars: hand the bars that still belong to it to the plain path and
        close it, so that the rest of the batch may be skipped through. Returns the rest."""
        service = self.service
        until = service.aggregator.open_until
        if until is None or len(bars) == 0 or bars.seconds >= service.aggregator.bar_seconds:
            return bars
        rest = int(np.searchsorted(bars.epochs, until))
        if rest == len(bars) or not bars.is_clock_aligned():
            return bars
        head, tail = bars[:rest], bars[rest:]
        assert isinstance(tail, BarColumns)
        await service.on_bars(head)
        await service.close_before(int(tail.epochs[0]))
        return tail

    def _can_skip(self, bars: BarColumns) -> bool:
        """Whether quiet bars of this batch may be skipped: they pass through the aggregator
        untouched (strategy-sized, clock-aligned, newer; with a session calendar, the bars of
        :meth:`BarAggregator.pass_through_runs <domain.aggregation.BarAggregator.pass_through_runs>`
        that pass, up to each session's end), or they are finer bars, each aligned to its own size,
        that build strategy bars the same way."""
        aggregator = self.service.aggregator
        size = aggregator.bar_seconds
        return (
            len(bars) > 0
            and bars.seconds <= size
            and size % bars.seconds == 0
            and aggregator.accepts_pass_through(int(bars.epochs[0]))
            and bars.is_clock_aligned()
        )

    async def _on_finer(
        self, bars: BarColumns, sessions: tuple[tuple[int, int, int], ...]
    ) -> BarColumns:
        """The plain path's decisions on bars finer than the strategy's, visiting only the strategy
        bars that need the engine or a listener, bar by bar; the others are accounted for in bulk.
        Every strategy bar but the last is decided here, and the bars of the last are returned: it
        may continue in the next batch, and the plain path closes it otherwise.

        The strategy bars are built at once from the finer bars (as the aggregator builds them, each
        within its session), and their z-scores computed at once (advancing the service's z-score).
        A strategy bar the aggregator emits on a visit must be the one built here, or this raises.
        """
        service = self.service
        engine = service.engine
        aggregator = service.aggregator
        listeners = self._listeners
        quiet = self._quiet
        buckets = _Buckets(bars, aggregator.bar_seconds, sessions)
        count = buckets.count - 1  # strategy bars decided here
        end = buckets.first[count]  # the finer bars before the last strategy bar
        if count == 0:
            return bars
        service.counters.bars_in += end
        strategy = buckets.columns(count)
        scores = service.zscore.update_many(strategy.closes)
        wakes = _Wakes(strategy, scores.values)
        fine = _Rows(bars)
        first = buckets.first
        bucket_of = buckets.bucket_of

        async def decide(done: Bar) -> None:
            k = buckets.index(done, count)
            service.counters.strategy_bars += 1
            commands = engine.on_bar(done, scores.at(k))
            if commands:
                await service.execute(commands)

        f = 0
        while f < end:
            k = bucket_of[f]
            if f == first[k] and aggregator.accepts_pass_through(fine.starts[f]):
                j = wakes.first(quiet.wake_spec(), k)
                for listener in listeners:
                    if j == k:
                        break
                    g = listener.next_wake(bars, f)
                    j = min(j, bucket_of[g] if g < end else count)
                if j > k:
                    j = min(j, wakes.first_outside(aggregator.pass_through_window(), k))
                if j > k:
                    # The engine does not see the strategy bars skipped: the next one it decides
                    # replaces its last bar, and nothing in between reads it. (The last strategy
                    # bar of the batch is not decided here: the engine sees it.)
                    self._skip_buckets(k, j, buckets, fine)
                    f = first[j]
                    continue
            bar = fine.bar(f)
            closed = aggregator.close_before(bar.epoch)
            if closed is not None:
                await decide(closed)
            for listener in listeners:
                listener.on_bar(bar)
            if service.events_waiting:
                await service.settle()
            for done in aggregator.add(bar):
                await decide(done)
            f += 1
        # The next bar closes a strategy bar still open by time: decided here, as it was scored here.
        closed = aggregator.close_before(fine.starts[end])
        if closed is not None:
            await decide(closed)
        rest = bars[end:]
        assert isinstance(rest, BarColumns)
        return rest

    def _skip_buckets(self, k: int, j: int, buckets: _Buckets, fine: _Rows) -> None:
        """Account for strategy bars ``[k, j)`` and their finer bars, none of which needed the
        engine or a listener."""
        a, b = buckets.first[k], buckets.first[j]
        last_bars = [fine.bar(i) for i in range(buckets.first[j - 1], b)]
        self.service.aggregator.note_buckets(
            b - a,
            fine.starts[a],
            fine.gaps_within(a, b),
            j - k,
            buckets.cut_within(k, j),
            buckets.starts[j - 1],
            last_bars,
        )
        self.service.counters.strategy_bars += j - k
        for listener in self._listeners:
            listener.skip(last_bars[-1])

    async def _on_columns(self, bars: BarColumns) -> None:
        """The plain path's decisions, visiting only the bars that need the engine or a listener.

        The z-scores of the whole batch are computed at once (advancing the service's z-score)."""
        service = self.service
        n = len(bars)
        service.counters.bars_in += n
        engine = service.engine
        aggregator = service.aggregator
        listeners = self._listeners
        quiet = self._quiet
        scores = service.zscore.update_many(bars.closes)
        wakes = _Wakes(bars, scores.values)
        i = 0
        while i < n:
            j = wakes.first(quiet.wake_spec(), i)
            for listener in listeners:
                if j == i:
                    break
                j = min(j, listener.next_wake(bars, i))
            if j > i:
                # Only within the aggregator's session: the first bar of the next one enters it.
                j = min(j, wakes.first_outside(aggregator.pass_through_window(), i))
            if j > i:
                self._skip(i, j, wakes)
            if j >= n:
                # The batch ends quiet. Its last bar goes to the engine, which by the quiet rule
                # decides nothing there and so keeps it as its last bar, as the plain path does.
                # (A quiet run followed by a visit needs no such call: the visited bar's on_bar
                # replaces the last bar, and nothing in between reads it.)
                commands = engine.on_bar(wakes.rows.bar(n - 1), scores.at(n - 1))
                if commands:
                    await service.execute(commands)
                return
            bar = wakes.rows.bar(j)
            for listener in listeners:
                listener.on_bar(bar)
            if service.events_waiting:
                await service.settle()
            for done in aggregator.add(bar):
                service.counters.strategy_bars += 1
                commands = engine.on_bar(done, scores.at(j))
                if commands:
                    await service.execute(commands)
            i = j + 1

    def _skip(self, i: int, j: int, wakes: _Wakes) -> None:
        """Account for bars ``[i, j)``, none of which needed the engine or a listener."""
        service = self.service
        aggregator = service.aggregator
        rows = wakes.rows
        last = rows.bar(j - 1)
        aggregator.note_pass_through(j - i, rows.starts[i], rows.gaps_within(i, j), last)
        service.counters.strategy_bars += j - i
        for listener in self._listeners:
            listener.skip(last)


class _Wakes:
    """Finds, for a batch, the first bar at or after an index that matches a :class:`WakeSpec`.

    The z-score conditions are answered from next-match tables built once per threshold (so each
    query is O(1)), time conditions by bisection, price conditions by a short scan.
    """

    __slots__ = ("_abs_z", "_at_least", "_at_most", "_closes", "_ends", "_n", "_starts", "rows")

    def __init__(self, bars: BarColumns, z: npt.NDArray[np.float64]) -> None:
        self.rows = _Rows(bars)
        self._n = len(bars)
        self._abs_z = np.abs(z)
        self._closes = bars.closes
        self._starts = self.rows.starts
        self._ends: list[int] = (bars.epochs + bars.seconds).tolist()
        self._at_least: dict[float, list[int]] = {}
        self._at_most: dict[float, list[int]] = {}

    def first_outside(self, window: tuple[int, int], start: int) -> int:
        """The first index >= ``start`` whose bar is not wholly in ``[window[0], window[1])``
        (bars are increasing: only the first can start too early)."""
        if self._starts[start] < window[0]:
            return start
        return bisect_right(self._ends, window[1], start)

    def first(self, spec: WakeSpec, start: int) -> int:
        if spec.every_bar:
            return start
        found = self._n
        if spec.z_abs_at_least is not None:
            table = self._at_least.get(spec.z_abs_at_least)
            if table is None:
                with np.errstate(invalid="ignore"):
                    table = next_true(self._abs_z >= spec.z_abs_at_least)
                self._at_least[spec.z_abs_at_least] = table
            found = min(found, table[start])
        if spec.z_abs_at_most is not None:
            table = self._at_most.get(spec.z_abs_at_most)
            if table is None:
                with np.errstate(invalid="ignore"):
                    table = next_true(self._abs_z <= spec.z_abs_at_most)
                self._at_most[spec.z_abs_at_most] = table
            found = min(found, table[start])
        if spec.start_at_least is not None:
            found = min(found, bisect_left(self._starts, spec.start_at_least, start))
        if spec.end_at_least is not None:
            found = min(found, bisect_left(self._ends, spec.end_at_least, start))
        closes = self._closes
        if spec.close_at_most is not None and found > start:
            limit = spec.close_at_most
            found = first_at_or_after(lambda lo, hi: closes[lo:hi] <= limit, start, found)
        if spec.close_at_least is not None and found > start:
            floor = spec.close_at_least
            found = first_at_or_after(lambda lo, hi: closes[lo:hi] >= floor, start, found)
        return found


class _Rows:
    """A batch's bars one at a time (as ``bars[i]``, from the columns turned into lists once, when
    the first bar is taken), their starts, and their gaps (each start against the end before)."""

    __slots__ = ("_bars", "_gaps", "_rows", "starts")

    def __init__(self, bars: BarColumns) -> None:
        epochs = bars.epochs
        self._bars = bars
        self.starts: list[int] = epochs.tolist()
        # _gaps[k]: how many of bars 1..k start after the bar before them ended.
        self._gaps: list[int] = np.concatenate(
            ([0], np.cumsum(epochs[1:] > epochs[:-1] + bars.seconds))
        ).tolist()
        self._rows: tuple[list[float], list[float], list[float], list[float], list[int]] | None
        self._rows = None

    def bar(self, i: int) -> Bar:
        rows = self._rows
        if rows is None:
            b = self._bars
            rows = self._rows = (
                b.opens.tolist(),
                b.highs.tolist(),
                b.lows.tolist(),
                b.closes.tolist(),
                b.volumes.tolist(),
            )
        opens, highs, lows, closes, volumes = rows
        return Bar.at_epoch(
            self.starts[i], self._bars.seconds, opens[i], highs[i], lows[i], closes[i], volumes[i]
        )

    def gaps_within(self, i: int, j: int) -> int:
        """How many of bars ``i+1 .. j-1`` start after the bar before them ended."""
        return self._gaps[j - 1] - self._gaps[i]


class _Buckets:
    """The strategy bars that finer bars build, as :class:`BarAggregator
    <domain.aggregation.BarAggregator>` builds them from clean input: clock-aligned buckets of
    ``size`` seconds, cut to the session each finer bar lies in (``sessions``: the first index,
    open and close of each)."""

    __slots__ = ("_cut", "_ends", "_ohlcv", "_size", "bucket_of", "count", "first", "starts")

    def __init__(
        self, bars: BarColumns, size: int, sessions: tuple[tuple[int, int, int], ...]
    ) -> None:
        n = len(bars)
        epochs = bars.epochs
        segment_starts = np.array([s[0] for s in sessions], dtype=np.int64)
        segment = np.searchsorted(segment_starts, np.arange(n), side="right") - 1
        opens_at = np.array([s[1] for s in sessions], dtype=np.int64)[segment]
        closes_at = np.array([s[2] for s in sessions], dtype=np.int64)[segment]
        aligned = epochs - epochs % size
        new = np.ones(n, dtype=bool)
        new[1:] = (aligned[1:] != aligned[:-1]) | (segment[1:] != segment[:-1])
        first = np.flatnonzero(new)
        last = np.append(first[1:], n) - 1
        starts = np.maximum(aligned[first], opens_at[first])
        ends = np.minimum(aligned[first] + size, closes_at[first])
        self._size = size
        self.count = len(first)
        self.first: list[int] = [*first.tolist(), n]
        self.bucket_of: list[int] = (np.cumsum(new) - 1).tolist()
        self.starts: list[int] = starts.tolist()
        self._ends: list[int] = ends.tolist()
        self._cut: list[int] = np.concatenate(([0], np.cumsum(ends - starts < size))).tolist()
        self._ohlcv = (
            bars.opens[first],
            np.maximum.reduceat(bars.highs, first),
            np.minimum.reduceat(bars.lows, first),
            bars.closes[last],
            np.add.reduceat(bars.volumes, first),
        )

    def columns(self, count: int) -> BarColumns:
        """The first ``count`` strategy bars as columns (each ending, there, a whole strategy
        bar's length after its start: what the wake tests read, erring early)."""
        opens, highs, lows, closes, volumes = self._ohlcv
        return BarColumns(
            self._size,
            np.array(self.starts[:count], dtype=np.int64),
            opens[:count],
            highs[:count],
            lows[:count],
            closes[:count],
            volumes[:count],
        )

    def bar(self, k: int) -> Bar:
        """Strategy bar ``k`` as the aggregator emits it."""
        opens, highs, lows, closes, volumes = self._ohlcv
        start = self.starts[k]
        return Bar.at_epoch(
            start,
            self._ends[k] - start,
            float(opens[k]),
            float(highs[k]),
            float(lows[k]),
            float(closes[k]),
            int(volumes[k]),
        )

    def index(self, bar: Bar, count: int) -> int:
        """The index of the strategy bar ``bar`` is, among the first ``count``; raises if the
        aggregator built another one."""
        k = bisect_left(self.starts, bar.epoch, 0, count)
        if k == count or self.bar(k) != bar:
            raise RuntimeError(
                f"fast replay: the aggregator emitted {bar!r}, not a strategy bar built here"
            )
        return k

    def cut_within(self, k: int, j: int) -> int:
        """How many of strategy bars ``k .. j-1`` are cut at a halt (shorter than the size)."""
        return self._cut[j] - self._cut[k]
