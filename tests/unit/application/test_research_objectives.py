"""The objective registry: figures checked by hand, undefined figures as None, exact Decimal money,
the vectorised form agreeing with the one-list form, and names refused clearly."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from application.research.objectives import OBJECTIVES, as_pnl_array, objective

D = Decimal
# Equity 10, 5, 25, 20, 20: two falls of 5 below a peak.
HAND = [10.0, -5.0, 20.0, -5.0, 0.0]
# mean 4; deviations 6, -9, 16, -9, -4; squares sum to 470; sample variance 117.5.
HAND_SHARPE = 4 / math.sqrt(117.5)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("net_pnl", 20.0),
        ("expectancy", 4.0),
        ("sharpe", HAND_SHARPE),
        ("sqn", math.sqrt(5) * HAND_SHARPE),
        ("profit_factor", 3.0),
        ("win_rate", 0.4),
        ("max_drawdown", 5.0),
    ],
)
def test_each_objective_gives_the_hand_computed_figure(name: str, expected: float) -> None:
    assert objective(name)(HAND) == pytest.approx(expected, rel=1e-12)
    assert objective(name)([D(str(p)) for p in HAND]) == pytest.approx(expected, rel=1e-12)


def test_the_registry_lists_every_objective_in_a_fixed_order() -> None:
    assert list(OBJECTIVES) == [
        "net_pnl",
        "expectancy",
        "sharpe",
        "sqn",
        "profit_factor",
        "win_rate",
        "max_drawdown",
    ]
    assert all(OBJECTIVES[name].name == name for name in OBJECTIVES)


def test_drawdown_counts_a_fall_from_the_starting_zero() -> None:
    assert objective("max_drawdown")([-5.0, -5.0, 10.0]) == 10.0
    assert objective("max_drawdown")([D(-5), D(-5), D(10)]) == 10.0


def test_decimal_money_is_summed_exactly_before_rounding_once_to_float() -> None:
    pnls = [D("0.1")] * 3
    assert 0.1 + 0.1 + 0.1 != 0.3  # what a float sum would give
    assert objective("net_pnl")(pnls) == 0.3
    assert objective("expectancy")([D("-43.05"), D(0)]) == -21.525


@pytest.mark.parametrize(
    ("pnls", "expected"),
    [
        (
            [],
            {
                "net_pnl": 0.0,
                "expectancy": None,
                "sharpe": None,
                "sqn": None,
                "profit_factor": None,
                "win_rate": None,
                "max_drawdown": 0.0,
            },
        ),
        (
            [7.0],
            {
                "net_pnl": 7.0,
                "expectancy": 7.0,
                "sharpe": None,
                "sqn": None,
                "profit_factor": None,
                "win_rate": 1.0,
                "max_drawdown": 0.0,
            },
        ),
        (
            [3.0, 3.0, 3.0],
            {
                "net_pnl": 9.0,
                "expectancy": 3.0,
                "sharpe": None,
                "sqn": None,
                "profit_factor": None,
                "win_rate": 1.0,
                "max_drawdown": 0.0,
            },
        ),
        (
            [-1.0, -1.0],
            {
                "net_pnl": -2.0,
                "expectancy": -1.0,
                "sharpe": None,
                "sqn": None,
                "profit_factor": 0.0,
                "win_rate": 0.0,
                "max_drawdown": 2.0,
            },
        ),
    ],
)
def test_undefined_figures_are_none_never_nan(
    pnls: list[float], expected: dict[str, float | None]
) -> None:
    assert {name: o(pnls) for name, o in OBJECTIVES.items()} == expected
    assert {name: o([D(str(p)) for p in pnls]) for name, o in OBJECTIVES.items()} == expected


def test_the_sharpe_of_equal_pnl_is_undefined_even_with_float_noise_in_the_deviation() -> None:
    # 0.1 + 0.2 style values: np.std of equal floats can come out as a tiny non-zero number.
    pnls = [0.30000000000000004] * 7
    assert objective("sharpe")(pnls) is None


def test_the_vectorised_form_agrees_with_the_one_list_form() -> None:
    rng = np.random.default_rng(7)
    rows = np.round(rng.normal(2.0, 20.0, size=(50, 40)) / 1.25) * 1.25
    rows[3] = 5.0  # equal P&L: sharpe undefined
    rows[4] = np.abs(rows[4])  # no losses: profit factor undefined
    for o in OBJECTIVES.values():
        batch = o.batch(rows)
        assert batch.shape == (50,)
        for i, row in enumerate(rows):
            single = o(row)
            if single is None:
                assert math.isnan(batch[i]), (o.name, i)
            else:
                assert batch[i] == pytest.approx(single, rel=1e-12, abs=1e-12), (o.name, i)


def test_a_non_finite_pnl_is_refused_naming_the_trade() -> None:
    with pytest.raises(ValueError, match=r"trade 3 is nan"):
        as_pnl_array([1.0, 2.0, float("nan")])
    with pytest.raises(ValueError, match=r"trade 1 is inf"):
        objective("net_pnl")([float("inf")])
    with pytest.raises(ValueError, match=r"2-D"):
        objective("net_pnl").batch(np.zeros(3))


def test_an_unknown_objective_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown objective 'pnl': choose one of net_pnl, "):
        objective("pnl")


def test_ranking_puts_better_figures_higher_whatever_the_direction() -> None:
    net, drawdown = objective("net_pnl"), objective("max_drawdown")
    assert net.rank_key(10.0) > net.rank_key(5.0) > net.rank_key(None)
    assert drawdown.rank_key(5.0) > drawdown.rank_key(10.0) > drawdown.rank_key(None)
    assert net.beats_no_edge(0.01) is True
    assert net.beats_no_edge(0.0) is False
    assert objective("profit_factor").beats_no_edge(1.0) is False
    assert drawdown.beats_no_edge(1.0) is None
