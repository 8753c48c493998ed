"""The summary reads each round trip's net P&L once and builds the equity curve once; every figure
drawn from them equals its straightforward computation over the round trips themselves."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from application.report import (
    ReplayInputs,
    drawdown_curve,
    equity_curve,
    max_drawdown,
    ordered,
    summarize,
)
from domain.position import ExitReason, RoundTrip
from domain.values import ZERO, Side

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
ACCOUNT = Decimal(10_000)

_trip_shapes = st.tuples(
    st.integers(-40, 40),  # P&L ticks (a tie of nets is likely: best/worst keep the first)
    st.sampled_from(["0", "1.24", "2.48"]),  # commissions
    st.sampled_from(list(Side)),
    st.sampled_from(list(ExitReason)),
    st.integers(0, 2000),  # entry, minutes after T0 (exits may tie and close out of seq order)
    st.integers(0, 600),  # held, minutes
)


def _trips(shapes: list[tuple[int, str, Side, ExitReason, int, int]]) -> list[RoundTrip]:
    trips = []
    for seq, (ticks, commissions, side, reason, start, held) in enumerate(shapes, start=1):
        entry = T0 + timedelta(minutes=start)
        trips.append(
            RoundTrip(
                seq=seq,
                side=side,
                qty=1,
                entry_ts=entry,
                entry_price=Decimal("5000"),
                exit_ts=entry + timedelta(minutes=held),
                exit_price=Decimal("5000") + Decimal("0.25") * ticks * side.sign,
                exit_reason=reason,
                pnl_ticks=ticks,
                gross_pnl=Decimal("1.25") * ticks,
                commissions=Decimal(commissions),
            )
        )
    return trips


@settings(max_examples=200, deadline=None)
@given(st.lists(_trip_shapes, max_size=30))
def test_per_trip_figures_equal_their_direct_computation(
    shapes: list[tuple[int, str, Side, ExitReason, int, int]],
) -> None:
    trips = _trips(shapes)
    days = sorted({t.exit_ts.date() for t in trips}) or [T0.date()]
    summary = summarize(
        ReplayInputs(
            round_trips=trips,
            trade_dates=days,
            trade_date_of=lambda ts: ts.date(),
            bars_in=1,
            strategy_bars=1,
            breaker_trips=(),
            final_position=None,
            rows_refused={},
            account_size_usd=ACCOUNT,
        )
    )
    closed = ordered(trips)
    curve = equity_curve(trips)
    best = max(closed, key=lambda t: t.net_pnl, default=None)
    worst = min(closed, key=lambda t: t.net_pnl, default=None)
    assert (summary.best_trade_usd, summary.best_trade_seq) == (
        (None, None) if best is None else (best.net_pnl, best.seq)
    )
    assert (summary.worst_trade_usd, summary.worst_trade_seq) == (
        (None, None) if worst is None else (worst.net_pnl, worst.seq)
    )
    assert summary.max_drawdown_usd == max((d for _, d in drawdown_curve(curve)), default=ZERO)
    assert summary.drawdown == max_drawdown(curve, ACCOUNT)
    for side, figures in ((Side.LONG, summary.long), (Side.SHORT, summary.short)):
        mine = [t for t in trips if t.side is side]
        assert figures.trades == len(mine)
        assert figures.wins == sum(1 for t in mine if t.net_pnl > 0)
        assert figures.net_pnl_usd == sum((t.net_pnl for t in mine), ZERO)
    assert list(summary.by_exit_reason) == [
        r for r in ExitReason if any(t.exit_reason is r for t in trips)
    ]
    for reason, stats in summary.by_exit_reason.items():
        nets = [t.net_pnl for t in trips if t.exit_reason is reason]
        assert (stats.trades, stats.wins, stats.losses, stats.net_pnl_usd) == (
            len(nets),
            sum(1 for n in nets if n > 0),
            sum(1 for n in nets if n < 0),
            sum(nets, ZERO),
        )
    daily: dict[date, Decimal] = {}
    for t in trips:
        daily[t.exit_ts.date()] = daily.get(t.exit_ts.date(), ZERO) + t.net_pnl
    assert dict(summary.daily_pnl_usd) == {d: daily.get(d, ZERO) for d in days}
    held = [t.exit_ts - t.entry_ts for t in trips]
    won = [t.exit_ts - t.entry_ts for t in trips if t.net_pnl > 0]
    assert summary.max_hold == max(held, default=None)
    assert summary.avg_hold_win == (sum(won, timedelta()) / len(won) if won else None)
