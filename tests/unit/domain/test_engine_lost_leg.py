"""A position whose stop or target the broker no longer holds (issue 16 item 5): closed at market
(``risk.lost_leg: flatten``, the default) or the leg placed again at its price (``replace``), once
per leg and position."""

from __future__ import annotations

from domain.commands import (
    EngineCommand,
    Journal,
    Notify,
    OrderIntentRecord,
    PlaceBracket,
    PlaceExit,
    PlaceProtective,
)
from domain.engine import Engine, EngineState, LostLeg
from domain.events import (
    BrokerPositionReported,
    FlattenRequested,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    ProtectiveExitFilled,
    ProtectiveKind,
    protective_kind,
)
from domain.position import ExitReason
from domain.values import Action
from tests.support.builders import T0, bar, engine, fill, minutes, z


def _enter_long(eng: Engine) -> PlaceBracket:
    [bracket] = [c for c in eng.on_bar(bar(T0, 5000.0), z(-2.5)) if isinstance(c, PlaceBracket)]
    eng.handle(OrderFilled(fill(bracket.entry_key, Action.BUY, "5000", at=T0, qty=bracket.qty)))
    return bracket


def _of(commands: list[EngineCommand], kind: type) -> list:  # type: ignore[type-arg]
    return [c for c in commands if isinstance(c, kind)]


def _alerts(commands: list[EngineCommand]) -> list[str]:
    return [c.alert.text for c in commands if isinstance(c, Notify)]


def test_a_stop_the_broker_no_longer_holds_is_placed_again_at_its_price() -> None:
    eng = engine(lost_leg=LostLeg.REPLACE)
    bracket = _enter_long(eng)
    assert bracket.stop_key is not None
    assert bracket.target_key is not None
    out = eng.handle(BrokerPositionReported(1, T0 + minutes(2), open_orders=(bracket.target_key,)))
    [again] = _of(out, PlaceProtective)
    assert again.kind is ProtectiveKind.STOP
    assert protective_kind(again.key) is ProtectiveKind.STOP  # the broker knows it for a leg
    assert again.key != bracket.stop_key
    assert again.price == bracket.stop_price
    assert (again.action, again.qty, again.oca_group) == (Action.SELL, 1, bracket.oca_group)
    assert not _of(out, PlaceExit)
    [intent] = [
        c.record for c in out if isinstance(c, Journal) and isinstance(c.record, OrderIntentRecord)
    ]
    assert (intent.key, intent.order_type, intent.price) == (again.key, "STP", again.price)
    assert any("placed again, stop" in text for text in _alerts(out))
    assert eng.state is EngineState.LONG
    # The new stop protects the position as the old one did: its fill closes it.
    eng.handle(OrderAccepted(again.key, T0 + minutes(2)))
    eng.handle(
        ProtectiveExitFilled(
            fill(again.key, Action.SELL, str(again.price), at=T0 + minutes(5)), ProtectiveKind.STOP
        )
    )
    assert eng.position.is_flat
    assert eng.status().state is EngineState.IDLE


def test_a_leg_lost_a_second_time_closes_the_position() -> None:
    eng = engine(lost_leg=LostLeg.REPLACE)
    bracket = _enter_long(eng)
    assert bracket.target_key is not None
    out = eng.handle(BrokerPositionReported(1, T0 + minutes(2), open_orders=(bracket.target_key,)))
    [again] = _of(out, PlaceProtective)
    out = eng.handle(OrderRejected(again.key, T0 + minutes(2), "no", 201))
    [exit_] = _of(out, PlaceExit)
    assert exit_.reason == ExitReason.PROTECTION_LOST.value
    assert any("placed again once already" in text for text in _alerts(out))


def test_a_cancelled_target_confirmed_by_the_broker_is_placed_again() -> None:
    eng = engine(lost_leg=LostLeg.REPLACE)
    bracket = _enter_long(eng)
    assert bracket.target_key is not None
    eng.handle(OrderCancelled(bracket.target_key, T0 + minutes(3), "cancelled at TWS"))
    out = eng.handle(BrokerPositionReported(1, T0 + minutes(4)))
    [again] = _of(out, PlaceProtective)
    assert again.kind is ProtectiveKind.TARGET
    assert again.price == bracket.target_price
    assert not _of(out, PlaceExit)
    assert eng.state is EngineState.LONG


def test_flatten_is_the_default_and_places_nothing_again() -> None:
    eng = engine()
    bracket = _enter_long(eng)
    assert bracket.target_key is not None
    out = eng.handle(BrokerPositionReported(1, T0 + minutes(2), open_orders=(bracket.target_key,)))
    assert not _of(out, PlaceProtective)
    assert _of(out, PlaceExit)[0].reason == ExitReason.PROTECTION_LOST.value


def test_a_leg_whose_price_this_process_does_not_know_closes_the_position() -> None:
    """After a restart the engine has the legs but not their prices (the broker has them)."""
    eng = engine(lost_leg=LostLeg.REPLACE)
    bracket = _enter_long(eng)
    assert bracket.target_key is not None
    restored = Engine.restore(eng.config, eng.snapshot())
    out = restored.handle(
        BrokerPositionReported(1, T0 + minutes(2), open_orders=(bracket.target_key,))
    )
    assert not _of(out, PlaceProtective)
    assert _of(out, PlaceExit)
    assert any("price is not known" in text for text in _alerts(out))


def test_a_new_position_may_replace_its_legs_again() -> None:
    eng = engine(lost_leg=LostLeg.REPLACE)
    first = _enter_long(eng)
    assert first.target_key is not None
    out = eng.handle(BrokerPositionReported(1, T0 + minutes(2), open_orders=(first.target_key,)))
    [again] = _of(out, PlaceProtective)
    eng.handle(
        ProtectiveExitFilled(
            fill(again.key, Action.SELL, str(again.price), at=T0 + minutes(5)), ProtectiveKind.STOP
        )
    )
    assert eng.position.is_flat
    later = T0 + minutes(60)
    [second] = [c for c in eng.on_bar(bar(later, 5000.0), z(-2.5)) if isinstance(c, PlaceBracket)]
    eng.handle(OrderFilled(fill(second.entry_key, Action.BUY, "5000", at=later, qty=1)))
    assert second.target_key is not None
    out = eng.handle(
        BrokerPositionReported(1, later + minutes(2), open_orders=(second.target_key,))
    )
    assert _of(out, PlaceProtective)
    assert not _of(out, PlaceExit)


def test_no_leg_is_placed_again_while_an_exit_is_closing_the_position() -> None:
    """The exit's fill cancels the legs through their OCA group, and IB often reports those
    cancels before the fill: a leg placed again then would rest at IB on a flat account."""
    eng = engine(lost_leg=LostLeg.REPLACE)
    bracket = _enter_long(eng)
    assert bracket.stop_key is not None
    assert bracket.target_key is not None
    out = eng.handle(FlattenRequested(T0 + minutes(2), "operator"))
    [exit_] = _of(out, PlaceExit)
    eng.handle(OrderCancelled(bracket.stop_key, T0 + minutes(2), "OCA"))
    eng.handle(OrderCancelled(bracket.target_key, T0 + minutes(2), "OCA"))
    out = eng.handle(BrokerPositionReported(1, T0 + minutes(2), open_orders=(exit_.key,)))
    assert not _of(out, PlaceProtective)
    assert not _of(out, PlaceExit)  # the working exit is the one that closes it
