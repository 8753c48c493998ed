"""A deterministic simulated broker: market orders, bracket legs and OCA groups filled against bars.

Fill models for market orders (entries and exits):

* ``next_open`` (default): a market order fills at the open of the next market bar it sees, i.e. the
  next *finer* bar after the strategy bar that produced the signal;
* ``signal_close``: a market order that carries a reference price (the close of the signal bar) fills
  there at once; an order without one (operator flatten, protection lost) waits for the next open.

Slippage is ``slippage_ticks`` against us on every market fill, stops included (a triggered stop is a
market order). Commission is ``commission_per_side`` per contract on every fill.

Bracket legs become active when their parent has filled and are checked against every finer bar,
from the bar the parent filled on:

* a stop triggers when the bar trades through it (long: ``low <= stop``) and fills at the stop, or at
  the bar's open when the bar opened beyond it (a gap fills at the worse price);
* a target fills at its limit price, and only when the bar trades *through* it (a touch may not
  reach an order at the back of the queue; no price improvement inside a bar is assumed either);
* the bar's open decides first: a bar opening through the target fills the target at that open, the
  better price and the one the market traded (a limit is never filled at a price the market skipped),
  and OCA cancels the stop before the rest of the bar matters; inside the bar, when both legs are
  reached, the stop is taken first (the path inside the bar is unknown, and assuming the worse one
  is honest).

A fill of any member of an OCA group cancels the group's other working members, as IB's ocaType 1
does; so a working exit and the bracket legs never both fill. Events go to the sink synchronously,
in the order a broker would send them (accepted, then fills, then cancels).

Faults can be scripted for tests: :meth:`SimulatedBroker.reject_next` and
:meth:`SimulatedBroker.partial_fills`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Literal

import numpy as np
import numpy.typing as npt

from application.bar_columns import BarColumns, first_at_or_after
from application.ports import BrokerError, BrokerOrder, BrokerSnapshot, OrderEventSink
from domain.bar import Bar
from domain.commands import CancelOrders, PlaceBracket, PlaceExit, PlaceProtective
from domain.events import (
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    ProtectiveExitFilled,
    ProtectiveKind,
)
from domain.position import Fill
from domain.values import Action, Instrument

FillModel = Literal["next_open", "signal_close"]

_KEPT_EXECUTIONS = 200
"""Executions a checkpoint keeps (for snapshot queries after a restart)."""


class _Kind(Enum):
    MARKET = "MKT"
    STOP = "STP"
    LIMIT = "LMT"


@dataclass(slots=True)
class _Order:
    key: str
    action: Action
    qty: int
    kind: _Kind
    price: Decimal | None  # stop or limit price
    reference: Decimal | None  # signal close for market orders
    oca: str | None
    parent: str | None
    ts: datetime
    active: bool = True
    filled: int = 0
    protective: ProtectiveKind | None = None
    children: list[str] = field(default_factory=list)
    # The price as a float when that is exact (a tick-grid price is): on_bar's quick test.
    price_float: float | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        price = self.price
        as_float = None if price is None else float(price)
        self.price_float = as_float if as_float is not None and Decimal(as_float) == price else None


@dataclass(frozen=True, slots=True)
class _Rejection:
    code: int
    reason: str


class SimulatedBroker:
    """Broker port over a fill model; also a bar listener that fills resting orders on each bar."""

    def __init__(
        self,
        *,
        instrument: Instrument,
        sink: OrderEventSink,
        fill_model: FillModel = "next_open",
        slippage_ticks: int = 0,
        commission_per_side: Decimal = Decimal("0.62"),
    ) -> None:
        if fill_model not in ("next_open", "signal_close"):
            raise ValueError(f"unknown fill model {fill_model!r}")
        if slippage_ticks < 0:
            raise ValueError("slippage_ticks must be >= 0")
        self._instrument = instrument
        self._sink = sink
        self._fill_model = fill_model
        self._slip = instrument.tick_size * slippage_ticks
        self._commission = commission_per_side
        self._orders: dict[str, _Order] = {}
        self._position = 0
        self._exec_seq = 0
        self._executions: list[Fill] = []
        self._last_close: float | None = None
        self._reject_next: list[_Rejection] = []
        self._partial: list[int] = []
        self.connected = True

    # -- the exchange's own state, for a simulated daemon that is killed and restarted ------------

    def export_state(self) -> str:
        """Working orders, position and execution sequence as JSON (exact prices, UTC times).

        A real exchange keeps its state when the bot dies; the simulated one is checkpointed with
        the engine so that a restarted simulated daemon finds the same orders and position.
        """
        return json.dumps(
            {
                "position": self._position,
                "exec_seq": self._exec_seq,
                "last_close": None if self._last_close is None else repr(self._last_close),
                "orders": [_order_json(o) for o in self._orders.values()],
                "executions": [_fill_json(f) for f in self._executions[-_KEPT_EXECUTIONS:]],
            },
            sort_keys=True,
        )

    def restore_state(self, text: str) -> None:
        """Take back what :meth:`export_state` wrote."""
        data = json.loads(text)
        self._position = int(data["position"])
        self._exec_seq = int(data["exec_seq"])
        last = data["last_close"]
        self._last_close = None if last is None else float(last)
        self._orders = {o.key: o for o in (_order_from_json(d) for d in data["orders"])}
        self._executions = [_fill_from_json(d) for d in data["executions"]]

    # -- scripted faults -------------------------------------------------------------------------

    def reject_next(self, code: int = 201, reason: str = "Order rejected - simulated") -> None:
        """Reject the next order placed (a bracket is rejected as a whole, as IB does)."""
        self._reject_next.append(_Rejection(code, reason))

    def partial_fills(self, *chunks: int) -> None:
        """Split the next market fill into executions of these sizes (the rest fills last)."""
        self._partial = list(chunks)

    # -- Broker port -----------------------------------------------------------------------------

    async def place_bracket(self, order: PlaceBracket) -> None:
        self._check_connected()
        ts = order.ts
        if self._reject_next:
            rejection = self._reject_next.pop(0)
            for key in (order.entry_key, order.stop_key, order.target_key):
                if key is not None:
                    self._sink.put(OrderRejected(key, ts, rejection.reason, rejection.code))
            return
        parent = _Order(
            order.entry_key,
            order.action,
            order.qty,
            _Kind.MARKET,
            None,
            order.reference_price,
            None,
            None,
            ts,
        )
        self._orders[parent.key] = parent
        self._sink.put(OrderAccepted(parent.key, ts))
        if order.stop_key is not None or order.target_key is not None:
            self._place_legs(order, parent)
        if self._fill_model == "signal_close" and order.reference_price is not None:
            self._fill_market(parent, order.reference_price, ts)

    def _place_legs(self, order: PlaceBracket, parent: _Order) -> None:
        """The bracket's stop and target, inactive until the parent fills."""
        ts = order.ts
        exit_action = order.side.exit_action
        for key, kind, price, protective in (
            (order.stop_key, _Kind.STOP, order.stop_price, ProtectiveKind.STOP),
            (order.target_key, _Kind.LIMIT, order.target_price, ProtectiveKind.TARGET),
        ):
            if key is None:
                continue
            child = _Order(
                key,
                exit_action,
                order.qty,
                kind,
                price,
                None,
                order.oca_group,
                parent.key,
                ts,
                active=False,
                protective=protective,
            )
            self._orders[key] = child
            parent.children.append(key)
            self._sink.put(OrderAccepted(key, ts))

    async def place_exit(self, order: PlaceExit) -> None:
        self._check_connected()
        if self._rejected(order.key, order.ts):
            return
        exit_order = _Order(
            order.key,
            order.action,
            order.qty,
            _Kind.MARKET,
            None,
            order.reference_price,
            order.oca_group,
            None,
            order.ts,
        )
        self._orders[order.key] = exit_order
        self._sink.put(OrderAccepted(order.key, order.ts))
        if self._fill_model == "signal_close" and order.reference_price is not None:
            self._fill_market(exit_order, order.reference_price, order.ts)

    async def place_protective(self, order: PlaceProtective) -> None:
        self._check_connected()
        if self._rejected(order.key, order.ts):
            return
        stop = order.kind is ProtectiveKind.STOP
        self._orders[order.key] = _Order(
            order.key,
            order.action,
            order.qty,
            _Kind.STOP if stop else _Kind.LIMIT,
            order.price,
            None,
            order.oca_group,
            None,
            order.ts,
            protective=order.kind,
        )
        self._sink.put(OrderAccepted(order.key, order.ts))

    def _rejected(self, key: str, ts: datetime) -> bool:
        """A scripted rejection (:meth:`reject_next`) takes this order, if one is queued."""
        if not self._reject_next:
            return False
        rejection = self._reject_next.pop(0)
        self._sink.put(OrderRejected(key, ts, rejection.reason, rejection.code))
        return True

    async def cancel(self, order: CancelOrders) -> None:
        self._check_connected()
        for key in order.keys:
            self._cancel(key, order.ts, order.reason)

    async def snapshot(self, executions_since: datetime | None) -> BrokerSnapshot:
        self._check_connected()
        executions = tuple(
            f for f in self._executions if executions_since is None or f.ts >= executions_since
        )
        return BrokerSnapshot(self._position, self.working_orders(), executions)

    async def position(self) -> int:
        """Our position (signed contracts), as :meth:`IbkrBroker.position` answers it."""
        self._check_connected()
        return self._position

    def working_orders(self) -> tuple[BrokerOrder, ...]:
        """The orders the exchange holds open (bracket legs included before their parent fills)."""
        return tuple(
            BrokerOrder(
                o.key,
                o.action.value,
                o.qty - o.filled,
                o.kind.value,
                str(o.price) if o.price is not None else None,
            )
            for o in self._orders.values()
        )

    # -- the market --------------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> None:
        """Fill resting market orders at this bar's open, then check active legs against its range."""
        self._last_close = bar.close
        if not self._orders:
            return
        opened_at = bar.ts
        for order in [o for o in self._orders.values() if o.kind is _Kind.MARKET]:
            if order.key in self._orders:
                self._fill_market(order, Decimal(bar.open), opened_at)
        legs = [o for o in self._orders.values() if o.active and o.kind is not _Kind.MARKET]
        if not legs:
            return
        # Most bars reach no leg: tell so on the floats before any Decimal is made. A sell stop or a
        # buy limit can only trigger if the low reaches its price, a buy stop or a sell limit if
        # the high does (the open lies between them); a price not exact as a float gets the full test.
        bar_low, bar_high = bar.low, bar.high
        for leg in legs:
            at = leg.price_float
            if at is None:
                break
            if (leg.kind is _Kind.STOP) is (leg.action is Action.SELL):
                if bar_low <= at:
                    break
            elif bar_high >= at:
                break
        else:
            return
        open_, high, low = Decimal(bar.open), Decimal(bar.high), Decimal(bar.low)
        triggered = []
        for leg in legs:
            hit = self._trigger(leg, open_, high, low)
            if hit is not None:
                triggered.append((hit[0], leg, hit[1]))
        # At the open first; then, inside the bar, stops before targets (the path is unknown).
        triggered.sort(key=lambda t: t[0])
        for priority, leg, price in triggered:
            if leg.key in self._orders:  # an OCA sibling may have cancelled it already
                self._execute(
                    leg, price, leg.qty - leg.filled, bar.ts if priority == 0 else bar.end
                )

    def _trigger(
        self, leg: _Order, open_: Decimal, high: Decimal, low: Decimal
    ) -> tuple[int, Decimal] | None:
        """(priority, fill price) if the bar reaches the leg: 0 at the open, 1 a stop inside the
        bar, 2 a limit inside the bar; None if it does not."""
        price = leg.price
        if price is None:
            return None
        slip = self._slip
        if leg.kind is _Kind.STOP:  # becomes a market order: gaps fill at the (worse) open
            if leg.action is Action.SELL:
                if open_ <= price:
                    return 0, open_ - slip
                return (1, price - slip) if low <= price else None
            if open_ >= price:
                return 0, open_ + slip
            return (1, price + slip) if high >= price else None
        # A limit fills at its price, and only when the market trades through it: a touch may not
        # reach an order at the back of the queue. A bar that opens through it fills at the open:
        # the first price traded, and better than the limit.
        if leg.action is Action.SELL:
            if open_ > price:
                return 0, open_
            return (2, price) if high > price else None
        if open_ < price:
            return 0, open_
        return (2, price) if low < price else None

    def next_wake(self, bars: BarColumns, start: int) -> int:
        """The first bar that can fill something: the next one for a resting market order, else the
        first whose range reaches an active leg's price."""
        n = len(bars)
        if not self._orders:
            return n
        low_at_most: float | None = None  # sell stops and buy limits trigger on the low
        high_at_least: float | None = None  # buy stops and sell limits trigger on the high
        for order in self._orders.values():
            if order.kind is _Kind.MARKET:
                return start
            if not order.active or order.price is None:
                continue
            price = float(order.price)
            if (order.kind is _Kind.STOP) == (order.action is Action.SELL):
                low_at_most = price if low_at_most is None else max(low_at_most, price)
            else:
                high_at_least = price if high_at_least is None else min(high_at_least, price)
        if low_at_most is None and high_at_least is None:
            return n
        lows, highs = bars.lows, bars.highs

        def touched(lo: int, hi: int) -> npt.NDArray[np.bool_]:
            mask = np.zeros(hi - lo, dtype=bool)
            if low_at_most is not None:
                mask |= lows[lo:hi] <= low_at_most
            if high_at_least is not None:
                mask |= highs[lo:hi] >= high_at_least
            return mask

        return first_at_or_after(touched, start, n)

    def skip(self, bar: Bar) -> None:
        """Bars up to ``bar`` went by without touching anything (see :meth:`next_wake`)."""
        self._last_close = bar.close

    # -- internals ---------------------------------------------------------------------------------

    def _check_connected(self) -> None:
        if not self.connected:
            raise BrokerError("simulated broker is disconnected")

    def _fill_market(self, order: _Order, price: Decimal, ts: datetime) -> None:
        price = price + order.action.sign * self._slip
        remaining = order.qty - order.filled
        if self._partial:
            chunks, self._partial = self._partial, []
            for chunk in chunks:
                if 0 < chunk < remaining:
                    self._execute(order, price, chunk, ts)
                    remaining -= chunk
        self._execute(order, price, remaining, ts)

    def _execute(self, order: _Order, price: Decimal, qty: int, ts: datetime) -> None:
        self._exec_seq += 1
        fill = Fill(
            exec_id=f"SIM-{self._exec_seq}",
            order_key=order.key,
            action=order.action,
            qty=qty,
            price=price,
            ts=ts,
            commission=self._commission * qty,
        )
        self._instrument.ticks(price)  # a simulated fill is always on the tick grid
        self._executions.append(fill)
        self._position += order.action.sign * qty
        order.filled += qty
        if order.protective is not None:
            self._sink.put(ProtectiveExitFilled(fill, order.protective))
        else:
            self._sink.put(OrderFilled(fill))
        if order.filled < order.qty:
            return
        self._orders.pop(order.key, None)
        for child_key in order.children:
            child = self._orders.get(child_key)
            if child is not None:
                child.active = True
        if order.oca is not None:
            for other in [o for o in self._orders.values() if o.oca == order.oca]:
                self._cancel(other.key, ts, "OCA group member filled")

    def _cancel(self, key: str, ts: datetime, reason: str) -> None:
        order = self._orders.pop(key, None)
        if order is None:
            return
        self._sink.put(OrderCancelled(key, ts, reason))
        if order.filled == 0:
            for child_key in order.children:
                self._cancel(child_key, ts, "parent cancelled")


def _order_json(order: _Order) -> dict[str, object]:
    return {
        "key": order.key,
        "action": order.action.value,
        "qty": order.qty,
        "kind": order.kind.value,
        "price": None if order.price is None else str(order.price),
        "reference": None if order.reference is None else str(order.reference),
        "oca": order.oca,
        "parent": order.parent,
        "ts": order.ts.isoformat(),
        "active": order.active,
        "filled": order.filled,
        "protective": None if order.protective is None else order.protective.value,
        "children": list(order.children),
    }


def _order_from_json(data: dict[str, object]) -> _Order:
    def dec(value: object) -> Decimal | None:
        return None if value is None else Decimal(str(value))

    protective = data["protective"]
    children = data["children"]
    assert isinstance(children, list)
    return _Order(
        key=str(data["key"]),
        action=Action(data["action"]),
        qty=int(str(data["qty"])),
        kind=_Kind(data["kind"]),
        price=dec(data["price"]),
        reference=dec(data["reference"]),
        oca=None if data["oca"] is None else str(data["oca"]),
        parent=None if data["parent"] is None else str(data["parent"]),
        ts=datetime.fromisoformat(str(data["ts"])),
        active=bool(data["active"]),
        filled=int(str(data["filled"])),
        protective=None if protective is None else ProtectiveKind(protective),
        children=[str(c) for c in children],
    )


def _fill_json(fill: Fill) -> dict[str, object]:
    return {
        "exec_id": fill.exec_id,
        "order_key": fill.order_key,
        "action": fill.action.value,
        "qty": fill.qty,
        "price": str(fill.price),
        "ts": fill.ts.isoformat(),
        "commission": str(fill.commission),
    }


def _fill_from_json(data: dict[str, object]) -> Fill:
    return Fill(
        exec_id=str(data["exec_id"]),
        order_key=str(data["order_key"]),
        action=Action(data["action"]),
        qty=int(str(data["qty"])),
        price=Decimal(str(data["price"])),
        ts=datetime.fromisoformat(str(data["ts"])),
        commission=Decimal(str(data["commission"])),
    )
