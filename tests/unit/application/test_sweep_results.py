"""Trial keys, ranking, parameter importance and the heatmap's cells."""

from __future__ import annotations

import math
from decimal import Decimal

from application.research.objectives import OBJECTIVES
from application.research.sweep import (
    Trial,
    canonical_json,
    flatten,
    heatmap,
    importance,
    objective_values,
    ranked,
    table_columns,
    table_rows,
    trial_key,
)


def test_a_trial_key_depends_on_every_setting_the_data_and_the_engine_not_on_key_order() -> None:
    config = {"strategy": {"lookback_period": 20, "z_threshold_entry": "2.0"}, "risk": {"a": None}}
    same = {"risk": {"a": None}, "strategy": {"z_threshold_entry": "2.0", "lookback_period": 20}}
    key = trial_key(config, "data-1", "0.1.0+r1")
    assert key == trial_key(same, "data-1", "0.1.0+r1")
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert key != trial_key(config, "data-2", "0.1.0+r1")
    changed = {**config, "strategy": {"lookback_period": 21, "z_threshold_entry": "2.0"}}
    assert key != trial_key(changed, "data-1", "0.1.0+r1")
    assert key != trial_key({**config, "risk": {"a": 1}}, "data-1", "0.1.0+r1")
    # Another engine revision computes afresh: its results may differ.
    assert key != trial_key(config, "data-1", "0.1.0+r2")


def test_canonical_json_is_compact_sorted_and_exact() -> None:
    assert canonical_json({"b": Decimal("2.50"), "a": [1, None]}) == '{"a":[1,null],"b":"2.50"}'


def _trials() -> list[Trial]:
    trials = []
    index = 0
    for lookback in (10, 20):
        for z in (Decimal("1.5"), Decimal("2.0"), Decimal("2.5")):
            trials.append(Trial(index, {"lookback": lookback, "z": z}, f"k{index}"))
            index += 1
    return trials


def test_ranking_importance_and_heatmap_follow_the_objective() -> None:
    trials = _trials()
    # net P&L: z matters a lot (0, 10, 20), lookback a little (+1 for 20).
    z_pnl = {Decimal("1.5"): 0, Decimal("2.0"): 10, Decimal("2.5"): 20}
    pnls = {
        t.key: [Decimal(z_pnl[t.params["z"]] + (1 if t.params["lookback"] == 20 else 0))]  # type: ignore[index]
        for t in trials
    }
    net = OBJECTIVES["net_pnl"]
    values = objective_values(trials, pnls, net)
    best = ranked(trials, values, net)
    assert [t.key for t in best[:2]] == ["k5", "k2"]
    spreads = dict(importance(trials, values))
    assert list(dict(importance(trials, values))) == ["z", "lookback"]
    assert math.isclose(spreads["z"], 20.0)
    assert math.isclose(spreads["lookback"], 1.0)
    xs, ys, cells = heatmap(trials, values, "z", "lookback")
    assert xs == [Decimal("1.5"), Decimal("2.0"), Decimal("2.5")]
    assert ys == [10, 20]
    assert cells == [[0.0, 10.0, 20.0], [1.0, 11.0, 21.0]]


def test_a_smaller_is_better_objective_ranks_the_smallest_first_and_undefined_last() -> None:
    trials = _trials()[:3]
    dd = OBJECTIVES["max_drawdown"]
    values = {"k0": 50.0, "k1": None, "k2": 10.0}
    assert [t.key for t in ranked(trials, values, dd)] == ["k2", "k0", "k1"]


def test_the_table_has_one_row_per_finished_trial_in_plan_order() -> None:
    trials = list(reversed(_trials()))
    metrics = {t.key: {"net_pnl_usd": str(t.index), "x.y": 1.5} for t in trials if t.index != 3}
    columns = table_columns(["lookback", "z"], list(metrics.values()))
    assert columns == ["trial", "key", "lookback", "z", "net_pnl_usd", "x.y"]
    rows = table_rows(trials, metrics, columns)
    assert [r[0] for r in rows] == [0, 1, 2, 4, 5]
    assert rows[0] == [0, "k0", 10, Decimal("1.5"), "0", 1.5]


def test_flatten_joins_nested_names_with_dots_and_skips_what_it_is_told() -> None:
    doc = {"a": 1, "b": {"c": 2, "d": {"e": None}}, "skip": {"x": 1}}
    assert flatten(doc, skip=lambda name: name == "skip") == {"a": 1, "b.c": 2, "b.d.e": None}
