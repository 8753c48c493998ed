"""The pure-Python z-score: the oracle the Rust engine is tested against, and a usable engine.

Every finite float is ``p / 2**j`` exactly (``float.as_integer_ratio``). The window's values are
scaled by ``2**k`` (``k`` the most fractional bits seen since the last reset) into Python ints, and
their sum ``S`` and sum of squares ``Q`` are kept as running ints, so with ``n`` values and the
newest ``x``::

    z = num / sqrt(var)      num = n*x*2**k - S,   var = n*Q - S**2

exactly, in O(1) per update. Nothing here can round or overflow until the single float conversion
of the result.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from collections.abc import Sequence
from typing import SupportsIndex

import numpy as np
import numpy.typing as npt

from adapters.zscore.engine import CoreZScoreEngine

MAX_WINDOW = 1 << 32
"""Largest window, the same as the Rust engine's."""

FloatInput = npt.NDArray[np.floating] | npt.NDArray[np.integer] | Sequence[float]


def _as_float(x: float) -> float:
    if type(x) is float:
        return x
    if isinstance(x, str | bytes | bytearray):
        raise TypeError(f"z-score input must be a number, got {type(x).__name__}")
    return float(x)


def _count(value: SupportsIndex, name: str, upper: int) -> int:
    v = operator.index(value)
    if not 1 <= v <= upper:
        raise ValueError(f"{name} must be between 1 and {upper}, got {v}")
    return v


def z_value(num: int, var: int) -> float:
    """``num / sqrt(var)`` as a float: the square root of the correctly rounded ``num**2 / var``.

    Scaled by an even power of two first when ``z**2`` would be subnormal, so tiny z keep their
    precision; ``|z| <= sqrt(n - 1)`` so nothing overflows.
    """
    if num == 0:
        return 0.0
    num2 = num * num
    shift = max(0, var.bit_length() - num2.bit_length() + 64)
    shift += shift & 1
    z = math.sqrt((num2 << shift) / var)  # int / int is correctly rounded
    if shift:
        z = math.ldexp(z, -(shift // 2))
    return z if num > 0 else -z


class RollingZScore:
    """Exact rolling z-score with the same API and errors as ``native_core.RollingZScore``."""

    __slots__ = ("_k", "_min_periods", "_q", "_s", "_values", "_window")

    def __init__(self, window: SupportsIndex, min_periods: SupportsIndex | None = None) -> None:
        self._window = _count(window, "window", MAX_WINDOW)
        self._min_periods = (
            self._window
            if min_periods is None
            else _count(min_periods, "min_periods", self._window)
        )
        # (p, j) with value p / 2**j, oldest first.
        self._values: deque[tuple[int, int]] = deque()
        self._k = 0
        self._s = 0
        self._q = 0

    def _push(self, x: float) -> tuple[int, int] | None:
        """Push finite ``x``; ``(num, var)``, or None when undefined."""
        p, d = x.as_integer_ratio()
        j = d.bit_length() - 1
        k = self._k
        if j > k:
            self._s <<= j - k
            self._q <<= 2 * (j - k)
            self._k = k = j
        values = self._values
        if len(values) == self._window:
            op, oj = values.popleft()
            old = op << (k - oj)
            self._s -= old
            self._q -= old * old
        values.append((p, j))
        xs = p << (k - j)
        self._s += xs
        self._q += xs * xs
        n = len(values)
        if n < self._min_periods:
            return None
        s = self._s
        var = n * self._q - s * s
        if var == 0:
            return None
        return n * xs - s, var

    def update(self, x: float) -> float | None:
        """Push ``x``; its z-score, or None. ValueError on NaN or infinity (state unchanged)."""
        x = _as_float(x)
        if not math.isfinite(x):
            raise ValueError(f"z-score input must be finite, got {x}; state unchanged")
        r = self._push(x)
        return None if r is None else z_value(*r)

    def update_exact(self, x: float) -> tuple[float, int, int] | None:
        """Like ``update``, as ``(value, num, var)`` with ``z = num / sqrt(var)`` exactly."""
        x = _as_float(x)
        if not math.isfinite(x):
            raise ValueError(f"z-score input must be finite, got {x}; state unchanged")
        r = self._push(x)
        if r is None:
            return None
        num, var = r
        return z_value(num, var), num, var

    def update_many(self, xs: FloatInput) -> npt.NDArray[np.float64]:
        """Push every value in order; the z-scores (NaN where undefined).

        All values are checked first: on NaN or infinity, ValueError names the first bad index
        and the state is unchanged.
        """
        if isinstance(xs, np.ndarray):
            if xs.ndim != 1:
                raise ValueError(f"xs must be one-dimensional, got shape {list(xs.shape)}")
            arr = xs.astype(np.float64, copy=False)
        elif isinstance(xs, str | bytes | bytearray):
            raise TypeError(f"xs must be a sequence of numbers, got {type(xs).__name__}")
        else:
            arr = np.array([_as_float(v) for v in xs], dtype=np.float64)
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"z-score input at index {i} is not finite ({arr[i]}); no value was applied"
            )
        out = np.empty(len(arr), dtype=np.float64)
        push = self._push
        for i, x in enumerate(arr.tolist()):
            r = push(x)
            out[i] = math.nan if r is None else z_value(*r)
        return out

    def reset(self) -> None:
        """Forget every value."""
        self._values.clear()
        self._k = 0
        self._s = 0
        self._q = 0

    @property
    def window(self) -> int:
        return self._window

    @property
    def min_periods(self) -> int:
        return self._min_periods

    @property
    def count(self) -> int:
        """Values in the window (at most ``window``)."""
        return len(self._values)

    @property
    def ready(self) -> bool:
        """``count >= min_periods``."""
        return len(self._values) >= self._min_periods

    @property
    def mean(self) -> float | None:
        """Mean of the window (correctly rounded), None until ``ready``."""
        if not self.ready:
            return None
        return self._s / (len(self._values) << self._k)

    @property
    def std(self) -> float | None:
        """Population standard deviation of the window, None until ``ready``."""
        if not self.ready:
            return None
        n = len(self._values)
        var = n * self._q - self._s * self._s
        if var == 0:
            return 0.0
        # sqrt(var) to at least 64 significant bits, then one correctly rounded division.
        p = max(0, (129 - var.bit_length()) // 2)
        return math.isqrt(var << (2 * p)) / (n << (self._k + p))

    def __repr__(self) -> str:
        return (
            f"RollingZScore(window={self._window}, min_periods={self._min_periods}, "
            f"count={len(self._values)})"
        )


class PythonZScoreEngine(CoreZScoreEngine):
    """The ``ZScoreEngine`` port over the pure-Python reference."""

    __slots__ = ()

    def __init__(self, window: int) -> None:
        super().__init__(RollingZScore, window)
