"""Instrument: exact tick conversion, off-grid refusal, prices, points and tick value."""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.values import MES, Action, Instrument, OffTickError, Side

ES = Instrument(symbol="ES", tick_size=Decimal("0.25"), multiplier=Decimal(50))
ZN = Instrument(symbol="ZN", tick_size=Decimal("0.015625"), multiplier=Decimal(1000))
CENT = Instrument(symbol="X", tick_size=Decimal("0.01"), multiplier=Decimal(100))

ON_GRID = [
    (MES, Decimal("5000"), 20000),
    (MES, Decimal("5000.25"), 20001),
    (MES, Decimal("5000.50"), 20002),
    (MES, Decimal("5000.750000"), 20003),
    (MES, Decimal("0"), 0),
    (MES, Decimal("0.25"), 1),
    (MES, Decimal("-0.25"), -1),
    (MES, Decimal("-1.5"), -6),
    (MES, 5000.25, 20001),
    (MES, 4999.75, 19999),
    (MES, 1676.0, 6704),
    (MES, 0.0, 0),
    (MES, -0.0, 0),
    (ZN, Decimal("110.015625"), 7041),
    (ZN, 110.015625, 7041),
    (CENT, Decimal("167.41"), 16741),
]


@pytest.mark.parametrize(("instrument", "price", "ticks"), ON_GRID)
def test_a_price_on_the_grid_converts_to_whole_ticks_exactly(
    instrument: Instrument, price: Decimal | float, ticks: int
) -> None:
    assert instrument.ticks(price) == ticks
    assert type(instrument.ticks(price)) is int
    assert instrument.price(ticks) == Decimal(price)


OFF_GRID: list[tuple[Instrument, Decimal | float]] = [
    (MES, Decimal("5000.1")),
    (MES, Decimal("5000.125")),
    (MES, Decimal("5000.2500001")),
    (MES, Decimal("5000.2500000000000000000000000000000001")),
    (MES, Decimal("-0.3")),
    (MES, 5000.1),
    (MES, 5000.125),
    (MES, 0.1),
    (MES, 1e-300),
    # 167.41 is not a binary fraction: the float is a hair off the cent grid, and must not be rounded.
    (CENT, 167.41),
    (MES, math.nan),
    (MES, math.inf),
    (MES, -math.inf),
    (MES, Decimal("NaN")),
    (MES, Decimal("sNaN")),
    (MES, Decimal("Infinity")),
    (MES, Decimal("-Infinity")),
    (MES, Decimal("1E+40")),
]


@pytest.mark.parametrize(("instrument", "price"), OFF_GRID, ids=repr)
def test_a_price_off_the_grid_or_not_finite_is_refused_with_off_tick_error(
    instrument: Instrument, price: Decimal | float
) -> None:
    with pytest.raises(OffTickError, match=f"{instrument.symbol}: price .* is not on the"):
        instrument.ticks(price)


def test_off_tick_error_is_a_domain_error() -> None:
    assert issubclass(OffTickError, DomainError)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_ticks_and_price_are_inverse_for_decimal_and_float(n: int) -> None:
    price = MES.price(n)
    assert MES.ticks(price) == n
    assert MES.ticks(float(price)) == n  # quarters are exact binary fractions


@given(
    st.integers(min_value=-(10**9), max_value=10**9),
    st.integers(min_value=1, max_value=99),
)
def test_any_price_between_two_ticks_is_refused(n: int, hundredths: int) -> None:
    # 0.0025 .. 0.2475 past a tick: never on the grid.
    price = MES.price(n) + Decimal(hundredths) / 400
    with pytest.raises(OffTickError):
        MES.ticks(price)


def test_price_is_tick_size_times_ticks() -> None:
    assert MES.price(0) == 0
    assert MES.price(1) == Decimal("0.25")
    assert MES.price(20001) == Decimal("5000.25")
    assert MES.price(-3) == Decimal("-0.75")
    assert ZN.price(7041) == Decimal("110.015625")


TICK_VALUES = [(MES, Decimal("1.25")), (ES, Decimal("12.5")), (ZN, Decimal("15.625"))]


@pytest.mark.parametrize(("instrument", "value"), TICK_VALUES, ids=str)
def test_tick_value_is_tick_size_times_multiplier(instrument: Instrument, value: Decimal) -> None:
    assert instrument.tick_value == value


DOLLARS_TO_POINTS = [
    (Decimal(50), 1, Decimal(10)),
    (Decimal(75), 1, Decimal(15)),
    (Decimal(50), 3, Decimal(50) / Decimal(15)),
    (Decimal("1.25"), 1, Decimal("0.25")),
    (Decimal("3.75"), 3, Decimal("0.25")),
    (Decimal(0), 2, Decimal(0)),
]


@pytest.mark.parametrize(("dollars", "qty", "points"), DOLLARS_TO_POINTS)
def test_dollars_to_points_divides_by_multiplier_and_quantity(
    dollars: Decimal, qty: int, points: Decimal
) -> None:
    assert MES.dollars_to_points(dollars, qty) == points


@pytest.mark.parametrize("qty", [0, -1])
def test_dollars_to_points_refuses_a_non_positive_quantity(qty: int) -> None:
    with pytest.raises(DomainError, match=f"quantity must be positive, got {qty}"):
        MES.dollars_to_points(Decimal(50), qty)


POINTS_TO_TICKS = [
    (Decimal("2.5"), ROUND_FLOOR, 10),
    (Decimal("2.6"), ROUND_FLOOR, 10),
    (Decimal("2.6"), ROUND_CEILING, 11),
    (Decimal("2.625"), ROUND_HALF_UP, 11),
    (Decimal("2.62"), ROUND_HALF_UP, 10),
    (Decimal("-2.625"), ROUND_HALF_UP, -11),
]


@pytest.mark.parametrize(("points", "rounding", "ticks"), POINTS_TO_TICKS)
def test_points_to_ticks_rounds_with_the_given_mode(
    points: Decimal, rounding: str, ticks: int
) -> None:
    assert MES.points_to_ticks(points, rounding) == ticks


@pytest.mark.parametrize(
    ("tick", "multiplier"), [(Decimal(0), Decimal(5)), (Decimal("0.25"), Decimal(0)), (-1, 5)]
)
def test_an_instrument_needs_a_positive_tick_and_multiplier(
    tick: Decimal, multiplier: Decimal
) -> None:
    with pytest.raises(DomainError, match="BAD: tick size and multiplier must be positive"):
        Instrument(symbol="BAD", tick_size=Decimal(tick), multiplier=Decimal(multiplier))


def test_mes_is_a_quarter_point_tick_at_five_dollars_a_point() -> None:
    assert Instrument("MES", Decimal("0.25"), Decimal(5)) == MES


SIDES = [
    (Side.LONG, 1, Side.SHORT, Action.BUY, Action.SELL),
    (Side.SHORT, -1, Side.LONG, Action.SELL, Action.BUY),
]


@pytest.mark.parametrize(("side", "sign", "opposite", "entry", "exit_"), SIDES)
def test_side_sign_opposite_and_actions(
    side: Side, sign: int, opposite: Side, entry: Action, exit_: Action
) -> None:
    assert side.sign == sign
    assert side.opposite is opposite
    assert side.entry_action is entry
    assert side.exit_action is exit_
    assert entry.sign == sign
    assert exit_.sign == -sign
