"""Walk-forward's pure parts: windows on trade dates (rolling and anchored), annualising and
efficiency, parameter stability, and the stitched out-of-sample result."""

from __future__ import annotations

import math
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from application.research.grid import ParamValue
from application.research.objectives import objective
from application.research.walkforward import (
    Window,
    WindowResult,
    annualised,
    efficiency,
    split_windows,
    stability,
    walk_forward,
)

D = Decimal
MONDAY = date(2013, 10, 7)
WEEKDAYS = [
    MONDAY + timedelta(days=i) for i in range(14) if (MONDAY + timedelta(days=i)).weekday() < 5
]


def spans(windows: tuple[Window, ...]) -> list[tuple[int, int, int, int]]:
    """Each window as indexes into WEEKDAYS: train first, train last, test first, test last."""
    at = {d: i for i, d in enumerate(WEEKDAYS)}
    return [
        (at[w.train_first], at[w.train_last], at[w.test_first], at[w.test_last]) for w in windows
    ]


def test_rolling_windows_move_by_the_test_length() -> None:
    split = split_windows(WEEKDAYS, train=3, test=2)
    assert spans(split.windows) == [(0, 2, 3, 4), (2, 4, 5, 6), (4, 6, 7, 8)]
    assert [w.index for w in split.windows] == [0, 1, 2]
    assert all((w.train_days, w.test_days) == (3, 2) for w in split.windows)
    assert split.unused_days == 1  # ten weekdays, nine used


def test_a_step_shorter_than_the_test_is_refused() -> None:
    # Overlapping test windows would put a day's out-of-sample trades twice into the stitched
    # equity curve (and its trade days twice into the annualising).
    with pytest.raises(ValueError, match=re.escape("step (1) is shorter than test (2)")):
        split_windows(WEEKDAYS[:7], train=3, test=2, step=1)


def test_a_step_longer_than_the_test_leaves_days_untested() -> None:
    split = split_windows(WEEKDAYS[:9], train=3, test=2, step=3)
    assert spans(split.windows) == [(0, 2, 3, 4), (3, 5, 6, 7)]
    assert split.unused_days == 1


def test_anchored_windows_start_at_the_first_date_and_grow() -> None:
    split = split_windows(WEEKDAYS, train=3, test=2, anchored=True)
    assert spans(split.windows) == [(0, 2, 3, 4), (0, 4, 5, 6), (0, 6, 7, 8)]
    assert [w.train_days for w in split.windows] == [3, 5, 7]


def test_trade_dates_come_in_any_order_with_repeats() -> None:
    shuffled = list(reversed(WEEKDAYS)) + WEEKDAYS[:4]
    assert split_windows(shuffled, train=3, test=2) == split_windows(WEEKDAYS, train=3, test=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train": 0, "test": 1}, "train must be at least 1 trade day, got 0"),
        ({"train": 3, "test": 0}, "test must be at least 1 trade day, got 0"),
        ({"train": 3, "test": 1, "step": 0}, "step must be at least 1 trade day, got 0"),
        (
            {"train": 8, "test": 3},
            "a walk-forward of 8 train + 3 test trade days needs at least 11 trade dates; "
            "the data has 10",
        ),
    ],
)
def test_impossible_windows_are_refused_by_name(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        split_windows(WEEKDAYS, **kwargs)


def test_sums_are_annualised_by_trade_days_and_ratios_are_not() -> None:
    assert annualised(objective("net_pnl"), 100.0, 20) == pytest.approx(100 * 252 / 20)
    assert annualised(objective("sqn"), 1.5, 63) == pytest.approx(1.5 * 2)
    assert annualised(objective("sharpe"), 0.2, 20) == 0.2
    assert annualised(objective("win_rate"), 0.6, 5) == 0.6
    assert annualised(objective("net_pnl"), None, 20) is None


def test_efficiency_is_out_of_sample_over_in_sample_where_that_means_something() -> None:
    net = objective("net_pnl")
    assert efficiency(net, 200.0, 50.0) == 0.25
    assert efficiency(net, 200.0, -50.0) == -0.25
    assert efficiency(net, 0.0, 50.0) is None
    assert efficiency(net, -10.0, 50.0) is None
    assert efficiency(net, None, 50.0) is None
    assert efficiency(objective("max_drawdown"), 200.0, 50.0) is None


def test_stability_counts_changes_and_measures_the_spread() -> None:
    chosen: list[dict[str, ParamValue]] = [
        {"strategy.lookback_period": 20, "strategy.z_threshold_entry": D("2.0"), "x": "a"},
        {"strategy.lookback_period": 20, "strategy.z_threshold_entry": D("2.5"), "x": "a"},
        {"strategy.lookback_period": 40, "strategy.z_threshold_entry": D("2.0"), "x": "b"},
        {"strategy.lookback_period": 20, "strategy.z_threshold_entry": D("2.0"), "x": "b"},
    ]
    lookback, entry, text = stability(chosen)
    assert lookback.chosen == (20, 20, 40, 20)
    assert (lookback.changes, lookback.distinct, lookback.mode, lookback.mode_share) == (
        2,
        2,
        20,
        0.75,
    )
    assert (lookback.low, lookback.high) == (D(20), D(40))
    assert lookback.relative_spread == 1.0  # (40 - 20) / median 20
    assert (entry.changes, entry.mode, entry.low, entry.high) == (2, D("2.0"), D("2.0"), D("2.5"))
    assert entry.relative_spread == pytest.approx(0.25)
    assert (text.changes, text.distinct, text.mode, text.mode_share) == (1, 2, "a", 0.5)
    assert (text.low, text.high, text.relative_spread) == (None, None, None)
    assert stability([]) == ()


def test_the_same_choice_everywhere_is_perfectly_stable() -> None:
    (only,) = stability([{"risk.stop_loss_dollars": D(50)}] * 3)
    assert (only.changes, only.distinct, only.mode_share, only.relative_spread) == (0, 1, 1.0, 0.0)


def _window(index: int, train_days: int, test_days: int) -> Window:
    first = MONDAY + timedelta(days=7 * index)
    return Window(index, first, first, first, first, train_days, test_days)


def test_the_out_of_sample_trades_are_stitched_in_window_order() -> None:
    results = [
        WindowResult(_window(1, 10, 5), {"p": 2}, 4, 300.0, (D("-20"), D("5"))),
        WindowResult(_window(0, 10, 5), {"p": 1}, 4, 100.0, (D("10.50"), D("-3.25"))),
    ]
    wf = walk_forward("net_pnl", results, unused_days=2)
    assert wf.oos_pnls == (D("10.50"), D("-3.25"), D("-20"), D("5"))
    assert wf.oos_equity == (D("10.50"), D("7.25"), D("-12.75"), D("-7.75"))
    assert wf.oos_days == 10
    assert wf.oos_value == -7.75
    assert wf.unused_days == 2
    # In sample: 100 and 300 over 10 days each, annualised 2520 and 7560, mean 5040.
    assert wf.in_sample_annualised == pytest.approx(5040.0)
    assert wf.oos_annualised == pytest.approx(-7.75 * 252 / 10)
    assert wf.efficiency == pytest.approx(-7.75 * 25.2 / 5040)
    assert [w.window.index for w in wf.windows] == [0, 1]
    net = objective("net_pnl")
    assert wf.windows[0].out_of_sample(net) == 7.25
    assert wf.windows[0].efficiency(net) == pytest.approx((7.25 * 252 / 5) / (100 * 252 / 10))
    assert wf.windows[1].efficiency(net) == pytest.approx((-15 * 252 / 5) / (300 * 252 / 10))
    assert [s.name for s in wf.stability] == ["p"]


def test_no_out_of_sample_trades_and_undefined_in_sample_figures() -> None:
    results = [WindowResult(_window(0, 3, 1), {"p": 1}, 2, None, ())]
    wf = walk_forward(objective("sharpe"), results)
    assert wf.oos_pnls == ()
    assert wf.oos_value is None
    assert wf.in_sample_annualised is None
    assert wf.efficiency is None
    assert all(
        v is None or math.isfinite(v)
        for v in (wf.oos_value, wf.in_sample_annualised, wf.oos_annualised, wf.efficiency)
    )
