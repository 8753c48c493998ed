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
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from application.ports import (
    BarListener,
    Broker,
    BrokerError,
    Checkpoint,
    Journal,
    MarketData,
    Notifier,
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
    PlaceProtective,
    Reconcile,
)
from domain.commands import Journal as JournalCommand
from domain.engine import Engine, EngineStatus
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
        self._before_order: Callable[[], Awaitable[None]] | None = None
        self._lock = asyncio.Lock()
        self.counters = ServiceCounters()

    @property
    def zscore(self) -> ZScoreEngine:
        """The strategy's z-score (a runner that scores a batch at once advances this one)."""
        return self._zscore

    @property
    def bar_listeners(self) -> tuple[BarListener, ...]:
        return self._listeners

    @property
    def checkpointed(self) -> bool:
        """Whether every strategy-bar boundary is checkpointed (a daemon that resumes)."""
        return self._checkpoint is not None

    @property
    def events_waiting(self) -> bool:
        """Order events are waiting for the engine (:meth:`settle` applies them)."""
        return bool(self._inbox)

    # -- bars ----------------------------------------------------------------------------------

    async def run(
        self,
        market_data: MarketData,
        *,
        recording: bool = False,
        checkpoint: Checkpoint | None = None,
        before_order: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Trade on ``market_data`` until it ends.

        ``recording``: the data is a recording whose end is the end of the input (a replay, the
        simulated feed), so a strategy bar still open then is decided as it stands. A live feed
        ends only when the daemon stops, mid-bar, and that bar is not decided.

        ``checkpoint``: called at every strategy-bar boundary (the daemon saves its state there).

        ``before_order``: awaited before each order is sent, from then on (the daemon on a venue
        that outlives it makes the engine state that knows the order durable first).
        """
        self._checkpoint = checkpoint
        self._before_order = before_order
        async for batch in market_data.batches():
            await self.on_bars(batch)
        if recording:
            await self.end_of_recording()
        await self.settle()

    async def end_of_recording(self) -> None:
        """The input was a recording and it has ended: decide the strategy bar still open."""
        last = self.aggregator.flush()
        if last is not None:
            commands = self._decide(last)
            if commands:
                await self.execute(commands)
            if self._checkpoint is not None:
                await self._checkpoint(last.end_epoch)

    async def on_bars(self, bars: Sequence[Bar]) -> None:
        """Process market bars in order (see the module docstring for the per-bar sequence)."""
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

    async def close_before(self, epoch: int) -> None:
        """Decide the strategy bar being built if it ended at or before ``epoch``, as the first
        market bar at ``epoch`` would: for a runner that hands bars on in parts and checkpoints
        nothing (the fast replay)."""
        closed = self.aggregator.close_before(epoch)
        if closed is not None:
            commands = self._decide(closed)
            if commands:
                await self.execute(commands)

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
            if self._before_order is not None:
                await self._before_order()
            try:
                await self._broker.place_bracket(command)
            except BrokerError as exc:
                self._not_sent(command.entry_key, command, exc)
        elif isinstance(command, PlaceExit | PlaceProtective):
            self.counters.orders_sent += 1
            if self._before_order is not None:
                await self._before_order()
            try:
                if isinstance(command, PlaceExit):
                    await self._broker.place_exit(command)
                else:
                    await self._broker.place_protective(command)
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

    def _not_sent(
        self, key: str, command: PlaceBracket | PlaceExit | PlaceProtective, exc: BrokerError
    ) -> None:
        self.counters.broker_errors += 1
        self._inbox.put(OrderRejected(key, command.ts, f"not sent: {exc}"))

    # -- queries -------------------------------------------------------------------------------

    def status(self) -> EngineStatus:
        return self.engine.status()
