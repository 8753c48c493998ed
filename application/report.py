"""The replay report: metrics computed from closed round trips.

Pure and deterministic. Money stays exact ``Decimal`` dollars; means and ratios are computed in a
fixed local ``decimal`` context (never the caller's), and only ratios are handed out as ``float``.
A trade is a win when its net P&L (commissions of both sides deducted) is above zero, a loss when
below, and breakeven at exactly zero; breakeven trades count in the win-rate denominator and end a
losing streak. A position still open at the end is not a round trip: it adds nothing to P&L and
is reported only as ``final_position``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Context, Decimal, localcontext

from domain.commands import SignalAction, SignalRecord
from domain.engine import EntryBlock
from domain.position import ExitReason, OpenPosition, RoundTrip
from domain.values import ZERO, Side

TRADING_DAYS_PER_YEAR = 252

# Enough digits that a mean or a deviation is exact to far below a cent, whatever the caller's
# decimal context says.
_CONTEXT = Context(prec=34)


@dataclass(frozen=True, slots=True)
class ReplayInputs:
    """Everything a replay knows at its end that the report needs."""

    round_trips: Sequence[RoundTrip]
    trade_dates: Sequence[date]
    """Every CME trade date that had at least one strategy bar (days without trades count as 0)."""
    trade_date_of: Callable[[datetime], date]
    """Maps an exit time to its CME trade date."""
    bars_in: int
    strategy_bars: int
    breaker_trips: Sequence[tuple[datetime, str]]
    """(time, rule name) for each circuit-breaker trip."""
    final_position: OpenPosition | None
    rows_refused: Mapping[str, int]
    """Refused input rows by reason (e.g. "nan", "ohlc", "negative")."""
    signals_blocked: Mapping[str, int] = field(default_factory=dict)
    """Entry signals the engine refused, by reason (see :func:`count_blocked`)."""


def count_blocked(signals: Iterable[SignalRecord]) -> dict[str, int]:
    """Refused entry signals by the reason that refused them (:class:`EntryBlock`'s ``reason``)."""
    return dict(
        Counter(EntryBlock.reason_of(s.detail) for s in signals if s.action is SignalAction.SKIPPED)
    )


@dataclass(frozen=True, slots=True)
class ExitReasonStats:
    """Results of the round trips closed for one exit reason."""

    trades: int
    wins: int
    losses: int
    net_pnl_usd: Decimal


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    """The replay's results. Money in Decimal dollars; ``None`` where a metric is undefined."""

    bars_in: int
    strategy_bars: int
    round_trips: int
    wins: int
    losses: int
    breakeven: int
    long_trades: int
    short_trades: int
    gross_pnl_usd: Decimal
    commissions_usd: Decimal
    net_pnl_usd: Decimal
    win_rate: float | None
    """wins / round trips; None without trades."""
    profit_factor: float | None
    """Sum of winning net P&L / |sum of losing net P&L|; None without losses."""
    expectancy_usd: Decimal | None
    avg_win_usd: Decimal | None
    avg_loss_usd: Decimal | None
    """Mean net P&L of the losing trades (negative); None without losses."""
    best_trade_usd: Decimal | None
    best_trade_seq: int | None
    worst_trade_usd: Decimal | None
    worst_trade_seq: int | None
    max_drawdown_usd: Decimal
    """Largest peak-to-trough fall of cumulative net P&L, from 0, as a non-negative amount."""
    max_losing_streak: int
    max_winning_streak: int
    trading_days: int
    daily_pnl_usd: tuple[tuple[date, Decimal], ...]
    sharpe_daily: float | None
    """mean / sample std of daily net P&L x sqrt(252); None with < 2 days or zero deviation."""
    sortino_daily: float | None
    """mean / sqrt(mean(min(r, 0)^2)) over all days x sqrt(252); None with < 2 days or none < 0."""
    first_trade_at: datetime | None
    """Entry time of the first round trip."""
    last_trade_at: datetime | None
    """Exit time of the last round trip."""
    by_exit_reason: Mapping[ExitReason, ExitReasonStats]
    breaker_trips: int
    breaker_trips_by_rule: Mapping[str, int]
    breaker_trip_log: tuple[tuple[datetime, str], ...]
    final_position: OpenPosition | None
    rows_refused: Mapping[str, int]
    rows_refused_total: int
    signals_blocked: Mapping[str, int]
    """Refused entry signals by reason, the most frequent first."""
    signals_blocked_total: int


def summarize(inputs: ReplayInputs) -> ReplaySummary:
    """Compute the replay summary. Raises ``ValueError`` naming the first inconsistent input."""
    _check_inputs(inputs)
    with localcontext(_CONTEXT):
        return _summarize(inputs)


def _summarize(inputs: ReplayInputs) -> ReplaySummary:
    trips = ordered(inputs.round_trips)
    nets = [t.net_pnl for t in trips]
    wins = [n for n in nets if n > 0]
    losses = [n for n in nets if n < 0]
    gross_win = sum(wins, ZERO)
    gross_loss = sum(losses, ZERO)
    daily = _daily_pnl(trips, inputs.trade_dates, inputs.trade_date_of)
    returns = [pnl for _, pnl in daily]
    best = max(trips, key=lambda t: t.net_pnl, default=None)
    worst = min(trips, key=lambda t: t.net_pnl, default=None)
    trip_log = tuple(sorted(inputs.breaker_trips, key=lambda trip: trip[0]))
    return ReplaySummary(
        bars_in=inputs.bars_in,
        strategy_bars=inputs.strategy_bars,
        round_trips=len(trips),
        wins=len(wins),
        losses=len(losses),
        breakeven=len(nets) - len(wins) - len(losses),
        long_trades=sum(1 for t in trips if t.side is Side.LONG),
        short_trades=sum(1 for t in trips if t.side is Side.SHORT),
        gross_pnl_usd=sum((t.gross_pnl for t in trips), ZERO),
        commissions_usd=sum((t.commissions for t in trips), ZERO),
        net_pnl_usd=sum(nets, ZERO),
        win_rate=_ratio(Decimal(len(wins)), Decimal(len(trips))),
        profit_factor=_ratio(gross_win, -gross_loss),
        expectancy_usd=_mean(nets),
        avg_win_usd=_mean(wins),
        avg_loss_usd=_mean(losses),
        best_trade_usd=None if best is None else best.net_pnl,
        best_trade_seq=None if best is None else best.seq,
        worst_trade_usd=None if worst is None else worst.net_pnl,
        worst_trade_seq=None if worst is None else worst.seq,
        max_drawdown_usd=max((dd for _, dd in drawdown_curve(equity_curve(trips))), default=ZERO),
        max_losing_streak=_longest_run(n < 0 for n in nets),
        max_winning_streak=_longest_run(n > 0 for n in nets),
        trading_days=len(daily),
        daily_pnl_usd=tuple(daily),
        sharpe_daily=_sharpe(returns),
        sortino_daily=_sortino(returns),
        first_trade_at=min((t.entry_ts for t in trips), default=None),
        last_trade_at=trips[-1].exit_ts if trips else None,
        by_exit_reason=_by_exit_reason(trips),
        breaker_trips=len(trip_log),
        breaker_trips_by_rule=dict(sorted(Counter(rule for _, rule in trip_log).items())),
        breaker_trip_log=trip_log,
        final_position=inputs.final_position,
        rows_refused=dict(sorted(inputs.rows_refused.items())),
        rows_refused_total=sum(inputs.rows_refused.values()),
        signals_blocked=dict(
            sorted(inputs.signals_blocked.items(), key=lambda item: (-item[1], item[0]))
        ),
        signals_blocked_total=sum(inputs.signals_blocked.values()),
    )


def ordered(round_trips: Iterable[RoundTrip]) -> list[RoundTrip]:
    """Round trips in the order they closed (by exit time; ties keep their given order)."""
    return sorted(round_trips, key=lambda t: t.exit_ts)


def equity_curve(
    round_trips: Iterable[RoundTrip], start: datetime | None = None
) -> list[tuple[datetime, Decimal]]:
    """Cumulative net P&L at each exit, preceded by the 0 starting point.

    The starting point is at ``start`` if given, else at the first round trip's entry. Without
    round trips and without ``start`` the curve is empty.
    """
    trips = ordered(round_trips)
    if start is None:
        if not trips:
            return []
        start = trips[0].entry_ts
    curve = [(start, ZERO)]
    equity = ZERO
    for trip in trips:
        equity += trip.net_pnl
        curve.append((trip.exit_ts, equity))
    return curve


def drawdown_curve(equity: Iterable[tuple[datetime, Decimal]]) -> list[tuple[datetime, Decimal]]:
    """Distance below the running peak (never below 0) at each point of an equity curve."""
    peak = ZERO
    curve: list[tuple[datetime, Decimal]] = []
    for ts, value in equity:
        peak = max(peak, value)
        curve.append((ts, peak - value))
    return curve


def _check_inputs(inputs: ReplayInputs) -> None:
    for name, count in (("bars_in", inputs.bars_in), ("strategy_bars", inputs.strategy_bars)):
        if count < 0:
            raise ValueError(f"replay report: {name} must not be negative, got {count}")
    for reason, count in inputs.rows_refused.items():
        if count < 0:
            raise ValueError(
                f"replay report: refused-row count for {reason!r} is negative: {count}"
            )
    for trip in inputs.round_trips:
        for label, ts in (("entry", trip.entry_ts), ("exit", trip.exit_ts)):
            _require_aware(ts, f"round trip {trip.seq} {label} time")
        if trip.exit_ts < trip.entry_ts:
            raise ValueError(
                f"replay report: round trip {trip.seq} exits at {trip.exit_ts.isoformat()}, "
                f"before its entry at {trip.entry_ts.isoformat()}"
            )
    for ts, rule in inputs.breaker_trips:
        _require_aware(ts, f"breaker trip {rule!r} time")
    if inputs.final_position is not None:
        _require_aware(inputs.final_position.opened_at, "final position opening time")


def _require_aware(ts: datetime, what: str) -> None:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"replay report: {what} {ts.isoformat()} has no time zone")


def _daily_pnl(
    trips: Sequence[RoundTrip],
    trade_dates: Sequence[date],
    trade_date_of: Callable[[datetime], date],
) -> list[tuple[date, Decimal]]:
    days = dict.fromkeys(sorted(set(trade_dates)), ZERO)
    for trip in trips:
        day = trade_date_of(trip.exit_ts)
        if day not in days:
            raise ValueError(
                f"replay report: round trip {trip.seq} exits on trade date {day.isoformat()}, "
                "which is not among the trade dates that had strategy bars"
            )
        days[day] += trip.net_pnl
    return list(days.items())


def _by_exit_reason(trips: Sequence[RoundTrip]) -> dict[ExitReason, ExitReasonStats]:
    stats: dict[ExitReason, ExitReasonStats] = {}
    for reason in ExitReason:  # enum order, so the mapping's order is fixed
        nets = [t.net_pnl for t in trips if t.exit_reason is reason]
        if nets:
            stats[reason] = ExitReasonStats(
                trades=len(nets),
                wins=sum(1 for n in nets if n > 0),
                losses=sum(1 for n in nets if n < 0),
                net_pnl_usd=sum(nets, ZERO),
            )
    return stats


def _longest_run(flags: Iterable[bool]) -> int:
    longest = current = 0
    for flag in flags:
        current = current + 1 if flag else 0
        longest = max(longest, current)
    return longest


def _mean(values: Sequence[Decimal]) -> Decimal | None:
    if not values:
        return None
    with localcontext(_CONTEXT):
        return sum(values, ZERO) / len(values)


def _ratio(numerator: Decimal, denominator: Decimal) -> float | None:
    if denominator == 0:
        return None
    with localcontext(_CONTEXT):
        return float(numerator / denominator)


def _sharpe(returns: Sequence[Decimal]) -> float | None:
    n = len(returns)
    if n < 2:
        return None
    with localcontext(_CONTEXT):
        mean = sum(returns, ZERO) / n
        variance = sum(((r - mean) ** 2 for r in returns), ZERO) / (n - 1)
        if variance == 0:
            return None
        return float(mean / variance.sqrt() * Decimal(TRADING_DAYS_PER_YEAR).sqrt())


def _sortino(returns: Sequence[Decimal]) -> float | None:
    n = len(returns)
    if n < 2:
        return None
    with localcontext(_CONTEXT):
        mean = sum(returns, ZERO) / n
        downside = sum((min(r, ZERO) ** 2 for r in returns), ZERO) / n
        if downside == 0:
            return None
        return float(mean / downside.sqrt() * Decimal(TRADING_DAYS_PER_YEAR).sqrt())
