"""The replay summary's metrics, each checked against a small hand-computed case."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal, localcontext

import pytest

from application.report import (
    ExitReasonStats,
    ReplayInputs,
    drawdown_curve,
    equity_curve,
    summarize,
)
from domain.position import ExitReason, OpenPosition, RoundTrip
from domain.values import Side

D = Decimal
DAY1 = date(2024, 3, 4)
T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


def trip(
    seq: int,
    ticks: int,
    commissions: str = "1.24",
    *,
    side: Side = Side.LONG,
    reason: ExitReason = ExitReason.SIGNAL,
    day: int = 0,
    minute: int | None = None,
) -> RoundTrip:
    """A 1-lot MES round trip of ``ticks`` ticks ($1.25 each), closed ``day`` days after DAY1."""
    entry = T0 + timedelta(days=day, minutes=10 * (seq if minute is None else minute))
    entry_price = D("5000.00")
    move = D("0.25") * ticks * side.sign
    return RoundTrip(
        seq=seq,
        side=side,
        qty=1,
        entry_ts=entry,
        entry_price=entry_price,
        exit_ts=entry + timedelta(minutes=5),
        exit_price=entry_price + move,
        exit_reason=reason,
        pnl_ticks=ticks,
        gross_pnl=D("1.25") * ticks,
        commissions=D(commissions),
    )


def inputs(
    trips: Sequence[RoundTrip],
    *,
    trade_dates: Sequence[date] | None = None,
    breaker_trips: Sequence[tuple[datetime, str]] = (),
    final_position: OpenPosition | None = None,
    rows_refused: dict[str, int] | None = None,
) -> ReplayInputs:
    return ReplayInputs(
        round_trips=trips,
        trade_dates=[DAY1] if trade_dates is None else trade_dates,
        trade_date_of=lambda ts: ts.date(),
        bars_in=1000,
        strategy_bars=200,
        breaker_trips=breaker_trips,
        final_position=final_position,
        rows_refused={} if rows_refused is None else rows_refused,
    )


# nets: +8.76, -6.24, 0.00, +18.76, -16.24, -3.74  (total 1.30)
MIXED = [
    trip(1, 8),
    trip(2, -4, side=Side.SHORT, reason=ExitReason.STOP),
    trip(3, 1, "1.25"),
    trip(4, 16, side=Side.SHORT, reason=ExitReason.TARGET),
    trip(5, -12, reason=ExitReason.STOP),
    trip(6, -2, reason=ExitReason.SESSION),
]


def test_pnl_totals_are_exact_and_net_of_commissions() -> None:
    s = summarize(inputs(MIXED))
    assert (s.gross_pnl_usd, s.commissions_usd, s.net_pnl_usd) == (D("8.75"), D("7.45"), D("1.30"))
    assert (s.bars_in, s.strategy_bars, s.round_trips) == (1000, 200, 6)


def test_wins_losses_and_breakeven_are_decided_on_net_pnl() -> None:
    s = summarize(inputs(MIXED))
    assert (s.wins, s.losses, s.breakeven) == (2, 3, 1)
    assert (s.long_trades, s.short_trades) == (4, 2)
    assert s.win_rate == pytest.approx(2 / 6)


def test_profit_factor_expectancy_and_averages() -> None:
    s = summarize(inputs(MIXED))
    assert s.profit_factor == pytest.approx(27.52 / 26.22, rel=1e-12)
    assert s.expectancy_usd is not None
    assert s.expectancy_usd.quantize(D("0.000001")) == D("0.216667")
    assert (s.avg_win_usd, s.avg_loss_usd) == (D("13.76"), D("-8.74"))
    assert (s.best_trade_usd, s.best_trade_seq) == (D("18.76"), 4)
    assert (s.worst_trade_usd, s.worst_trade_seq) == (D("-16.24"), 5)


def test_max_drawdown_is_peak_to_trough_of_cumulative_net_pnl() -> None:
    # equity 0, 8.76, 2.52, 2.52, 21.28, 5.04, 1.30: the deepest fall is 21.28 -> 1.30
    assert summarize(inputs(MIXED)).max_drawdown_usd == D("19.98")


@pytest.mark.parametrize(
    ("ticks", "expected"),
    [
        ([-4, 3, -4], D("6.25")),  # loss first: the peak is the 0 start; -5, -1.25, -6.25
        ([4, 4], D("0")),  # never below the running peak
        ([], D("0")),
    ],
)
def test_max_drawdown_counts_from_zero(ticks: list[int], expected: Decimal) -> None:
    trips = [trip(i + 1, t, "0") for i, t in enumerate(ticks)]
    s = summarize(inputs(trips))
    assert s.max_drawdown_usd == expected
    assert s.max_drawdown_usd >= 0


@pytest.mark.parametrize(
    ("ticks", "losing", "winning"),
    [
        ([], 0, 0),
        ([-1, -1, 1, -1, -1, -1, 1], 3, 1),
        ([-1, -1, 0, -1], 2, 0),  # a breakeven trade ends a losing streak
        ([1, 1, 1, -1, 1], 1, 3),
    ],
)
def test_streaks(ticks: list[int], losing: int, winning: int) -> None:
    s = summarize(inputs([trip(i + 1, t, "0") for i, t in enumerate(ticks)]))
    assert (s.max_losing_streak, s.max_winning_streak) == (losing, winning)


def test_without_losses_profit_factor_and_average_loss_are_undefined() -> None:
    s = summarize(inputs([trip(1, 4, "0"), trip(2, 0, "0")]))
    assert (s.profit_factor, s.avg_loss_usd) == (None, None)
    assert s.win_rate == 0.5
    assert s.avg_win_usd == D("5.00")


def test_zero_trades_leaves_trade_metrics_undefined() -> None:
    s = summarize(inputs([]))
    assert (s.round_trips, s.wins, s.losses, s.net_pnl_usd) == (0, 0, 0, D(0))
    assert (s.win_rate, s.profit_factor, s.expectancy_usd) == (None, None, None)
    assert (s.avg_win_usd, s.avg_loss_usd, s.best_trade_usd, s.worst_trade_usd) == (None,) * 4
    assert (s.first_trade_at, s.last_trade_at) == (None, None)
    assert s.by_exit_reason == {}


def test_results_by_exit_reason_in_enum_order() -> None:
    s = summarize(inputs(MIXED))
    assert list(s.by_exit_reason.items()) == [
        (ExitReason.SIGNAL, ExitReasonStats(trades=2, wins=1, losses=0, net_pnl_usd=D("8.76"))),
        (ExitReason.STOP, ExitReasonStats(trades=2, wins=0, losses=2, net_pnl_usd=D("-22.48"))),
        (ExitReason.TARGET, ExitReasonStats(trades=1, wins=1, losses=0, net_pnl_usd=D("18.76"))),
        (ExitReason.SESSION, ExitReasonStats(trades=1, wins=0, losses=1, net_pnl_usd=D("-3.74"))),
    ]


# Daily net P&L 10, -5, 0 (no trades), 15: mean 5, sample variance 250/3, downside mean 25/4.
DAILY_TRIPS = [
    trip(1, 8, "0", day=0),
    trip(2, 1, "1.25", day=0, minute=30),  # a second trade the same day: +1.25 - 1.25 = 0
    trip(3, -4, "0", day=1),
    trip(4, 12, "0", day=3),
]
FOUR_DAYS = [DAY1 + timedelta(days=n) for n in range(4)]


def test_daily_pnl_includes_days_without_trades_as_zero() -> None:
    s = summarize(inputs(DAILY_TRIPS, trade_dates=FOUR_DAYS))
    assert s.trading_days == 4
    assert [pnl for _, pnl in s.daily_pnl_usd] == [D("10.00"), D("-5.00"), D(0), D("15.00")]


def test_daily_sharpe_and_sortino_on_a_known_series() -> None:
    s = summarize(inputs(DAILY_TRIPS, trade_dates=FOUR_DAYS))
    # Sharpe = 5 / sqrt(250/3) * sqrt(252) = sqrt(75.6); Sortino = 5 / 2.5 * sqrt(252)
    assert s.sharpe_daily == pytest.approx(math.sqrt(75.6), rel=1e-12)
    assert s.sortino_daily == pytest.approx(2 * math.sqrt(252), rel=1e-12)


@pytest.mark.parametrize(
    ("ticks_by_day", "sharpe_defined", "sortino_defined"),
    [
        ({0: 4}, False, False),  # one day: no deviation to speak of
        ({0: 4, 1: 4}, False, False),  # zero deviation, no losing day
        ({0: 4, 1: 8}, True, False),  # no losing day: no downside deviation
        ({0: -4, 1: -4}, False, True),
    ],
)
def test_daily_ratios_are_none_when_undefined(
    ticks_by_day: dict[int, int], sharpe_defined: bool, sortino_defined: bool
) -> None:
    trips = [trip(i + 1, t, "0", day=d) for i, (d, t) in enumerate(ticks_by_day.items())]
    days = [DAY1 + timedelta(days=d) for d in ticks_by_day]
    s = summarize(inputs(trips, trade_dates=days))
    assert (s.sharpe_daily is not None, s.sortino_daily is not None) == (
        sharpe_defined,
        sortino_defined,
    )


def test_an_open_position_at_the_end_adds_nothing_to_pnl() -> None:
    still_open = OpenPosition(Side.SHORT, 1, D("5001.25"), T0 + timedelta(hours=3))
    s = summarize(inputs(MIXED, final_position=still_open))
    assert s.final_position == still_open
    assert (s.round_trips, s.net_pnl_usd) == (6, D("1.30"))


def test_breaker_trips_are_counted_by_rule_in_time_order() -> None:
    trips = [
        (T0 + timedelta(hours=2), "max_daily_loss"),
        (T0, "max_consecutive_losses"),
        (T0 + timedelta(hours=1), "max_consecutive_losses"),
    ]
    s = summarize(inputs([], breaker_trips=trips))
    assert s.breaker_trips == 3
    assert list(s.breaker_trips_by_rule.items()) == [
        ("max_consecutive_losses", 2),
        ("max_daily_loss", 1),
    ]
    assert [ts for ts, _ in s.breaker_trip_log] == sorted(ts for ts, _ in trips)


def test_refused_rows_are_totalled() -> None:
    s = summarize(inputs([], rows_refused={"ohlc": 2, "nan": 3}))
    assert list(s.rows_refused.items()) == [("nan", 3), ("ohlc", 2)]
    assert s.rows_refused_total == 5


def test_first_and_last_trade_times() -> None:
    s = summarize(inputs(MIXED))
    assert s.first_trade_at == MIXED[0].entry_ts
    assert s.last_trade_at == MIXED[-1].exit_ts


def test_result_does_not_depend_on_the_callers_decimal_context() -> None:
    expected = summarize(inputs(DAILY_TRIPS, trade_dates=FOUR_DAYS))
    with localcontext(Context(prec=3)):
        assert summarize(inputs(DAILY_TRIPS, trade_dates=FOUR_DAYS)) == expected


def test_equity_curve_starts_at_zero_and_accumulates_net_pnl_in_exit_order() -> None:
    first, second = trip(1, 8, "1.00"), trip(2, -4, "1.00")
    assert equity_curve([second, first]) == [
        (first.entry_ts, D(0)),
        (first.exit_ts, D("9.00")),
        (second.exit_ts, D("3.00")),
    ]


def test_equity_curve_without_trades() -> None:
    assert equity_curve([]) == []
    assert equity_curve([], start=T0) == [(T0, D(0))]


def test_drawdown_curve_measures_distance_below_the_running_peak() -> None:
    times = [T0 + timedelta(minutes=m) for m in range(5)]
    equity = list(zip(times, [D(0), D(-3), D(2), D(-1), D(4)], strict=True))
    assert [dd for _, dd in drawdown_curve(equity)] == [D(0), D(3), D(0), D(3), D(0)]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"bars_in": -1}, "bars_in must not be negative"),
        ({"strategy_bars": -2}, "strategy_bars must not be negative"),
        ({"rows_refused": {"nan": -1}}, "refused-row count for 'nan' is negative"),
        (
            {"trade_dates": [DAY1 + timedelta(days=1)]},
            "round trip 1 exits on trade date 2024-03-04",
        ),
        ({"breaker_trips": [(datetime(2024, 3, 4, 15), "x")]}, "breaker trip 'x' time"),
        ({"round_trips": [replace(trip(1, 1), exit_ts=T0)]}, "round trip 1 exits at .* before"),
        ({"round_trips": [replace(trip(1, 1), entry_ts=T0.replace(tzinfo=None))]}, "no time zone"),
    ],
)
def test_inconsistent_input_is_refused_with_a_clear_message(
    bad: dict[str, object], message: str
) -> None:
    base = inputs([trip(1, 1)])
    fields = {f: getattr(base, f) for f in ReplayInputs.__dataclass_fields__}
    with pytest.raises(ValueError, match=message):
        summarize(ReplayInputs(**(fields | bad)))
