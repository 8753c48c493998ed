"""The z-score as an exact value, and threshold tests that decide ties exactly.

Prices sit on the 0.25 grid, so over a window of grid prices ``|z|`` now and then lands *exactly* on a
threshold such as 2.0 or 0.5. A float z computed one way or another may come out a hair either side,
and the trade list drifts from there. So a z-score engine hands over, with the float, the exact
quantities it came from::

    z = num / sqrt(var)        with num = n*x - S and var = n*Q - S**2

(S and Q the exact sum and sum of squares of the window, scaled to integers). The comparisons below
first try the float with a wide safety margin and, only when the float is too close to the threshold
to be sure, decide with integer arithmetic, which is exact. Engines guarantee that ``value`` is within
:data:`VALUE_REL_ERROR` of the true z, far inside the margin, so the float shortcut never decides a
case the exact test would decide differently.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction

from domain.errors import DomainError

VALUE_REL_ERROR = 1e-12
"""Engines promise ``|value - z| <= VALUE_REL_ERROR * |z|`` (they achieve a few ulps, ~1e-15)."""

_MARGIN = 1e-9
"""Relative distance from a threshold beyond which the float alone decides."""


class Threshold:
    """A non-negative threshold held as an exact fraction ``p/q`` (from its decimal text)."""

    __slots__ = ("_hi", "_lo", "_p2", "_q2", "exact", "value")

    exact: Fraction
    value: float
    _lo: float
    _hi: float
    _p2: int
    _q2: int

    def __init__(self, value: Decimal | int | str) -> None:
        try:
            text = Decimal(value)
        except InvalidOperation:
            raise DomainError(f"z threshold {value!r} is not a decimal number") from None
        if not text.is_finite():
            raise DomainError(f"z threshold must be finite, got {value}")
        exact = Fraction(text)
        if exact < 0:
            raise DomainError(f"z threshold must be >= 0, got {value}")
        self.exact = exact
        self.value = float(exact)
        self._lo = self.value * (1.0 - _MARGIN)
        self._hi = self.value * (1.0 + _MARGIN)
        self._p2 = exact.numerator * exact.numerator
        self._q2 = exact.denominator * exact.denominator

    @property
    def lower_bound(self) -> float:
        """Below this, a float ``|z|`` is certainly under the threshold (no exact test needed)."""
        return self._lo

    @property
    def upper_bound(self) -> float:
        """Above this, a float ``|z|`` is certainly over the threshold (no exact test needed)."""
        return self._hi

    def __repr__(self) -> str:
        return f"Threshold({self.exact})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Threshold) and other.exact == self.exact

    def __hash__(self) -> int:
        return hash(self.exact)


class ZScore:
    """``z = num / sqrt(var)`` exactly (``var > 0``); ``value`` is the nearest float, for display."""

    __slots__ = ("num", "value", "var")

    num: int
    var: int
    value: float

    def __init__(self, num: int, var: int, value: float) -> None:
        if var <= 0:
            raise DomainError("z-score variance term must be positive")
        self.num = num
        self.var = var
        self.value = value

    def _abs_cmp(self, t: Threshold) -> int:
        """Sign of ``|z| - t``, exactly."""
        lhs = self.num * self.num * t._q2
        rhs = t._p2 * self.var
        return (lhs > rhs) - (lhs < rhs)

    def at_or_above(self, t: Threshold) -> bool:
        """``z >= +t``."""
        v = self.value
        if v > t._hi:
            return True
        if v < t._lo:
            return False
        return self.num >= 0 and self._abs_cmp(t) >= 0

    def at_or_below_negative(self, t: Threshold) -> bool:
        """``z <= -t``."""
        v = -self.value
        if v > t._hi:
            return True
        if v < t._lo:
            return False
        return self.num <= 0 and self._abs_cmp(t) >= 0

    def abs_at_most(self, t: Threshold) -> bool:
        """``|z| <= t``."""
        a = abs(self.value)
        if a < t._lo:
            return True
        if a > t._hi:
            return False
        return self._abs_cmp(t) <= 0

    def __eq__(self, other: object) -> bool:
        # Two z-scores are equal when their exact values are: num1/sqrt(var1) == num2/sqrt(var2).
        if not isinstance(other, ZScore):
            return NotImplemented
        if (self.num > 0) != (other.num > 0) or (self.num < 0) != (other.num < 0):
            return False
        return self.num * self.num * other.var == other.num * other.num * self.var

    def __hash__(self) -> int:
        return hash(Fraction(self.num * self.num, self.var) * (1 if self.num >= 0 else -1))

    def __repr__(self) -> str:
        return f"ZScore({self.value!r})"
