"""The ``ZScoreEngine`` port over the Rust ``native_core`` engine (the only importer of it)."""

from __future__ import annotations

from adapters.zscore.engine import CoreZScoreEngine
from native_core import RollingZScore


class RustZScoreEngine(CoreZScoreEngine):
    """Exact rolling z-score in Rust."""

    __slots__ = ()

    def __init__(self, window: int) -> None:
        super().__init__(RollingZScore, window)
