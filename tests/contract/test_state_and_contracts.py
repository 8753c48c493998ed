"""StateStore and ContractResolver ports against their simulated adapters; engine snapshots."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from adapters.simulated.contracts import StaticContractResolver
from adapters.simulated.repositories import InMemoryStateStore
from application.ports import ContractResolver, StateStore
from domain.calendar import ContinuousCalendar
from domain.commands import PlaceBracket
from domain.engine import Engine, EngineState
from domain.errors import DomainError
from domain.events import OrderFilled
from domain.values import Action
from tests.support.builders import T0, bar, engine, fill, z


def _mid_trade() -> Engine:
    eng = engine(calendar=ContinuousCalendar())
    placed = [c for c in eng.on_bar(bar(T0), z(-2.5)) if isinstance(c, PlaceBracket)]
    eng.handle(OrderFilled(fill(placed[0].entry_key, Action.BUY, "5000")))
    return eng


def test_a_restored_engine_continues_exactly_like_the_original() -> None:
    original = _mid_trade()
    store: StateStore = InMemoryStateStore()
    asyncio.run(store.save(original.snapshot()))
    loaded = asyncio.run(store.load())
    assert loaded is not None
    restored = Engine.restore(original.config, loaded)
    assert restored.state is EngineState.LONG
    assert restored.snapshot() == original.snapshot()
    later = [
        (bar(T0 + timedelta(minutes=5 * i), 5000.0 + i), z(v))
        for i, v in enumerate([-1.5, -1.0, 0.25, 1.0], start=1)
    ]
    for b, score in later:
        assert restored.on_bar(b, score) == original.on_bar(b, score)
    assert restored.snapshot() == original.snapshot()


def test_a_duplicate_fill_after_a_restart_is_still_ignored() -> None:
    original = _mid_trade()
    restored = Engine.restore(original.config, original.snapshot())
    key = next(iter(restored.working_orders))  # the stop or the target
    first = OrderFilled(fill(key, Action.SELL, "4990", exec_id="again"))
    restored.handle(first)
    assert restored.handle(first) == []


def test_an_inconsistent_snapshot_is_refused() -> None:
    from dataclasses import replace

    snapshot = _mid_trade().snapshot()
    with pytest.raises(DomainError, match="snapshot says"):
        Engine.restore(engine().config, replace(snapshot, state=EngineState.SHORT))


@pytest.mark.parametrize(
    ("at", "local_symbol"),
    [
        (datetime(2026, 12, 13, 22, 59, tzinfo=UTC), "MESZ6"),  # Sunday 17:59 ET before the roll
        (datetime(2026, 12, 13, 23, 0, tzinfo=UTC), "MESH7"),  # the roll: Sunday 18:00 ET
        (datetime(2027, 1, 15, 15, 0, tzinfo=UTC), "MESH7"),
    ],
)
def test_the_static_resolver_picks_the_front_month_by_the_roll_rule(
    at: datetime, local_symbol: str
) -> None:
    resolver: ContractResolver = StaticContractResolver()
    assert asyncio.run(resolver.front_month(at)).local_symbol == local_symbol
