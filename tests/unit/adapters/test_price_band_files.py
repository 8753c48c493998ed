"""A bar file's price band decisions, made with array operations, are the guard's bar by bar."""

from __future__ import annotations

import random

import numpy as np
import pytest

from adapters.simulated.market_data import band_refusals
from domain.price_band import PRICE_JUMP, PRICE_RANGE, PriceBand, PriceGuard, seed_reference

BAND = PriceBand(min_price=100.0, max_price=30000.0, max_jump=500.0)


@pytest.mark.parametrize("seed", range(20))
def test_the_file_reader_decides_as_the_guard_does_bar_by_bar(seed: int) -> None:
    rng = random.Random(seed)
    n = 400
    closes, price = [], 1700.0
    for _ in range(n):
        price += rng.choice([-1.0, 0.0, 1.0]) * 0.25
        roll = rng.random()
        if roll < 0.03:
            closes.append(rng.choice([99999.75, 50.0, price + 800.0, price - 900.0]))
        elif roll < 0.04:
            price += rng.choice([-1.0, 1.0]) * 700.0  # a real gap
            closes.append(price)
        else:
            closes.append(price)
    already = np.array([rng.random() < 0.02 for _ in range(n)])
    arr = np.array(closes)
    out_of_range, jump = band_refusals(BAND, arr, arr, arr, already)

    guard = PriceGuard(
        BAND,
        seed_reference(
            BAND,
            [c for c, bad in zip(closes, already, strict=True) if not bad and 100 <= c <= 30000],
        ),
    )
    expected_range, expected_jump = np.zeros(n, bool), np.zeros(n, bool)
    for i, c in enumerate(closes):
        if already[i]:
            continue
        reason = guard.check(c, c, c)
        expected_range[i] = reason == PRICE_RANGE
        expected_jump[i] = reason == PRICE_JUMP
    assert out_of_range.tolist() == expected_range.tolist()
    assert jump.tolist() == expected_jump.tolist()
