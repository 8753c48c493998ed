"""The fast replay: a recording through the trading service, visiting only the bars that matter.

The plain path (:meth:`TradingService.run <application.services.TradingService.run>`) hands every
bar to the listeners, the aggregator and the engine. A replay holds its bars as columns, so it can do
better with the same decisions: the engine's quiet rule (:mod:`domain.quiet`) and each listener's
``next_wake`` say which bars need someone, and the bars in between are accounted for in bulk (they
would produce no command). A visited bar goes through the listeners, the aggregator and
``Engine.on_bar`` exactly as in the plain path. The engine has no entry point for skipped bars: a
batch that ends quiet hands its last bar to ``Engine.on_bar`` (which, by the quiet rule, decides
nothing there and keeps it as its last bar, as the plain path leaves it).

It is chosen explicitly (the replay command builds it); a batch it cannot skip through (bars not of
the strategy's size or not clock-aligned) goes down the plain path, and so do the bars a session
calendar drops (in a halt, on a closed day, running past a close). A skip never crosses the end of
the aggregator's session: the next session's first bar goes through the aggregator, which enters it.
A property test compares the two paths on random series and configurations.
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
        async for batch in feed.column_batches():
            if not self._can_skip(batch):
                await service.on_bars(batch)
                continue
            runs = aggregator.pass_through_runs(batch.epochs.tolist(), batch.seconds)
            for start, stop, passes in runs:
                part = batch if stop - start == len(batch) else batch[start:stop]
                assert isinstance(part, BarColumns)
                if passes and aggregator.accepts_pass_through(int(part.epochs[0])):
                    await self._on_columns(part)
                else:  # bars the calendar drops (their z-scores must not be computed) or cuts
                    await service.on_bars(part)
        await service.end_of_recording()
        await service.settle()

    def _can_skip(self, bars: BarColumns) -> bool:
        """Whether quiet bars of this batch may be skipped: they pass through the aggregator
        untouched (strategy-sized, clock-aligned, newer; with a session calendar, the bars of
        :meth:`BarAggregator.pass_through_runs <domain.aggregation.BarAggregator.pass_through_runs>`
        that pass, up to each session's end)."""
        aggregator = self.service.aggregator
        return (
            len(bars) > 0
            and bars.seconds == aggregator.bar_seconds
            and aggregator.accepts_pass_through(int(bars.epochs[0]))
            and bars.is_clock_aligned()
        )

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
                commands = engine.on_bar(wakes.bar(n - 1), scores.at(n - 1))
                if commands:
                    await service.execute(commands)
                return
            bar = wakes.bar(j)
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
        last = wakes.bar(j - 1)
        aggregator.note_pass_through(j - i, wakes.start(i), wakes.gaps_within(i, j), last)
        service.counters.strategy_bars += j - i
        for listener in self._listeners:
            listener.skip(last)


class _Wakes:
    """Finds, for a batch, the first bar at or after an index that matches a :class:`WakeSpec`.

    The z-score conditions are answered from next-match tables built once per threshold (so each
    query is O(1)), time conditions by bisection, price conditions by a short scan.
    """

    __slots__ = (
        "_abs_z",
        "_at_least",
        "_at_most",
        "_bars",
        "_closes",
        "_ends",
        "_gaps",
        "_n",
        "_rows",
        "_starts",
    )

    def __init__(self, bars: BarColumns, z: npt.NDArray[np.float64]) -> None:
        self._bars = bars
        self._n = len(bars)
        self._abs_z = np.abs(z)
        self._closes = bars.closes
        epochs = bars.epochs
        self._starts: list[int] = epochs.tolist()
        self._ends: list[int] = (epochs + bars.seconds).tolist()
        # _gaps[k]: how many of bars 1..k start after the bar before them ended.
        self._gaps: list[int] = np.concatenate(
            ([0], np.cumsum(epochs[1:] > epochs[:-1] + bars.seconds))
        ).tolist()
        self._at_least: dict[float, list[int]] = {}
        self._at_most: dict[float, list[int]] = {}
        self._rows: tuple[list[float], list[float], list[float], list[float], list[int]] | None
        self._rows = None

    def bar(self, i: int) -> Bar:
        """Bar ``i`` (as ``bars[i]``, from columns turned into lists once, on the first visit)."""
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
            self._starts[i], self._bars.seconds, opens[i], highs[i], lows[i], closes[i], volumes[i]
        )

    def start(self, i: int) -> int:
        """Bar ``i``'s start (epoch seconds)."""
        return self._starts[i]

    def first_outside(self, window: tuple[int, int], start: int) -> int:
        """The first index >= ``start`` whose bar is not wholly in ``[window[0], window[1])``
        (bars are increasing: only the first can start too early)."""
        if self._starts[start] < window[0]:
            return start
        return bisect_right(self._ends, window[1], start)

    def gaps_within(self, i: int, j: int) -> int:
        """How many of bars ``i+1 .. j-1`` start after the bar before them ended."""
        gaps = self._gaps
        return gaps[j - 1] - gaps[i]

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
