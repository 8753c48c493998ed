"""The replay report: metrics computed from closed round trips.

Pure and deterministic. Money stays exact ``Decimal`` dollars; means and ratios are computed in a
fixed local ``decimal`` context (never the caller's), and only ratios are handed out as ``float``.
A trade is a win when its net P&L (commissions of both sides deducted) is above zero, a loss when
below, and breakeven at exactly zero; breakeven trades count in the win-rate denominator and end a
losing streak. A position still open at the end is not a round trip: it adds nothing to P&L and
is reported only as ``final_position``.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal, localcontext
from typing import TypedDict

import numpy as np
import numpy.typing as npt

from domain.commands import OrderIntentRecord, SignalAction, SignalRecord
from domain.engine import EntryBlock
from domain.position import ExitReason, OpenPosition, RoundTrip
from domain.values import ZERO, Side

TRADING_DAYS_PER_YEAR = 252
DAYS_PER_YEAR = 365.25
CAGR_MIN_DAYS = 365
"""CAGR is given only for a data period of at least a year: compounding a week's return to a
year's says nothing a trader can use."""
DEFAULT_ACCOUNT_SIZE = Decimal(10_000)
MES_POINT_VALUE = Decimal(5)

# Enough digits that a mean or a deviation is exact to far below a cent, whatever the caller's
# decimal context says.
_CONTEXT = Context(prec=34)


IntColumn = Sequence[int] | npt.NDArray[np.int64]
FloatColumn = Sequence[float] | npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class PriceBars:
    """The bars the run saw, oldest first, as columns: start times (epoch seconds), one bar length
    (seconds) and OHLC. Prices are floats on the tick grid (0.25 and its multiples are exact in
    binary), so converting an extreme back to ``Decimal`` is exact.

    A column is a list or a numpy array: a replay hands over its series' arrays as they are (a
    million bars as Python lists cost 0.15 s to build, and as much again to turn back into
    arrays for the MAE/MFE search and the charts)."""

    starts: IntColumn
    seconds: int
    opens: FloatColumn
    highs: FloatColumn
    lows: FloatColumn
    closes: FloatColumn

    def __post_init__(self) -> None:
        n = len(self.starts)
        if any(len(c) != n for c in (self.opens, self.highs, self.lows, self.closes)):
            raise ValueError("replay report: price bar columns differ in length")
        if self.seconds <= 0:
            raise ValueError(f"replay report: bar length must be positive, got {self.seconds}")

    def __len__(self) -> int:
        return len(self.starts)


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
    prices: PriceBars | None = None
    """The input bars (for the data period, MAE/MFE, the last close and the market's change)."""
    signals: Sequence[SignalRecord] = ()
    """The journaled signals (for each trade's entry z-score)."""
    intents: Sequence[OrderIntentRecord] = ()
    """The journaled order intents (for each trade's stop and target prices)."""
    account_size_usd: Decimal = DEFAULT_ACCOUNT_SIZE
    """What returns and drawdown percentages are measured against."""
    point_value: Decimal = MES_POINT_VALUE
    """Dollars per index point per contract (MES: 5)."""


@dataclass(frozen=True, slots=True)
class TradeDetail:
    """What a trader asks of one round trip beyond its P&L."""

    seq: int
    held: timedelta
    entry_z: float | None
    """z of the entry signal's bar (the last entry signal at or before the entry)."""
    stop_price: Decimal | None
    target_price: Decimal | None
    mae_usd: Decimal | None
    """Maximum adverse excursion: the worst open P&L while held (gross, <= 0); None without bars."""
    mfe_usd: Decimal | None
    """Maximum favourable excursion: the best open P&L while held (gross, >= 0)."""


@dataclass(frozen=True, slots=True)
class Drawdown:
    """The deepest fall of cumulative net P&L below its running peak."""

    depth_usd: Decimal
    depth_pct: float | None
    """Of the equity at the peak (account size + net P&L then); None without an account size."""
    start: datetime | None
    """When the peak before the fall was made."""
    bottom: datetime | None
    recovery: datetime | None
    """When equity first regained the peak; None if it never did (or there was no fall)."""
    duration: timedelta | None
    """Peak to recovery, or peak to the last point if never recovered."""


@dataclass(frozen=True, slots=True)
class SidePnl:
    trades: int
    wins: int
    net_pnl_usd: Decimal


@dataclass(frozen=True, slots=True)
class MarketChange:
    """The market's own move over the data period: first bar's open to last bar's close."""

    first_open: Decimal
    last_close: Decimal
    points: Decimal
    pct: float
    usd_per_contract: Decimal


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
    first_bar_at: datetime | None = None
    last_bar_at: datetime | None = None
    """End of the last bar (start + bar length)."""
    account_size_usd: Decimal = DEFAULT_ACCOUNT_SIZE
    return_pct: float | None = None
    """Net P&L over the account size, in percent."""
    annual_return_pct: float | None = None
    """return_pct scaled to a year of calendar time (simple, not compounded); needs a data period."""
    cagr_pct: float | None = None
    """Compounded annual growth; only for a data period of at least CAGR_MIN_DAYS."""
    long: SidePnl = SidePnl(0, 0, ZERO)
    short: SidePnl = SidePnl(0, 0, ZERO)
    avg_hold: timedelta | None = None
    avg_hold_win: timedelta | None = None
    avg_hold_loss: timedelta | None = None
    max_hold: timedelta | None = None
    drawdown: Drawdown = Drawdown(ZERO, None, None, None, None, None)
    calmar: float | None = None
    """annual_return_pct / drawdown.depth_pct; None without a drawdown or a data period."""
    sqn: float | None = None
    """System quality number: sqrt(trades) x mean / sample std of net P&L per trade."""
    best_day: tuple[date, Decimal] | None = None
    worst_day: tuple[date, Decimal] | None = None
    days_won: int = 0
    days_lost: int = 0
    trades: tuple[TradeDetail, ...] = ()
    """Per round trip, in closing order (the order of trades.csv)."""
    last_close: Decimal | None = None
    final_unrealized_usd: Decimal | None = None
    """The open position at the end, valued at the last close (gross); None when flat."""
    market: MarketChange | None = None


def summarize(inputs: ReplayInputs) -> ReplaySummary:
    """Compute the replay summary. Raises ``ValueError`` naming the first inconsistent input."""
    _check_inputs(inputs)
    with localcontext(_CONTEXT):
        return _summarize(inputs)


def _summarize(inputs: ReplayInputs) -> ReplaySummary:
    trips = ordered(inputs.round_trips)
    # Each trip's net P&L once (RoundTrip.net_pnl subtracts on every read), in closing order: the
    # metrics below read it a dozen times per trip.
    nets = [t.net_pnl for t in trips]
    wins = [n for n in nets if n > 0]
    losses = [n for n in nets if n < 0]
    gross_win = sum(wins, ZERO)
    gross_loss = sum(losses, ZERO)
    daily = _daily_pnl(trips, nets, inputs.trade_dates, inputs.trade_date_of)
    returns = [pnl for _, pnl in daily]
    # The first trip of the highest (lowest) net P&L, as max/min over the trips would pick.
    best = max(range(len(trips)), key=nets.__getitem__, default=None)
    worst = min(range(len(trips)), key=nets.__getitem__, default=None)
    equity = _equity_of_ordered(trips, nets)
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
        best_trade_usd=None if best is None else nets[best],
        best_trade_seq=None if best is None else trips[best].seq,
        worst_trade_usd=None if worst is None else nets[worst],
        worst_trade_seq=None if worst is None else trips[worst].seq,
        max_drawdown_usd=max((dd for _, dd in drawdown_curve(equity)), default=ZERO),
        max_losing_streak=_longest_run(n < 0 for n in nets),
        max_winning_streak=_longest_run(n > 0 for n in nets),
        trading_days=len(daily),
        daily_pnl_usd=tuple(daily),
        sharpe_daily=_sharpe(returns),
        sortino_daily=_sortino(returns),
        first_trade_at=min((t.entry_ts for t in trips), default=None),
        last_trade_at=trips[-1].exit_ts if trips else None,
        by_exit_reason=_by_exit_reason(trips, nets),
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
        **_trader_metrics(inputs, trips, nets, equity, daily),
    )


class _TraderFields(TypedDict):
    first_bar_at: datetime | None
    last_bar_at: datetime | None
    account_size_usd: Decimal
    return_pct: float | None
    annual_return_pct: float | None
    cagr_pct: float | None
    long: SidePnl
    short: SidePnl
    avg_hold: timedelta | None
    avg_hold_win: timedelta | None
    avg_hold_loss: timedelta | None
    max_hold: timedelta | None
    drawdown: Drawdown
    calmar: float | None
    sqn: float | None
    best_day: tuple[date, Decimal] | None
    worst_day: tuple[date, Decimal] | None
    days_won: int
    days_lost: int
    trades: tuple[TradeDetail, ...]
    last_close: Decimal | None
    final_unrealized_usd: Decimal | None
    market: MarketChange | None


def _trader_metrics(
    inputs: ReplayInputs,
    trips: Sequence[RoundTrip],
    nets: Sequence[Decimal],
    equity: Sequence[tuple[datetime, Decimal]],
    daily: Sequence[tuple[date, Decimal]],
) -> _TraderFields:
    """``trips`` in closing order, ``nets`` their net P&L and ``equity`` their equity curve."""
    prices = inputs.prices
    first_bar = last_bar = None
    last_close: Decimal | None = None
    market: MarketChange | None = None
    if prices is not None and len(prices):
        # int() and float(): a numpy column's items are numpy scalars.
        first_bar = datetime.fromtimestamp(int(prices.starts[0]), UTC)
        last_bar = datetime.fromtimestamp(int(prices.starts[-1]) + prices.seconds, UTC)
        first_open = Decimal(float(prices.opens[0]))
        last_close = Decimal(float(prices.closes[-1]))
        points = last_close - first_open
        market = MarketChange(
            first_open=first_open,
            last_close=last_close,
            points=points,
            pct=float(points / first_open * 100) if first_open else 0.0,
            usd_per_contract=points * inputs.point_value,
        )
    net = sum(nets, ZERO)
    account = inputs.account_size_usd
    return_pct = _ratio(net * 100, account) if account > 0 else None
    days = (last_bar - first_bar).total_seconds() / 86400 if first_bar and last_bar else 0.0
    annual = None if return_pct is None or days <= 0 else return_pct * DAYS_PER_YEAR / days
    cagr = None
    if return_pct is not None and days >= CAGR_MIN_DAYS and return_pct > -100:
        cagr = ((1 + return_pct / 100) ** (DAYS_PER_YEAR / days) - 1) * 100
    drawdown = max_drawdown(equity, account)
    calmar = None
    if annual is not None and drawdown.depth_pct:
        calmar = annual / drawdown.depth_pct
    held = [t.exit_ts - t.entry_ts for t in trips]
    won_held = [h for h, n in zip(held, nets, strict=True) if n > 0]
    lost_held = [h for h, n in zip(held, nets, strict=True) if n < 0]
    final = inputs.final_position
    unrealized = None
    if final is not None and last_close is not None:
        unrealized = (last_close - final.avg_price) * final.side.sign * final.qty
        unrealized *= inputs.point_value
    return {
        "first_bar_at": first_bar,
        "last_bar_at": last_bar,
        "account_size_usd": account,
        "return_pct": return_pct,
        "annual_return_pct": annual,
        "cagr_pct": cagr,
        "long": _side_pnl(trips, nets, Side.LONG),
        "short": _side_pnl(trips, nets, Side.SHORT),
        "avg_hold": _mean_delta(held),
        "avg_hold_win": _mean_delta(won_held),
        "avg_hold_loss": _mean_delta(lost_held),
        "max_hold": max(held, default=None),
        "drawdown": drawdown,
        "calmar": calmar,
        "sqn": _sqn(nets),
        "best_day": max(daily, key=lambda d: d[1], default=None),
        "worst_day": min(daily, key=lambda d: d[1], default=None),
        "days_won": sum(1 for _, pnl in daily if pnl > 0),
        "days_lost": sum(1 for _, pnl in daily if pnl < 0),
        "trades": tuple(
            trade_details(
                trips,
                prices=inputs.prices,
                signals=inputs.signals,
                intents=inputs.intents,
                point_value=inputs.point_value,
            )
        ),
        "last_close": last_close,
        "final_unrealized_usd": unrealized,
        "market": market,
    }


def max_drawdown(equity: Sequence[tuple[datetime, Decimal]], account: Decimal) -> Drawdown:
    """The deepest fall below the running peak of an equity curve (net P&L from 0), with the time
    of its peak, its bottom and its recovery. Ties keep the earliest fall."""
    if not equity:
        return Drawdown(ZERO, None, None, None, None, None)
    peak, peak_at = equity[0][1], equity[0][0]
    depth, start, bottom = ZERO, None, None
    best_peak = peak
    for ts, value in equity:
        if value > peak:
            peak, peak_at = value, ts
        if peak - value > depth:
            depth, start, bottom, best_peak = peak - value, peak_at, ts, peak
    if start is None or bottom is None:
        return Drawdown(ZERO, 0.0 if account > 0 else None, None, None, None, None)
    recovery = next((ts for ts, value in equity if ts > bottom and value >= best_peak), None)
    base = account + best_peak
    pct = _ratio(depth * 100, base) if account > 0 and base > 0 else None
    duration = (recovery if recovery is not None else equity[-1][0]) - start
    return Drawdown(depth, pct, start, bottom, recovery, duration)


def trade_details(
    trips: Sequence[RoundTrip],
    *,
    prices: PriceBars | None,
    signals: Iterable[SignalRecord],
    intents: Iterable[OrderIntentRecord],
    point_value: Decimal,
) -> list[TradeDetail]:
    """Holding time, entry z, stop and target prices, MAE and MFE of each round trip.

    MAE/MFE look at the entry and exit prices and at the high and low of every input bar lying
    wholly inside the holding time: a bar that straddles the entry or the exit also holds prices
    from when the position was flat, which would overstate both."""
    entries = sorted(
        ((s.ts, s.z) for s in signals if s.action is SignalAction.ENTER),
        key=lambda e: e[0],
    )
    entry_times = [ts for ts, _ in entries]
    brackets: dict[datetime, dict[str, Decimal | None]] = {}
    for intent in intents:
        if intent.role in ("stop", "target"):
            brackets.setdefault(intent.ts, {})[intent.role] = intent.price
    bracket_times = sorted(brackets)
    extremes = None if prices is None else bar_extremes(trips, prices)
    details = []
    for k, trip in enumerate(trips):
        i = bisect.bisect_right(entry_times, trip.entry_ts) - 1
        z = entries[i][1] if i >= 0 else None
        j = bisect.bisect_right(bracket_times, trip.entry_ts) - 1
        legs = brackets[bracket_times[j]] if j >= 0 else {}
        mae = mfe = None
        if extremes is not None:
            mae, mfe = _excursions(trip, extremes[k], point_value)
        details.append(
            TradeDetail(
                seq=trip.seq,
                held=trip.exit_ts - trip.entry_ts,
                entry_z=z,
                stop_price=legs.get("stop"),
                target_price=legs.get("target"),
                mae_usd=mae,
                mfe_usd=mfe,
            )
        )
    return details


def bar_extremes(trips: Sequence[RoundTrip], prices: PriceBars) -> list[tuple[float, float] | None]:
    """For each round trip, the lowest low and the highest high of the input bars lying wholly
    inside its holding time (from the first bar starting at or after the entry to the last one
    ending at or before the exit); None where no bar does.

    All trips at once: two binary searches and a min and a max over each trip's bars, in numpy
    (a trip's bars are a slice of the columns; the straightforward per-trip loop is the oracle of
    tests/unit/application/test_report_bar_extremes.py)."""
    n = len(trips)
    if n == 0 or not len(prices):
        return [None] * n
    starts = np.asarray(prices.starts, dtype=np.int64)
    # Whole seconds: a bar starts at or after ceil(entry) and ends at or before floor(exit).
    entries = np.ceil(np.fromiter((t.entry_ts.timestamp() for t in trips), np.float64, n))
    exits = np.floor(np.fromiter((t.exit_ts.timestamp() for t in trips), np.float64, n))
    first = np.searchsorted(starts, entries.astype(np.int64), side="left")
    end = np.searchsorted(starts, exits.astype(np.int64) - prices.seconds, side="right")
    inside = end > first
    # reduceat over the interleaved (first, end) pairs: the even results are the trips' slices;
    # a sentinel bar past the end makes an end equal to the bar count a valid index.
    bounds = np.column_stack((first[inside], end[inside])).ravel()
    lows = np.append(np.asarray(prices.lows, dtype=np.float64), np.inf)
    highs = np.append(np.asarray(prices.highs, dtype=np.float64), -np.inf)
    found = zip(
        np.minimum.reduceat(lows, bounds)[::2].tolist() if len(bounds) else [],
        np.maximum.reduceat(highs, bounds)[::2].tolist() if len(bounds) else [],
        strict=True,
    )
    return [next(found) if has else None for has in inside.tolist()]


def _excursions(
    trip: RoundTrip, extremes: tuple[float, float] | None, point_value: Decimal
) -> tuple[Decimal, Decimal]:
    """MAE and MFE of ``trip`` given the extremes of its bars (see :func:`bar_extremes`)."""
    low, high = min(trip.entry_price, trip.exit_price), max(trip.entry_price, trip.exit_price)
    if extremes is not None:
        low = min(low, Decimal(extremes[0]))
        high = max(high, Decimal(extremes[1]))
    scale = point_value * trip.qty
    if trip.side is Side.LONG:
        adverse, favourable = low - trip.entry_price, high - trip.entry_price
    else:
        adverse, favourable = trip.entry_price - high, trip.entry_price - low
    return min(adverse, ZERO) * scale, max(favourable, ZERO) * scale


def _side_pnl(trips: Sequence[RoundTrip], nets: Sequence[Decimal], side: Side) -> SidePnl:
    mine = [n for t, n in zip(trips, nets, strict=True) if t.side is side]
    return SidePnl(
        trades=len(mine),
        wins=sum(1 for n in mine if n > 0),
        net_pnl_usd=sum(mine, ZERO),
    )


def _mean_delta(deltas: Sequence[timedelta]) -> timedelta | None:
    if not deltas:
        return None
    return sum(deltas, timedelta()) / len(deltas)


def _sqn(nets: Sequence[Decimal]) -> float | None:
    n = len(nets)
    if n < 2:
        return None
    with localcontext(_CONTEXT):
        mean = sum(nets, ZERO) / n
        variance = sum(((x - mean) ** 2 for x in nets), ZERO) / (n - 1)
        if variance == 0:
            return None
        return float(Decimal(n).sqrt() * mean / variance.sqrt())


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


def _equity_of_ordered(
    trips: Sequence[RoundTrip], nets: Sequence[Decimal]
) -> list[tuple[datetime, Decimal]]:
    """:func:`equity_curve` of round trips already in closing order, their net P&L given."""
    if not trips:
        return []
    curve = [(trips[0].entry_ts, ZERO)]
    equity = ZERO
    for trip, net in zip(trips, nets, strict=True):
        equity += net
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
    nets: Sequence[Decimal],
    trade_dates: Sequence[date],
    trade_date_of: Callable[[datetime], date],
) -> list[tuple[date, Decimal]]:
    days = dict.fromkeys(sorted(set(trade_dates)), ZERO)
    for trip, net in zip(trips, nets, strict=True):
        day = trade_date_of(trip.exit_ts)
        if day not in days:
            raise ValueError(
                f"replay report: round trip {trip.seq} exits on trade date {day.isoformat()}, "
                "which is not among the trade dates that had strategy bars"
            )
        days[day] += net
    return list(days.items())


def _by_exit_reason(
    trips: Sequence[RoundTrip], nets: Sequence[Decimal]
) -> dict[ExitReason, ExitReasonStats]:
    by_reason: dict[ExitReason, list[Decimal]] = {}
    for trip, net in zip(trips, nets, strict=True):
        by_reason.setdefault(trip.exit_reason, []).append(net)
    return {
        reason: ExitReasonStats(
            trades=len(mine),
            wins=sum(1 for n in mine if n > 0),
            losses=sum(1 for n in mine if n < 0),
            net_pnl_usd=sum(mine, ZERO),
        )
        for reason in ExitReason  # enum order, so the mapping's order is fixed
        if (mine := by_reason.get(reason))
    }


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
