"""The price sanity band: absurd prices are refused, a bad first row never becomes the reference,
and a real move beyond the band is followed after a few bars that agree."""

from __future__ import annotations

import pytest

from domain.errors import DomainError
from domain.price_band import PRICE_JUMP, PRICE_RANGE, PriceBand, PriceGuard, seed_reference

BAND = PriceBand(min_price=100.0, max_price=30000.0, max_jump=500.0)


def _run(closes: list[float], band: PriceBand = BAND) -> list[str | None]:
    guard = PriceGuard(band, seed_reference(band, closes))
    return [guard.check(c, c, c) for c in closes]


def test_a_spike_is_refused_and_the_next_good_bar_is_accepted() -> None:
    assert _run([1700.0, 1700.25, 99999.75, 1700.5]) == [None, None, PRICE_RANGE, None]
    assert _run([1700.0, 1700.25, 2900.0, 1700.5]) == [None, None, PRICE_JUMP, None]


def test_a_bad_first_row_does_not_become_the_reference() -> None:
    closes = [2900.0, *([1700.0] * 10)]
    assert _run(closes) == [PRICE_JUMP, *([None] * 10)]


def test_a_real_move_beyond_the_band_is_followed_after_three_bars_that_agree() -> None:
    assert _run([1700.0] * 5 + [2300.0, 2300.25, 2300.5, 2300.75]) == [None] * 5 + [
        PRICE_JUMP,
        PRICE_JUMP,
        PRICE_JUMP,
        None,
    ]


def test_a_band_that_cannot_hold_is_refused() -> None:
    with pytest.raises(DomainError):
        PriceBand(min_price=10.0, max_price=5.0, max_jump=1.0)
    with pytest.raises(DomainError):
        PriceBand(min_price=1.0, max_price=5.0, max_jump=0.0)
