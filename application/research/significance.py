"""Is a result luck? A bootstrap confidence interval of an objective and the deflated Sharpe ratio.

Pure and deterministic: numpy with an explicit seed, no I/O, no clock.

* :func:`bootstrap_ci`: the percentile bootstrap interval of any objective of
  :mod:`application.research.objectives`, by resampling the trades with replacement. It is
  significant when the interval excludes the objective's no-edge figure (0 P&L, a profit factor
  of 1, ...).
* :func:`deflated_sharpe`: the deflated Sharpe ratio of Bailey and López de Prado (2014), "The
  Deflated Sharpe Ratio: Correcting for Selection Bias, Backtest Overfitting and Non-Normality":
  the probability that the best trial's true Sharpe ratio exceeds the highest Sharpe ratio that
  ``N`` trials of no skill would be expected to show, given the skew and kurtosis of its returns
  and the spread of the trials' Sharpe ratios. Significant when that probability reaches the
  confidence level.
* :func:`assess`: both, for the best trial of a sweep; significant only if both are.

Sharpe ratios here are per trade (mean / sample standard deviation of per-trade net P&L, not
annualised), the ``sharpe`` objective: the trial Sharpe ratios handed in must be on that scale.
Every figure is a float or None: NaN never comes out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from application.research.objectives import (
    FloatArray,
    Objective,
    PnlInput,
    as_pnl_array,
    objective,
)

EULER_GAMMA = 0.5772156649015329
DEFAULT_RESAMPLES = 10_000
DEFAULT_CONFIDENCE = 0.95
_CHUNK_CELLS = 1 << 21
"""Resampled P&L cells computed at once (16 MiB of float64): memory stays flat for any size."""
_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class BootstrapInterval:
    """A percentile bootstrap interval of one objective over the trades."""

    objective: str
    estimate: float | None
    """The objective of the trades as given; None where it is undefined."""
    low: float | None
    high: float | None
    """The interval's bounds; None where there is no interval (fewer than 2 trades, or the
    objective undefined in too many resamples)."""
    confidence: float
    resamples: int
    seed: int
    trades: int
    undefined_resamples: int
    """Resamples where the objective is undefined (e.g. a profit factor without losses); they are
    left out of the interval."""
    significant: bool
    reason: str
    """One line: "significant: ..." or "not significant: ..." saying why."""


@dataclass(frozen=True, slots=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio of a trade list chosen as the best of ``trials``."""

    sharpe: float | None
    """Per-trade Sharpe ratio of the chosen trial."""
    observations: int
    skew: float | None
    kurtosis: float | None
    """Of the per-trade P&L, not excess (a normal distribution has 3)."""
    trials: int
    trial_sharpe_variance: float | None
    """Sample variance of the trials' Sharpe ratios (those defined); None with fewer than 2."""
    expected_max_sharpe: float | None
    """The best Sharpe ratio ``trials`` unskilled trials would be expected to reach (0 for 1)."""
    probabilistic_sharpe: float | None
    """P(true Sharpe > 0): the probabilistic Sharpe ratio against 0."""
    deflated_sharpe: float | None
    """P(true Sharpe > expected_max_sharpe)."""
    confidence: float
    significant: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Significance:
    """The overfitting guard's verdict on a sweep's best trial."""

    bootstrap: BootstrapInterval
    deflated: DeflatedSharpe
    significant: bool
    reason: str
    """The first failing test's reason, or both tests' reasons joined when both pass."""


def bootstrap_ci(
    pnls: PnlInput,
    objective_name: str | Objective,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> BootstrapInterval:
    """The percentile bootstrap interval of an objective over per-trade net P&L (closing order).

    Each resample draws ``len(pnls)`` trades with replacement (numpy's PCG64 from ``seed``): the
    same inputs give the same interval. Raises ValueError for a bad argument or a non-finite P&L.
    """
    target = objective_name if isinstance(objective_name, Objective) else objective(objective_name)
    _check_confidence(confidence)
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be a positive whole number, got {resamples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    row = as_pnl_array(pnls)
    n = row.size
    estimate = target(pnls if not isinstance(pnls, np.ndarray) else row)

    def result(
        low: float | None, high: float | None, undefined: int, reason: str
    ) -> BootstrapInterval:
        return BootstrapInterval(
            objective=target.name,
            estimate=estimate,
            low=low,
            high=high,
            confidence=confidence,
            resamples=resamples,
            seed=seed,
            trades=n,
            undefined_resamples=undefined,
            significant=reason.startswith("significant"),
            reason=reason,
        )

    if n < 2:
        what = "no trades" if n == 0 else "1 trade cannot be resampled"
        return result(None, None, 0, f"not significant: {what}")
    values = _resampled(row, target, resamples, seed)
    defined = values[np.isfinite(values)]
    undefined = resamples - defined.size
    if undefined > resamples * (1 - confidence):
        return result(
            None,
            None,
            undefined,
            f"not significant: {target.name} is undefined in {undefined} of {resamples} resamples",
        )
    tail = (1 - confidence) / 2
    low, high = (float(q) for q in np.quantile(defined, [tail, 1 - tail]))
    interval = f"the {_pct(confidence)} interval [{low:.4g}, {high:.4g}] of {target.name}"
    if estimate is None:
        return result(
            low, high, undefined, f"not significant: {target.name} of the trades is undefined"
        )
    if target.no_edge is None:
        return result(
            low,
            high,
            undefined,
            f"not significant: {target.name} has no no-edge figure to test {interval} against",
        )
    bound = low if target.higher_is_better else high
    if target.beats_no_edge(bound):
        reason = f"significant: {interval} excludes {target.no_edge:g} (no edge)"
    else:
        reason = f"not significant: {interval} includes {target.no_edge:g} (no edge)"
    return result(low, high, undefined, reason)


def _resampled(row: FloatArray, target: Objective, resamples: int, seed: int) -> FloatArray:
    rng = np.random.default_rng(seed)
    n = row.size
    out = np.empty(resamples)
    chunk = max(1, _CHUNK_CELLS // n)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        picks = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = target.batch(row[picks])
    return out


def expected_max_sharpe(trials: int, variance: float) -> float:
    """The expected maximum of ``trials`` Sharpe ratios of unskilled strategies whose estimates
    vary with ``variance`` (Bailey and López de Prado's approximation; 0 for a single trial)."""
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be a positive whole number, got {trials!r}")
    if not math.isfinite(variance) or variance < 0:
        raise ValueError(f"the trials' Sharpe variance must be finite and >= 0, got {variance!r}")
    if trials == 1 or variance == 0:
        return 0.0
    return math.sqrt(variance) * (
        (1 - EULER_GAMMA) * _NORMAL.inv_cdf(1 - 1 / trials)
        + EULER_GAMMA * _NORMAL.inv_cdf(1 - 1 / (trials * math.e))
    )


def probabilistic_sharpe(
    sharpe: float, benchmark: float, observations: int, skew: float, kurtosis: float
) -> float | None:
    """P(true Sharpe > ``benchmark``) for a Sharpe ratio estimated from ``observations`` returns
    with that skew and (non-excess) kurtosis; None where the estimate's variance is not positive
    or there are fewer than 2 observations."""
    if observations < 2:
        return None
    spread = 1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2
    if not math.isfinite(spread) or spread <= 0:
        return None
    z = (sharpe - benchmark) * math.sqrt(observations - 1) / math.sqrt(spread)
    return _NORMAL.cdf(z) if math.isfinite(z) else None


def moments(pnls: PnlInput) -> tuple[float, float] | None:
    """(skew, kurtosis) of per-trade P&L from the population moments (kurtosis not excess: 3 for
    a normal distribution); None with fewer than 2 trades or no deviation."""
    row = as_pnl_array(pnls)
    if row.size < 2 or np.ptp(row) == 0:
        return None
    centred = row - row.mean()
    m2 = float(np.mean(centred**2))
    m3 = float(np.mean(centred**3))
    m4 = float(np.mean(centred**4))
    return m3 / m2**1.5, m4 / m2**2


def deflated_sharpe(
    pnls: PnlInput,
    trial_sharpes: Sequence[float | None],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
) -> DeflatedSharpe:
    """The deflated Sharpe ratio of ``pnls`` (per-trade net P&L of the chosen trial) as the best
    of ``trial_sharpes`` (the per-trade Sharpe ratio of every trial run, the chosen one included;
    None for a trial whose ratio is undefined: it still counts as a trial)."""
    _check_confidence(confidence)
    trials = len(trial_sharpes)
    if trials < 1:
        raise ValueError("deflated Sharpe: at least one trial's Sharpe ratio is needed")
    finite = [float(s) for s in trial_sharpes if s is not None and math.isfinite(s)]
    variance = float(np.var(finite, ddof=1)) if len(finite) >= 2 else None
    row = as_pnl_array(pnls)
    sharpe = objective("sharpe")(row)
    shape = moments(row)
    expected = expected_max_sharpe(trials, variance or 0.0)

    def result(psr: float | None, dsr: float | None, reason: str) -> DeflatedSharpe:
        return DeflatedSharpe(
            sharpe=sharpe,
            observations=row.size,
            skew=None if shape is None else shape[0],
            kurtosis=None if shape is None else shape[1],
            trials=trials,
            trial_sharpe_variance=variance,
            expected_max_sharpe=expected,
            probabilistic_sharpe=psr,
            deflated_sharpe=dsr,
            confidence=confidence,
            significant=reason.startswith("significant"),
            reason=reason,
        )

    if row.size < 2:
        what = "no trades" if row.size == 0 else "1 trade"
        return result(None, None, f"not significant: {what} has no Sharpe ratio")
    if sharpe is None or shape is None:
        return result(None, None, "not significant: every trade has the same P&L, no Sharpe ratio")
    skew, kurtosis = shape
    psr = probabilistic_sharpe(sharpe, 0.0, row.size, skew, kurtosis)
    dsr = probabilistic_sharpe(sharpe, expected, row.size, skew, kurtosis)
    if dsr is None:
        return result(
            psr,
            None,
            f"not significant: the Sharpe ratio's variance is not positive (Sharpe {sharpe:.3f}, "
            f"skew {skew:.3f}, kurtosis {kurtosis:.3f})",
        )
    against = (
        f"Sharpe {sharpe:.3f} per trade over {row.size} trades vs {expected:.3f} expected from "
        f"the best of {trials} {'trial' if trials == 1 else 'trials'}"
    )
    if dsr >= confidence:
        return result(
            psr, dsr, f"significant: deflated Sharpe {dsr:.3f} >= {confidence:g} ({against})"
        )
    return result(
        psr, dsr, f"not significant: deflated Sharpe {dsr:.3f} < {confidence:g} ({against})"
    )


def assess(
    pnls: PnlInput,
    objective_name: str | Objective,
    trial_sharpes: Sequence[float | None],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Significance:
    """The bootstrap interval of the chosen objective and the deflated Sharpe ratio of the best
    trial's trades; significant only when both are."""
    interval = bootstrap_ci(
        pnls, objective_name, confidence=confidence, resamples=resamples, seed=seed
    )
    deflated = deflated_sharpe(pnls, trial_sharpes, confidence=confidence)
    failing = [t.reason for t in (interval, deflated) if not t.significant]
    reason = failing[0] if failing else f"{interval.reason}; {deflated.reason}"
    return Significance(interval, deflated, not failing, reason)


def _check_confidence(confidence: float) -> None:
    if not (isinstance(confidence, float | int) and 0 < confidence < 1):
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")


def _pct(confidence: float) -> str:
    return f"{confidence * 100:g}%"
