"""Bracket prices: stop rounded toward the entry, target to the nearest tick, both >= one tick."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.bracket import (
    BracketPrices,
    bracket_prices,
    stop_distance_ticks,
    target_distance_ticks,
)
from domain.errors import DomainError
from domain.values import MES, Instrument, OffTickError, Side

D = Decimal

# side, qty, entry, stop $, target $, expected stop, expected target
BRACKETS = [
    ("long 1, exact", Side.LONG, 1, "5000", "50", "75", "4990", "5015"),
    ("short 1, exact", Side.SHORT, 1, "5000", "50", "75", "5010", "4985"),
    # $50 on 3 contracts = 3.333 points = 13.33 ticks: the stop comes in to 13 ticks (3.25 points).
    ("long 3, stop inside", Side.LONG, 3, "5000", "50", "75", "4996.75", "5005"),
    ("short 3, stop inside", Side.SHORT, 3, "5000", "50", "75", "5003.25", "4995"),
    # $80 on 3 = 21.33 ticks: target to the nearest, 21 ticks = 5.25 points.
    ("long 3, target nearest down", Side.LONG, 3, "5000", "50", "80", "4996.75", "5005.25"),
    # $82 on 3 = 21.87 ticks: nearest is 22 (5.5 points), although the stop would floor to 21.
    ("long 3, target nearest up", Side.LONG, 3, "5000", "82", "82", "4994.75", "5005.50"),
    ("short 3, target nearest up", Side.SHORT, 3, "5000", "82", "82", "5005.25", "4994.50"),
    # 20.5 ticks on 3 ($76.875): the stop takes 20, the target rounds the half away to 21.
    ("long 3, half tick", Side.LONG, 3, "5000", "76.875", "76.875", "4995", "5005.25"),
    ("short 3, half tick", Side.SHORT, 3, "5000", "76.875", "76.875", "5005", "4994.75"),
    # 2.5 ticks on 1 ($3.125).
    ("long 1, half tick", Side.LONG, 1, "5000.25", "3.125", "3.125", "4999.75", "5001"),
    ("short 1, half tick", Side.SHORT, 1, "5000.25", "3.125", "3.125", "5000.75", "4999.50"),
    # Exactly one tick is allowed for both legs.
    ("long 1, one tick", Side.LONG, 1, "5000", "1.25", "1.25", "4999.75", "5000.25"),
    ("short 3, one tick", Side.SHORT, 3, "5000", "3.75", "3.75", "5000.25", "4999.75"),
    # A hair under two ticks: the stop takes one, the target two.
    ("long 1, just under 2 ticks", Side.LONG, 1, "5000", "2.49", "2.49", "4999.75", "5000.50"),
]


@pytest.mark.parametrize(
    ("side", "qty", "entry", "stop", "target", "stop_price", "target_price"),
    [c[1:] for c in BRACKETS],
    ids=[c[0] for c in BRACKETS],
)
def test_bracket_prices_round_the_stop_toward_the_entry_and_the_target_to_nearest(
    side: Side,
    qty: int,
    entry: str,
    stop: str,
    target: str,
    stop_price: str,
    target_price: str,
) -> None:
    prices = bracket_prices(MES, side, qty, D(entry), D(stop), D(target))
    assert prices == BracketPrices(D(stop_price), D(target_price))
    assert prices.stop is not None
    assert prices.target is not None
    # Both on the grid, the stop on the losing side and the target on the winning side.
    MES.ticks(prices.stop)
    MES.ticks(prices.target)
    assert (D(entry) - prices.stop) * side.sign > 0
    assert (prices.target - D(entry)) * side.sign > 0
    # Never more risk than asked.
    assert abs(D(entry) - prices.stop) * MES.multiplier * qty <= D(stop)


@pytest.mark.parametrize("side", [Side.LONG, Side.SHORT])
def test_a_none_leg_is_left_out(side: Side) -> None:
    assert bracket_prices(MES, side, 1, D(5000), None, None) == BracketPrices(None, None)
    only_stop = bracket_prices(MES, side, 1, D(5000), D(50), None)
    assert only_stop == BracketPrices(D(5000) - side.sign * D(10), None)
    only_target = bracket_prices(MES, side, 1, D(5000), None, D(75))
    assert only_target == BracketPrices(None, D(5000) + side.sign * D(15))


def test_a_none_leg_does_not_hide_an_off_grid_entry() -> None:
    with pytest.raises(OffTickError):
        bracket_prices(MES, Side.LONG, 1, D("5000.10"), None, None)


@pytest.mark.parametrize("entry", ["5000.10", "5000.125", "4999.99"])
def test_an_off_grid_entry_is_refused(entry: str) -> None:
    with pytest.raises(OffTickError, match=f"price {entry} is not on the 0.25 tick grid"):
        bracket_prices(MES, Side.SHORT, 1, D(entry), D(50), D(75))


UNDER_ONE_TICK = [
    # leg, qty, dollars, message
    ("stop", 1, "1.24", r"stop_loss_dollars 1.24 is less than one tick \(1.25 for 1 contract"),
    ("stop", 3, "3.74", r"stop_loss_dollars 3.74 is less than one tick \(3.75 for 3 contract"),
    ("stop", 1, "0", "stop_loss_dollars 0 is less than one tick"),
    ("stop", 1, "-50", "stop_loss_dollars -50 is less than one tick"),
    ("target", 1, "0.62", r"take_profit_dollars 0.62 rounds to less than one tick \(1.25 for 1"),
    ("target", 3, "1.87", r"take_profit_dollars 1.87 rounds to less than one tick \(3.75 for 3"),
    ("target", 1, "0", "take_profit_dollars 0 rounds to less than one tick"),
    ("target", 2, "-10", "take_profit_dollars -10 rounds to less than one tick"),
]


@pytest.mark.parametrize(("leg", "qty", "dollars", "message"), UNDER_ONE_TICK)
def test_a_leg_under_one_tick_is_a_configuration_error(
    leg: str, qty: int, dollars: str, message: str
) -> None:
    stop = D(dollars) if leg == "stop" else None
    target = D(dollars) if leg == "target" else None
    with pytest.raises(DomainError, match=message):
        bracket_prices(MES, Side.LONG, qty, D(5000), stop, target)


def test_half_a_tick_of_target_rounds_up_to_one_tick() -> None:
    # $0.625 on one contract is exactly half a tick: half rounds away from the entry.
    assert target_distance_ticks(MES, D("0.625"), 1) == 1
    with pytest.raises(DomainError):
        stop_distance_ticks(MES, D("0.625"), 1)


@pytest.mark.parametrize("qty", [0, -1])
def test_a_non_positive_quantity_is_refused(qty: int) -> None:
    with pytest.raises(DomainError, match="quantity must be positive"):
        bracket_prices(MES, Side.LONG, qty, D(5000), D(50), D(75))


def test_an_instrument_with_another_tick_uses_its_own_grid() -> None:
    zn = Instrument("ZN", D("0.015625"), D(1000))
    # $100 on 1 = 0.1 points = 6.4 ticks: stop 6 ticks, target 6 ticks.
    prices = bracket_prices(zn, Side.LONG, 1, D("110.5"), D(100), D(100))
    assert prices == BracketPrices(D("110.5") - 6 * D("0.015625"), D("110.5") + 6 * D("0.015625"))


cents = st.integers(min_value=125, max_value=500_000).map(lambda c: D(c) / 100)


@given(cents, st.integers(min_value=1, max_value=10))
def test_the_stop_is_the_most_ticks_that_risk_no_more_than_asked(
    dollars: Decimal, qty: int
) -> None:
    tick_dollars = MES.tick_value * qty
    if dollars < tick_dollars:
        with pytest.raises(DomainError):
            stop_distance_ticks(MES, dollars, qty)
        return
    ticks = stop_distance_ticks(MES, dollars, qty)
    assert ticks * tick_dollars <= dollars < (ticks + 1) * tick_dollars


@given(cents, st.integers(min_value=1, max_value=10))
def test_the_target_is_the_nearest_tick_with_halves_away_from_the_entry(
    dollars: Decimal, qty: int
) -> None:
    exact = Fraction(dollars) / Fraction(MES.tick_value * qty)  # ticks, exactly
    nearest = int(exact + Fraction(1, 2))  # floor(x + 1/2): halves go up, i.e. away from entry
    if nearest < 1:
        with pytest.raises(DomainError):
            target_distance_ticks(MES, dollars, qty)
        return
    ticks = target_distance_ticks(MES, dollars, qty)
    assert ticks == nearest
    assert abs(ticks - exact) <= Fraction(1, 2)


@given(
    st.sampled_from([Side.LONG, Side.SHORT]),
    st.integers(min_value=1, max_value=5),
    st.integers(min_value=16_000, max_value=24_000),
    cents,
    cents,
)
def test_bracket_legs_sit_on_the_grid_on_the_right_side_of_the_entry(
    side: Side, qty: int, entry_ticks: int, stop: Decimal, target: Decimal
) -> None:
    entry = MES.price(entry_ticks)
    try:
        prices = bracket_prices(MES, side, qty, entry, stop, target)
    except DomainError:
        assert min(stop, target) < MES.tick_value * qty
        return
    assert prices.stop is not None
    assert prices.target is not None
    stop_ticks = (entry_ticks - MES.ticks(prices.stop)) * side.sign
    target_ticks = (MES.ticks(prices.target) - entry_ticks) * side.sign
    assert stop_ticks == stop_distance_ticks(MES, stop, qty) >= 1
    assert target_ticks == target_distance_ticks(MES, target, qty) >= 1
