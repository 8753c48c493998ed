"""Monte Carlo of a trade list: how differently could the same trades have turned out?

Two resamplings of the round trips, both seeded and deterministic (the same inputs and seed give
the same figures, bit for bit), both vectorised numpy over integer money (cents, or whatever
decimal unit the P&L needs), so every figure is exact and converts back to ``Decimal`` USD:

* **trades**: each path draws as many trades as the list holds, with replacement (iid). The path
  keeps the list's trades per trade date, so a path also has days: the first day's trade count,
  then the second's, and so on.
* **daily blocks**: each path is as many CME trade dates as the list spans, drawn as blocks of
  ``block_days`` consecutive trade dates (a circular moving-block bootstrap), each date bringing
  its own trades in their order; it keeps the runs of good and bad days that the trade bootstrap
  breaks up.

For each method: the percentiles of final net P&L and of max drawdown (peak to trough of
cumulative net P&L from 0, trade by trade), the probability that the final P&L is a loss, the
probability that a path has a day whose realized P&L falls to ``-max_daily_loss`` at some trade
(the breaker's trigger) and the share of days that do, and the probability of a path holding a
streak of ``max_consecutive_losses`` losing trades (a breakeven trade ends a streak, as in the
replay report). A limit switched off (None) gives no probability.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

PERCENTILES = (5, 25, 50, 75, 95)
DEFAULT_PATHS = 10_000
DEFAULT_BLOCK_DAYS = 5
MAX_DECIMALS = 6
"""Per-trade P&L with more decimal places than this is refused (it is money: cents, at most a
fraction of a cent from a commission rate)."""
_CHUNK_CELLS = 1 << 20
"""Trades resampled at once: 8 MiB per int64 array, so memory stays flat for any path count."""

Int64Array = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
_Usd = Callable[[int], Decimal]


@dataclass(frozen=True, slots=True)
class TradeOutcome:
    """One round trip as the Monte Carlo sees it: its CME trade date (by exit) and net P&L."""

    trade_date: date
    net_pnl_usd: Decimal


@dataclass(frozen=True, slots=True)
class Limits:
    """The risk settings whose breaches are counted; None switches one off."""

    max_daily_loss_usd: Decimal | None
    max_consecutive_losses: int | None


@dataclass(frozen=True, slots=True)
class Observed:
    """The trade list as it happened, measured the same way as each path."""

    final_pnl_usd: Decimal
    max_drawdown_usd: Decimal
    days_at_daily_loss: int | None
    longest_losing_streak: int


@dataclass(frozen=True, slots=True)
class PathStats:
    """One resampling method's distribution over its paths."""

    method: str
    path_length: int
    """Trades per path (trades) or trade dates per path (daily blocks)."""
    final_pnl_usd: tuple[tuple[int, Decimal], ...]
    """(percentile, final net P&L) for each of :data:`PERCENTILES`."""
    max_drawdown_usd: tuple[tuple[int, Decimal], ...]
    p_final_loss: float
    p_daily_loss_path: float | None
    """Share of paths with at least one day at the daily loss limit."""
    daily_loss_day_share: float | None
    """Share of all the paths' days (with trades) at the daily loss limit."""
    p_losing_streak: float | None


@dataclass(frozen=True, slots=True)
class MonteCarloResult:
    trades: int
    trade_days: int
    """Trade dates from the first trade's to the last's (weekdays: days without trades count)."""
    paths: int
    block_days: int
    seed: int
    limits: Limits
    observed: Observed
    trade_bootstrap: PathStats
    daily_bootstrap: PathStats


def trade_days_between(first: date, last: date) -> list[date]:
    """Every CME trade date from ``first`` to ``last``: the weekdays (a trade date is never a
    Saturday or a Sunday; a holiday without a session counts as a day without trades)."""
    days = []
    day = first
    while day <= last:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def run_montecarlo(
    trades: Sequence[TradeOutcome],
    *,
    paths: int = DEFAULT_PATHS,
    block_days: int = DEFAULT_BLOCK_DAYS,
    seed: int = 0,
    limits: Limits,
) -> MonteCarloResult:
    """Both resamplings of ``trades`` (in closing order). Raises ValueError naming the problem
    with an argument (no trades, a block longer than the trade dates, too many decimals)."""
    for name, value in (("paths", paths), ("block_days", block_days)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    if not trades:
        raise ValueError("no round trips to resample")
    dates = [t.trade_date for t in trades]
    if any(b < a for a, b in pairwise(dates)):
        raise ValueError("round trips must be in closing order (their trade dates go backwards)")
    days = trade_days_between(dates[0], dates[-1])
    if block_days > len(days):
        raise ValueError(
            f"a block of {block_days} trade days is longer than the {len(days)} trade days "
            "the round trips span"
        )
    if limits.max_daily_loss_usd is not None and limits.max_daily_loss_usd <= 0:
        raise ValueError("max_daily_loss must be positive")
    if limits.max_consecutive_losses is not None and limits.max_consecutive_losses < 1:
        raise ValueError("max_consecutive_losses must be at least 1")

    scale = _scale_of([t.net_pnl_usd for t in trades])
    units = np.array([int(t.net_pnl_usd.scaleb(scale)) for t in trades], dtype=np.int64)
    limit = (
        None
        if limits.max_daily_loss_usd is None
        else int(
            limits.max_daily_loss_usd.scaleb(scale).to_integral_value(rounding="ROUND_CEILING")
        )
    )
    streak = limits.max_consecutive_losses
    day_index = {d: i for i, d in enumerate(days)}
    trades_per_day = np.bincount([day_index[d] for d in dates], minlength=len(days))

    def usd(value: int) -> Decimal:
        return Decimal(value).scaleb(-scale)

    observed = _observe(units, trades_per_day, limit, usd)
    entropy = np.random.SeedSequence(seed)
    trade_rng, day_rng = (np.random.default_rng(s) for s in entropy.spawn(2))
    by_trades = _trade_bootstrap(units, trades_per_day, paths, trade_rng, limit, streak)
    by_days = _daily_bootstrap(units, trades_per_day, paths, block_days, day_rng, limit, streak)
    return MonteCarloResult(
        trades=len(trades),
        trade_days=len(days),
        paths=paths,
        block_days=block_days,
        seed=seed,
        limits=limits,
        observed=observed,
        trade_bootstrap=by_trades.stats("trades", len(trades), usd),
        daily_bootstrap=by_days.stats("daily blocks", len(days), usd),
    )


def _scale_of(pnls: Sequence[Decimal]) -> int:
    """The fewest decimal places that hold every P&L exactly (at least 2: cents)."""
    places = 2
    for pnl in pnls:
        if not pnl.is_finite():
            raise ValueError(f"net P&L must be a finite amount, got {pnl}")
        exponent = pnl.normalize().as_tuple().exponent
        assert isinstance(exponent, int)
        places = max(places, -exponent)
    if places > MAX_DECIMALS:
        raise ValueError(f"net P&L with more than {MAX_DECIMALS} decimal places is not money")
    return places


# ---------------------------------------------------------------- figures of one path


@dataclass
class _Tally:
    """Per-path figures of one method, gathered chunk by chunk."""

    final: Int64Array
    drawdown: Int64Array
    daily_hit_paths: int | None
    daily_hit_days: int | None
    days_with_trades: int
    streak_paths: int | None

    def stats(self, method: str, length: int, usd: _Usd) -> PathStats:
        paths = self.final.size
        return PathStats(
            method=method,
            path_length=length,
            final_pnl_usd=_percentiles(self.final, usd),
            max_drawdown_usd=_percentiles(self.drawdown, usd),
            p_final_loss=int(np.count_nonzero(self.final < 0)) / paths,
            p_daily_loss_path=None
            if self.daily_hit_paths is None
            else self.daily_hit_paths / paths,
            daily_loss_day_share=None
            if self.daily_hit_days is None or self.days_with_trades == 0
            else self.daily_hit_days / self.days_with_trades,
            p_losing_streak=None if self.streak_paths is None else self.streak_paths / paths,
        )


def _percentiles(values: Int64Array, usd: _Usd) -> tuple[tuple[int, Decimal], ...]:
    # inverted_cdf: each percentile is one of the paths' own figures, so it stays exact money.
    picks = np.percentile(values, PERCENTILES, method="inverted_cdf")
    return tuple((p, usd(int(v))) for p, v in zip(PERCENTILES, picks, strict=True))


def _observe(
    units: Int64Array, trades_per_day: Int64Array, limit: int | None, usd: _Usd
) -> Observed:
    row = units[np.newaxis, :]
    equity = np.cumsum(row, axis=1)
    starts = _day_starts(trades_per_day)
    hits = None if limit is None else int(_daily_hits(equity, starts, limit).sum())
    losing = units < 0
    longest = current = 0
    for lost in losing:
        current = current + 1 if lost else 0
        longest = max(longest, current)
    return Observed(
        final_pnl_usd=usd(int(equity[0, -1])),
        max_drawdown_usd=usd(int(_max_drawdown(equity)[0])),
        days_at_daily_loss=hits,
        longest_losing_streak=longest,
    )


def _max_drawdown(equity: Int64Array) -> Int64Array:
    """Deepest fall below the running peak (from the starting 0) of each row of cumulative P&L."""
    peak = np.maximum.accumulate(equity, axis=1)
    np.maximum(peak, 0, out=peak)
    np.subtract(peak, equity, out=peak)
    depth: Int64Array = peak.max(axis=1)
    return depth


def _day_starts(trades_per_day: Int64Array) -> Int64Array:
    """Index of each day's first trade, for the days that have trades."""
    counts = trades_per_day[trades_per_day > 0]
    starts: Int64Array = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    return starts


def _daily_hits(equity: Int64Array, starts: Int64Array, limit: int) -> BoolArray:
    """Per row and day: whether the day's realized P&L reached ``-limit`` at one of its trades."""
    lows = np.minimum.reduceat(equity, starts, axis=1)
    before = np.zeros((equity.shape[0], starts.size), dtype=np.int64)
    before[:, 1:] = equity[:, starts[1:] - 1]
    hits: BoolArray = lows - before <= -limit
    return hits


def _has_run(losing: BoolArray, length: int) -> BoolArray:
    """Per row: whether ``losing`` holds ``length`` consecutive True values. Doubling: after each
    step ``runs[i]`` says a run of ``have`` starts at i; log2(length) passes over the array."""
    if losing.shape[1] < length:
        return np.zeros(losing.shape[0], dtype=bool)
    runs, have = losing, 1
    while have * 2 <= length:
        runs = runs[:, :-have] & runs[:, have:]
        have *= 2
    if have < length:
        rest = length - have  # <= have: the two runs overlap or touch
        runs = runs[:, :-rest] & runs[:, rest:]
    found: BoolArray = np.asarray(runs.any(axis=1), dtype=bool)
    return found


# ---------------------------------------------------------------- the trade bootstrap


@dataclass(frozen=True, slots=True)
class _Paths:
    """The figures of a batch of paths, one row each."""

    final: Int64Array
    drawdown: Int64Array
    daily_hits: BoolArray | None
    """Per path and day with trades: whether the day reached the daily loss limit."""
    streak: BoolArray | None
    """Per path: whether it holds the losing streak."""
    days_with_trades: int


def _tally(batches: Sequence[_Paths], limit: int | None, streak: int | None) -> _Tally:
    hits = [b.daily_hits for b in batches if b.daily_hits is not None]
    streaks = [b.streak for b in batches if b.streak is not None]
    return _Tally(
        final=np.concatenate([b.final for b in batches]),
        drawdown=np.concatenate([b.drawdown for b in batches]),
        daily_hit_paths=None
        if limit is None
        else sum(int(np.count_nonzero(h.any(axis=1))) for h in hits),
        daily_hit_days=None if limit is None else sum(int(np.count_nonzero(h)) for h in hits),
        days_with_trades=sum(b.days_with_trades for b in batches),
        streak_paths=None if streak is None else sum(int(np.count_nonzero(f)) for f in streaks),
    )


def _trade_bootstrap(
    units: Int64Array,
    trades_per_day: Int64Array,
    paths: int,
    rng: np.random.Generator,
    limit: int | None,
    streak: int | None,
) -> _Tally:
    n = units.size
    starts = _day_starts(trades_per_day)
    rows = max(1, _CHUNK_CELLS // n)
    batches = []
    for first in range(0, paths, rows):
        picks = rng.integers(0, n, size=(min(paths, first + rows) - first, n))
        batches.append(_trade_paths(units, starts, picks, limit, streak))
    return _tally(batches, limit, streak)


def _trade_paths(
    units: Int64Array,
    starts: Int64Array,
    picks: Int64Array,
    limit: int | None,
    streak: int | None,
) -> _Paths:
    """Paths of the trades at ``picks`` (one path a row), cut into days at ``starts``."""
    pnl = units[picks]
    equity = np.cumsum(pnl, axis=1)
    return _Paths(
        final=equity[:, -1].copy(),
        daily_hits=None if limit is None else _daily_hits(equity, starts, limit),
        streak=None if streak is None else _has_run(pnl < 0, streak),
        days_with_trades=picks.shape[0] * starts.size,
        drawdown=_max_drawdown(equity),  # last: it reuses its working array
    )


# ---------------------------------------------------------------- the daily block bootstrap


@dataclass(frozen=True, slots=True)
class _Days:
    """Per trade date, what a path needs of its trades (integer money, trade counts)."""

    total: Int64Array
    high: Int64Array
    """Highest cumulative P&L within the day, from its start (>= 0)."""
    low: Int64Array
    """Lowest cumulative P&L within the day, from its start (<= 0)."""
    inner_drawdown: Int64Array
    """Deepest fall within the day from a peak inside it."""
    count: Int64Array
    head_losses: Int64Array
    """Losing trades in a row the day opens with."""
    tail_losses: Int64Array
    """Losing trades in a row the day ends with."""
    inner_losses: Int64Array
    """The longest run of losing trades inside the day."""


def _days_of(units: Int64Array, trades_per_day: Int64Array) -> _Days:
    d = trades_per_day.size
    fields = {name: np.zeros(d, dtype=np.int64) for name in _Days.__dataclass_fields__}
    position = 0
    for i, count in enumerate(trades_per_day.tolist()):
        day = units[position : position + count]
        position += count
        fields["count"][i] = count
        if not count:
            continue
        equity = np.concatenate(([0], np.cumsum(day)))
        fields["total"][i] = equity[-1]
        fields["high"][i] = equity.max()
        fields["low"][i] = equity.min()
        fields["inner_drawdown"][i] = (np.maximum.accumulate(equity) - equity).max()
        runs = _runs(day < 0)
        fields["head_losses"][i] = runs[0]
        fields["tail_losses"][i] = runs[1]
        fields["inner_losses"][i] = runs[2]
    return _Days(**fields)


def _runs(losing: BoolArray) -> tuple[int, int, int]:
    """(leading, trailing, longest) runs of True."""
    flags = losing.tolist()
    head = next((i for i, lost in enumerate(flags) if not lost), len(flags))
    tail = next((i for i, lost in enumerate(reversed(flags)) if not lost), len(flags))
    longest = current = 0
    for lost in flags:
        current = current + 1 if lost else 0
        longest = max(longest, current)
    return head, tail, longest


def _daily_bootstrap(
    units: Int64Array,
    trades_per_day: Int64Array,
    paths: int,
    block_days: int,
    rng: np.random.Generator,
    limit: int | None,
    streak: int | None,
) -> _Tally:
    days = _days_of(units, trades_per_day)
    d = trades_per_day.size
    blocks = -(-d // block_days)
    rows = max(1, _CHUNK_CELLS // d)
    offsets = np.arange(block_days)
    batches = []
    for first in range(0, paths, rows):
        count = min(paths, first + rows) - first
        block_starts = rng.integers(0, d, size=(count, blocks))
        picks = ((block_starts[:, :, np.newaxis] + offsets) % d).reshape(count, -1)[:, :d]
        batches.append(_day_paths(days, picks, limit, streak))
    return _tally(batches, limit, streak)


def _day_paths(days: _Days, picks: Int64Array, limit: int | None, streak: int | None) -> _Paths:
    """Paths of the trade dates at ``picks`` (one path a row), each bringing its trades."""
    total = days.total[picks]
    equity = np.cumsum(total, axis=1)
    before = equity - total
    # Deepest fall: from a peak before the day to the day's low, or within the day.
    highs = before + days.high[picks]
    peak_before = np.zeros_like(highs)
    peak_before[:, 1:] = np.maximum.accumulate(highs, axis=1)[:, :-1]
    np.maximum(peak_before, 0, out=peak_before)
    falls = np.maximum(peak_before - (before + days.low[picks]), days.inner_drawdown[picks])
    traded = days.count[picks] > 0
    hits = None
    if limit is not None:
        # Only days with trades can reach the limit, so counting over all days is the same.
        hits = days.low[picks] <= -limit
    return _Paths(
        final=equity[:, -1].copy(),
        drawdown=falls.max(axis=1),
        daily_hits=hits,
        streak=None if streak is None else _longest_losses(days, picks) >= streak,
        days_with_trades=int(np.count_nonzero(traded)),
    )


def _longest_losses(days: _Days, picks: Int64Array) -> Int64Array:
    """Per path: the longest run of losing trades across its days, without a loop over days.

    A day whose trades all lose (or that has none) extends the run it inherits; any other day
    ends it, after its head losses, and starts a new one with its tail losses. The run carried out
    of day j is ``T[j] - T[k] + tail[k]``, k the last day up to j that ended a run (T the running
    trade count), which numpy gets from a running maximum of k.
    """
    count = days.count[picks]
    head = days.head_losses[picks]
    tail = days.tail_losses[picks]
    breaks = head < count  # a day with a winning or breakeven trade
    trades_so_far = np.cumsum(count, axis=1)
    columns = np.arange(picks.shape[1])
    last_break = np.maximum.accumulate(np.where(breaks, columns, -1), axis=1)
    rows = np.arange(picks.shape[0])[:, np.newaxis]
    safe = np.maximum(last_break, 0)
    base = np.where(last_break >= 0, tail[rows, safe] - trades_so_far[rows, safe], 0)
    carried = trades_so_far + base  # the run of losses leaving each day
    into = np.zeros_like(carried)
    into[:, 1:] = carried[:, :-1]
    longest = np.maximum(carried, days.inner_losses[picks])
    longest = np.maximum(longest, np.where(breaks, into + head, 0))
    result: Int64Array = longest.max(axis=1)
    return result
