"""Positions, fills and round trips, with P&L booked exactly.

Fill prices are held as whole ticks and matched first-in first-out, so the P&L of every closed lot is
a whole number of ticks times the tick value (MES: $1.25): no rounding anywhere. Commissions are
Decimal dollars per contract per side, as charged.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from decimal import Decimal
from enum import Enum

from domain.errors import DomainError
from domain.record import record
from domain.values import ZERO, Action, Instrument, Side


class ExitReason(Enum):
    """Why a position was closed."""

    SIGNAL = "signal"
    STOP = "stop"
    TARGET = "target"
    SESSION = "session"
    MAX_DURATION = "max_duration"
    DAILY_LOSS = "daily_loss"
    OPERATOR = "operator"
    PROTECTION_LOST = "protection_lost"
    PARTIAL_ENTRY = "partial_entry"
    SHUTDOWN = "shutdown"
    EXTERNAL = "external"


@record
class Fill:
    """One execution, as the broker reports it."""

    exec_id: str
    order_key: str
    action: Action
    qty: int
    price: Decimal
    ts: datetime
    commission: Decimal

    def __post_init__(self) -> None:
        if self.qty <= 0:
            raise DomainError(f"fill {self.exec_id}: quantity must be positive, got {self.qty}")
        if self.commission < 0:
            raise DomainError(f"fill {self.exec_id}: negative commission {self.commission}")


@record
class RoundTrip:
    """A position from flat back to flat. Prices are quantity-weighted averages."""

    seq: int
    side: Side
    qty: int
    entry_ts: datetime
    entry_price: Decimal
    exit_ts: datetime
    exit_price: Decimal
    exit_reason: ExitReason
    pnl_ticks: int
    gross_pnl: Decimal
    commissions: Decimal

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_pnl - self.commissions

    @property
    def is_loss(self) -> bool:
        return self.net_pnl < 0


@record
class OpenPosition:
    """A snapshot of the position for reports and status."""

    side: Side
    qty: int
    avg_price: Decimal
    opened_at: datetime


@record
class PositionState:
    """Everything a :class:`Position` holds, for a snapshot (lots are ``(qty, price_ticks)``)."""

    side: Side | None
    lots: tuple[tuple[int, int], ...]
    opened_at: datetime | None
    entry_qty: int
    entry_ticks: int
    exit_qty: int
    exit_ticks: int
    realized_ticks: int
    commissions: Decimal
    trips_booked: int


class Position:
    """The engine's own view of its position, fed only by fills."""

    def __init__(self, instrument: Instrument) -> None:
        self._instrument = instrument
        self._side: Side | None = None
        self._lots: deque[list[int]] = deque()  # [qty, price_ticks], oldest first
        self._qty = 0
        self._opened_at: datetime | None = None
        self._entry_qty = 0
        self._entry_ticks = 0  # sum of price_ticks * qty over entry fills
        self._exit_qty = 0
        self._exit_ticks = 0
        self._realized_ticks = 0
        self._commissions = ZERO
        self._seq = 0

    def state(self) -> PositionState:
        return PositionState(
            side=self._side,
            lots=tuple((qty, price) for qty, price in self._lots),
            opened_at=self._opened_at,
            entry_qty=self._entry_qty,
            entry_ticks=self._entry_ticks,
            exit_qty=self._exit_qty,
            exit_ticks=self._exit_ticks,
            realized_ticks=self._realized_ticks,
            commissions=self._commissions,
            trips_booked=self._seq,
        )

    def restore(self, state: PositionState) -> None:
        qty = sum(q for q, _ in state.lots)
        if (state.side is None) != (qty == 0) or any(q <= 0 for q, _ in state.lots):
            raise DomainError(f"inconsistent position state: {state}")
        self._side = state.side
        self._lots = deque([q, p] for q, p in state.lots)
        self._qty = qty
        self._opened_at = state.opened_at
        self._entry_qty = state.entry_qty
        self._entry_ticks = state.entry_ticks
        self._exit_qty = state.exit_qty
        self._exit_ticks = state.exit_ticks
        self._realized_ticks = state.realized_ticks
        self._commissions = state.commissions
        self._seq = state.trips_booked

    @property
    def side(self) -> Side | None:
        return self._side

    @property
    def qty(self) -> int:
        return self._qty

    @property
    def signed_qty(self) -> int:
        return 0 if self._side is None else self._qty * self._side.sign

    @property
    def is_flat(self) -> bool:
        return self._qty == 0

    @property
    def opened_at(self) -> datetime | None:
        return self._opened_at

    @property
    def commissions_paid(self) -> Decimal:
        """Commissions paid so far on the open position (entries and any partial exits)."""
        return self._commissions

    def snapshot(self) -> OpenPosition | None:
        if self._side is None or self._opened_at is None:
            return None
        avg = self._instrument.price(1) * Decimal(self._entry_ticks) / Decimal(self._entry_qty)
        return OpenPosition(self._side, self._qty, avg, self._opened_at)

    def open_pnl(self, mark: float) -> Decimal:
        """Unrealized gross P&L at ``mark`` (a bar close; must be on the tick grid)."""
        if self._side is None:
            return ZERO
        return self.open_pnl_at_ticks(self._instrument.ticks(mark))

    def open_pnl_at_ticks(self, mark_ticks: int) -> Decimal:
        """Unrealized gross P&L at a mark given in whole ticks."""
        if self._side is None:
            return ZERO
        ticks = sum((mark_ticks - price) * qty for qty, price in self._lots) * self._side.sign
        return self._instrument.tick_value * ticks

    @property
    def trip_realized_pnl(self) -> Decimal:
        """Gross P&L already realized by partial exits of the open position (0 when flat)."""
        return self._instrument.tick_value * self._realized_ticks

    def mark_for_open_pnl(self, open_pnl: Decimal) -> float:
        """The mark at which :meth:`open_pnl` equals ``open_pnl`` (open P&L is linear in the mark).

        For a long position any lower mark gives less; for a short one any higher mark does.
        """
        if self._side is None:
            raise ValueError("no open position")
        cost_ticks = sum(qty * price for qty, price in self._lots)
        ticks = (
            open_pnl / (self._instrument.tick_value * self._side.sign) + cost_ticks
        ) / self._qty
        return float(ticks * self._instrument.tick_size)

    def apply(self, fill: Fill, exit_reason: ExitReason) -> list[RoundTrip]:
        """Book a fill. Returns the round trips it completes (two only if it flips the position)."""
        price_ticks = self._instrument.ticks(fill.price)
        if self._side is None:
            self._open(
                Side.LONG if fill.action is Action.BUY else Side.SHORT, fill.qty, price_ticks, fill
            )
            return []
        if fill.action is self._side.entry_action:
            self._add(fill.qty, price_ticks, fill.commission)
            return []
        closing = min(fill.qty, self._qty)
        # Multiply before dividing: commission / qty * qty is not exact in Decimal (1 / 3 * 3 is
        # 0.999...9), and a fill that only closes must book its whole commission.
        closing_commission = fill.commission * closing / fill.qty
        self._close(closing, price_ticks, closing_commission)
        done: list[RoundTrip] = []
        if self._qty == 0:
            done.append(self._finish(fill.ts, exit_reason))
        remainder = fill.qty - closing
        if remainder:
            side = Side.LONG if fill.action is Action.BUY else Side.SHORT
            opening = Fill(
                fill.exec_id,
                fill.order_key,
                fill.action,
                remainder,
                fill.price,
                fill.ts,
                fill.commission - closing_commission,
            )
            self._open(side, remainder, price_ticks, opening)
        return done

    def _open(self, side: Side, qty: int, price_ticks: int, fill: Fill) -> None:
        self._side = side
        self._opened_at = fill.ts
        self._add(qty, price_ticks, fill.commission)

    def _add(self, qty: int, price_ticks: int, commission: Decimal) -> None:
        self._lots.append([qty, price_ticks])
        self._qty += qty
        self._entry_qty += qty
        self._entry_ticks += qty * price_ticks
        self._commissions += commission

    def _close(self, qty: int, price_ticks: int, commission: Decimal) -> None:
        assert self._side is not None
        remaining = qty
        while remaining:
            lot = self._lots[0]
            take = min(lot[0], remaining)
            self._realized_ticks += (price_ticks - lot[1]) * take * self._side.sign
            lot[0] -= take
            remaining -= take
            if lot[0] == 0:
                self._lots.popleft()
        self._qty -= qty
        self._exit_qty += qty
        self._exit_ticks += qty * price_ticks
        self._commissions += commission

    def _finish(self, ts: datetime, reason: ExitReason) -> RoundTrip:
        assert self._side is not None
        assert self._opened_at is not None
        tick = self._instrument.price(1)
        self._seq += 1
        trip = RoundTrip(
            seq=self._seq,
            side=self._side,
            qty=self._entry_qty,
            entry_ts=self._opened_at,
            entry_price=tick * Decimal(self._entry_ticks) / Decimal(self._entry_qty),
            exit_ts=ts,
            exit_price=tick * Decimal(self._exit_ticks) / Decimal(self._exit_qty),
            exit_reason=reason,
            pnl_ticks=self._realized_ticks,
            gross_pnl=self._instrument.tick_value * self._realized_ticks,
            commissions=self._commissions,
        )
        self._side = None
        self._opened_at = None
        self._entry_qty = self._entry_ticks = self._exit_qty = self._exit_ticks = 0
        self._realized_ticks = 0
        self._commissions = ZERO
        return trip
