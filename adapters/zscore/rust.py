"""The ``ZScoreEngine`` port over the Rust ``native_core`` engine (the only importer of it)."""

from __future__ import annotations

from domain.zscore import ZScore
from native_core import RollingZScore


class RustZScoreEngine:
    """Exact rolling z-score in Rust; each defined update becomes a domain ``ZScore``."""

    __slots__ = ("_core", "_update_exact")

    def __init__(self, window: int) -> None:
        self._core = RollingZScore(window)
        # Bound once: this runs on every bar.
        self._update_exact = self._core.update_exact

    def update(self, close: float) -> ZScore | None:
        r = self._update_exact(close)
        return None if r is None else ZScore(r[1], r[2], r[0])

    def reset(self) -> None:
        self._core.reset()
