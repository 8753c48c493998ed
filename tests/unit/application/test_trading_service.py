"""The trading service edge to edge with the simulated adapters: ordering, failures, consistency."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from adapters.simulated.broker import SimulatedBroker
from adapters.simulated.notifier import RecordingNotifier
from adapters.simulated.repositories import InMemoryJournal
from adapters.zscore.reference import PythonZScoreEngine
from application.services import EventInbox, TradingService
from domain.aggregation import BarAggregator
from domain.calendar import ContinuousCalendar
from domain.commands import AlertKind, FillRecord, PlaceBracket, RoundTripRecord
from domain.engine import Engine, EngineState
from domain.events import ProtectiveExitFilled, ProtectiveKind
from domain.values import MES, Action
from tests.support.builders import T0, bar, engine, fill, z


def _service(
    eng: Engine, fill_model: str = "next_open"
) -> tuple[TradingService, SimulatedBroker, InMemoryJournal, RecordingNotifier, EventInbox]:
    inbox = EventInbox()
    broker = SimulatedBroker(instrument=MES, sink=inbox, fill_model=fill_model)  # type: ignore[arg-type]
    journal = InMemoryJournal()
    notifier = RecordingNotifier()
    service = TradingService(
        engine=eng,
        aggregator=BarAggregator(300),
        zscore=PythonZScoreEngine(20),
        broker=broker,
        journal=journal,
        notifier=notifier,
        inbox=inbox,
        bar_listeners=[broker],
    )
    return service, broker, journal, notifier, inbox


def test_a_failed_reconcile_neither_raises_nor_loses_the_fill() -> None:
    eng = engine(calendar=ContinuousCalendar(), target=None)
    service, broker, journal, notifier, inbox = _service(eng, "signal_close")

    async def scenario() -> None:
        placed = [c for c in eng.on_bar(bar(T0), z(-2.5)) if isinstance(c, PlaceBracket)]
        await service.execute(placed)
        assert eng.state is EngineState.LONG
        broker.connected = False
        stop_key = placed[0].stop_key
        assert stop_key is not None
        # A stop fill for 2 on a 1-lot: an overfill, which asks the (unreachable) broker.
        inbox.put(
            ProtectiveExitFilled(fill(stop_key, Action.SELL, "4990", qty=2), ProtectiveKind.STOP)
        )
        await service.settle()

    asyncio.run(scenario())
    assert len(inbox) == 0
    assert any(isinstance(r, FillRecord) and r.fill.qty == 2 for r in journal.records)
    assert any(isinstance(r, RoundTripRecord) for r in journal.records)
    assert eng.reconcile_required is not None
    assert notifier.of_kind(AlertKind.RECONCILE_MISMATCH)
    assert service.counters.broker_errors == 1


def test_a_placement_the_broker_cannot_make_comes_back_as_a_rejection() -> None:
    eng = engine(calendar=ContinuousCalendar())
    service, broker, journal, notifier, _ = _service(eng)
    broker.connected = False

    async def scenario() -> None:
        await service.execute(eng.on_bar(bar(T0), z(-2.5)))

    asyncio.run(scenario())
    assert eng.state is EngineState.IDLE
    assert eng.working_orders == {}
    assert notifier.of_kind(AlertKind.ORDER_REJECTED)
    # Intent before action: the intent was journaled although the order never left.
    assert journal.intents()


def test_an_order_decided_on_a_bar_fills_at_the_next_bar_open() -> None:
    eng = engine(calendar=ContinuousCalendar(), stop=None, target=None)
    service, _, journal, _, _ = _service(eng)
    # 20 quiet bars then a drop that makes |z| >= 2, then the bar the order fills on.
    closes = [5000.0 + (i % 2) * 0.25 for i in range(20)] + [4990.0, 4991.0]
    bars = [
        bar(T0 + timedelta(minutes=5 * i), c, open_=c if i < 21 else 4995.5, high=max(c, 4995.5))
        for i, c in enumerate(closes)
    ]
    asyncio.run(service.on_bars(bars))
    entry = journal.fills()[0]
    assert entry.action is Action.BUY
    assert entry.price == Decimal("4995.5")  # the open of the bar after the signal
    assert entry.ts == bars[21].ts
