"""The gate a live feed's bars pass before the engine sees them: prices inside the sanity band
(:mod:`domain.price_band`) and a start no later than now plus a small clock skew.

A bar refused here is counted by reason (``price_range``, ``price_jump``, ``future``), like the rows a
replay refuses, and never reaches the aggregator, the z-score or the simulated fills.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.bar import Bar
from domain.price_band import PriceBand, PriceGuard, seed_reference

FUTURE = "future"
DEFAULT_MAX_SKEW_S = 5
"""How far a bar may end after our clock's now before it counts as stamped in the future."""


class BarGate:
    """Admits or refuses bars one at a time, keeping the band's reference between them."""

    def __init__(self, band: PriceBand | None, *, max_skew_s: int = DEFAULT_MAX_SKEW_S) -> None:
        self._guard = PriceGuard(band) if band is not None else None
        self._max_skew_s = max_skew_s
        self.refused: dict[str, int] = {}

    @property
    def reference(self) -> float | None:
        return self._guard.reference if self._guard is not None else None

    def seed(self, closes: Sequence[float]) -> None:
        """Seed the reference from the first closes of a batch (their median), unless one is held."""
        guard = self._guard
        if guard is not None and guard.reference is None:
            guard.reference = seed_reference(guard.band, closes)

    def refusal(self, bar: Bar, now_epoch: int | None) -> str | None:
        """Why ``bar`` is refused (counted), or None: it may go on. ``now_epoch`` None: no clock
        to compare with (a recording)."""
        reason: str | None = None
        if now_epoch is not None and bar.end_epoch > now_epoch + self._max_skew_s:
            reason = FUTURE
        elif self._guard is not None:
            reason = self._guard.check(bar.low, bar.high, bar.close)
        if reason is not None:
            self.refused[reason] = self.refused.get(reason, 0) + 1
        return reason
