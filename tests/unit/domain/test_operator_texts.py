"""What the engine tells an operator: prices and reasons, never order keys (the keys stay in the
journal); a loss is a warning; the status values the open position at the last close."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from domain.calendar import ContinuousCalendar
from domain.commands import Alert, AlertKind, EngineCommand, Notify, PlaceBracket, Severity
from domain.engine import Engine
from domain.events import OrderAccepted, OrderCancelled, OrderFilled, OrderRejected
from domain.values import Action, price_text
from tests.support.builders import T0, bar, engine, fill, z


def _alerts(commands: list[EngineCommand]) -> list[Alert]:
    return [c.alert for c in commands if isinstance(c, Notify)]


def _long(eng: Engine) -> PlaceBracket:
    [bracket] = [c for c in eng.on_bar(bar(T0), z(-2.5)) if isinstance(c, PlaceBracket)]
    return bracket


@pytest.mark.parametrize(
    ("price", "text"),
    [
        (Decimal("4987.25"), "4,987.25"),
        (Decimal(5000), "5,000.00"),
        (Decimal("5000.5"), "5,000.50"),
        (Decimal("12.125"), "12.125"),
    ],
)
def test_prices_read_the_same_everywhere(price: Decimal, text: str) -> None:
    assert price_text(price) == text


def test_a_losing_close_is_a_warning_that_names_its_prices() -> None:
    eng = engine(calendar=ContinuousCalendar())
    bracket = _long(eng)
    eng.handle(OrderFilled(fill(bracket.entry_key, Action.BUY, "5000")))
    assert bracket.stop_key is not None
    later = T0 + timedelta(minutes=7)
    closed = eng.handle(OrderFilled(fill(bracket.stop_key, Action.SELL, "4990", at=later)))
    [alert] = [a for a in _alerts(closed) if a.kind is AlertKind.PROTECTIVE_EXIT]
    assert alert.severity is Severity.WARNING
    assert alert.text == "closed LONG 1 @ 4,990.00 (stop, entered @ 5,000.00): net -51.24 USD"
    assert bracket.stop_key not in alert.text


def test_a_winning_close_is_information() -> None:
    eng = engine(calendar=ContinuousCalendar())
    bracket = _long(eng)
    eng.handle(OrderFilled(fill(bracket.entry_key, Action.BUY, "5000")))
    assert bracket.target_key is not None
    closed = eng.handle(OrderFilled(fill(bracket.target_key, Action.SELL, "5015")))
    [alert] = [a for a in _alerts(closed) if a.kind is AlertKind.PROTECTIVE_EXIT]
    assert alert.severity is Severity.INFO
    assert alert.text.endswith("net +73.76 USD")


def test_a_rejected_or_cancelled_leg_is_named_by_its_price() -> None:
    eng = engine(calendar=ContinuousCalendar())
    bracket = _long(eng)
    assert bracket.stop_key is not None
    assert bracket.target_key is not None
    eng.handle(OrderFilled(fill(bracket.entry_key, Action.BUY, "5000")))
    rejected = eng.handle(OrderRejected(bracket.stop_key, T0, "no margin", 201))
    [alert] = [a for a in _alerts(rejected) if a.kind is AlertKind.ORDER_REJECTED]
    assert alert.text == "stop 4,990.00 (SELL 1) rejected (201): no margin"
    cancelled = eng.handle(OrderCancelled(bracket.target_key, T0, "by the broker"))
    texts = [a.text for a in _alerts(cancelled)]
    assert "target leg 5,015.00 (SELL 1) cancelled while a position is open" in texts
    assert not any("QS-" in t for t in texts)


def test_the_status_shows_the_bracket_prices_and_the_unrealised_pnl() -> None:
    eng = engine(calendar=ContinuousCalendar())
    bracket = _long(eng)
    assert eng.status().unrealized_pnl is None  # flat
    eng.handle(OrderAccepted(bracket.entry_key, T0))
    eng.handle(OrderFilled(fill(bracket.entry_key, Action.BUY, "5000")))
    eng.on_bar(bar(T0 + timedelta(minutes=5), close=5003.25), z(-1.0))
    status = eng.status()
    assert (status.stop_price, status.target_price) == (Decimal("4990.00"), Decimal("5015.00"))
    assert status.unrealized_pnl == Decimal("16.25")  # 3.25 points x $5
