"""Trader metrics on hand-built trade lists with known answers: drawdown dates, holding times,
MAE/MFE, entry z, stop and target, Calmar, SQN, days, the market's change and the open position."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from application.report import PriceBars, ReplayInputs, max_drawdown, summarize
from domain.commands import OrderIntentRecord, SignalAction, SignalRecord
from domain.position import ExitReason, OpenPosition, RoundTrip
from domain.values import Action, Side

D = Decimal
T0 = datetime(2024, 3, 4, 14, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def trip(
    seq: int,
    entry_min: int,
    exit_min: int,
    entry: str,
    exit_: str,
    *,
    side: Side = Side.LONG,
    commissions: str = "0",
) -> RoundTrip:
    entry_price, exit_price = D(entry), D(exit_)
    points = (exit_price - entry_price) * side.sign
    return RoundTrip(
        seq=seq,
        side=side,
        qty=1,
        entry_ts=at(entry_min),
        entry_price=entry_price,
        exit_ts=at(exit_min),
        exit_price=exit_price,
        exit_reason=ExitReason.SIGNAL,
        pnl_ticks=int(points / D("0.25")),
        gross_pnl=points * 5,
        commissions=D(commissions),
    )


def bars(lows_highs: Sequence[tuple[float, float]], start_min: int = 0) -> PriceBars:
    """One-minute bars from T0 + start_min, opening at the low and closing at the high."""
    start = int(at(start_min).timestamp())
    return PriceBars(
        starts=[start + 60 * i for i in range(len(lows_highs))],
        seconds=60,
        opens=[lo for lo, _ in lows_highs],
        highs=[hi for _, hi in lows_highs],
        lows=[lo for lo, _ in lows_highs],
        closes=[hi for _, hi in lows_highs],
    )


def inputs(trips: Sequence[RoundTrip], **extra: object) -> ReplayInputs:
    fields: dict[str, object] = {
        "round_trips": trips,
        "trade_dates": sorted({t.exit_ts.date() for t in trips}) or [T0.date()],
        "trade_date_of": lambda ts: ts.date(),
        "bars_in": 10,
        "strategy_bars": 2,
        "breaker_trips": (),
        "final_position": None,
        "rows_refused": {},
    }
    fields.update(extra)
    return ReplayInputs(**fields)  # type: ignore[arg-type]


def test_drawdown_names_its_peak_bottom_and_recovery() -> None:
    # equity: 0, +50 (t10), +20 (t20), -10 (t30), +60 (t40): the fall is 50 -> -10 = 60
    curve = [(at(0), D(0)), (at(10), D(50)), (at(20), D(20)), (at(30), D(-10)), (at(40), D(60))]
    dd = max_drawdown(curve, D(1000))
    assert dd.depth_usd == D(60)
    assert (dd.start, dd.bottom, dd.recovery) == (at(10), at(30), at(40))
    assert dd.duration == timedelta(minutes=30)
    assert dd.depth_pct == pytest.approx(60 / 1050 * 100)


def test_a_drawdown_never_recovered_lasts_to_the_last_point() -> None:
    curve = [(at(0), D(0)), (at(10), D(50)), (at(20), D(20)), (at(30), D(30))]
    dd = max_drawdown(curve, D(1000))
    assert (dd.depth_usd, dd.start, dd.bottom, dd.recovery) == (D(30), at(10), at(20), None)
    assert dd.duration == timedelta(minutes=20)


def test_no_fall_is_no_drawdown() -> None:
    dd = max_drawdown([(at(0), D(0)), (at(5), D(10))], D(1000))
    assert (dd.depth_usd, dd.start, dd.bottom, dd.recovery, dd.duration) == (
        D(0),
        None,
        None,
        None,
        None,
    )


def test_holding_times_of_winners_losers_and_the_longest() -> None:
    trips = [
        trip(1, 0, 10, "5000", "5001"),  # win, 10 min
        trip(2, 20, 50, "5000", "4999"),  # loss, 30 min
        trip(3, 60, 80, "5000", "5002"),  # win, 20 min
    ]
    s = summarize(inputs(trips))
    assert s.avg_hold == timedelta(minutes=20)
    assert s.avg_hold_win == timedelta(minutes=15)
    assert s.avg_hold_loss == timedelta(minutes=30)
    assert s.max_hold == timedelta(minutes=30)
    assert [d.held for d in s.trades] == [timedelta(minutes=m) for m in (10, 30, 20)]


def test_long_and_short_results_are_split() -> None:
    trips = [
        trip(1, 0, 10, "5000", "5001"),
        trip(2, 20, 30, "5000", "5002", side=Side.SHORT),
        trip(3, 40, 50, "5000", "4999", side=Side.SHORT),
    ]
    s = summarize(inputs(trips))
    assert (s.long.trades, s.long.wins, s.long.net_pnl_usd) == (1, 1, D(5))
    assert (s.short.trades, s.short.wins, s.short.net_pnl_usd) == (2, 1, D(-5))


def test_mae_and_mfe_come_from_the_bars_wholly_inside_the_holding_time() -> None:
    # Long from 5000.00 at minute 1 to 5001.00 at minute 4. Bars start at minutes 0..4; the ones
    # wholly inside [1, 4] start at 1, 2 and 3. The bar at 0 (low 4990) was before the entry.
    prices = bars(
        [(4990.0, 5000.0), (4998.5, 5000.5), (4999.0, 5003.25), (4999.75, 5001.0), (4980, 5010)]
    )
    long_trip = trip(1, 1, 4, "5000.00", "5001.00")
    s = summarize(inputs([long_trip], prices=prices))
    detail = s.trades[0]
    assert detail.mae_usd == D("-7.50")  # 1.5 points below the entry, $5 a point
    assert detail.mfe_usd == D("16.25")  # 3.25 points above
    short_trip = trip(1, 1, 4, "5000.00", "5001.00", side=Side.SHORT)
    detail = summarize(inputs([short_trip], prices=prices)).trades[0]
    assert (detail.mae_usd, detail.mfe_usd) == (D("-16.25"), D("7.50"))


def test_mae_and_mfe_without_bars_inside_use_the_entry_and_exit() -> None:
    # A 2-minute bar from minute 0 straddles the exit at minute 1: its range is not the trade's.
    winner = trip(1, 0, 1, "5000", "5002")
    straddling = PriceBars([int(T0.timestamp())], 120, [5000.0], [6000.0], [4000.0], [5001.0])
    detail = summarize(inputs([winner], prices=straddling)).trades[0]
    assert (detail.mae_usd, detail.mfe_usd) == (D(0), D(10))


def test_entry_z_stop_and_target_are_those_of_the_entry() -> None:
    trips = [trip(1, 10, 20, "5000", "5001"), trip(2, 30, 40, "5000", "4999")]

    def signal(minute: int, z: float) -> SignalRecord:
        return SignalRecord(
            at(minute), at(minute - 5), 5000.0, z, SignalAction.ENTER, Side.LONG, ""
        )

    def intent(minute: int, role: str, price: str) -> OrderIntentRecord:
        return OrderIntentRecord(
            f"K{minute}{role}", role, Action.SELL, 1, "STP", D(price), at(minute), ""
        )

    s = summarize(
        inputs(
            trips,
            signals=[signal(10, -2.25), signal(30, -2.5)],
            intents=[
                intent(10, "stop", "4990.00"),
                intent(10, "target", "5010.00"),
                intent(30, "stop", "4989.75"),
                intent(30, "target", "5010.25"),
            ],
        )
    )
    assert [(d.entry_z, d.stop_price, d.target_price) for d in s.trades] == [
        (-2.25, D("4990.00"), D("5010.00")),
        (-2.5, D("4989.75"), D("5010.25")),
    ]


def test_sqn_is_root_n_times_mean_over_sample_deviation() -> None:
    trips = [
        trip(1, 0, 1, "5000", "5002"),  # +10
        trip(2, 2, 3, "5000", "4999"),  # -5
        trip(3, 4, 5, "5000", "5004"),  # +20
    ]
    nets = [10.0, -5.0, 20.0]
    mean = sum(nets) / 3
    std = math.sqrt(sum((x - mean) ** 2 for x in nets) / 2)
    assert summarize(inputs(trips)).sqn == pytest.approx(math.sqrt(3) * mean / std)
    assert summarize(inputs(trips[:1])).sqn is None


def test_return_calmar_and_no_cagr_on_a_short_period() -> None:
    # One day of data; +100 then -50 then +25 on a 10,000 account: net +75, drawdown 50 from 10,100.
    trips = [
        trip(1, 0, 10, "5000", "5020"),
        trip(2, 20, 30, "5000", "4990"),
        trip(3, 40, 50, "5000", "5005"),
    ]
    prices = PriceBars(
        starts=[int(T0.timestamp())],
        seconds=86400,
        opens=[5000.0],
        highs=[5100.0],
        lows=[4900.0],
        closes=[5050.0],
    )
    s = summarize(inputs(trips, prices=prices, account_size_usd=D(10_000)))
    assert s.return_pct == pytest.approx(0.75)
    assert s.annual_return_pct == pytest.approx(0.75 * 365.25)
    assert s.cagr_pct is None
    assert s.drawdown.depth_pct == pytest.approx(50 / 10_100 * 100)
    assert s.calmar == pytest.approx(0.75 * 365.25 / (50 / 10_100 * 100))
    assert (s.first_bar_at, s.last_bar_at) == (T0, T0 + timedelta(days=1))


def test_cagr_compounds_over_a_period_of_two_years() -> None:
    start = int(T0.timestamp())
    span = int(2 * 365.25 * 86400)
    prices = PriceBars([start, start + span - 60], 60, [1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1, 1])
    s = summarize(
        inputs([trip(1, 0, 10, "5000", "5420")], prices=prices, account_size_usd=D(10_000))
    )
    assert s.return_pct == pytest.approx(21.0)
    assert s.cagr_pct == pytest.approx((1.21**0.5 - 1) * 100)


def test_best_and_worst_day_and_days_won_and_lost() -> None:
    day = timedelta(days=1)
    trips = [
        trip(1, 0, 10, "5000", "5002"),  # day 1: +10
        trip(2, 20, 30, "5000", "4999"),  # day 1: -5 -> +5
        RoundTrip(
            3,
            Side.LONG,
            1,
            T0 + day,
            D(5000),
            T0 + day,
            D(4996),
            ExitReason.STOP,
            -16,
            D(-20),
            D(0),
        ),  # day 2: -20
    ]
    days = [T0.date(), (T0 + day).date(), (T0 + 2 * day).date()]  # day 3: no trades
    s = summarize(inputs(trips, trade_dates=days))
    assert s.best_day == (date(2024, 3, 4), D(5))
    assert s.worst_day == (date(2024, 3, 5), D(-20))
    assert (s.days_won, s.days_lost) == (1, 1)


def test_market_change_and_the_open_position_at_the_last_close() -> None:
    prices = bars([(5000.0, 5004.0), (5003.0, 5010.25)])
    position = OpenPosition(Side.SHORT, 2, D("5008.00"), at(1))
    s = summarize(inputs([], prices=prices, final_position=position))
    assert s.market is not None
    assert (s.market.first_open, s.market.last_close, s.market.points) == (
        D(5000),
        D("5010.25"),
        D("10.25"),
    )
    assert s.market.usd_per_contract == D("51.25")
    assert s.market.pct == pytest.approx(10.25 / 5000 * 100)
    assert s.last_close == D("5010.25")
    assert s.final_unrealized_usd == D("-22.50")  # short 2 lots, 2.25 points against
