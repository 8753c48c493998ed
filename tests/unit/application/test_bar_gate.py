"""The live feed's gate: the price band with a seeded reference, and bars from the future."""

from __future__ import annotations

from datetime import UTC, datetime

from application.bar_gate import FUTURE, BarGate
from domain.bar import Bar
from domain.price_band import PRICE_JUMP, PriceBand

BAND = PriceBand(min_price=100.0, max_price=30000.0, max_jump=500.0)
T = int(datetime(2026, 11, 24, 15, tzinfo=UTC).timestamp())


def _bar(epoch: int, price: float) -> Bar:
    return Bar.at_epoch(epoch, 5, price, price, price, price, 1)


def test_a_gate_seeded_from_the_checkpoint_checks_the_first_live_bar() -> None:
    gate = BarGate(BAND)
    gate.seed([5000.0, 5000.25, 4999.75])
    assert gate.refusal(_bar(T, 2500.0), T + 5) == PRICE_JUMP
    assert gate.refusal(_bar(T + 5, 5000.5), T + 10) is None
    assert gate.refused == {PRICE_JUMP: 1}


def test_a_seed_never_replaces_a_reference_already_held() -> None:
    gate = BarGate(BAND)
    gate.seed([5000.0])
    gate.seed([9000.0])
    assert gate.reference == 5000.0


def test_a_bar_ending_beyond_the_skew_is_from_the_future() -> None:
    gate = BarGate(None, max_skew_s=5)
    assert gate.refusal(_bar(T, 5000.0), T + 5 - 5) is None  # ends exactly 5 s ahead: allowed
    assert gate.refusal(_bar(T, 5000.0), T - 1) == FUTURE
    assert gate.refused == {FUTURE: 1}
