"""Value objects: position sides, the instrument and exact price/money arithmetic.

Prices that are booked (fills, brackets, P&L) are ``Decimal`` and land on the instrument's tick grid;
money is ``Decimal`` US dollars. Bars carry ``float`` prices, which are exact for any price on a
power-of-two tick grid such as MES's 0.25, and are converted with :meth:`Instrument.ticks` where
they are booked, which refuses a price that is off the grid instead of rounding it silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import Enum

from domain.errors import DomainError

ZERO = Decimal(0)


class Side(Enum):
    """Direction of a position. ``sign`` is +1 for long and -1 for short."""

    LONG = 1
    SHORT = -1

    @property
    def sign(self) -> int:
        return self.value

    @property
    def opposite(self) -> Side:
        return Side.SHORT if self is Side.LONG else Side.LONG

    @property
    def entry_action(self) -> Action:
        return Action.BUY if self is Side.LONG else Action.SELL

    @property
    def exit_action(self) -> Action:
        return Action.SELL if self is Side.LONG else Action.BUY


class Action(Enum):
    """Order action as a broker sees it."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Action.BUY else -1


_FAST_FLOAT = 1e15
"""Floats below this in magnitude take :meth:`Instrument.ticks`' integer path: their tick counts
stay far inside the Decimal context's 28 digits, so both paths give the same answer. NaN and the
infinities fail the bound and take the Decimal path (which refuses them)."""


class OffTickError(DomainError):
    """A price that should be on the instrument's tick grid is not."""


@dataclass(frozen=True, slots=True)
class Instrument:
    """A futures contract's economics: the tick and the dollar value of one index point."""

    symbol: str
    tick_size: Decimal
    multiplier: Decimal
    _tick_ratio: tuple[int, int] = field(init=False, repr=False, compare=False)
    """``tick_size`` as the exact fraction (numerator, denominator), for :meth:`ticks`."""

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.multiplier <= 0:
            raise DomainError(f"{self.symbol}: tick size and multiplier must be positive")
        object.__setattr__(self, "_tick_ratio", self.tick_size.as_integer_ratio())

    @property
    def tick_value(self) -> Decimal:
        """Dollars per tick per contract (MES: 0.25 x 5 = 1.25)."""
        return self.tick_size * self.multiplier

    def ticks(self, price: Decimal | float) -> int:
        """The price as a whole number of ticks; raises :class:`OffTickError` if it is off the grid."""
        if type(price) is float and -_FAST_FLOAT < price < _FAST_FLOAT:
            # A float is exactly num/den: on the grid when num/den / (tn/td) is whole. Several
            # times cheaper than building a Decimal (a bar close is checked on every decision).
            num, den = price.as_integer_ratio()
            tn, td = self._tick_ratio
            whole, part = divmod(num * td, den * tn)
            if part == 0:
                return whole
            raise OffTickError(
                f"{self.symbol}: price {price} is not on the {self.tick_size} tick grid"
            )
        exact = price if isinstance(price, Decimal) else Decimal(price)
        # Finiteness first: divmod raises InvalidOperation (not OffTickError) on an infinity, a
        # signalling NaN or a quotient beyond the context's precision.
        if exact.is_finite():
            try:
                n, rem = divmod(exact, self.tick_size)
            except InvalidOperation:
                pass
            else:
                if rem == 0:
                    return int(n)
        raise OffTickError(f"{self.symbol}: price {price} is not on the {self.tick_size} tick grid")

    def price(self, ticks: int) -> Decimal:
        """The price of a whole number of ticks."""
        return self.tick_size * ticks

    def points_to_ticks(self, points: Decimal, rounding: str) -> int:
        """Index points as ticks, rounded with a ``decimal`` rounding mode."""
        return int((points / self.tick_size).to_integral_value(rounding=rounding))

    def dollars_to_points(self, dollars: Decimal, qty: int) -> Decimal:
        """How many index points a move must be to make ``dollars`` on ``qty`` contracts."""
        if qty <= 0:
            raise DomainError(f"{self.symbol}: quantity must be positive, got {qty}")
        return dollars / (self.multiplier * qty)


MES = Instrument(symbol="MES", tick_size=Decimal("0.25"), multiplier=Decimal(5))


_CENT = Decimal("0.01")


def price_text(price: Decimal) -> str:
    """A price as a trader reads it, the same in every alert and reply: thousands separated and at
    least two decimals, never rounded (``4,987.25``, ``5,000.00``; a finer price keeps its digits)."""
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        price = price.quantize(_CENT)  # only appends zeros: exact
    return f"{price:,}"
