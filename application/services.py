"""The trading service: market bars and order events in, engine commands carried out through ports.

One service runs the live daemon and the replay; only the adapters differ. For each market bar it
keeps this order, which is what makes replay fills land where a live market would put them:

1. a strategy bar that time has passed (it ended at or before this bar's start) is decided first, and
   its orders go out;
2. bar listeners see the bar (the simulated broker fills resting orders against it);
3. order events that produced are applied;
4. the bar is aggregated, and a strategy bar it completes is decided.

Commands run one at a time, in the order the engine gave them (so an order's intent is journaled before
the order is sent), and events arriving meanwhile are applied after the current batch of commands.
"""

from __future__ import annotations

import asyncio
import math
from bisect import bisect_left
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

from application.bar_columns import BarColumns, first_at_or_after, next_true
from application.ports import (
    BarListener,
    Broker,
    BrokerError,
    Checkpoint,
    Journal,
    MarketData,
    Notifier,
    SkippableBarListener,
    ZScoreEngine,
)
from application.reconcile import broker_report
from domain.aggregation import BarAggregator
from domain.bar import Bar
from domain.commands import (
    CancelOrders,
    EngineCommand,
    Notify,
    PlaceBracket,
    PlaceExit,
    Reconcile,
)
from domain.commands import Journal as JournalCommand
from domain.engine import Engine, EngineStatus, WakeSpec
from domain.events import (
    CancelFailed,
    EngineEvent,
    OrderRejected,
    ReconcileFailed,
)


class EventInbox:
    """Order events waiting for the engine. Broker adapters ``put``; the service drains."""

    def __init__(self) -> None:
        self._events: deque[EngineEvent] = deque()
        self._ready = asyncio.Event()

    def put(self, event: EngineEvent) -> None:
        self._events.append(event)
        self._ready.set()

    def pop(self) -> EngineEvent:
        event = self._events.popleft()
        if not self._events:
            self._ready.clear()
        return event

    async def wait(self) -> None:
        await self._ready.wait()

    def __len__(self) -> int:
        return len(self._events)


@dataclass(slots=True)
class ServiceCounters:
    bars_in: int = 0
    strategy_bars: int = 0
    commands: int = 0
    broker_errors: int = 0
    orders_sent: int = 0
    """Placements handed to the broker (a bracket counts once)."""
    rejections: int = 0
    """OrderRejected events applied (a broker's refusal or a placement that could not be sent)."""


class TradingService:
    """Feeds the engine and carries out what it decides."""

    def __init__(
        self,
        *,
        engine: Engine,
        aggregator: BarAggregator,
        zscore: ZScoreEngine,
        broker: Broker,
        journal: Journal,
        notifier: Notifier,
        inbox: EventInbox,
        bar_listeners: Sequence[BarListener] = (),
    ) -> None:
        self.engine = engine
        self.aggregator = aggregator
        self._zscore = zscore
        self._broker = broker
        self._journal = journal
        self._notifier = notifier
        self._inbox = inbox
        self._listeners = tuple(bar_listeners)
        self._checkpoint: Checkpoint | None = None
        self._lock = asyncio.Lock()
        self.counters = ServiceCounters()
        skippable = [
            listener
            for listener in self._listeners
            if hasattr(listener, "next_wake") and hasattr(listener, "skip")
        ]
        self._skippable: tuple[SkippableBarListener, ...] | None = (
            tuple(cast(SkippableBarListener, listener) for listener in skippable)
            if len(skippable) == len(self._listeners)
            else None
        )

    # -- bars ----------------------------------------------------------------------------------

    async def run(
        self,
        market_data: MarketData,
        *,
        recording: bool = False,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        """Trade on ``market_data`` until it ends.

        ``recording``: the data is a recording whose end is the end of the input (a replay, the
        simulated feed), so a strategy bar still open then is decided as it stands. A live feed
        ends only when the daemon stops, mid-bar, and that bar is not decided.

        ``checkpoint``: called at every strategy-bar boundary (the daemon saves its state there).
        """
        self._checkpoint = checkpoint
        async for batch in market_data.batches():
            await self.on_bars(batch)
        if recording:
            last = self.aggregator.flush()
            if last is not None:
                commands = self._decide(last)
                if commands:
                    await self.execute(commands)
                if self._checkpoint is not None:
                    await self._checkpoint(last.end_epoch)
        await self.settle()

    async def on_bars(self, bars: Sequence[Bar]) -> None:
        """Process market bars in order (see the module docstring for the per-bar sequence)."""
        if isinstance(bars, BarColumns) and self._can_skip(bars):
            await self._on_columns(bars)
            return
        aggregator = self.aggregator
        close_before = aggregator.close_before
        add = aggregator.add
        listeners = self._listeners
        inbox = self._inbox
        decide = self._decide
        counters = self.counters
        counters.bars_in += len(bars)
        checkpoint = self._checkpoint
        for bar in bars:
            closed = close_before(bar.epoch)
            if closed is not None:
                commands = decide(closed)
                if commands:
                    await self.execute(commands)
                if checkpoint is not None:
                    await checkpoint(bar.epoch)
            for listener in listeners:
                listener.on_bar(bar)
            if inbox:
                await self.execute(())
            for done in add(bar):
                commands = decide(done)
                if commands:
                    await self.execute(commands)
                if checkpoint is not None:
                    await checkpoint(bar.epoch + 1)

    # -- the batch path: skip quiet bars ------------------------------------------------------

    def _can_skip(self, bars: BarColumns) -> bool:
        """Whether quiet bars of this batch may be skipped: they pass through the aggregator
        untouched (strategy-sized, clock-aligned, newer, no session calendar to cut them) and
        every listener can say which bars it needs."""
        return (
            self._skippable is not None
            and self._checkpoint is None
            and len(bars) > 0
            and bars.seconds == self.aggregator.bar_seconds
            and self.aggregator.accepts_pass_through(int(bars.epochs[0]))
            and bars.is_clock_aligned()
        )

    async def _on_columns(self, bars: BarColumns) -> None:
        """The same decisions as the per-bar path, visiting only the bars that need the engine or
        a listener: ``Engine.wake_spec`` and each listener's ``next_wake`` say which those are, and
        the bars in between are accounted for in bulk (they would produce no command).

        The z-scores of the whole batch are computed at once; a bar that is visited goes through
        the listeners, the aggregator and ``Engine.on_bar`` exactly as in the per-bar path.
        """
        assert self._skippable is not None
        n = len(bars)
        self.counters.bars_in += n
        engine = self.engine
        aggregator = self.aggregator
        listeners = self._skippable
        inbox = self._inbox
        scores = self._zscore.update_many(bars.closes)
        wakes = _Wakes(bars, scores.values)
        i = 0
        while i < n:
            j = wakes.first(engine.wake_spec(), i)
            for listener in listeners:
                if j == i:
                    break
                j = min(j, listener.next_wake(bars, i))
            if j > i:
                self._skip(bars, i, j, wakes)
            if j >= n:
                return
            bar = wakes.bar(j)
            for listener in listeners:
                listener.on_bar(bar)
            if inbox:
                await self.execute(())
            for done in aggregator.add(bar):
                self.counters.strategy_bars += 1
                commands = engine.on_bar(done, scores.at(j))
                if commands:
                    await self.execute(commands)
            i = j + 1

    def _skip(self, bars: BarColumns, i: int, j: int, wakes: _Wakes) -> None:
        """Account for bars ``[i, j)``, none of which needed the engine or a listener."""
        assert self._skippable is not None
        last = wakes.bar(j - 1)
        gaps = wakes.gaps_within(i, j)
        previous_end = self.aggregator.last_end
        if previous_end != -1 and wakes.start(i) > previous_end:
            gaps += 1
        self.aggregator.note_pass_through(j - i, gaps, last)
        self.counters.strategy_bars += j - i
        z = wakes.z(j - 1)
        self.engine.note_quiet(last, None if math.isnan(z) else z)
        for listener in self._skippable:
            listener.skip(last)

    def _decide(self, bar: Bar) -> list[EngineCommand]:
        self.counters.strategy_bars += 1
        return self.engine.on_bar(bar, self._zscore.update(bar.close))

    # -- events and commands -------------------------------------------------------------------

    async def handle(self, event: EngineEvent) -> None:
        """Apply an event from outside the bar loop (operator command, session timer, broker report)."""
        await self.execute(self.engine.handle(event))

    async def settle(self) -> None:
        """Apply every event waiting in the inbox."""
        await self.execute(())

    async def run_events(self) -> None:
        """Apply broker events as they arrive, between bars too (a stop can fill at any time).

        Runs until cancelled; the live daemon runs it beside :meth:`run`.
        """
        inbox = self._inbox
        while True:
            await inbox.wait()
            await self.settle()

    async def execute(self, commands: Sequence[EngineCommand]) -> None:
        """Carry out commands in order, then the engine's answers to any events they caused."""
        async with self._lock:
            pending: deque[EngineCommand] = deque(commands)
            inbox = self._inbox
            engine = self.engine
            append = self._journal.append
            notify = self._notifier.notify
            counters = self.counters
            while True:
                while pending:
                    command = pending.popleft()
                    counters.commands += 1
                    kind = type(command)
                    # Journal and alerts never block (their ports promise it): no await for them.
                    if kind is JournalCommand:
                        append(command.record)  # type: ignore[union-attr]
                    elif kind is Notify:
                        notify(command.alert)  # type: ignore[union-attr]
                    else:
                        await self._run(command)
                if not inbox:
                    return
                event = inbox.pop()
                if type(event) is OrderRejected:
                    counters.rejections += 1
                pending.extend(engine.handle(event))

    async def _run(self, command: EngineCommand) -> None:
        """The commands that talk to the broker (journal and alerts are handled in execute).

        A placement the adapter could not make comes back as a rejection. The adapter is never
        asked to retry: after any doubt the order is looked up by its key."""
        if isinstance(command, PlaceBracket):
            self.counters.orders_sent += 1
            try:
                await self._broker.place_bracket(command)
            except BrokerError as exc:
                self._not_sent(command.entry_key, command, exc)
        elif isinstance(command, PlaceExit):
            self.counters.orders_sent += 1
            try:
                await self._broker.place_exit(command)
            except BrokerError as exc:
                self._not_sent(command.key, command, exc)
        elif isinstance(command, CancelOrders):
            try:
                await self._broker.cancel(command)
            except BrokerError as exc:
                self.counters.broker_errors += 1
                self._inbox.put(CancelFailed(command.keys, command.ts, str(exc)))
        elif isinstance(command, Reconcile):
            report = await broker_report(self._broker, command.ts, "")
            if isinstance(report, ReconcileFailed):
                self.counters.broker_errors += 1
            self._inbox.put(report)

    def _not_sent(self, key: str, command: PlaceBracket | PlaceExit, exc: BrokerError) -> None:
        self.counters.broker_errors += 1
        self._inbox.put(OrderRejected(key, command.ts, f"not sent: {exc}"))

    # -- queries -------------------------------------------------------------------------------

    def status(self) -> EngineStatus:
        return self.engine.status()


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
        "_z",
    )

    def __init__(self, bars: BarColumns, z: npt.NDArray[np.float64]) -> None:
        self._bars = bars
        self._n = len(bars)
        self._z: list[float] = z.tolist()
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

    def z(self, i: int) -> float:
        """Bar ``i``'s float z (NaN where undefined)."""
        return self._z[i]

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
