"""Exact rolling z-score in Rust (see ``_native.pyi`` for the API)."""

from native_core._native import __version__

__all__ = ["__version__"]
