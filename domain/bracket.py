"""Bracket prices: the broker-held stop-loss and take-profit of an entry (DESIGN section 1).

Dollar amounts are for the whole position and are converted to index points
(``dollars / (multiplier * qty)``), then to ticks: the stop is rounded toward the entry, so the
position never risks more than asked, and the target to the nearest tick (half a tick rounds away
from the entry). Both must be at least one tick away, which makes a limit smaller than one tick's
value a configuration error rather than a stop at the entry price.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from domain.errors import DomainError
from domain.record import record
from domain.values import Instrument, Side


@record
class BracketPrices:
    stop: Decimal | None
    target: Decimal | None


def stop_distance_ticks(instrument: Instrument, dollars: Decimal, qty: int) -> int:
    """Whole ticks of adverse move that lose at most ``dollars`` on ``qty`` contracts."""
    ticks = instrument.points_to_ticks(instrument.dollars_to_points(dollars, qty), ROUND_FLOOR)
    if ticks < 1:
        raise DomainError(
            f"stop_loss_dollars {dollars} is less than one tick "
            f"({instrument.tick_value * qty} for {qty} contract(s))"
        )
    return ticks


def target_distance_ticks(instrument: Instrument, dollars: Decimal, qty: int) -> int:
    """Whole ticks of favourable move nearest to ``dollars`` on ``qty`` contracts."""
    ticks = instrument.points_to_ticks(instrument.dollars_to_points(dollars, qty), ROUND_HALF_UP)
    if ticks < 1:
        raise DomainError(
            f"take_profit_dollars {dollars} rounds to less than one tick "
            f"({instrument.tick_value * qty} for {qty} contract(s))"
        )
    return ticks


def bracket_prices(
    instrument: Instrument,
    side: Side,
    qty: int,
    entry: Decimal,
    stop_dollars: Decimal | None,
    target_dollars: Decimal | None,
) -> BracketPrices:
    """Stop and target prices around ``entry`` (on the tick grid) for a new position."""
    tick = instrument.tick_size
    instrument.ticks(entry)  # refuses an off-grid reference price
    stop = target = None
    if stop_dollars is not None:
        stop = entry - side.sign * tick * stop_distance_ticks(instrument, stop_dollars, qty)
    if target_dollars is not None:
        target = entry + side.sign * tick * target_distance_ticks(instrument, target_dollars, qty)
    return BracketPrices(stop, target)
