"""The overfitting guard: bootstrap intervals checked against exact distributions, the deflated
Sharpe ratio against the worked example of Bailey and López de Prado and against closed forms,
verdicts and their reasons, determinism, and edge cases where nothing may come out as NaN."""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal
from statistics import NormalDist

import numpy as np
import pytest

from application.research.objectives import OBJECTIVES
from application.research.significance import (
    assess,
    bootstrap_ci,
    deflated_sharpe,
    expected_max_sharpe,
    moments,
    probabilistic_sharpe,
)

NORMAL = NormalDist()


def _binomial_quantile(n: int, p: float, q: float) -> int:
    """Smallest k with P(X <= k) >= q for X ~ Binomial(n, p), summed exactly term by term."""
    total = 0.0
    for k in range(n + 1):
        total += math.comb(n, k) * p**k * (1 - p) ** (n - k)
        if total >= q:
            return k
    return n


def test_the_bootstrap_of_net_pnl_of_wins_and_zeros_follows_the_binomial_distribution() -> None:
    # 30 trades of $1 and 70 of $0: a resample's net P&L is Binomial(100, 0.3).
    pnls = [1.0] * 30 + [0.0] * 70
    ci = bootstrap_ci(pnls, "net_pnl", confidence=0.95, resamples=40_000, seed=3)
    low_exact = _binomial_quantile(100, 0.3, 0.025)
    high_exact = _binomial_quantile(100, 0.3, 0.975)
    assert (low_exact, high_exact) == (21, 39)
    assert ci.low is not None
    assert ci.high is not None
    assert abs(ci.low - low_exact) <= 1
    assert abs(ci.high - high_exact) <= 1
    assert ci.estimate == 30.0
    assert ci.significant
    assert ci.reason.startswith("significant: the 95% interval [")
    assert ci.reason.endswith("of net_pnl excludes 0 (no edge)")


def test_the_bootstrap_of_the_mean_matches_the_normal_interval_of_a_large_sample() -> None:
    rng = np.random.default_rng(11)
    pnls = rng.normal(1.0, 20.0, size=2_000)
    ci = bootstrap_ci(pnls, "expectancy", resamples=20_000, seed=5)
    half_width = NORMAL.inv_cdf(0.975) * pnls.std(ddof=1) / math.sqrt(pnls.size)
    assert ci.low is not None
    assert ci.high is not None
    assert ci.low == pytest.approx(pnls.mean() - half_width, abs=0.05 * half_width)
    assert ci.high == pytest.approx(pnls.mean() + half_width, abs=0.05 * half_width)
    # A mean of 1 against a deviation of 20 over 2,000 trades: 2.2 standard errors, so the
    # interval excludes 0 only narrowly; the verdict follows the bound.
    assert ci.significant == (ci.low > 0)


def test_a_strategy_without_edge_is_not_significant() -> None:
    rng = np.random.default_rng(1)
    pnls = rng.normal(0.0, 10.0, size=300)
    pnls -= pnls.mean()  # exactly no edge in sample
    ci = bootstrap_ci(pnls, "net_pnl", seed=2)
    assert ci.low is not None
    assert ci.high is not None
    assert ci.low < 0 < ci.high
    assert not ci.significant
    assert ci.reason.startswith("not significant: the 95% interval [")
    assert ci.reason.endswith("includes 0 (no edge)")


def test_profit_factor_is_tested_against_one() -> None:
    pnls = [3.0, -1.0] * 200  # profit factor 3, every resample has losses
    ci = bootstrap_ci(pnls, "profit_factor", seed=0, resamples=2_000)
    assert ci.estimate == 3.0
    assert ci.low is not None
    assert ci.low > 1
    assert ci.significant
    assert "excludes 1 (no edge)" in ci.reason


def test_the_same_seed_gives_the_same_interval_and_another_seed_another() -> None:
    pnls = [12.5, -6.25, 3.75, -10.0, 20.0, 1.25, -2.5, 7.5]
    first = bootstrap_ci(pnls, "sharpe", seed=42, resamples=5_000)
    assert bootstrap_ci(pnls, "sharpe", seed=42, resamples=5_000) == first
    other = bootstrap_ci(pnls, "sharpe", seed=43, resamples=5_000)
    assert (other.low, other.high) != (first.low, first.high)


def test_chunking_the_resamples_does_not_change_the_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    import application.research.significance as significance

    pnls = list(np.linspace(-10, 12, 37))
    whole = bootstrap_ci(pnls, "net_pnl", seed=9, resamples=1_000)
    monkeypatch.setattr(significance, "_CHUNK_CELLS", 37 * 7)  # 7 resamples per chunk
    assert bootstrap_ci(pnls, "net_pnl", seed=9, resamples=1_000) == whole


def test_an_objective_undefined_in_too_many_resamples_has_no_interval() -> None:
    # Three wins and one loss: (3/4)^4 = 32% of resamples hold no loss, so no profit factor.
    ci = bootstrap_ci([5.0, 5.0, 5.0, -1.0], "profit_factor", resamples=4_000, seed=1)
    assert ci.estimate == 15.0
    assert (ci.low, ci.high) == (None, None)
    assert 0.28 < ci.undefined_resamples / 4_000 < 0.36
    assert not ci.significant
    assert ci.reason.startswith("not significant: profit_factor is undefined in ")


def test_an_objective_without_a_no_edge_figure_is_never_called_significant() -> None:
    ci = bootstrap_ci([10.0, -2.0, 8.0, -1.0, 4.0] * 20, "max_drawdown", resamples=1_000)
    assert ci.low is not None
    assert not ci.significant
    assert "max_drawdown has no no-edge figure" in ci.reason


@pytest.mark.parametrize(
    ("pnls", "reason"),
    [
        ([], "not significant: no trades"),
        ([Decimal("5.00")], "not significant: 1 trade cannot be resampled"),
    ],
)
def test_fewer_than_two_trades_give_no_interval(pnls: list[Decimal], reason: str) -> None:
    for name in OBJECTIVES:
        ci = bootstrap_ci(pnls, name, resamples=100)
        assert (ci.low, ci.high, ci.significant, ci.reason) == (None, None, False, reason)


def test_equal_pnl_has_no_sharpe_and_a_point_interval_of_net_pnl() -> None:
    pnls = [Decimal("2.50")] * 10
    sharpe = bootstrap_ci(pnls, "sharpe", resamples=500)
    assert sharpe.estimate is None
    assert (sharpe.low, sharpe.high, sharpe.undefined_resamples) == (None, None, 500)
    assert not sharpe.significant
    net = bootstrap_ci(pnls, "net_pnl", resamples=500)
    assert (net.estimate, net.low, net.high) == (25.0, 25.0, 25.0)
    assert net.significant


def _floats(value: object) -> list[float]:
    if isinstance(value, float):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [
            f for field in dataclasses.fields(value) for f in _floats(getattr(value, field.name))
        ]
    return []


@pytest.mark.parametrize(
    "pnls",
    [[], [1.0], [0.0, 0.0], [2.0, 2.0, 2.0], [-1.0, -2.0], [1.0, 2.0], [5.0, -5.0, 0.0]],
)
def test_nan_never_comes_out(pnls: list[float]) -> None:
    for name in OBJECTIVES:
        result = assess(pnls, name, [0.1, None, 0.3], resamples=200)
        assert all(math.isfinite(f) for f in _floats(result)), (name, result)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": 1.0}, "confidence must lie strictly between 0 and 1"),
        ({"confidence": 0}, "confidence must lie strictly between 0 and 1"),
        ({"resamples": 0}, "resamples must be a positive whole number"),
        ({"seed": -1}, "seed must be a whole number >= 0"),
    ],
)
def test_bad_bootstrap_arguments_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bootstrap_ci([1.0, 2.0], "net_pnl", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"trade 2 is nan"):
        bootstrap_ci([1.0, float("nan")], "net_pnl")


# ---------------------------------------------------------------- deflated Sharpe ratio


def test_the_papers_worked_example() -> None:
    # Bailey & López de Prado (2014), section 5: annualised Sharpe 2.5 over five years of daily
    # returns (T = 1250), skew -3, kurtosis 10, the best of N = 100 trials whose annualised Sharpe
    # ratios vary by 1/2. The paper finds SR0 = 0.1132 (daily) and a DSR of 0.9004.
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = probabilistic_sharpe(2.5 / math.sqrt(250), sr0, 1250, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=5e-4)


def test_the_probabilistic_sharpe_of_normal_returns_has_its_closed_form() -> None:
    sharpe, t = 0.2, 60
    expected = NORMAL.cdf(sharpe * math.sqrt(t - 1) / math.sqrt(1 + sharpe**2 / 2))
    assert probabilistic_sharpe(sharpe, 0.0, t, 0.0, 3.0) == pytest.approx(expected, rel=1e-12)
    assert probabilistic_sharpe(sharpe, 0.0, 1, 0.0, 3.0) is None
    # A positive skew this strong makes the estimate's variance negative: no figure.
    assert probabilistic_sharpe(2.0, 0.0, 50, 5.0, 3.0) is None


def test_one_trial_expects_no_maximum_and_more_trials_expect_more() -> None:
    assert expected_max_sharpe(1, 0.04) == 0.0
    assert expected_max_sharpe(50, 0.0) == 0.0
    figures = [expected_max_sharpe(n, 0.04) for n in (2, 10, 100, 1000)]
    assert figures == sorted(figures)
    with pytest.raises(ValueError, match="trials must be a positive whole number"):
        expected_max_sharpe(0, 0.04)
    with pytest.raises(ValueError, match="variance must be finite and >= 0"):
        expected_max_sharpe(3, float("nan"))


def test_skew_and_kurtosis_of_a_two_point_distribution_have_closed_forms() -> None:
    # 20 trades of +$10 and 80 of -$2.5 (p = 0.2): Bernoulli skew and kurtosis.
    p = 0.2
    pnls = [10.0] * 20 + [-2.5] * 80
    skew, kurtosis = moments(pnls) or (math.nan, math.nan)
    assert skew == pytest.approx((1 - 2 * p) / math.sqrt(p * (1 - p)), rel=1e-12)
    assert kurtosis == pytest.approx((1 - 6 * p * (1 - p)) / (p * (1 - p)) + 3, rel=1e-12)
    assert moments([1.0]) is None
    assert moments([4.0, 4.0]) is None


def test_the_deflated_sharpe_of_a_trade_list_combines_its_moments_and_the_trials() -> None:
    pnls = [10.0] * 20 + [-2.5] * 80  # mean 0, no edge ...
    pnls = [p + 1.0 for p in pnls]  # ... plus $1 a trade
    trials = [0.05, 0.12, -0.03, 0.2, 0.08]
    result = deflated_sharpe(pnls, trials)
    mean, std = 1.0, float(np.std(pnls, ddof=1))
    skew, kurtosis = moments(pnls) or (math.nan, math.nan)
    variance = float(np.var(trials, ddof=1))
    g = 0.5772156649015329
    sr0 = math.sqrt(variance) * (
        (1 - g) * NORMAL.inv_cdf(1 - 1 / 5) + g * NORMAL.inv_cdf(1 - 1 / (5 * math.e))
    )
    sr = mean / std
    z = (sr - sr0) * math.sqrt(99) / math.sqrt(1 - skew * sr + (kurtosis - 1) / 4 * sr**2)
    assert result.sharpe == pytest.approx(sr, rel=1e-12)
    assert result.trial_sharpe_variance == pytest.approx(variance, rel=1e-12)
    assert result.expected_max_sharpe == pytest.approx(sr0, rel=1e-12)
    assert result.deflated_sharpe == pytest.approx(NORMAL.cdf(z), rel=1e-12)
    assert result.trials == 5
    assert result.observations == 100
    assert result.significant == (NORMAL.cdf(z) >= 0.95)


def test_a_result_that_survives_one_trial_is_flagged_as_the_best_of_many() -> None:
    rng = np.random.default_rng(4)
    pnls = rng.normal(2.0, 10.0, size=250)  # per-trade Sharpe about 0.2 over 250 trades
    alone = deflated_sharpe(pnls, [float(np.mean(pnls) / np.std(pnls, ddof=1))])
    assert alone.expected_max_sharpe == 0.0
    assert alone.deflated_sharpe == alone.probabilistic_sharpe
    assert alone.significant
    assert alone.reason.startswith("significant: deflated Sharpe ")
    many = deflated_sharpe(pnls, list(rng.normal(0.0, 0.1, size=1000)))
    assert many.deflated_sharpe is not None
    assert alone.deflated_sharpe is not None
    assert many.deflated_sharpe < alone.deflated_sharpe
    assert not many.significant
    assert many.reason.startswith("not significant: deflated Sharpe ")
    assert "the best of 1000 trials" in many.reason


def test_undefined_trial_sharpes_count_as_trials() -> None:
    pnls = [5.0, -1.0, 3.0, 2.0, -2.0, 4.0]
    result = deflated_sharpe(pnls, [0.5, None, 0.1, float("nan")])
    assert result.trials == 4
    assert result.trial_sharpe_variance == pytest.approx(float(np.var([0.5, 0.1], ddof=1)))
    with pytest.raises(ValueError, match="at least one trial"):
        deflated_sharpe(pnls, [])


@pytest.mark.parametrize(
    ("pnls", "reason"),
    [
        ([], "not significant: no trades has no Sharpe ratio"),
        ([3.0], "not significant: 1 trade has no Sharpe ratio"),
        ([3.0, 3.0, 3.0], "not significant: every trade has the same P&L, no Sharpe ratio"),
    ],
)
def test_the_deflated_sharpe_of_too_few_or_equal_trades_is_not_significant(
    pnls: list[float], reason: str
) -> None:
    result = deflated_sharpe(pnls, [0.1, 0.2])
    assert (result.deflated_sharpe, result.significant, result.reason) == (None, False, reason)


def test_assess_is_significant_only_when_both_tests_are() -> None:
    strong = [12.0, -3.0, 9.0, 6.0, -2.0, 8.0, 7.0, -1.0, 10.0, 5.0] * 10
    both = assess(strong, "net_pnl", [0.5], resamples=2_000)
    assert both.bootstrap.significant
    assert both.deflated.significant
    assert both.significant
    assert both.reason == f"{both.bootstrap.reason}; {both.deflated.reason}"
    luck = assess(strong, "net_pnl", list(np.linspace(-3.0, 3.0, 500)), resamples=2_000)
    assert luck.bootstrap.significant
    assert not luck.deflated.significant
    assert not luck.significant
    assert luck.reason == luck.deflated.reason
