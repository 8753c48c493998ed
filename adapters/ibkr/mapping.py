"""Pure translation between ib_async's types and the domain's. No I/O, no connection state.

Nothing from ib_async leaves ``adapters/ibkr``: these functions are the only place that knows both
sides. Prices arrive as floats from ib_async; they are turned into exact Decimals through their
shortest repr (``5000.25`` stays ``5000.25``) and checked against the tick grid where a fill is
booked.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal

from ib_async import BarData, CommissionReport, ContractDetails, Execution, Order, RealTimeBar
from ib_async import Future as IbFuture

from application.ports import BrokerOrder
from domain.bar import Bar
from domain.commands import PlaceBracket, PlaceExit, PlaceProtective
from domain.contract import FutureContract
from domain.events import ProtectiveKind
from domain.position import Fill
from domain.values import Action, Instrument

UNSET_DOUBLE = 1.7976931348623157e308

OCA_CANCEL_WITH_BLOCK = 1
"""IB ocaType 1: a fill cancels the group's other orders, with overfill protection."""


class MappingError(ValueError):
    """IB sent something the domain cannot represent (an off-tick price, an unknown side...)."""


# -- contracts ------------------------------------------------------------------------------------


def contract_from_details(details: ContractDetails) -> FutureContract:
    """A listed future from IB's contract details. The expiry is IB's own last trade date."""
    contract = details.contract
    if contract is None:
        raise MappingError("contract details without a contract")
    raw = (details.realExpirationDate or contract.lastTradeDateOrContractMonth or "").strip()
    expiry = parse_ib_date(raw.split(" ")[0])
    return FutureContract(
        symbol=contract.symbol,
        expiry=expiry,
        local_symbol=contract.localSymbol,
        con_id=contract.conId or None,
    )


def parse_ib_date(text: str) -> date:
    """``YYYYMMDD`` as IB writes dates."""
    if len(text) != 8 or not text.isdigit():
        raise MappingError(f"expected a YYYYMMDD date from IB, got {text!r}")
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def ib_future(contract: FutureContract, *, exchange: str, currency: str) -> IbFuture:
    """The IB contract to trade: by conId when known (IB's own identity), else by local symbol."""
    if contract.con_id is not None:
        return IbFuture(conId=contract.con_id, exchange=exchange, currency=currency)
    return IbFuture(
        symbol=contract.symbol,
        localSymbol=contract.local_symbol,
        exchange=exchange,
        currency=currency,
    )


# -- bars -----------------------------------------------------------------------------------------


def bar_from_realtime(rt: RealTimeBar) -> Bar:
    """A 5-second real-time bar; IB stamps it with its start."""
    return Bar(_utc(rt.time), 5, rt.open_, rt.high, rt.low, rt.close, _volume(rt.volume))


def bar_from_historical(bar: BarData, seconds: int) -> Bar:
    """A historical bar requested with ``formatDate=2`` (its date is an aware UTC datetime)."""
    start = bar.date
    if not isinstance(start, datetime):
        raise MappingError(f"historical bar dated {start!r}: request intraday bars, formatDate=2")
    return Bar(_utc(start), seconds, bar.open, bar.high, bar.low, bar.close, _volume(bar.volume))


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise MappingError(f"IB time {at!r} has no timezone (request formatDate=2)")
    return at.astimezone(UTC)


def _volume(volume: float | Decimal) -> int:
    # IB reports -1 when it has no volume for the bar.
    return max(0, int(volume))


# -- orders ---------------------------------------------------------------------------------------


def price(value: float | Decimal) -> Decimal:
    """An IB float price as an exact Decimal (its shortest repr)."""
    if isinstance(value, Decimal):
        return value
    if not math.isfinite(value) or value == UNSET_DOUBLE:
        raise MappingError(f"IB sent no usable price ({value!r})")
    return Decimal(repr(float(value)))


def bracket_orders(order: PlaceBracket, *, account: str) -> list[Order]:
    """Parent market entry, stop and target, as DESIGN section 3 specifies.

    Children are GTC and ``outsideRth`` (IB simulates futures stops and would only trigger them in
    regular hours otherwise), in one OCA group, and only the last order transmits, so nothing goes
    live until all of them are at IB. Order ids are assigned by the caller (the children need the
    parent's id).
    """
    entry_action = order.side.entry_action.value
    exit_action = order.side.exit_action.value
    parent = Order(
        action=entry_action,
        totalQuantity=order.qty,
        orderType="MKT",
        tif="GTC",
        orderRef=order.entry_key,
        account=account,
        transmit=False,
    )
    children: list[Order] = []
    for key, kind, level in (
        (order.stop_key, ProtectiveKind.STOP, order.stop_price),
        (order.target_key, ProtectiveKind.TARGET, order.target_price),
    ):
        if key is None or level is None:
            continue
        leg = _protective(key, exit_action, order.qty, kind, level, order.oca_group, account)
        leg.transmit = False
        children.append(leg)
    orders = [parent, *children]
    orders[-1].transmit = True
    return orders


def protective_order(order: PlaceProtective, *, account: str) -> Order:
    """A lost bracket leg placed again on its own: as the bracket's children are, and transmitted."""
    return _protective(
        order.key,
        order.action.value,
        order.qty,
        order.kind,
        order.price,
        order.oca_group,
        account,
    )


def _protective(
    key: str,
    action: str,
    qty: int,
    kind: ProtectiveKind,
    level: Decimal,
    oca_group: str | None,
    account: str,
) -> Order:
    """A stop (STP at ``auxPrice``) or target (LMT at ``lmtPrice``): GTC and ``outsideRth`` (IB
    simulates futures stops and would trigger them in regular hours only otherwise)."""
    leg = Order(
        action=action,
        totalQuantity=qty,
        orderType="STP" if kind is ProtectiveKind.STOP else "LMT",
        tif="GTC",
        outsideRth=True,
        orderRef=key,
        account=account,
        transmit=True,
    )
    if oca_group is not None:
        leg.ocaGroup = oca_group
        leg.ocaType = OCA_CANCEL_WITH_BLOCK
    setattr(leg, "auxPrice" if kind is ProtectiveKind.STOP else "lmtPrice", float(level))
    return leg


def exit_order(order: PlaceExit, *, account: str) -> Order:
    """A market exit, in the bracket's OCA group so that whichever fills first cancels the rest."""
    exit_ = Order(
        action=order.action.value,
        totalQuantity=order.qty,
        orderType="MKT",
        tif="GTC",
        outsideRth=True,
        orderRef=order.key,
        account=account,
        transmit=True,
    )
    if order.oca_group is not None:
        exit_.ocaGroup = order.oca_group
        exit_.ocaType = OCA_CANCEL_WITH_BLOCK
    return exit_


def action_from_side(side: str) -> Action:
    """IB execution sides: BOT and SLD."""
    if side == "BOT":
        return Action.BUY
    if side == "SLD":
        return Action.SELL
    raise MappingError(f"unknown execution side {side!r}")


def domain_fill(
    execution: Execution,
    report: CommissionReport | None,
    *,
    instrument: Instrument,
    fallback_commission_per_contract: Decimal,
) -> Fill:
    """One execution as a domain fill. Without a commission report the configured rate is used."""
    qty = int(execution.shares)
    if qty != execution.shares or qty <= 0:
        raise MappingError(f"execution {execution.execId}: quantity {execution.shares}")
    fill_price = price(execution.price)
    instrument.ticks(fill_price)  # raises on an off-tick price
    if report is not None and report.execId == execution.execId and report.commission > 0:
        commission = price(report.commission)
    else:
        commission = fallback_commission_per_contract * qty
    return Fill(
        exec_id=execution.execId,
        order_key=execution.orderRef,
        action=action_from_side(execution.side),
        qty=qty,
        price=fill_price,
        ts=_utc(execution.time),
        commission=commission,
    )


def broker_order(order: Order, remaining: float) -> BrokerOrder:
    """An order IB still holds, as the Broker port reports it."""
    kind = order.orderType
    level: float | Decimal | None = None
    if kind == "STP":
        level = order.auxPrice
    elif kind == "LMT":
        level = order.lmtPrice
    return BrokerOrder(
        key=order.orderRef,
        action=order.action,
        qty=int(remaining),
        order_type=kind,
        price=str(price(level)) if level is not None else None,
    )
