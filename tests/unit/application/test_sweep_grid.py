"""The sweep grid: lists and exact ranges, every mistake reported at once, seeded sampling."""

from __future__ import annotations

from decimal import Decimal

import pytest

from application.research.grid import GridError, normalize, parse_grid


def test_a_range_is_exact_and_includes_its_end() -> None:
    grid = parse_grid(
        {
            "strategy.z_threshold_entry": {
                "from": Decimal("1.5"),
                "to": Decimal("3.0"),
                "step": Decimal("0.25"),
            }
        }
    )
    values = grid.axes[0].values
    assert [str(v) for v in values] == ["1.5", "1.75", "2.0", "2.25", "2.5", "2.75", "3.0"]
    assert all(isinstance(v, Decimal) for v in values)


def test_a_range_stops_at_the_last_step_below_its_end() -> None:
    grid = parse_grid(
        {
            "strategy.z_threshold_entry": {
                "from": Decimal("0.1"),
                "to": Decimal("0.35"),
                "step": Decimal("0.1"),
            }
        }
    )
    assert [str(v) for v in grid.axes[0].values] == ["0.1", "0.2", "0.3"]


def test_a_range_of_whole_numbers_gives_integers() -> None:
    grid = parse_grid({"strategy.lookback_period": {"from": 10, "to": 40, "step": 10}})
    assert grid.axes[0].values == (10, 20, 30, 40)
    assert all(type(v) is int for v in grid.axes[0].values)


def test_list_values_are_normalised_so_one_number_is_one_value() -> None:
    grid = parse_grid(
        {
            "execution.commission_per_side": [Decimal("0.620"), Decimal("1.00"), 2],
            "execution.fill_model": ["next_open", "signal_close"],
        }
    )
    assert [str(v) for v in grid.axes[0].values] == ["0.62", "1.0", "2"]
    assert normalize(Decimal("2.00")) == normalize(Decimal("2.0"))
    assert str(normalize(Decimal("100"))) == "100.0"


def test_points_are_the_product_in_file_order_first_axis_slowest() -> None:
    grid = parse_grid({"strategy.lookback_period": [10, 20], "strategy.min_volume": [0, 5, 9]})
    points = list(grid.points())
    assert grid.size == 6
    assert points[0] == {"strategy.lookback_period": 10, "strategy.min_volume": 0}
    assert points[1] == {"strategy.lookback_period": 10, "strategy.min_volume": 5}
    assert points[-1] == {"strategy.lookback_period": 20, "strategy.min_volume": 9}
    assert [grid.point(i) for i in range(grid.size)] == points


def test_every_mistake_is_reported_at_once() -> None:
    with pytest.raises(GridError) as caught:
        parse_grid(
            {
                "strategy.lookback_period": [],
                "session.calendar": ["none"],
                "lookback": [1],
                "strategy.z_threshold_entry": {"from": 3, "to": 1, "step": Decimal("0.5")},
                "strategy.z_threshold_exit": {"from": 0, "to": 1, "step": 0},
                "risk.max_daily_loss": {"from": 1, "to": 2},
                "risk.pause_minutes": {"from": "x", "to": 2, "step": 1},
                "execution.slippage_ticks": [1, 1],
                "strategy.min_volume": 7,
            },
            source="g.yaml",
        )
    text = str(caught.value)
    assert text.startswith("g.yaml: 9 grid problems")
    for needle in (
        "strategy.lookback_period: the list of values is empty",
        "session.calendar: only strategy, risk, execution settings can be swept",
        "lookback: name a setting as section.name",
        "strategy.z_threshold_entry: range to (1) is below from (3)",
        "strategy.z_threshold_exit: range step must be positive",
        "risk.max_daily_loss: a range needs exactly from, to and step (missing step)",
        "risk.pause_minutes: range from must be a number",
        "execution.slippage_ticks: 1 is listed twice",
        "strategy.min_volume: give a list of values or a range",
    ):
        assert needle in text, needle


def test_an_empty_or_non_mapping_grid_is_refused() -> None:
    cases: list[object] = [None, [], {}, "strategy.lookback_period"]
    for data in cases:
        with pytest.raises(GridError, match="mapping of setting names"):
            parse_grid(data)


def test_a_sample_is_seeded_distinct_and_in_grid_order() -> None:
    grid = parse_grid(
        {"strategy.lookback_period": list(range(10, 30)), "strategy.min_volume": list(range(10))}
    )
    first = grid.sample(15, seed=7)
    assert first == grid.sample(15, seed=7)
    assert first != grid.sample(15, seed=8)
    every = list(grid.points())
    order = [every.index(p) for p in first]
    assert order == sorted(set(order))
    assert len(order) == 15


def test_a_sample_larger_than_the_grid_is_the_whole_grid() -> None:
    grid = parse_grid({"strategy.lookback_period": [10, 20, 30]})
    assert grid.sample(10, seed=1) == list(grid.points())


def test_odd_values_are_refused_by_name_and_plain_ones_kept() -> None:
    with pytest.raises(GridError) as caught:
        parse_grid(
            {
                1: [1],
                "strategy.a.b": [1],
                "strategy.z_threshold_entry": [Decimal("NaN"), {"x": 1}],
                "risk.max_daily_loss": [None, None],
                "execution.fill_model": [True, True],
                "strategy.min_volume": {"from": 0, "to": 10**7, "step": 1},
                "risk.stop_loss_dollars": {"from": 1, "to": 2, "step": 1, "by": 3},
            }
        )
    text = str(caught.value)
    for needle in (
        "1: a setting name must be text",
        "strategy.a.b: name a setting as section.name",
        "strategy.z_threshold_entry: NaN is not a finite number",
        "strategy.z_threshold_entry: {'x': 1} is not a single value",
        "risk.max_daily_loss: null is listed twice",
        "execution.fill_model: true is listed twice",
        "strategy.min_volume: the range has 10,000,001 values",
        "risk.stop_loss_dollars: a range needs exactly from, to and step (unknown by)",
    ):
        assert needle in text, needle
    grid = parse_grid(
        {
            "risk.max_daily_loss": [None, 100, 2.5],
            "strategy.z_threshold_entry": {"from": "1.5", "to": 2.0, "step": 0.25},
        }
    )
    assert grid.axes[0].values == (None, 100, Decimal("2.5"))
    assert [str(v) for v in grid.axes[1].values] == ["1.5", "1.75", "2.0"]


def test_a_grid_too_large_is_refused_and_point_checks_its_index() -> None:
    axes = {f"strategy.k{i}": list(range(10)) for i in range(7)}
    with pytest.raises(GridError, match="10,000,000 points"):
        parse_grid(axes)
    grid = parse_grid({"strategy.lookback_period": [10]})
    with pytest.raises(IndexError):
        grid.point(1)


def test_the_settings_verdict_on_each_value_joins_the_report() -> None:
    def check(key: str, values: tuple[object, ...]) -> list[str]:
        return [f"{key} = {value}: too small" for value in values if value == 1]

    with pytest.raises(GridError) as caught:
        parse_grid({"strategy.lookback_period": [1, 20], "lookback": [3]}, check=check)
    assert caught.value.errors == [
        "strategy.lookback_period = 1: too small",
        "lookback: name a setting as section.name, e.g. strategy.lookback_period",
    ]
