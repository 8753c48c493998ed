"""Engine behaviour across several events: fills in any order, races, risk and session rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from domain.calendar import CmeGlobexEquityCalendar, ContinuousCalendar
from domain.circuit_breaker import BreakerRule, RiskLimits
from domain.commands import (
    BreakerRecord,
    CancelOrders,
    EngineCommand,
    Journal,
    PlaceBracket,
    PlaceExit,
    Reconcile,
    RoundTripRecord,
    SignalAction,
    SignalRecord,
)
from domain.engine import Engine, EngineState
from domain.events import (
    BrokerPositionReported,
    FlattenRequested,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    ProtectiveExitFilled,
    ProtectiveKind,
)
from domain.position import ExitReason
from domain.quiet import QuietRule
from domain.values import Action, Side
from tests.support.builders import T0, bar, engine, fill, minutes, z, z_exact

T = TypeVar("T")


def state_of(eng: Engine) -> EngineState:
    """Read the state through a call: mypy would otherwise keep a narrowed state across events."""
    return eng.state


def _only(commands: list[EngineCommand], kind: type[T]) -> T:
    found = [c for c in commands if isinstance(c, kind)]
    assert len(found) == 1, commands
    return found[0]


def _signals(commands: list[EngineCommand]) -> list[SignalRecord]:
    return [
        c.record for c in commands if isinstance(c, Journal) and isinstance(c.record, SignalRecord)
    ]


def _enter_long(eng: Engine, at: datetime = T0, price: str = "5000") -> PlaceBracket:
    bracket = _only(eng.on_bar(bar(at, float(price)), z(-2.5)), PlaceBracket)
    eng.handle(OrderFilled(fill(bracket.entry_key, Action.BUY, price, at=at, qty=bracket.qty)))
    return bracket


def test_entry_thresholds_are_inclusive_and_decided_exactly() -> None:
    # z = -4/sqrt(4) = -2 exactly: a float computed another way might give -1.9999999999999998.
    eng = engine()
    exact_tie = z_exact(-4, 4)
    tie_commands = eng.on_bar(bar(T0), exact_tie)
    assert state_of(eng) is EngineState.ENTERING_LONG
    assert _only(tie_commands, PlaceBracket).side is Side.LONG
    # Just inside the threshold by less than float resolution would show: no entry.
    eng2 = engine()
    nearly = type(exact_tie)(-(10**12), 25 * 10**22 + 1, -1.9999999999999998)
    assert eng2.on_bar(bar(T0), nearly) == []
    assert state_of(eng2) is EngineState.IDLE


def test_exit_threshold_is_inclusive() -> None:
    eng = engine()
    _enter_long(eng)
    commands = eng.on_bar(bar(T0 + minutes(5)), z_exact(1, 4))  # |z| = 0.5 exactly
    assert _only(commands, PlaceExit).reason == ExitReason.SIGNAL.value
    assert state_of(eng) is EngineState.EXITING_LONG


def test_volume_filter_applies_to_entries_only() -> None:
    eng = engine(min_volume=500)
    thin = eng.on_bar(bar(T0, volume=10), z(-2.5))
    assert state_of(eng) is EngineState.IDLE
    assert [s.action for s in _signals(thin)] == [SignalAction.SKIPPED]
    assert "min_volume" in _signals(thin)[0].detail
    _only(eng.on_bar(bar(T0 + minutes(5), volume=900), z(-2.5)), PlaceBracket)
    eng.handle(OrderFilled(fill(next(iter(eng.working_orders)), Action.BUY, "5000")))
    # A thin bar still lets the position out.
    out = eng.on_bar(bar(T0 + minutes(10), volume=1), z(0.0))
    assert _only(out, PlaceExit).reason == "signal"


def test_partial_entry_fills_keep_entering_until_complete() -> None:
    eng = engine(qty=2)
    bracket = _only(eng.on_bar(bar(T0), z(-2.5)), PlaceBracket)
    eng.handle(OrderFilled(fill(bracket.entry_key, Action.BUY, "5000", qty=1, exec_id="e1")))
    assert state_of(eng) is EngineState.ENTERING_LONG
    assert eng.position.qty == 1
    eng.handle(OrderFilled(fill(bracket.entry_key, Action.BUY, "5000.25", qty=1, exec_id="e2")))
    assert state_of(eng) is EngineState.LONG
    assert eng.position.qty == 2


def test_a_duplicate_execution_is_applied_once() -> None:
    eng = engine()
    bracket = _only(eng.on_bar(bar(T0), z(-2.5)), PlaceBracket)
    first = OrderFilled(fill(bracket.entry_key, Action.BUY, "5000", exec_id="dup"))
    eng.handle(first)
    assert eng.handle(first) == []
    assert eng.position.qty == 1


def test_oca_cancel_reported_before_the_sibling_fill_ends_flat_without_a_second_exit() -> None:
    eng = engine()
    bracket = _enter_long(eng)
    assert bracket.target_key is not None
    assert bracket.stop_key is not None
    # The broker reports the target's OCA cancel before the stop's execution.
    out = eng.handle(OrderCancelled(bracket.target_key, T0 + minutes(3), "OCA"))
    assert not any(isinstance(c, PlaceExit) for c in out)
    assert state_of(eng) is EngineState.LONG
    eng.handle(
        ProtectiveExitFilled(fill(bracket.stop_key, Action.SELL, "4990"), ProtectiveKind.STOP)
    )
    assert state_of(eng) is EngineState.IDLE
    after = eng.handle(BrokerPositionReported(0, T0 + minutes(4)))
    assert not any(isinstance(c, PlaceExit) for c in after)
    assert eng.reconcile_required is None


def test_a_lost_leg_confirmed_by_the_broker_closes_the_position() -> None:
    eng = engine()
    bracket = _enter_long(eng)
    assert bracket.stop_key is not None
    eng.handle(OrderCancelled(bracket.stop_key, T0 + minutes(3), "cancelled at TWS"))
    out = eng.handle(BrokerPositionReported(1, T0 + minutes(4)))
    assert _only(out, PlaceExit).reason == ExitReason.PROTECTION_LOST.value


def test_stop_filling_while_the_exit_works_books_one_trip_and_a_late_exit_fill_is_an_anomaly() -> (
    None
):
    eng = engine()
    bracket = _enter_long(eng)
    assert bracket.stop_key is not None
    exit_key = _only(eng.on_bar(bar(T0 + minutes(5)), z(0.0)), PlaceExit).key
    out = eng.handle(
        ProtectiveExitFilled(fill(bracket.stop_key, Action.SELL, "4990"), ProtectiveKind.STOP)
    )
    trips = [
        c.record.trip
        for c in out
        if isinstance(c, Journal) and isinstance(c.record, RoundTripRecord)
    ]
    assert [t.exit_reason for t in trips] == [ExitReason.STOP]
    assert state_of(eng) is EngineState.IDLE
    eng.handle(OrderFilled(fill(exit_key, Action.SELL, "4991")))  # the OCA failed: now short 1
    assert eng.position.signed_qty == -1
    assert eng.reconcile_required is not None
    # Flat again by hand would not reopen trading: entries stay blocked until an operator reconciles.
    eng.handle(OrderFilled(fill("manual-buy", Action.BUY, "4991", exec_id="manual")))
    assert eng.position.is_flat
    assert state_of(eng) is EngineState.IDLE
    blocked = eng.on_bar(bar(T0 + minutes(10)), z(-2.5))
    assert not any(isinstance(c, PlaceBracket) for c in blocked)
    assert _signals(blocked)[0].detail.startswith("reconcile required")


def test_flatten_while_entering_cancels_the_entry_and_closes_what_filled() -> None:
    eng = engine()
    bracket = _only(eng.on_bar(bar(T0), z(-2.5)), PlaceBracket)
    out = eng.handle(FlattenRequested(T0 + minutes(1), "op", pause=True))
    assert _only(out, CancelOrders).keys == (bracket.entry_key,)
    assert eng.paused
    after = eng.handle(
        OrderFilled(fill(bracket.entry_key, Action.BUY, "5000"))
    )  # cancel lost the race
    assert _only(after, PlaceExit).reason == ExitReason.OPERATOR.value
    assert state_of(eng) is EngineState.EXITING_LONG


def test_a_rejected_leg_before_the_entry_fills_cancels_the_entry() -> None:
    eng = engine()
    bracket = _only(eng.on_bar(bar(T0), z(-2.5)), PlaceBracket)
    assert bracket.stop_key is not None
    out = eng.handle(OrderRejected(bracket.stop_key, T0, "bad stop price", 201))
    assert _only(out, CancelOrders).keys == (bracket.entry_key,)
    eng.handle(OrderCancelled(bracket.entry_key, T0 + minutes(1)))
    assert state_of(eng) is EngineState.IDLE
    assert eng.working_orders == {}


def test_a_rejected_entry_leaves_the_engine_ready_for_the_next_signal() -> None:
    eng = engine()
    bracket = _only(eng.on_bar(bar(T0), z(-2.5)), PlaceBracket)
    eng.handle(OrderRejected(bracket.entry_key, T0, "no margin", 201))
    assert state_of(eng) is EngineState.IDLE
    assert eng.working_orders == {}
    assert eng.position.is_flat
    _only(eng.on_bar(bar(T0 + minutes(5)), z(2.5)), PlaceBracket)
    assert state_of(eng) is EngineState.ENTERING_SHORT


def test_daily_loss_on_open_pnl_closes_and_halts_until_the_next_session() -> None:
    eng = engine(limits=RiskLimits(max_daily_loss=Decimal(100)), stop=None, target=None)
    _enter_long(eng, price="5000")
    out = eng.on_bar(
        bar(T0 + minutes(5), 4980.0), z(-1.5)
    )  # -20 pts = -100 USD open, plus commission
    assert _only(out, PlaceExit).reason == ExitReason.DAILY_LOSS.value
    assert any(isinstance(c, Journal) and isinstance(c.record, BreakerRecord) for c in out)
    assert eng.breaker.daily_loss_halt


def test_consecutive_losses_pause_entries() -> None:
    eng = engine(limits=RiskLimits(max_consecutive_losses=2, pause=timedelta(minutes=30)))
    at = T0
    for _ in range(2):
        bracket = _enter_long(eng, at)
        exit_key = _only(eng.on_bar(bar(at + minutes(5)), z(0.0)), PlaceExit).key
        eng.handle(OrderFilled(fill(exit_key, Action.SELL, "4999", at=at + minutes(5))))
        assert bracket.entry_key not in eng.working_orders
        at += minutes(10)
    blocked = eng.on_bar(bar(at), z(-2.5))
    assert state_of(eng) is EngineState.IDLE
    assert "consecutive_losses" in _signals(blocked)[0].detail
    _only(eng.on_bar(bar(at + minutes(30)), z(-2.5)), PlaceBracket)


def test_max_trades_per_day_counts_entries_that_filled() -> None:
    eng = engine(limits=RiskLimits(max_trades_per_day=1))
    rejected = _only(eng.on_bar(bar(T0), z(-2.5)), PlaceBracket)
    eng.handle(OrderRejected(rejected.entry_key, T0, "rejected"))
    # A rejected entry opened nothing: the allowance is intact.
    _enter_long(eng, at=T0 + minutes(5))
    exit_key = _only(eng.on_bar(bar(T0 + minutes(10)), z(0.0)), PlaceExit).key
    eng.handle(OrderFilled(fill(exit_key, Action.SELL, "5000", at=T0 + minutes(10))))
    blocked = eng.on_bar(bar(T0 + minutes(15)), z(-2.5))
    assert "max_trades_per_day" in _signals(blocked)[0].detail


def test_a_position_older_than_the_limit_is_closed() -> None:
    eng = engine(limits=RiskLimits(max_position_duration=timedelta(hours=1)))
    _enter_long(eng)
    assert not any(isinstance(c, PlaceExit) for c in eng.on_bar(bar(T0 + minutes(50)), z(-1.5)))
    out = eng.on_bar(bar(T0 + minutes(60)), z(-1.5))
    assert _only(out, PlaceExit).reason == ExitReason.MAX_DURATION.value
    assert any(
        isinstance(c, Journal)
        and isinstance(c.record, BreakerRecord)
        and getattr(c.record.event, "rule", None) is BreakerRule.MAX_DURATION
        for c in out
    )


def test_session_rules_block_late_entries_and_flatten_before_the_close() -> None:
    eng = engine(calendar=CmeGlobexEquityCalendar())
    close = datetime(2025, 3, 4, 22, 0, tzinfo=UTC)  # 17:00 ET (EST, UTC-5)
    late = eng.on_bar(bar(close - minutes(15)), z(-2.5))  # closes 16:50: 10 min before the close
    assert "close" in _signals(late)[0].detail
    early = engine(calendar=CmeGlobexEquityCalendar())
    _enter_long(early, at=close - minutes(60))
    assert not any(
        isinstance(c, PlaceExit) for c in early.on_bar(bar(close - minutes(15)), z(-1.5))
    )
    out = early.on_bar(bar(close - minutes(10)), z(-1.5))  # closes 16:55, the flatten window
    assert _only(out, PlaceExit).reason == ExitReason.SESSION.value


def test_outside_calendar_coverage_fails_closed() -> None:
    eng = engine(calendar=CmeGlobexEquityCalendar())
    old = datetime(2008, 10, 8, 15, 0, tzinfo=UTC)
    out = eng.on_bar(bar(old), z(-2.5))
    assert state_of(eng) is EngineState.IDLE
    assert _signals(out)[0].detail.startswith(
        "calendar does not cover the date: cme_globex_equity covers"
    )


def test_the_breaker_resets_at_the_session_open_not_midnight() -> None:
    eng = engine(calendar=ContinuousCalendar(), limits=RiskLimits(max_trades_per_day=1))
    # 2025-03-04 22:00Z = 17:00 ET: still trade date 03-04; 23:00Z = 18:00 ET: trade date 03-05.
    evening = datetime(2025, 3, 4, 21, 0, tzinfo=UTC)
    _enter_long(eng, at=evening)
    exit_key = _only(eng.on_bar(bar(evening + minutes(5)), z(0.0)), PlaceExit).key
    eng.handle(OrderFilled(fill(exit_key, Action.SELL, "5000", at=evening + minutes(5))))
    assert eng.breaker.trade_date == date(2025, 3, 4)
    blocked = eng.on_bar(bar(evening + minutes(90)), z(-2.5))  # 17:35 ET
    assert _signals(blocked)[0].action is SignalAction.SKIPPED
    _only(eng.on_bar(bar(evening + minutes(120)), z(-2.5)), PlaceBracket)  # 18:05 ET
    assert eng.breaker.trade_date == date(2025, 3, 5)


# -- review findings: exits that must not be lost, partial entries, races ------------------------


def test_a_rejected_daily_loss_exit_is_placed_again_on_the_next_bar() -> None:
    eng = engine(limits=RiskLimits(max_daily_loss=Decimal(50)), stop=None, target=None)
    _enter_long(eng, price="5000")
    first = _only(eng.on_bar(bar(T0 + minutes(5), 4985.0), z(-2.0)), PlaceExit)
    assert first.reason == ExitReason.DAILY_LOSS.value
    eng.handle(OrderRejected(first.key, T0 + minutes(5), "rejected", 201))
    assert state_of(eng) is EngineState.LONG
    assert QuietRule(eng).wake_spec().every_bar
    again = _only(eng.on_bar(bar(T0 + minutes(10), 4970.0), z(-2.0)), PlaceExit)
    assert again.reason == ExitReason.DAILY_LOSS.value
    assert again.key != first.key
    eng.handle(OrderFilled(fill(again.key, Action.SELL, "4970")))
    assert state_of(eng) is EngineState.IDLE
    assert eng.snapshot().exit_required is None


def test_an_operator_flatten_survives_a_cancelled_exit() -> None:
    eng = engine()
    _enter_long(eng)
    exit_key = _only(eng.handle(FlattenRequested(T0 + minutes(1), "op")), PlaceExit).key
    eng.handle(OrderCancelled(exit_key, T0 + minutes(2), "cancelled at TWS"))
    again = _only(eng.on_bar(bar(T0 + minutes(5)), z(-2.5)), PlaceExit)
    assert again.reason == ExitReason.OPERATOR.value


def test_a_partly_filled_entry_is_cancelled_at_the_next_bar_and_the_part_closed() -> None:
    eng = engine(qty=2)
    bracket = _only(eng.on_bar(bar(T0), z(-2.5)), PlaceBracket)
    eng.handle(OrderFilled(fill(bracket.entry_key, Action.BUY, "5000", qty=1, exec_id="p1")))
    out = eng.on_bar(bar(T0 + minutes(5)), z(-1.0))
    assert _only(out, CancelOrders).keys == (bracket.entry_key,)
    assert eng.on_bar(bar(T0 + minutes(10)), z(-1.0)) == []  # cancelled once, not every bar
    closing = eng.handle(OrderCancelled(bracket.entry_key, T0 + minutes(11)))
    exit_order = _only(closing, PlaceExit)
    assert exit_order.reason == ExitReason.PARTIAL_ENTRY.value
    assert exit_order.qty == 1


def test_an_oca_race_seen_by_a_reconcile_lifts_itself_once_the_fill_arrives() -> None:
    eng = engine()
    bracket = _enter_long(eng)
    assert bracket.stop_key is not None
    assert bracket.target_key is not None
    eng.handle(OrderCancelled(bracket.target_key, T0 + minutes(3), "OCA"))
    eng.handle(BrokerPositionReported(0, T0 + minutes(3)))  # the broker is flat already
    assert eng.reconcile_required is not None
    after_fill = eng.handle(
        ProtectiveExitFilled(fill(bracket.stop_key, Action.SELL, "4990"), ProtectiveKind.STOP)
    )
    assert any(isinstance(c, Reconcile) for c in after_fill)
    eng.handle(BrokerPositionReported(0, T0 + minutes(4)))
    assert eng.reconcile_required is None
    _only(eng.on_bar(bar(T0 + minutes(5)), z(-2.5)), PlaceBracket)


def test_an_anomaly_is_not_lifted_by_a_report_that_agrees() -> None:
    eng = engine()
    eng.handle(OrderFilled(fill("FOREIGN", Action.BUY, "5000")))
    eng.handle(BrokerPositionReported(1, T0))
    assert eng.reconcile_required is not None


def test_an_off_grid_close_while_holding_does_not_escape_on_bar() -> None:
    eng = engine(limits=RiskLimits(max_daily_loss=Decimal(100)), stop=None, target=None)
    _enter_long(eng, price="5000")
    out = eng.on_bar(bar(T0 + minutes(5), 4979.9), z(-1.5))  # off the 0.25 grid
    exit_order = _only(out, PlaceExit)
    assert exit_order.reason == ExitReason.DAILY_LOSS.value
    assert exit_order.reference_price == Decimal("4979.75")  # rounded against the long


def test_daily_loss_counts_what_a_partial_exit_already_lost() -> None:
    # Long 2 @ 5000; one contract is sold at 4960 (-200 USD realized inside the trip). The open lot
    # alone is flat, but the session is already past the 150 USD limit: the rest must be closed.
    eng = engine(qty=2, limits=RiskLimits(max_daily_loss=Decimal(150)), stop=None, target=None)
    bracket = _only(eng.on_bar(bar(T0), z(-2.5)), PlaceBracket)
    eng.handle(OrderFilled(fill(bracket.entry_key, Action.BUY, "5000", qty=2)))
    eng.handle(OrderFilled(fill("manual-sell", Action.SELL, "4960", exec_id="partial")))
    assert eng.position.qty == 1
    out = eng.on_bar(bar(T0 + minutes(5), 5000.0), z(-1.5))
    assert _only(out, PlaceExit).reason == ExitReason.DAILY_LOSS.value


def test_wake_spec_states_what_each_state_waits_for() -> None:
    eng = engine(calendar=ContinuousCalendar(), limits=RiskLimits(max_daily_loss=Decimal(100)))
    quiet = QuietRule(eng)
    assert quiet.wake_spec().every_bar  # no bar seen yet: no session known
    eng.on_bar(bar(T0), z(1.0))
    idle = quiet.wake_spec()
    assert idle.z_abs_at_least is not None
    assert 2.0 * (1 - 1e-8) < idle.z_abs_at_least < 2.0
    assert idle.z_abs_at_most is None
    assert idle.start_at_least is not None
    _enter_long(eng, at=T0 + minutes(5), price="5000")
    held = quiet.wake_spec()
    assert held.z_abs_at_most is not None
    assert 0.5 < held.z_abs_at_most < 0.5 * (1 + 1e-8)
    # -100 USD limit, 0.62 commission paid: open P&L may reach -99.38, i.e. 19.876 points (plus
    # one tick of slack for float rounding).
    assert held.close_at_most is not None
    assert abs(held.close_at_most - (5000 - 99.38 / 5 + 0.25)) < 1e-9
    assert held.end_at_least == int((T0 + minutes(5)).timestamp()) + 4 * 3600
    assert held.close_at_least is None
