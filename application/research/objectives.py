"""Objectives by name: one figure of merit computed from a list of per-trade net P&L.

One registry shared by the sweep (to rank trials), the significance tests (to bootstrap the chosen
figure) and walk-forward (to choose each window's parameters). Every objective works on the net
P&L of the round trips in closing order, in USD:

========================  =====================================================  ==========  =======
name                      figure                                                  better      no edge
========================  =====================================================  ==========  =======
``net_pnl``               sum                                                     higher      0
``expectancy``            mean                                                    higher      0
``sharpe``                mean / sample std (per trade, not annualised)           higher      0
``sqn``                   sqrt(trades) x sharpe (van Tharp's system quality)      higher      0
``profit_factor``         gross wins / gross losses                               higher      1
``win_rate``              winning trades / trades                                 higher      --
``max_drawdown``          deepest fall of cumulative P&L below its peak (from 0)  lower       --
========================  =====================================================  ==========  =======

"No edge" is the figure a strategy without an edge has in expectation: a confidence interval that
does not exclude it shows no edge. Where a figure is undefined (the mean of no trades, a Sharpe
ratio of equal P&L, a profit factor without losses) the objective gives ``None``, never NaN or
infinity. Figures are floats; the exact Decimal money of a run stays in
:class:`application.report.ReplaySummary`. ``net_pnl``, ``expectancy`` and ``max_drawdown`` of
Decimal input are computed exactly and then rounded once to float.

Every objective also has a vectorised form (:meth:`Objective.batch`): rows of P&L in, one figure
per row out (NaN where undefined, for internal use), which the bootstrap and Monte Carlo use.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
PnlInput = Sequence[Decimal] | Sequence[float] | FloatArray

# Exact sums and means of money whatever the caller's decimal context says.
_CONTEXT = Context(prec=34)


@dataclass(frozen=True, slots=True)
class Objective:
    """A named figure of merit over per-trade net P&L."""

    name: str
    description: str
    higher_is_better: bool
    no_edge: float | None
    """The figure of a strategy without edge; None where the figure has no such value."""
    _batch: Callable[[FloatArray], FloatArray]
    _exact: Callable[[Sequence[Decimal]], Decimal | None] | None = None

    def __call__(self, pnls: PnlInput) -> float | None:
        """The figure for one trade list (closing order), or None where it is undefined."""
        if self._exact is not None and _all_decimal(pnls):
            value = self._exact(list(pnls))  # type: ignore[arg-type]
            return None if value is None else float(value)
        row = as_pnl_array(pnls)
        figure = float(self._batch(row[np.newaxis, :])[0])
        return figure if math.isfinite(figure) else None

    def batch(self, rows: FloatArray) -> FloatArray:
        """The figure of each row of a 2-D array of P&L (one trade list per row); NaN where it is
        undefined. Rows are assumed finite (see :func:`as_pnl_array`)."""
        if rows.ndim != 2:
            raise ValueError(f"objective {self.name}: expected a 2-D array, got {rows.ndim}-D")
        return self._batch(rows)

    def rank_key(self, value: float | None) -> float:
        """A key that sorts better figures higher (undefined lowest), whatever the direction."""
        if value is None or not math.isfinite(value):
            return -math.inf
        return value if self.higher_is_better else -value

    def beats_no_edge(self, value: float) -> bool | None:
        """Whether ``value`` is strictly on the good side of :attr:`no_edge` (None without one)."""
        if self.no_edge is None:
            return None
        return value > self.no_edge if self.higher_is_better else value < self.no_edge


def as_pnl_array(pnls: PnlInput) -> FloatArray:
    """Per-trade P&L as a 1-D float array; raises ValueError naming the first non-finite item."""
    array = np.asarray([float(p) for p in pnls] if not isinstance(pnls, np.ndarray) else pnls)
    array = array.astype(np.float64, copy=False)
    if array.ndim != 1:
        raise ValueError(f"per-trade P&L must be one list, got a {array.ndim}-D array")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        first = int(bad[0])
        raise ValueError(
            f"per-trade P&L must be finite numbers: trade {first + 1} is {float(array[first])}"
        )
    return array


def _all_decimal(pnls: PnlInput) -> bool:
    return not isinstance(pnls, np.ndarray) and all(isinstance(p, Decimal) for p in pnls)


# ---------------------------------------------------------------- vectorised figures


def _nan(n_rows: int) -> FloatArray:
    return np.full(n_rows, np.nan)


def _net_pnl(rows: FloatArray) -> FloatArray:
    total: FloatArray = rows.sum(axis=1)
    return total


def _expectancy(rows: FloatArray) -> FloatArray:
    if rows.shape[1] == 0:
        return _nan(rows.shape[0])
    mean: FloatArray = rows.mean(axis=1)
    return mean


def _sharpe(rows: FloatArray) -> FloatArray:
    n = rows.shape[1]
    if n < 2:
        return _nan(rows.shape[0])
    mean: FloatArray = rows.mean(axis=1)
    std: FloatArray = rows.std(axis=1, ddof=1)
    # Equal P&L has no deviation; float noise in the std of equal values is not a deviation.
    flat = np.ptp(rows, axis=1) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio: FloatArray = mean / std
    ratio[flat] = np.nan
    return ratio


def _sqn(rows: FloatArray) -> FloatArray:
    return _sharpe(rows) * math.sqrt(rows.shape[1])


def _profit_factor(rows: FloatArray) -> FloatArray:
    gains: FloatArray = np.where(rows > 0, rows, 0.0).sum(axis=1)
    losses: FloatArray = -np.where(rows < 0, rows, 0.0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor: FloatArray = gains / losses
    factor[losses == 0] = np.nan
    return factor


def _win_rate(rows: FloatArray) -> FloatArray:
    if rows.shape[1] == 0:
        return _nan(rows.shape[0])
    rate: FloatArray = (rows > 0).mean(axis=1)
    return rate


def _max_drawdown(rows: FloatArray) -> FloatArray:
    if rows.shape[1] == 0:
        return np.zeros(rows.shape[0])
    equity = np.cumsum(rows, axis=1)
    peak = np.maximum.accumulate(np.maximum(equity, 0.0), axis=1)
    depth: FloatArray = (peak - equity).max(axis=1)
    return depth


# ---------------------------------------------------------------- exact figures of Decimal money


def _exact_net(pnls: Sequence[Decimal]) -> Decimal:
    with localcontext(_CONTEXT):
        return sum(pnls, Decimal(0))


def _exact_mean(pnls: Sequence[Decimal]) -> Decimal | None:
    if not pnls:
        return None
    with localcontext(_CONTEXT):
        return sum(pnls, Decimal(0)) / len(pnls)


def _exact_drawdown(pnls: Sequence[Decimal]) -> Decimal:
    with localcontext(_CONTEXT):
        equity = peak = depth = Decimal(0)
        for pnl in pnls:
            equity += pnl
            peak = max(peak, equity)
            depth = max(depth, peak - equity)
        return depth


def _registry(objectives: Iterable[Objective]) -> Mapping[str, Objective]:
    return MappingProxyType({o.name: o for o in objectives})


OBJECTIVES: Mapping[str, Objective] = _registry(
    (
        Objective("net_pnl", "net P&L, USD", True, 0.0, _net_pnl, _exact_net),
        Objective("expectancy", "mean net P&L per trade, USD", True, 0.0, _expectancy, _exact_mean),
        Objective("sharpe", "per-trade Sharpe ratio (mean / sample std)", True, 0.0, _sharpe),
        Objective("sqn", "system quality number (sqrt(trades) x Sharpe)", True, 0.0, _sqn),
        Objective("profit_factor", "gross wins / gross losses", True, 1.0, _profit_factor),
        Objective("win_rate", "winning trades / trades", True, None, _win_rate),
        Objective("max_drawdown", "max drawdown, USD", False, None, _max_drawdown, _exact_drawdown),
    )
)
"""Every objective by name, in a fixed order (the order to list them in help texts)."""


def objective(name: str) -> Objective:
    """The objective called ``name``; raises ValueError naming the choices for an unknown one."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(
            f"unknown objective {name!r}: choose one of {', '.join(OBJECTIVES)}"
        ) from None
