"""The price sanity band: a bar whose prices no market could have traded is refused, not traded on.

Two rules, the first that applies names the refusal:

* ``price_range``: a price outside the instrument's absolute range ``[min_price, max_price]``;
* ``price_jump``: a price more than ``max_jump`` (index points) from the reference, which is the close
  of the last bar accepted.

The reference is *seeded* from the median close of the first bars (:func:`seed_reference`), so a bad
first row cannot become the reference and make every good row after it look like the jump. A real
move beyond the band (a gap over a weekend) is not refused forever: after ``reanchor`` refused bars in
a row that agree with each other (each within ``max_jump`` of the first), the last of them becomes the
reference, and the bars after it are accepted again; the bars of the gap itself stay refused.

Pure: floats in, a reason (or None) out; the guard keeps its reference between calls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from domain.errors import DomainError

PRICE_RANGE = "price_range"
PRICE_JUMP = "price_jump"
SEED_BARS = 25
"""How many first closes the reference is seeded from (their median)."""


@dataclass(frozen=True, slots=True)
class PriceBand:
    """What a sane price is: within ``[min_price, max_price]`` and ``max_jump`` points of the last
    accepted close; ``reanchor`` refused bars in a row that agree move the reference to them."""

    min_price: float
    max_price: float
    max_jump: float
    reanchor: int = 3

    def __post_init__(self) -> None:
        if not (0 < self.min_price < self.max_price < math.inf):
            raise DomainError(
                f"price band: need 0 < min_price < max_price, got {self.min_price}..{self.max_price}"
            )
        if not (0 < self.max_jump < math.inf):
            raise DomainError(f"price band: max_jump must be positive, got {self.max_jump}")
        if self.reanchor < 1:
            raise DomainError(f"price band: reanchor must be >= 1, got {self.reanchor}")

    def out_of_range(self, low: float, high: float) -> bool:
        return low < self.min_price or high > self.max_price


def seed_reference(band: PriceBand, closes: Sequence[float]) -> float | None:
    """The median of the first :data:`SEED_BARS` closes inside the absolute range (None: none)."""
    usable = sorted(c for c in closes[:SEED_BARS] if band.min_price <= c <= band.max_price)
    if not usable:
        return None
    return usable[(len(usable) - 1) // 2]


class PriceGuard:
    """Checks bars one at a time against a :class:`PriceBand` and keeps the reference."""

    __slots__ = ("_band", "_streak", "_streak_anchor", "reference")

    def __init__(self, band: PriceBand, reference: float | None = None) -> None:
        self._band = band
        self.reference = reference
        self._streak = 0
        self._streak_anchor = 0.0

    @property
    def band(self) -> PriceBand:
        return self._band

    def check(self, low: float, high: float, close: float) -> str | None:
        """The reason this bar is refused, or None (then its close is the new reference)."""
        band = self._band
        if band.out_of_range(low, high):
            return PRICE_RANGE
        ref = self.reference
        if ref is None or (high - ref <= band.max_jump and ref - low <= band.max_jump):
            self.accept(close)
            return None
        # Refused; bars that keep agreeing with each other beyond the band are a real move.
        if self._streak and abs(close - self._streak_anchor) <= band.max_jump:
            self._streak += 1
        else:
            self._streak, self._streak_anchor = 1, close
        if self._streak >= band.reanchor:
            self.reference = close
            self._streak = 0
        return PRICE_JUMP

    def accept(self, close: float) -> None:
        """``close`` is a bar accepted without a check (one known to be within the band)."""
        self.reference = close
        self._streak = 0
