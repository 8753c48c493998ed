"""Exact rolling z-score in Rust (see ``_native.pyi`` for the API)."""

from native_core._native import RollingZScore, __version__

__all__ = ["RollingZScore", "__version__"]
