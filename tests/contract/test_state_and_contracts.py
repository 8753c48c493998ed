"""Engine snapshots: a restored engine carries on exactly (the StateStore contract, which stores
them, is in test_journal_contract)."""

from __future__ import annotations

from datetime import timedelta

import pytest

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
    restored = Engine.restore(original.config, original.snapshot())
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
