"""Monte Carlo of a trade list: the vectorised paths equal a plain re-computation trade by trade,
the resampled distributions match known ones (binomial P&L, the exact odds of a losing streak),
the same seed gives the same result, and bad arguments are refused by name."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from application.research.montecarlo import (
    Limits,
    TradeOutcome,
    _day_paths,
    _day_starts,
    _days_of,
    _trade_paths,
    run_montecarlo,
    trade_days_between,
)

D = Decimal
MONDAY = date(2024, 3, 4)
LIMITS = Limits(max_daily_loss_usd=D(200), max_consecutive_losses=3)


def on_days(pnls_by_day: list[list[str]]) -> list[TradeOutcome]:
    """Trades on consecutive weekdays from MONDAY (an empty list is a day without trades)."""
    days = trade_days_between(MONDAY, MONDAY + timedelta(days=7 * len(pnls_by_day)))
    return [TradeOutcome(days[i], D(p)) for i, pnls in enumerate(pnls_by_day) for p in pnls]


# ---------------------------------------------------------------- plain re-computation


def plain_path(
    pnls: list[int], day_sizes: list[int], limit: int, streak: int
) -> tuple[int, int, list[bool], bool]:
    """final, max drawdown, days at the limit, longest losing run: one trade at a time."""
    equity = peak = depth = 0
    run = longest = 0
    for pnl in pnls:
        equity += pnl
        peak = max(peak, equity)
        depth = max(depth, peak - equity)
        run = run + 1 if pnl < 0 else 0
        longest = max(longest, run)
    hits, at = [], 0
    for size in day_sizes:
        if size == 0:
            continue
        day, low = 0, 0
        for pnl in pnls[at : at + size]:
            day += pnl
            low = min(low, day)
        hits.append(low <= -limit)
        at += size
    return equity, depth, hits, longest >= streak


def test_trade_paths_equal_a_trade_by_trade_computation() -> None:
    rng = np.random.default_rng(8)
    units = rng.integers(-9000, 9000, size=23).astype(np.int64)
    units[[3, 4, 5, 6]] = -100  # a run of losses to find
    units[10] = 0  # breakeven ends a streak
    trades_per_day = np.array([4, 0, 7, 1, 0, 11], dtype=np.int64)
    picks = rng.integers(0, units.size, size=(300, units.size))
    paths = _trade_paths(units, _day_starts(trades_per_day), picks, 20000, 3)
    assert paths.daily_hits is not None
    assert paths.streak is not None
    for row in range(picks.shape[0]):
        pnls = units[picks[row]].tolist()
        final, depth, hits, streak = plain_path(pnls, trades_per_day.tolist(), 20000, 3)
        assert paths.final[row] == final
        assert paths.drawdown[row] == depth
        assert paths.daily_hits[row].tolist() == hits
        assert bool(paths.streak[row]) == streak
    assert paths.streak.any()
    assert not paths.streak.all()
    assert paths.daily_hits.any()


def test_daily_block_paths_equal_the_concatenated_days_trade_by_trade() -> None:
    rng = np.random.default_rng(9)
    units = rng.integers(-9000, 9000, size=30).astype(np.int64)
    units[[0, 1, 2, 3, 4, 5]] = -500  # day 0 is all losses, the start of day 1 too
    trades_per_day = np.array([4, 5, 0, 1, 6, 3, 0, 11], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(trades_per_day)))
    days = _days_of(units, trades_per_day)
    picks = rng.integers(0, trades_per_day.size, size=(400, trades_per_day.size))
    for streak in (1, 2, 3, 5, 8):
        paths = _day_paths(days, picks, 15000, streak)
        assert paths.daily_hits is not None
        assert paths.streak is not None
        for row in range(picks.shape[0]):
            pnls, sizes = [], []
            for day in picks[row].tolist():
                pnls.extend(units[offsets[day] : offsets[day + 1]].tolist())
                sizes.append(int(trades_per_day[day]))
            final, depth, hits, found = plain_path(pnls, sizes, 15000, streak)
            assert paths.final[row] == final
            assert paths.drawdown[row] == depth
            traded = [
                h for h, size in zip(paths.daily_hits[row].tolist(), sizes, strict=True) if size
            ]
            assert traded == hits
            assert bool(paths.streak[row]) == found, (streak, row)
    assert paths.days_with_trades == int(np.count_nonzero(trades_per_day[picks]))


# ---------------------------------------------------------------- known distributions


def binomial_quantile(n: int, p: float, q: float) -> int:
    total = 0.0
    for k in range(n + 1):
        total += math.comb(n, k) * p**k * (1 - p) ** (n - k)
        if total >= q:
            return k
    return n


def streak_probability(n: int, q: float, k: int) -> float:
    """Exact P(a run of >= k losses in n independent trades each losing with probability q):
    a Markov chain over the current run length."""
    state = [1.0] + [0.0] * (k - 1)  # P(current run = j), no run of k yet
    for _ in range(n):
        nxt = [0.0] * k
        nxt[0] = sum(state) * (1 - q)
        for j in range(k - 1):
            nxt[j + 1] = state[j] * q
        state = nxt
    return 1 - sum(state)


def test_the_trade_bootstrap_matches_the_binomial_and_the_exact_streak_odds() -> None:
    # 100 trades on one day: 40 win $1, 60 lose $1. A path's P&L is 2 x Binomial(100, 0.4) - 100;
    # each trade loses with probability 0.6.
    trades = [TradeOutcome(MONDAY, D(1))] * 40 + [TradeOutcome(MONDAY, D(-1))] * 60
    result = run_montecarlo(trades, paths=20_000, block_days=1, seed=1, limits=Limits(D(1000), 12))
    for pct, value in result.trade_bootstrap.final_pnl_usd:
        exact = 2 * binomial_quantile(100, 0.4, pct / 100) - 100
        assert abs(value - exact) <= 2, (pct, value, exact)
    p = streak_probability(100, 0.6, 12)
    error = math.sqrt(p * (1 - p) / 20_000)
    assert result.trade_bootstrap.p_losing_streak is not None
    assert abs(result.trade_bootstrap.p_losing_streak - p) < 4 * error
    exact_loss = sum(math.comb(100, k) * 0.4**k * 0.6 ** (100 - k) for k in range(50))
    assert abs(result.trade_bootstrap.p_final_loss - exact_loss) < 4 * math.sqrt(
        exact_loss * (1 - exact_loss) / 20_000
    )
    assert result.trade_bootstrap.p_daily_loss_path == 0.0  # -100 at worst, limit 1000


def test_daily_blocks_of_one_day_are_an_iid_bootstrap_of_the_days() -> None:
    # 60 trade days of one trade: 30 of +$10, 30 of -$10 (alternating). With blocks of one day a
    # path's P&L is 20 x Binomial(60, 0.5) - 600; a day at the $10 limit is a losing day.
    trades = on_days([["10"] if i % 2 else ["-10"] for i in range(60)])
    result = run_montecarlo(trades, paths=20_000, block_days=1, seed=2, limits=Limits(D(10), 3))
    for pct, value in result.daily_bootstrap.final_pnl_usd:
        exact = 20 * binomial_quantile(60, 0.5, pct / 100) - 600
        assert abs(value - exact) <= 20, (pct, value, exact)
    share = result.daily_bootstrap.daily_loss_day_share
    assert share is not None
    assert abs(share - 0.5) < 0.01
    p = streak_probability(60, 0.5, 3)
    assert result.daily_bootstrap.p_losing_streak is not None
    assert abs(result.daily_bootstrap.p_losing_streak - p) < 4 * math.sqrt(p * (1 - p) / 20_000)


def test_long_blocks_keep_runs_of_days_that_the_trade_bootstrap_breaks_up() -> None:
    # Ten losing days then ten winning days, blocks of ten days: a path is two blocks, each
    # starting on any of the 20 days (wrapping round), so the odds of ten losses in a row are
    # exactly those of the 400 pairs of starts. Trades drawn independently: 11 * 0.5^10 at most.
    signs = [-1] * 10 + [1] * 10
    trades = on_days([[str(5 * s)] for s in signs])
    result = run_montecarlo(trades, paths=20_000, block_days=10, seed=3, limits=Limits(None, 10))

    def longest(days: list[int]) -> int:
        run = best = 0
        for day in days:
            run = run + 1 if signs[day] < 0 else 0
            best = max(best, run)
        return best

    pairs = [
        [(a + i) % 20 for i in range(10)] + [(b + i) % 20 for i in range(10)]
        for a in range(20)
        for b in range(20)
    ]
    exact = sum(longest(days) >= 10 for days in pairs) / len(pairs)
    found = result.daily_bootstrap.p_losing_streak
    assert found is not None
    assert abs(found - exact) < 4 * math.sqrt(exact * (1 - exact) / 20_000)
    assert result.trade_bootstrap.p_losing_streak is not None
    assert exact > 0.2
    assert result.trade_bootstrap.p_losing_streak < 11 * 0.5**10


# ---------------------------------------------------------------- the result


def test_observed_figures_are_the_trade_lists_own() -> None:
    trades = on_days([["-120.50", "-100.00", "50.25"], [], ["-10", "-20", "-30", "400"]])
    result = run_montecarlo(trades, paths=10, block_days=2, seed=0, limits=LIMITS)
    assert result.trades == 7
    assert result.trade_days == 3
    observed = result.observed
    assert observed.final_pnl_usd == D("169.75")
    assert observed.max_drawdown_usd == D("230.25")  # 0 -> -230.50 ... -> -230.25 below 0
    assert observed.days_at_daily_loss == 1  # day 1 reaches -220.50
    assert observed.longest_losing_streak == 3


def test_money_stays_exact_to_the_cent_and_beyond() -> None:
    trades = on_days([["0.01", "-0.005"], ["1.125"]])
    result = run_montecarlo(trades, paths=200, block_days=1, seed=0, limits=LIMITS)
    assert result.observed.final_pnl_usd == D("1.130")
    values = [v for _, v in result.trade_bootstrap.final_pnl_usd]
    assert all(v == v.quantize(D("0.001")) for v in values)


def test_the_same_seed_gives_the_same_result_and_another_seed_another() -> None:
    trades = on_days([["12.5", "-6.25"], ["-30"], ["45", "-1.24", "3.76"], ["-50", "20"]])
    first = run_montecarlo(trades, paths=3_000, block_days=2, seed=7, limits=LIMITS)
    assert run_montecarlo(trades, paths=3_000, block_days=2, seed=7, limits=LIMITS) == first
    other = run_montecarlo(trades, paths=3_000, block_days=2, seed=8, limits=LIMITS)
    assert other.trade_bootstrap != first.trade_bootstrap
    assert other.daily_bootstrap != first.daily_bootstrap


def test_a_limit_switched_off_gives_no_probability() -> None:
    trades = on_days([["1", "-1"], ["2"]])
    result = run_montecarlo(trades, paths=50, block_days=1, limits=Limits(None, None))
    for stats in (result.trade_bootstrap, result.daily_bootstrap):
        assert stats.p_daily_loss_path is None
        assert stats.daily_loss_day_share is None
        assert stats.p_losing_streak is None
    assert result.observed.days_at_daily_loss is None


def test_weekend_dates_are_not_trade_days() -> None:
    friday = date(2024, 3, 8)
    assert trade_days_between(friday, friday + timedelta(days=3)) == [
        friday,
        friday + timedelta(days=3),
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"paths": 0}, "paths must be a positive whole number"),
        ({"block_days": 0}, "block_days must be a positive whole number"),
        ({"seed": -1}, "seed must be a whole number >= 0"),
        ({"block_days": 4}, "a block of 4 trade days is longer than the 3 trade days"),
        ({"limits": Limits(D(0), 3)}, "max_daily_loss must be positive"),
        ({"limits": Limits(D(10), 0)}, "max_consecutive_losses must be at least 1"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs: dict[str, Any], message: str) -> None:
    trades = on_days([["1"], ["2"], ["-3"]])
    arguments = {"paths": 10, "block_days": 1, "seed": 0, "limits": LIMITS, **kwargs}
    with pytest.raises(ValueError, match=message):
        run_montecarlo(trades, **arguments)


def test_bad_trade_lists_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="no round trips to resample"):
        run_montecarlo([], limits=LIMITS)
    backwards = [TradeOutcome(MONDAY + timedelta(days=1), D(1)), TradeOutcome(MONDAY, D(1))]
    with pytest.raises(ValueError, match="closing order"):
        run_montecarlo(backwards, block_days=1, limits=LIMITS)
    with pytest.raises(ValueError, match="more than 6 decimal places"):
        run_montecarlo([TradeOutcome(MONDAY, D("0.0000001"))], block_days=1, limits=LIMITS)
    with pytest.raises(ValueError, match="finite"):
        run_montecarlo([TradeOutcome(MONDAY, D("NaN"))], block_days=1, limits=LIMITS)
