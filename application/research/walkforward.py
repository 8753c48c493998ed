"""Walk-forward analysis, its pure parts: windows on CME trade dates, the stitched out-of-sample
result, walk-forward efficiency and the stability of the chosen parameters.

A walk-forward optimises the parameters on a train window (every trial of a grid, by the sweep's
runner), trades the best of them on the test window that follows, then moves on by ``step`` trade
dates. Rolling windows keep the train length; anchored ones all start at the first trade date and
grow. Only whole test windows are used; trade dates left after the last one are reported.

**Walk-forward efficiency** (Pardo) is the annualised out-of-sample objective over the annualised
in-sample one: about 1 when what the optimiser found carries over, near 0 or below when it was fit
to noise. Objectives that add up over time are annualised by trade days (``net_pnl`` x 252/days;
``sqn``, which grows with the square root of the trade count, x sqrt(252/days)); ratios
(``sharpe``, ``profit_factor``, ``win_rate``, ``expectancy``) are compared as they are. It is
given only for objectives where higher is better and an in-sample figure above 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import pairwise
from statistics import median

from application.research.grid import ParamValue
from application.research.objectives import Objective, objective

TRADING_DAYS_PER_YEAR = 252
_BY_DAYS = frozenset({"net_pnl"})
_BY_ROOT_DAYS = frozenset({"sqn"})


@dataclass(frozen=True, slots=True)
class Window:
    """One train window and the test window after it, as inclusive ranges of trade dates."""

    index: int
    train_first: date
    train_last: date
    test_first: date
    test_last: date
    train_days: int
    test_days: int


@dataclass(frozen=True, slots=True)
class Split:
    windows: tuple[Window, ...]
    unused_days: int
    """Trade dates after the last whole test window (not tested)."""


def split_windows(
    trade_dates: Sequence[date],
    *,
    train: int,
    test: int,
    step: int | None = None,
    anchored: bool = False,
) -> Split:
    """Windows over ``trade_dates`` (the dates that have bars, in any order, repeats allowed):
    ``train`` trade dates to optimise on, the next ``test`` to trade, moved on by ``step`` (default
    ``test``, never less: test windows do not overlap). Raises ValueError for a length below 1, a
    step shorter than the test or too few trade dates for one window."""
    for name, value in (("train", train), ("test", test), ("step", step)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name} must be a whole number of trade days, got {value!r}")
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1 trade day, got {value}")
    stride = test if step is None else step
    if stride < test:
        # Overlapping test windows would trade some days twice: the stitched out-of-sample curve
        # would count their round trips (and their trade days) once per window holding them.
        raise ValueError(
            f"step ({stride}) is shorter than test ({test}): test windows would overlap and the "
            "stitched out-of-sample result would count their trades twice"
        )
    days = sorted(set(trade_dates))
    if len(days) < train + test:
        raise ValueError(
            f"a walk-forward of {train} train + {test} test trade days needs at least "
            f"{train + test} trade dates; the data has {len(days)}"
        )
    windows: list[Window] = []
    start = 0
    while start + train + test <= len(days):
        first = 0 if anchored else start
        end = start + train
        windows.append(
            Window(
                index=len(windows),
                train_first=days[first],
                train_last=days[end - 1],
                test_first=days[end],
                test_last=days[end + test - 1],
                train_days=end - first,
                test_days=test,
            )
        )
        start += stride
    last_tested = start - stride + train + test
    return Split(tuple(windows), len(days) - last_tested)


def annualised(objective_: Objective, value: float | None, days: int) -> float | None:
    """``value`` over ``days`` trade days as a year's figure (see the module's note); ratios are
    returned as they are. None for an undefined value or no days."""
    if value is None or days < 1:
        return None
    if objective_.name in _BY_DAYS:
        return value * TRADING_DAYS_PER_YEAR / days
    if objective_.name in _BY_ROOT_DAYS:
        return value * math.sqrt(TRADING_DAYS_PER_YEAR / days)
    return value


def efficiency(
    objective_: Objective, in_sample: float | None, out_of_sample: float | None
) -> float | None:
    """Annualised out-of-sample over annualised in-sample; None where it means nothing (an
    objective where lower is better, an undefined figure, an in-sample figure at or below 0)."""
    if not objective_.higher_is_better or in_sample is None or out_of_sample is None:
        return None
    if in_sample <= 0:
        return None
    return out_of_sample / in_sample


@dataclass(frozen=True, slots=True)
class WindowResult:
    """What one window chose and what it gave."""

    window: Window
    params: Mapping[str, ParamValue]
    trials: int
    in_sample: float | None
    """The chosen trial's objective on its train window."""
    out_of_sample_pnls: tuple[Decimal, ...]
    """Net P&L of each round trip of the chosen parameters on the test window, closing order."""

    def out_of_sample(self, objective_: Objective) -> float | None:
        return objective_(list(self.out_of_sample_pnls))

    def efficiency(self, objective_: Objective) -> float | None:
        w = self.window
        return efficiency(
            objective_,
            annualised(objective_, self.in_sample, w.train_days),
            annualised(objective_, self.out_of_sample(objective_), w.test_days),
        )


@dataclass(frozen=True, slots=True)
class ParamStability:
    """How one parameter's chosen value moved from window to window."""

    name: str
    chosen: tuple[ParamValue, ...]
    changes: int
    """Windows whose choice differs from the window before."""
    distinct: int
    mode: ParamValue
    """The value chosen most often (the earliest of equals)."""
    mode_share: float
    low: Decimal | None
    high: Decimal | None
    """Of numeric values; None for text or booleans."""
    relative_spread: float | None
    """(high - low) / |median|: 0 when every window chose the same number; None for text or a
    median of 0."""


def stability(chosen: Sequence[Mapping[str, ParamValue]]) -> tuple[ParamStability, ...]:
    """Each parameter's stability over the windows' choices (in window order)."""
    if not chosen:
        return ()
    figures = []
    for name in chosen[0]:
        values = tuple(c[name] for c in chosen)
        texts = [_text(v) for v in values]
        counts = Counter(texts)
        top = max(counts.values())
        mode = next(v for v, t in zip(values, texts, strict=True) if counts[t] == top)
        numbers = [
            Decimal(v) for v in values if isinstance(v, int | Decimal) and not isinstance(v, bool)
        ]
        low = high = spread = None
        if len(numbers) == len(values):
            low, high = min(numbers), max(numbers)
            middle = median(numbers)
            spread = float((high - low) / abs(middle)) if middle != 0 else None
        figures.append(
            ParamStability(
                name=name,
                chosen=values,
                changes=sum(1 for a, b in pairwise(texts) if a != b),
                distinct=len(counts),
                mode=mode,
                mode_share=top / len(values),
                low=low,
                high=high,
                relative_spread=spread,
            )
        )
    return tuple(figures)


def _text(value: ParamValue) -> str:
    return f"{type(value).__name__}:{value}"


@dataclass(frozen=True, slots=True)
class WalkForward:
    """A walk-forward's result: each window, the stitched out-of-sample trades and the figures."""

    objective: str
    windows: tuple[WindowResult, ...]
    unused_days: int
    oos_pnls: tuple[Decimal, ...]
    """Every test window's round trips, window after window: one out-of-sample equity curve."""
    oos_days: int
    oos_value: float | None
    """The objective of the stitched trades."""
    in_sample_annualised: float | None
    """Mean over the windows of the annualised in-sample objective."""
    oos_annualised: float | None
    efficiency: float | None
    stability: tuple[ParamStability, ...]

    @property
    def oos_equity(self) -> tuple[Decimal, ...]:
        """Cumulative net P&L after each stitched out-of-sample round trip."""
        total = Decimal(0)
        curve = []
        for pnl in self.oos_pnls:
            total += pnl
            curve.append(total)
        return tuple(curve)


def walk_forward(
    objective_name: str | Objective, windows: Sequence[WindowResult], unused_days: int = 0
) -> WalkForward:
    """Stitch the windows' out-of-sample trades and compute efficiency and stability."""
    target = objective_name if isinstance(objective_name, Objective) else objective(objective_name)
    ordered = sorted(windows, key=lambda w: w.window.index)
    pnls = tuple(p for w in ordered for p in w.out_of_sample_pnls)
    days = sum(w.window.test_days for w in ordered)
    value = target(list(pnls))
    in_sample = [annualised(target, w.in_sample, w.window.train_days) for w in ordered]
    defined = [v for v in in_sample if v is not None]
    is_mean = math.fsum(defined) / len(defined) if defined else None
    oos = annualised(target, value, days)
    return WalkForward(
        objective=target.name,
        windows=tuple(ordered),
        unused_days=unused_days,
        oos_pnls=pnls,
        oos_days=days,
        oos_value=value,
        in_sample_annualised=is_mean,
        oos_annualised=oos,
        efficiency=efficiency(target, is_mean, oos),
        stability=stability([w.params for w in ordered]),
    )
