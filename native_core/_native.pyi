"""Exact rolling z-score over the last ``window`` values (the compiled half of ``native_core``).

``z = (x - mean) / std`` of the newest value ``x`` against the window that includes it (population
std). With ``n`` values and ``S``, ``Q`` their sum and sum of squares scaled by a common power of
two to integers, ``z = num / sqrt(var)`` exactly, where ``num = n*x - S`` and ``var = n*Q - S**2``.
"""

from collections.abc import Sequence
from typing import SupportsIndex, final

import numpy as np
import numpy.typing as npt

__all__ = ["RollingZScore", "__version__"]

__version__: str

@final
class RollingZScore:
    """Exact rolling z-score; undefined (None/NaN) while warming up or when the variance is 0."""

    def __new__(
        cls, window: SupportsIndex, min_periods: SupportsIndex | None = None
    ) -> RollingZScore:
        """``1 <= min_periods <= window <= 2**32`` (``min_periods`` defaults to ``window``).

        Raises ValueError when out of range, TypeError when not an integer.
        """

    def update(self, x: float) -> float | None:
        """Push ``x``; its z-score, or None. ValueError on NaN or infinity (state unchanged)."""

    def update_exact(self, x: float) -> tuple[float, int, int] | None:
        """Like ``update``, as ``(value, num, var)`` with ``z = num / sqrt(var)`` exactly.

        ``|value - z| <= 4 * 2**-53 * |z|`` (unless ``value`` is subnormal).
        """

    def update_many(
        self, xs: npt.NDArray[np.floating] | npt.NDArray[np.integer] | Sequence[float]
    ) -> npt.NDArray[np.float64]:
        """Push every value in order; the z-scores (NaN where undefined), bit-identical to ``update``.

        A contiguous 1-D float64 array is read without a copy. All values are checked first: on
        NaN or infinity, ValueError names the first bad index and the state is unchanged.
        """

    def reset(self) -> None:
        """Forget every value."""

    @property
    def window(self) -> int: ...
    @property
    def min_periods(self) -> int: ...
    @property
    def count(self) -> int:
        """Values in the window (at most ``window``)."""

    @property
    def ready(self) -> bool:
        """``count >= min_periods``."""

    @property
    def mean(self) -> float | None:
        """Mean of the window, None until ``ready``."""

    @property
    def std(self) -> float | None:
        """Population standard deviation of the window, None until ``ready``."""
