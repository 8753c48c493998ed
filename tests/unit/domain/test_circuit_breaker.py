"""The circuit breaker: every risk rule of DESIGN section 1, with times passed in."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.circuit_breaker import (
    BreakerReset,
    BreakerRule,
    BreakerStatus,
    BreakerTripped,
    CircuitBreaker,
    RiskLimits,
)
from domain.errors import DomainError
from domain.position import ExitReason, RoundTrip
from domain.values import Side

T0 = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)
DAY = date(2025, 3, 4)
NEXT_DAY = date(2025, 3, 5)
OFF = RiskLimits(
    max_daily_loss=None,
    max_consecutive_losses=None,
    max_trades_per_day=None,
    max_position_duration=None,
)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def trip(net: str, *, minute: float = 0) -> RoundTrip:
    """A round trip whose net P&L is ``net`` dollars (gross net+1.24, commissions 1.24)."""
    commissions = Decimal("1.24")
    return RoundTrip(
        seq=1,
        side=Side.LONG,
        qty=1,
        entry_ts=at(minute - 5),
        entry_price=Decimal(5000),
        exit_ts=at(minute),
        exit_price=Decimal(5000),
        exit_reason=ExitReason.SIGNAL,
        pnl_ticks=0,
        gross_pnl=Decimal(net) + commissions,
        commissions=commissions,
    )


def breaker(**limits: Any) -> CircuitBreaker:
    b = CircuitBreaker(replace(OFF, **limits))
    assert b.start_session(DAY, at(-60)) is None
    return b


# ---------------------------------------------------------------- limits


def test_default_limits_are_those_of_the_design() -> None:
    limits = RiskLimits()
    assert limits.max_daily_loss == Decimal(200)
    assert limits.max_consecutive_losses == 3
    assert limits.pause == timedelta(minutes=30)
    assert limits.max_trades_per_day == 50
    assert limits.max_position_duration == timedelta(hours=4)


BAD_LIMITS = [
    ({"max_daily_loss": Decimal(0)}, "max_daily_loss must be positive"),
    ({"max_daily_loss": Decimal(-1)}, "max_daily_loss must be positive"),
    ({"max_consecutive_losses": 0}, "max_consecutive_losses must be >= 1"),
    ({"pause": timedelta(0)}, "pause must be positive"),
    ({"pause": timedelta(minutes=-1)}, "pause must be positive"),
    ({"max_trades_per_day": 0}, "max_trades_per_day must be >= 1"),
    ({"max_position_duration": timedelta(0)}, "max_position_duration must be positive"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_LIMITS)
def test_bad_risk_limits_are_refused_naming_the_field(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(DomainError, match=message):
        RiskLimits(**changes)


def test_every_limit_but_the_pause_may_be_switched_off() -> None:
    b = breaker()
    for i in range(200):
        assert b.on_entry(at(i)) is None
    for i in range(20):
        assert b.on_round_trip(trip("-100", minute=i), at(i)) == []
    assert b.check_open_loss(Decimal(-(10**6)), Decimal(0), at(30)) is None
    assert not b.position_expired(at(-(10**6)), at(0))
    assert b.entry_blocker(at(31)) is None
    assert b.realized_pnl == Decimal(-2000)


# ---------------------------------------------------------------- daily loss


def test_realized_loss_reaching_the_limit_trips_and_blocks_entries() -> None:
    b = breaker(max_daily_loss=Decimal(200))
    assert b.on_round_trip(trip("-120", minute=1), at(1)) == []
    assert b.entry_blocker(at(2)) is None
    assert b.on_round_trip(trip("-79.99", minute=3), at(3)) == []
    assert b.realized_pnl == Decimal("-199.99")
    assert b.entry_blocker(at(4)) is None
    [tripped] = b.on_round_trip(trip("-0.01", minute=5), at(5))
    assert tripped.rule is BreakerRule.DAILY_LOSS
    assert tripped.ts == at(5)
    assert tripped.until is None  # lifts at the next session open
    assert "-200.00 <= -200" in tripped.detail
    assert b.daily_loss_halt
    assert b.entry_blocker(at(6)) is BreakerRule.DAILY_LOSS
    assert b.entry_blocker(at(600)) is BreakerRule.DAILY_LOSS


def test_the_daily_loss_trips_once_and_a_later_win_does_not_lift_it() -> None:
    b = breaker(max_daily_loss=Decimal(100))
    assert len(b.on_round_trip(trip("-150"), at(1))) == 1
    assert b.on_round_trip(trip("-10"), at(2)) == []
    assert b.on_round_trip(trip("500"), at(3)) == []
    assert b.realized_pnl == Decimal(340)
    assert b.entry_blocker(at(4)) is BreakerRule.DAILY_LOSS


def test_realized_pnl_is_net_of_commissions() -> None:
    b = breaker(max_daily_loss=Decimal(10))
    # Gross +0, commissions 1.24 each: eight scratches lose 9.92, the ninth crosses $10.
    for i in range(8):
        assert b.on_round_trip(trip("-1.24"), at(i)) == []
    assert b.realized_pnl == Decimal("-9.92")
    [tripped] = b.on_round_trip(trip("-1.24"), at(9))
    assert tripped.rule is BreakerRule.DAILY_LOSS


def test_a_realized_loss_past_the_limit_blocks_even_without_the_halt_flag() -> None:
    # After an operator reset the flag is down, but the session's realized P&L still breaches.
    b = breaker(max_daily_loss=Decimal(100))
    b.on_round_trip(trip("-100"), at(1))
    assert b.reset(at(2)) == BreakerReset(at(2), "operator")
    assert not b.daily_loss_halt
    assert b.realized_pnl == Decimal(-100)
    assert b.entry_blocker(at(3)) is BreakerRule.DAILY_LOSS


OPEN_LOSS = [
    # realized, open P&L, open commission, trips?
    ("0", "-199", "0.99", False),
    ("0", "-199", "1", True),  # commissions paid count toward the limit
    ("0", "-200", "0", True),
    ("-150", "-49", "0.62", False),
    ("-150", "-50", "0", True),
    ("-150", "-49", "1.24", True),
    ("50", "-249", "1.24", True),
    ("50", "-248", "0.62", False),
    ("-190", "10", "0", False),
]


@pytest.mark.parametrize(("realized", "open_pnl", "commission", "trips"), OPEN_LOSS)
def test_check_open_loss_counts_realized_open_and_commissions(
    realized: str, open_pnl: str, commission: str, trips: bool
) -> None:
    b = breaker(max_daily_loss=Decimal(200))
    if realized != "0":
        assert b.on_round_trip(trip(realized), at(1)) == []
    result = b.check_open_loss(Decimal(open_pnl), Decimal(commission), at(2))
    if trips:
        assert result is not None
        assert (result.rule, result.ts, result.until) == (BreakerRule.DAILY_LOSS, at(2), None)
        assert "incl. open" in result.detail
        assert b.daily_loss_halt
        assert b.entry_blocker(at(3)) is BreakerRule.DAILY_LOSS
        # Tripped once: a second check says nothing new.
        assert b.check_open_loss(Decimal(open_pnl), Decimal(commission), at(3)) is None
    else:
        assert result is None
        assert not b.daily_loss_halt
        assert b.entry_blocker(at(3)) is None


def test_an_open_loss_halt_lasts_until_the_next_session() -> None:
    b = breaker(max_daily_loss=Decimal(200))
    assert b.check_open_loss(Decimal(-250), Decimal(0), at(1)) is not None
    assert b.entry_blocker(at(500)) is BreakerRule.DAILY_LOSS
    assert b.start_session(NEXT_DAY, at(1000)) == BreakerReset(at(1000), "session_open")
    assert b.entry_blocker(at(1001)) is None


# ---------------------------------------------------------------- consecutive losses


def test_the_nth_loss_in_a_row_pauses_entries_from_that_loss() -> None:
    b = breaker(max_consecutive_losses=3, pause=timedelta(minutes=30))
    assert b.on_round_trip(trip("-5"), at(1)) == []
    assert b.on_round_trip(trip("-5"), at(2)) == []
    assert b.loss_streak == 2
    assert b.entry_blocker(at(2)) is None
    [tripped] = b.on_round_trip(trip("-5"), at(10))
    assert tripped == BreakerTripped(
        BreakerRule.CONSECUTIVE_LOSSES, at(10), "3 losing trades in a row", until=at(40)
    )
    assert b.paused_until == at(40)
    assert b.loss_streak == 0  # the streak starts again from zero


PAUSE_BOUNDARY = [
    (at(10), BreakerRule.CONSECUTIVE_LOSSES),
    (at(39) + timedelta(seconds=59), BreakerRule.CONSECUTIVE_LOSSES),
    (at(40) - timedelta(microseconds=1), BreakerRule.CONSECUTIVE_LOSSES),
    (at(40), None),
    (at(41), None),
]


@pytest.mark.parametrize(("now", "blocker"), PAUSE_BOUNDARY)
def test_the_pause_blocks_before_its_end_and_not_at_or_after(
    now: datetime, blocker: BreakerRule | None
) -> None:
    b = breaker(max_consecutive_losses=1, pause=timedelta(minutes=30))
    assert len(b.on_round_trip(trip("-5"), at(10))) == 1
    assert b.entry_blocker(now) is blocker


def test_after_a_pause_it_takes_a_full_new_streak_to_pause_again() -> None:
    b = breaker(max_consecutive_losses=2, pause=timedelta(minutes=30))
    b.on_round_trip(trip("-1"), at(0))
    assert len(b.on_round_trip(trip("-1"), at(1))) == 1
    assert b.entry_blocker(at(31)) is None
    assert b.on_round_trip(trip("-1"), at(40)) == []
    assert b.entry_blocker(at(41)) is None
    [again] = b.on_round_trip(trip("-1"), at(50))
    assert again.until == at(80)
    assert b.entry_blocker(at(79)) is BreakerRule.CONSECUTIVE_LOSSES


@pytest.mark.parametrize("breaker_net", ["0", "0.01", "100"])
def test_a_breakeven_or_winning_trade_breaks_the_streak(breaker_net: str) -> None:
    b = breaker(max_consecutive_losses=3)
    b.on_round_trip(trip("-5"), at(1))
    b.on_round_trip(trip("-5"), at(2))
    assert b.on_round_trip(trip(breaker_net), at(3)) == []
    assert b.loss_streak == 0
    assert b.on_round_trip(trip("-5"), at(4)) == []
    assert b.on_round_trip(trip("-5"), at(5)) == []
    assert b.entry_blocker(at(6)) is None
    assert len(b.on_round_trip(trip("-5"), at(7))) == 1


def test_a_pause_runs_on_its_own_clock_across_a_session_open() -> None:
    b = breaker(max_consecutive_losses=1, pause=timedelta(minutes=30))
    b.on_round_trip(trip("-5"), at(0))
    assert b.start_session(NEXT_DAY, at(10)) is not None
    assert b.entry_blocker(at(20)) is BreakerRule.CONSECUTIVE_LOSSES
    assert b.entry_blocker(at(30)) is None


def test_both_loss_rules_can_trip_on_one_round_trip() -> None:
    b = breaker(max_consecutive_losses=2, max_daily_loss=Decimal(50))
    b.on_round_trip(trip("-10"), at(1))
    trips = b.on_round_trip(trip("-40"), at(2))
    assert [t.rule for t in trips] == [BreakerRule.CONSECUTIVE_LOSSES, BreakerRule.DAILY_LOSS]
    # The daily-loss halt outranks the pause in what the gate reports.
    assert b.entry_blocker(at(3)) is BreakerRule.DAILY_LOSS


# ---------------------------------------------------------------- max trades


def test_max_trades_trips_exactly_at_the_cap_and_blocks_after() -> None:
    b = breaker(max_trades_per_day=3)
    assert b.on_entry(at(1)) is None
    assert b.entry_blocker(at(1)) is None
    assert b.on_entry(at(2)) is None
    assert b.entry_blocker(at(2)) is None
    tripped = b.on_entry(at(3))
    assert tripped == BreakerTripped(BreakerRule.MAX_TRADES, at(3), "3 entries this session")
    assert b.trades_today == 3
    assert b.entry_blocker(at(4)) is BreakerRule.MAX_TRADES
    # An entry past the cap (a fill we did not ask for) counts but does not trip again.
    assert b.on_entry(at(5)) is None
    assert b.trades_today == 4
    assert b.entry_blocker(at(6)) is BreakerRule.MAX_TRADES


def test_a_cap_of_one_trips_on_the_first_entry() -> None:
    b = breaker(max_trades_per_day=1)
    tripped = b.on_entry(at(0))
    assert tripped is not None
    assert tripped.rule is BreakerRule.MAX_TRADES
    assert b.entry_blocker(at(1)) is BreakerRule.MAX_TRADES


def test_the_trade_cap_resets_at_the_session_open_not_by_operator() -> None:
    b = breaker(max_trades_per_day=2)
    b.on_entry(at(1))
    b.on_entry(at(2))
    b.reset(at(3))
    assert b.entry_blocker(at(4)) is BreakerRule.MAX_TRADES
    b.start_session(NEXT_DAY, at(5))
    assert b.trades_today == 0
    assert b.entry_blocker(at(6)) is None


# ---------------------------------------------------------------- position duration

DURATION = [
    (timedelta(hours=4) - timedelta(seconds=1), False),
    (timedelta(hours=4), True),
    (timedelta(hours=4, seconds=1), True),
    (timedelta(0), False),
]


@pytest.mark.parametrize(("age", "expired"), DURATION)
def test_a_position_expires_at_its_max_duration_inclusive(age: timedelta, expired: bool) -> None:
    b = breaker(max_position_duration=timedelta(hours=4))
    assert b.position_expired(T0, T0 + age) is expired


# ---------------------------------------------------------------- sessions and resets


def test_the_first_session_returns_none_and_sets_the_trade_date() -> None:
    b = CircuitBreaker(RiskLimits())
    assert b.trade_date is None
    assert b.start_session(DAY, T0) is None
    assert b.trade_date == DAY


def test_the_same_trade_date_again_changes_nothing() -> None:
    b = breaker(max_trades_per_day=5, max_consecutive_losses=5)
    b.on_entry(at(1))
    b.on_round_trip(trip("-5"), at(2))
    assert b.start_session(DAY, at(3)) is None
    assert (b.trades_today, b.loss_streak, b.realized_pnl) == (1, 1, Decimal(-5))


def test_a_new_session_resets_every_session_counter() -> None:
    b = breaker(max_daily_loss=Decimal(10), max_consecutive_losses=5, max_trades_per_day=5)
    b.on_entry(at(1))
    b.on_entry(at(2))
    b.on_round_trip(trip("-6"), at(3))
    b.on_round_trip(trip("-6"), at(4))
    assert b.daily_loss_halt
    status_before = b.status()
    reset = b.start_session(NEXT_DAY, at(100))
    assert reset == BreakerReset(at(100), "session_open")
    assert b.trade_date == NEXT_DAY
    assert b.status() == replace(
        status_before,
        trade_date=NEXT_DAY,
        realized_pnl=Decimal(0),
        trades_today=0,
        loss_streak=0,
        daily_loss_halt=False,
        max_trades_reached=False,
    )
    assert b.entry_blocker(at(101)) is None


def test_an_operator_reset_lifts_halts_and_pause_but_keeps_pnl_and_count() -> None:
    b = breaker(max_daily_loss=Decimal(1000), max_consecutive_losses=2, max_trades_per_day=10)
    b.on_entry(at(0))
    b.on_round_trip(trip("-5"), at(1))
    b.on_round_trip(trip("-5"), at(2))
    b.check_open_loss(Decimal(-2000), Decimal(0), at(3))
    assert b.entry_blocker(at(4)) is BreakerRule.DAILY_LOSS
    assert b.reset(at(5)) == BreakerReset(at(5), "operator")
    assert (b.daily_loss_halt, b.paused_until, b.loss_streak) == (False, None, 0)
    assert (b.realized_pnl, b.trades_today) == (Decimal(-10), 1)
    assert b.entry_blocker(at(6)) is None


def test_status_reports_every_counter_and_the_limits() -> None:
    limits = RiskLimits(max_daily_loss=Decimal(100), max_consecutive_losses=2, max_trades_per_day=2)
    b = CircuitBreaker(limits)
    assert b.status() == BreakerStatus(
        trade_date=None,
        realized_pnl=Decimal(0),
        trades_today=0,
        loss_streak=0,
        daily_loss_halt=False,
        max_trades_reached=False,
        paused_until=None,
        limits=limits,
    )
    b.start_session(DAY, T0)
    b.on_entry(at(1))
    b.on_round_trip(trip("-30"), at(2))
    b.on_entry(at(3))
    b.on_round_trip(trip("-80"), at(4))
    assert b.status() == BreakerStatus(
        trade_date=DAY,
        realized_pnl=Decimal(-110),
        trades_today=2,
        loss_streak=0,
        daily_loss_halt=True,
        max_trades_reached=True,
        paused_until=at(34),
        limits=limits,
    )


def test_status_with_no_trade_cap_never_reports_it_reached() -> None:
    b = breaker()
    for i in range(100):
        b.on_entry(at(i))
    assert not b.status().max_trades_reached


def test_rejected_entries_halt_entries_at_the_cap_until_the_session_or_an_operator_resets() -> None:
    breaker = CircuitBreaker(RiskLimits(max_rejects_per_day=3))
    breaker.start_session(date(2026, 12, 3), T0)
    assert breaker.on_reject(T0, "margin (201)") is None
    assert breaker.on_reject(T0, "margin (201)") is None
    tripped = breaker.on_reject(T0, "IB rejected the order: margin (201)")
    assert tripped is not None
    assert tripped.rule is BreakerRule.REJECTS
    assert tripped.detail == (
        "3 entry orders rejected this session; last: IB rejected the order: margin (201)"
    )
    assert breaker.entry_blocker(T0) is BreakerRule.REJECTS
    assert breaker.status().rejects_halt
    assert breaker.on_reject(T0, "again") is None  # tripped once
    breaker.reset(T0)
    assert breaker.entry_blocker(T0) is None
    breaker.on_reject(T0, "x"), breaker.on_reject(T0, "x"), breaker.on_reject(T0, "x")
    assert breaker.entry_blocker(T0) is BreakerRule.REJECTS
    breaker.start_session(date(2026, 12, 4), T0)
    assert breaker.entry_blocker(T0) is None
    assert breaker.state().rejects_today == 0


def test_rejected_entries_never_halt_with_the_cap_off() -> None:
    breaker = CircuitBreaker(RiskLimits(max_rejects_per_day=None))
    for _ in range(10):
        assert breaker.on_reject(T0, "margin") is None
    assert breaker.entry_blocker(T0) is None
