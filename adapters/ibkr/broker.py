"""The Broker port on IB: brackets, exits, cancels, flatten-all, and order events driven by fills.

Order events reach the engine through the sink in the order the engine needs, whatever order IB sends
its callbacks in:

* an order is *accepted* the first time IB reports it working (PreSubmitted or Submitted);
* *fills* come from executions only (never from orderStatus, which may arrive before or after them,
  repeated, or not at all). An execution waits up to ``commission_wait_s`` for its commission report,
  so the fill is booked with IB's own commission; past that, with the configured rate. Each
  execution id is reported once, however often IB repeats it;
* *rejections* (errors 201, 202 on a new order...) and *cancels* are reported once per order, after
  any of its fills still waiting for a commission report.

Every order carries its idempotency key in ``orderRef``. A placement is never retried here: after a
reconnect :meth:`IbkrBroker.resync` looks every order up by its key (working orders, executions) and
reports what happened while the link was down; an order IB does not know is reported cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ib_async import CommissionReport, Contract, Execution, Order, Trade
from ib_async import Fill as IbFill

from adapters.ibkr.client import IbClient
from adapters.ibkr.errors import Action, classify, in_plain_words
from adapters.ibkr.mapping import (
    MappingError,
    bracket_orders,
    broker_order,
    domain_fill,
    exit_order,
    protective_order,
)
from application.ports import BrokerError, BrokerOrder, BrokerSnapshot, Clock, OrderEventSink
from domain.commands import CancelOrders, PlaceBracket, PlaceExit, PlaceProtective
from domain.events import (
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    ProtectiveExitFilled,
    protective_kind,
)
from domain.position import Fill
from domain.values import Instrument

log = logging.getLogger(__name__)

_WORKING = frozenset({"PreSubmitted", "Submitted"})
_IB_PREFIX = re.compile(r"^(?:Warning|Error) -?\d+, reqId -?\d+: ")
"""ib_async's own words before IB's text in a trade's log."""
_DONE = frozenset({"Cancelled", "ApiCancelled", "Inactive"})


@dataclass(slots=True)
class _Tracked:
    key: str
    trade: Trade | None
    qty: int
    filled: int = 0
    accepted: bool = False
    done: bool = False
    pending: set[str] = field(default_factory=set)
    """Execution ids of this order waiting for their commission report."""
    deferred: list[object] = field(default_factory=list)
    """A terminal event held back until the pending fills are out."""
    expected: int = 0
    """What IB says has filled when it ends the order: the fills to report before the end."""
    confirming: bool = False
    """IB refused a cancel of this order: what IB holds is being asked."""


class IbkrBroker:
    """Broker port over an :class:`IbClient`; reports order events to ``sink``."""

    def __init__(
        self,
        *,
        client: IbClient,
        sink: OrderEventSink,
        instrument: Instrument,
        clock: Clock,
        key_prefix: str,
        commission_per_contract: Decimal,
        commission_wait_s: float = 2.0,
        dry_run: bool = False,
    ) -> None:
        self._client = client
        self._sink = sink
        self._instrument = instrument
        self._clock = clock
        self._prefix = key_prefix + "-"
        self._commission = commission_per_contract
        self._commission_wait = commission_wait_s
        self._dry_run = dry_run
        self._contract: Contract | None = None
        self._orders: dict[str, _Tracked] = {}
        self._reported_execs: set[str] = set()
        self._booked_at_rate: set[str] = set()  # fills booked without IB's commission report
        self._waiting: dict[str, tuple[IbFill, asyncio.TimerHandle]] = {}
        self._confirmations: set[asyncio.Task[None]] = set()
        self._cancelling: str | None = None
        """The order whose cancel is being sent: a status reported meanwhile is ib_async's own."""
        self._modifying: set[str] = set()
        """Orders with a change of ours in flight: an error now is about the change, not them."""
        self._holds: dict[str, str] = {}
        """Why no order may be sent now (the Gateway answers nothing, a live account...)."""
        self.last_execution: datetime | None = None
        client.on_order_status(self._on_status)
        client.on_execution(self._on_execution)
        client.on_commission(self._on_commission)

    # -- wiring -------------------------------------------------------------------------------

    def use_contract(self, contract: Contract) -> None:
        """The qualified contract orders go to (set by the session after it resolves one)."""
        self._contract = contract

    @property
    def contract(self) -> Contract | None:
        return self._contract

    def is_ours(self, key: str) -> bool:
        return key.startswith(self._prefix)

    def hold(self, name: str, reason: str | None) -> None:
        """While any hold is set (``reason`` not None), no order goes to IB: a placement is a
        ``BrokerError`` naming the reason, which the engine handles like any refused send."""
        if reason is None:
            self._holds.pop(name, None)
        else:
            self._holds[name] = reason

    # -- Broker port --------------------------------------------------------------------------

    async def place_bracket(self, order: PlaceBracket) -> None:
        contract = self._sendable()
        orders = bracket_orders(order, account=self._client.account)
        keys = [o.orderRef for o in orders]
        if self._dry_run:
            self._dry_run_accept(keys, order.ts)
            return
        parent_id = self._client.next_order_id()
        orders[0].orderId = parent_id
        for child in orders[1:]:
            child.orderId = self._client.next_order_id()
            child.parentId = parent_id
        # placeOrder only writes to the socket: the three go out back to back, no await between.
        for ib_order in orders:
            self._send(contract, ib_order)

    async def place_exit(self, order: PlaceExit) -> None:
        self._place_one(order.key, exit_order(order, account=self._client.account), order.ts)

    async def place_protective(self, order: PlaceProtective) -> None:
        self._place_one(order.key, protective_order(order, account=self._client.account), order.ts)

    def _place_one(self, key: str, ib_order: Order, ts: datetime) -> None:
        """One order on its own (not a bracket): a new id, sent at once."""
        contract = self._sendable()
        if self._dry_run:
            self._dry_run_accept([key], ts)
            return
        ib_order.orderId = self._client.next_order_id()
        self._send(contract, ib_order)

    async def cancel(self, order: CancelOrders) -> None:
        self._ready()
        for key in order.keys:
            tracked = self._orders.get(key)
            trade = tracked.trade if tracked is not None else self._find_working(key)
            if self._dry_run or trade is None or trade.isDone():
                if tracked is None or not tracked.done:
                    # Nothing working at IB under this key: it is as cancelled as it will get.
                    self._terminal(key, OrderCancelled(key, order.ts, "not working at the broker"))
                continue
            self._cancel_at_ib(trade)

    async def snapshot(self, executions_since: datetime | None) -> BrokerSnapshot:
        position = await self.position()
        try:
            fills = await self._client.executions(executions_since)
        except (TimeoutError, ConnectionError) as exc:
            raise BrokerError(f"IB did not answer: {str(exc) or type(exc).__name__}") from exc
        return BrokerSnapshot(
            position=position,
            open_orders=self.working_orders(),
            executions=tuple(
                self._map_fill(execution, report) for execution, report in self._ours(fills)
            ),
        )

    def working_orders(self) -> tuple[BrokerOrder, ...]:
        """Our orders IB holds working now, from the connection's view; an order ib_async ended
        on its own say (a 10349, a refused change) counts as working until IB's open orders
        confirm its end: a reconcile meanwhile must not find a live leg missing."""
        trades = [
            t
            for t in self._client.open_trades()
            if self.is_ours(t.order.orderRef) and not t.isDone()
        ]
        listed = {id(t) for t in trades}
        trades += [
            tracked.trade
            for tracked in self._orders.values()
            if tracked.confirming and tracked.trade is not None and id(tracked.trade) not in listed
        ]
        return tuple(
            broker_order(t.order, t.orderStatus.remaining or t.order.totalQuantity) for t in trades
        )

    # -- the bracket, verified ----------------------------------------------------------------

    async def verify_protection(self) -> list[str]:
        """Ask IB's open orders: a stop or target of ours that IB holds as DAY, or not working
        outside regular hours, would not protect the position overnight (a TIF preset does this
        to children, ``reference/operations.md`` §6 #4). Each is modified back to GTC and
        ``outsideRth`` (same order id, same key). Returns what was put right, for the operator;
        a leg IB does not hold at all is the reconcile's to find (the engine fails closed)."""
        if self._dry_run or self._contract is None or not self._client.connected:
            return []
        trades = await self._client.open_orders()
        fixed: list[str] = []
        for trade in trades:
            order = trade.order
            key = order.orderRef
            if not self.is_ours(key) or protective_kind(key) is None or trade.isDone():
                continue
            tif, outside_rth = self._client.held_terms(order.orderId) or (
                order.tif,
                order.outsideRth,
            )
            wrong = []
            if tif != "GTC":
                wrong.append(f"time in force {tif or 'unset'}")
            if not outside_rth:
                wrong.append("not working outside regular hours")
            if not wrong:
                continue
            if self._holds:
                fixed.append(f"{key}: {', '.join(wrong)}; NOT modified ({self._hold_text()})")
                continue
            order.tif = "GTC"
            order.outsideRth = True
            order.transmit = True  # ib_async's copy of a bracket child still says False
            self._modifying.add(key)
            self._client.place(trade.contract or self._ready(), order)  # same id: a modify
            fixed.append(f"{key}: {', '.join(wrong)}; modified to GTC, outside regular hours")
        return fixed

    # -- after a reconnect --------------------------------------------------------------------

    async def resync(self) -> None:
        """Report what happened while the link was down, looking every order up by its key.

        Executions IB reports that we have not (fills during the outage) go out first; then orders
        we placed that IB holds working are accepted, and orders IB does not know (never arrived,
        or ended while we were away without a fill we could see) are reported cancelled.
        """
        ts = self._clock.now()
        self._report_executions(await self._client.executions(self.last_execution))
        working = {
            t.order.orderRef: t
            for t in self._client.open_trades()
            if self.is_ours(t.order.orderRef) and not t.isDone()
        }
        for key, tracked in list(self._orders.items()):
            if tracked.done:
                continue
            trade = working.get(key)
            if trade is not None:
                tracked.trade = trade
                if not tracked.accepted:
                    tracked.accepted = True
                    self._sink.put(OrderAccepted(key, ts))
            elif tracked.filled >= tracked.qty:
                tracked.done = True
            else:
                self._terminal(key, OrderCancelled(key, ts, "not working at IB after reconnect"))
        for key, trade in working.items():
            if key not in self._orders:
                # Working at IB from before this process (a restart): track it from now on.
                self._orders[key] = _Tracked(
                    key, trade, int(trade.order.totalQuantity), accepted=True
                )
                self._sink.put(OrderAccepted(key, ts))

    def _report_executions(self, fills: list[IbFill]) -> None:
        """Report the executions of ours in ``fills`` (an answer to reqExecutions) not yet reported."""
        for execution, report in self._ours(fills):
            self._report_fill(execution, report)

    def _ours(self, fills: list[IbFill]) -> list[tuple[Execution, CommissionReport]]:
        """Our executions in an answer to reqExecutions, each with IB's commission report."""
        # ib_async files commission reports on the fills it keeps (its own start-up request), not on
        # the copies a second request returns: take the reports from there.
        reports = {f.execution.execId: f.commissionReport for f in self._client.fills()}
        ours: list[tuple[Execution, CommissionReport]] = []
        for ib_fill in fills:
            execution = ib_fill.execution
            if self.is_ours(execution.orderRef):
                report = reports.get(execution.execId)
                if report is None or not report.commission > 0:
                    report = ib_fill.commissionReport
                ours.append((execution, report))
        return ours

    async def close(self) -> None:
        """Stop asking IB about refused cancels (the session is going away)."""
        tasks = list(self._confirmations)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def position(self) -> int:
        contract = self._ready()
        try:
            positions = await self._client.positions()
        except (TimeoutError, ConnectionError) as exc:
            raise BrokerError(f"IB did not answer: {str(exc) or type(exc).__name__}") from exc
        return sum(int(p.position) for p in positions if p.contract.conId == contract.conId)

    # -- ib_async callbacks -------------------------------------------------------------------

    def _on_status(self, trade: Trade) -> None:
        key = trade.order.orderRef
        tracked = self._orders.get(key)
        if tracked is None:
            if not self.is_ours(key):
                return
            tracked = self._orders[key] = _Tracked(key, trade, int(trade.order.totalQuantity))
        tracked.trade = trade
        status = trade.orderStatus.status
        ts = self._clock.now()
        if status in _WORKING:
            self._modifying.discard(key)  # IB has the change (or the order)
        if status in _WORKING and not tracked.accepted and not tracked.done:
            tracked.accepted = True
            self._sink.put(OrderAccepted(key, ts))
        elif status in _DONE and not tracked.done:
            code, text = _last_error(trade)
            if code is not None and key in self._modifying:
                # IB refused our change (ib_async ends the order all the same): the order itself
                # may be working, or have filled meanwhile. IB's open orders say which.
                self._modifying.discard(key)
                self._confirm(key, code, text)
                return
            if key == self._cancelling:
                # ib_async ends an order IB has not acknowledged yet (a bracket's parent, sent with
                # transmit False, still PendingSubmit) the moment we ask to cancel it, on its own
                # say: IB may well have filled it by then.
                self._confirm(key, None, "cancelled before IB acknowledged the order")
                return
            event: object
            if code is None:
                event = OrderCancelled(key, ts, text or status)
            else:
                # Only a code IB documents as ending an order ends it here. A refused cancel,
                # a warning (10349: ib_async 2.1 marks the live order Cancelled), an unknown
                # code: IB's open orders are asked first.
                action = classify(code).action
                if action is Action.REJECT or (action is Action.END_ORDER and not tracked.accepted):
                    event = OrderRejected(key, ts, in_plain_words(code, text), code)
                elif action is Action.END_ORDER:
                    event = OrderCancelled(key, ts, text or status)
                else:
                    self._confirm(key, code, text)
                    return
            # IB may say Cancelled before the executions of a part that filled: the engine must
            # see those fills first, so the cancel waits for them (or, at worst, for a resync).
            tracked.expected = max(tracked.expected, int(trade.orderStatus.filled))
            self._terminal(key, event)

    def _confirm(self, key: str, code: int | None, text: str) -> None:
        """A cancel of ``key`` ended it without IB's word (IB refused the cancel with ``code``, or
        ib_async decided alone): ask IB what became of it before the engine hears a word.

        The usual cause is a race (the order filled while the cancel was on its way, and IB's
        answer to the cancel can come before the execution reports): ending the order here would
        make its fill a fill of a finished order.
        """
        tracked = self._orders[key]
        if tracked.confirming:
            return
        tracked.confirming = True
        log.info("%s: %s (%s): asking IB what became of it", key, text, code or "no code")
        task = asyncio.get_running_loop().create_task(self._confirm_end(tracked, code, text))
        self._confirmations.add(task)
        task.add_done_callback(self._confirmations.discard)

    async def _confirm_end(self, tracked: _Tracked, code: int | None, text: str) -> None:
        try:
            # One socket, in order: IB answers these after every report it sent before them.
            fills = await self._client.executions(None)
            working = await self._client.open_orders()
        except (TimeoutError, ConnectionError) as exc:
            log.warning(
                "IB could not be asked about %s after its cancel (%s): the resync after a "
                "reconnect, or the reconcile, settles it",
                tracked.key,
                str(exc) or type(exc).__name__,
            )
            return
        finally:
            tracked.confirming = False
        self._report_executions(fills)
        if tracked.done:
            return  # filled: its executions ended it
        if any(t.order.orderRef == tracked.key for t in working):  # only open orders are listed
            log.info("%s is still working at IB after its cancel", tracked.key)
            return
        ts = self._clock.now()
        if code is None or tracked.accepted:
            event: object = OrderCancelled(
                tracked.key, ts, f"{text} ({tracked.filled} of {tracked.qty} filled at IB)"
            )
        else:
            event = OrderRejected(tracked.key, ts, in_plain_words(code, text), code)
        self._terminal(tracked.key, event)

    def _on_execution(self, trade: Trade, ib_fill: IbFill) -> None:
        execution = ib_fill.execution
        if not self.is_ours(execution.orderRef) or execution.execId in self._reported_execs:
            return
        if execution.execId in self._waiting:
            return
        report = ib_fill.commissionReport
        if report.execId == execution.execId and report.commission > 0:
            self._report_fill(execution, report)
            return
        tracked = self._orders.get(execution.orderRef)
        if tracked is not None:
            tracked.pending.add(execution.execId)
        handle = asyncio.get_running_loop().call_later(
            self._commission_wait, self._commission_overdue, execution.execId
        )
        self._waiting[execution.execId] = (ib_fill, handle)

    def _on_commission(self, trade: Trade, ib_fill: IbFill, report: CommissionReport) -> None:
        waiting = self._waiting.pop(report.execId, None)
        if waiting is None:
            # IB repeats a known execution's report on every resync: only a fill booked at the
            # configured rate is worth a word.
            if report.execId in self._booked_at_rate:
                log.warning(
                    "commission %s for execution %s came after the fill was booked at the "
                    "configured rate",
                    report.commission,
                    report.execId,
                )
            return
        waiting[1].cancel()
        self._report_fill(waiting[0].execution, report)

    def _commission_overdue(self, exec_id: str) -> None:
        waiting = self._waiting.pop(exec_id, None)
        if waiting is None:
            return
        log.warning("no commission report for execution %s: booking the configured rate", exec_id)
        self._booked_at_rate.add(exec_id)
        self._report_fill(waiting[0].execution, None)

    # -- internals ----------------------------------------------------------------------------

    def _ready(self) -> Contract:
        if not self._client.connected:
            raise BrokerError("not connected to IB Gateway")
        if self._contract is None:
            raise BrokerError("no contract resolved yet")
        return self._contract

    def _sendable(self) -> Contract:
        contract = self._ready()
        if self._holds:
            raise BrokerError(f"no order sent: {self._hold_text()}")
        return contract

    def _hold_text(self) -> str:
        return "; ".join(self._holds.values())

    def _send(self, contract: Contract, ib_order: Order) -> None:
        key = ib_order.orderRef
        trade = self._client.place(contract, ib_order)
        self._orders[key] = _Tracked(key, trade, int(ib_order.totalQuantity))

    def _cancel_at_ib(self, trade: Trade) -> None:
        self._cancelling = trade.order.orderRef
        try:
            self._client.cancel(trade.order)
        finally:
            self._cancelling = None

    def _dry_run_accept(self, keys: list[str], ts: datetime) -> None:
        for key in keys:
            self._orders[key] = _Tracked(key, None, 0, accepted=True)
            self._sink.put(OrderAccepted(key, ts))

    def _find_working(self, key: str) -> Trade | None:
        for trade in self._client.open_trades():
            if trade.order.orderRef == key:
                return trade
        return None

    def _map_fill(self, execution: Execution, report: CommissionReport | None) -> Fill:
        return domain_fill(
            execution,
            report,
            instrument=self._instrument,
            fallback_commission_per_contract=self._commission,
        )

    def _report_fill(self, execution: Execution, report: CommissionReport | None) -> None:
        exec_id = execution.execId
        if exec_id in self._reported_execs:
            return
        waiting = self._waiting.pop(exec_id, None)
        if waiting is not None:
            waiting[1].cancel()
        try:
            fill = self._map_fill(execution, report)
        except MappingError as exc:
            log.error("execution %s cannot be booked: %s", exec_id, exc)
            return
        self._reported_execs.add(exec_id)
        if self.last_execution is None or fill.ts > self.last_execution:
            self.last_execution = fill.ts
        kind = protective_kind(fill.order_key)
        self._sink.put(OrderFilled(fill) if kind is None else ProtectiveExitFilled(fill, kind))
        tracked = self._orders.get(fill.order_key)
        if tracked is None:
            tracked = self._orders[fill.order_key] = _Tracked(fill.order_key, None, fill.qty)
        tracked.filled += fill.qty
        tracked.pending.discard(exec_id)
        if tracked.filled >= tracked.qty:
            tracked.done = True
        if not tracked.pending and tracked.filled >= tracked.expected and tracked.deferred:
            for event in tracked.deferred:
                self._sink.put(event)  # type: ignore[arg-type]
            tracked.deferred.clear()

    def _terminal(self, key: str, event: object) -> None:
        tracked = self._orders.get(key)
        if tracked is None:
            tracked = self._orders[key] = _Tracked(key, None, 0)
        if tracked.done:
            return  # reported once: a fully filled or already ended order has nothing to add
        tracked.done = True
        if tracked.pending or tracked.filled < tracked.expected:
            tracked.deferred.append(event)
            # Executions IB has not sent yet: wait for them, then give up waiting and let the
            # reconcile that follows a cancel find any difference. (Released earlier, it is a no-op.)
            asyncio.get_running_loop().call_later(
                max(self._commission_wait, 1.0) * 2, self._release, key
            )
        else:
            self._sink.put(event)  # type: ignore[arg-type]

    def _release(self, key: str) -> None:
        tracked = self._orders.get(key)
        if tracked is None or not tracked.deferred:
            return
        log.warning(
            "order %s ended with %d reported of %d filled at IB: passing its end on",
            key,
            tracked.filled,
            tracked.expected,
        )
        for event in tracked.deferred:
            self._sink.put(event)  # type: ignore[arg-type]
        tracked.deferred.clear()


def _last_error(trade: Trade) -> tuple[int | None, str]:
    """The error IB attached to a trade's log since it last reported the order working (201
    rejected, 202 cancelled...): a 10349 the order outlived says nothing about how it ended."""
    for entry in reversed(trade.log):
        if entry.errorCode:
            return entry.errorCode, _IB_PREFIX.sub("", entry.message)
        if entry.status in _WORKING:
            break
    return None, ""
