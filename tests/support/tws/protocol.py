"""TWS API wire format at server versions 176-178: framing, message builders and request parsers.

Every server->client message is built by exactly one function here, and each builder checks the
field count that `ib_async` 2.1.0 and `ibapi` decode (see shared/reference/tws-protocol.md §5), so
an arity mistake fails where it is made instead of as a silent decode error in the client.
"""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tests.support.tws.contracts import ListedFuture

MIN_SERVER_VERSION = 176
MAX_SERVER_VERSION = 178
FA_PROFILE_DESUPPORT = 177  # openOrder carries faProfile below this version
PENDING_PRICE_REVISION = 178  # execDetails carries pendingPriceRevision from this version

HANDSHAKE_PREFIX = b"API\0"
MAX_FRAME = 16 * 1024 * 1024
UNSET_DOUBLE_TEXT = "1.7976931348623157E308"

Message = list[str]


class ProtocolError(ValueError):
    """A client message that does not follow the TWS API layout."""


# ---------------------------------------------------------------- framing


def encode_frame(fields: Sequence[str]) -> bytes:
    """A 4-byte big-endian length, then each field NUL-terminated."""
    payload = "".join(f"{field}\0" for field in fields).encode()
    return struct.pack(">I", len(payload)) + payload


def split_payload(payload: bytes) -> list[str]:
    """Fields of one payload, decoded the way `ib_async` does it."""
    fields = payload.decode(errors="backslashreplace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


async def read_payload(reader: asyncio.StreamReader) -> bytes:
    """One length-prefixed payload; raises IncompleteReadError at EOF."""
    (size,) = struct.unpack(">I", await reader.readexactly(4))
    if size > MAX_FRAME:
        raise ProtocolError(f"frame of {size} bytes exceeds the {MAX_FRAME}-byte limit")
    return await reader.readexactly(size)


_VERSION_RANGE = re.compile(r"v(\d+)(?:\.\.(\d+))?")


def parse_version_range(payload: bytes) -> tuple[int, int]:
    """The client's `vMIN..MAX` (options such as ` +PACEAPI` may follow)."""
    text = payload.decode(errors="replace").strip("\0 ")
    match = _VERSION_RANGE.match(text)
    if match is None:
        raise ProtocolError(f"handshake {text!r} is not 'vMIN..MAX'")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    return low, high


# ---------------------------------------------------------------- value formatting


def fmt_decimal(value: Decimal | int | None) -> str:
    """Plain decimal text; None is the empty (unset) field."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def fmt_bool(value: bool) -> str:
    return "1" if value else "0"


def fmt_ib_time(moment: datetime) -> str:
    """`YYYYMMDD HH:MM:SS UTC`, a form both `ib_async` and `ibapi` accept."""
    return moment.astimezone(UTC).strftime("%Y%m%d %H:%M:%S UTC")


def _checked(fields: Message, expected: int, name: str) -> Message:
    if len(fields) != expected:
        raise AssertionError(f"{name}: built {len(fields)} fields, the layout needs {expected}")
    return fields


def _check_version(server_version: int) -> None:
    if not MIN_SERVER_VERSION <= server_version <= MAX_SERVER_VERSION:
        raise ValueError(
            f"server version {server_version} is outside the supported "
            f"{MIN_SERVER_VERSION}..{MAX_SERVER_VERSION}"
        )


def _contract11(future: ListedFuture, *, exchange: str | None = None) -> Message:
    """conId .. tradingClass without primaryExchange (position, execDetails, openOrder)."""
    return [
        str(future.con_id),
        future.symbol,
        future.sec_type,
        future.last_trade_date_ib,
        "0",
        "",
        future.multiplier,
        future.exchange if exchange is None else exchange,
        future.currency,
        future.local_symbol,
        future.trading_class,
    ]


# ---------------------------------------------------------------- server -> client builders


def handshake_reply(server_version: int, connection_time: datetime) -> Message:
    """The 2-field handshake answer: no message id."""
    _check_version(server_version)
    return _checked(
        [str(server_version), connection_time.astimezone(UTC).strftime("%Y%m%d %H:%M:%S UTC")],
        2,
        "handshake",
    )


def next_valid_id(order_id: int) -> Message:
    return _checked(["9", "1", str(order_id)], 3, "nextValidId")


def managed_accounts(accounts: Sequence[str]) -> Message:
    return _checked(["15", "1", ",".join(accounts)], 3, "managedAccounts")


def current_time(epoch_seconds: int) -> Message:
    return _checked(["49", "1", str(epoch_seconds)], 3, "currentTime")


def error(req_id: int, code: int, text: str, advanced_order_reject_json: str = "") -> Message:
    """Error or notice; the advancedOrderRejectJson field exists from server version 166."""
    return _checked(
        ["4", "2", str(req_id), str(code), text, advanced_order_reject_json], 6, "error"
    )


def contract_details(
    req_id: int,
    future: ListedFuture,
    *,
    trading_hours: str,
    liquid_hours: str,
    sec_type: str | None = None,
) -> Message:
    """contractDetails at server >= 164 (no version field, no secIds): 40 fields."""
    return _checked(
        [
            "10",
            str(req_id),
            future.symbol,
            future.sec_type if sec_type is None else sec_type,
            future.last_trade_date_ib,
            "0",
            "",
            future.exchange,
            future.currency,
            future.local_symbol,
            future.trading_class,  # marketName
            future.trading_class,
            str(future.con_id),
            repr(future.min_tick),
            future.multiplier,
            "ACTIVETIM,AD,ALERT,ALLOC,DAY,GAT,GTC,GTD,IOC,LIT,LMT,MIT,MKT,OCA,STP,STPLMT,TRAIL",
            f"{future.exchange},QBALGO",
            "1",  # priceMagnifier
            "0",  # underConId
            future.long_name,
            "",  # primaryExchange
            future.contract_month,
            "",  # industry
            "",  # category
            "",  # subcategory
            future.time_zone_id,
            trading_hours,
            liquid_hours,
            "",  # evRule
            "",  # evMultiplier
            "0",  # secIdList count
            "2147483647",  # aggGroup
            future.symbol,  # underSymbol
            "IND",  # underSecType
            "2463",  # marketRuleIds
            future.last_trade_date_ib,  # realExpirationDate
            "",  # stockType
            "1",  # minSize
            "1",  # sizeIncrement
            "1",  # suggestedSizeIncrement
        ],
        40,
        "contractDetails",
    )


def contract_details_end(req_id: int) -> Message:
    return _checked(["52", "1", str(req_id)], 3, "contractDetailsEnd")


@dataclass(frozen=True)
class BarFields:
    """One OHLCV bar as it goes on the wire."""

    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    wap: Decimal
    count: int


def realtime_bar(req_id: int, start_epoch: int, bar: BarFields) -> Message:
    return _checked(
        [
            "50",
            "3",
            str(req_id),
            str(start_epoch),
            fmt_decimal(bar.open),
            fmt_decimal(bar.high),
            fmt_decimal(bar.low),
            fmt_decimal(bar.close),
            str(bar.volume),
            fmt_decimal(bar.wap),
            str(bar.count),
        ],
        11,
        "realtimeBar",
    )


def historical_data(
    req_id: int, start_text: str, end_text: str, bars: Sequence[tuple[str, BarFields]]
) -> Message:
    """historicalData (no version field); at <= 178 it also ends the request."""
    fields = ["17", str(req_id), start_text, end_text, str(len(bars))]
    for date_text, bar in bars:
        fields += [
            date_text,
            fmt_decimal(bar.open),
            fmt_decimal(bar.high),
            fmt_decimal(bar.low),
            fmt_decimal(bar.close),
            str(bar.volume),
            fmt_decimal(bar.wap),
            str(bar.count),
        ]
    return _checked(fields, 5 + 8 * len(bars), "historicalData")


def historical_data_update(req_id: int, date_text: str, bar: BarFields) -> Message:
    """keepUpToDate update; note the open, close, high, low order."""
    return _checked(
        [
            "90",
            str(req_id),
            str(bar.count),
            date_text,
            fmt_decimal(bar.open),
            fmt_decimal(bar.close),
            fmt_decimal(bar.high),
            fmt_decimal(bar.low),
            fmt_decimal(bar.wap),
            str(bar.volume),
        ],
        10,
        "historicalDataUpdate",
    )


class OrderFields(Protocol):
    """What openOrder and orderStatus need to know about an order."""

    @property
    def order_id(self) -> int: ...

    @property
    def client_id(self) -> int: ...

    @property
    def perm_id(self) -> int: ...

    @property
    def account(self) -> str: ...

    @property
    def action(self) -> str: ...

    @property
    def quantity(self) -> int: ...

    @property
    def order_type(self) -> str: ...

    @property
    def lmt_price(self) -> Decimal | None: ...

    @property
    def aux_price(self) -> Decimal | None: ...

    @property
    def tif(self) -> str: ...

    @property
    def oca_group(self) -> str: ...

    @property
    def oca_type(self) -> int: ...

    @property
    def parent_id(self) -> int: ...

    @property
    def order_ref(self) -> str: ...

    @property
    def outside_rth(self) -> bool: ...


@dataclass(frozen=True)
class WhatIf:
    """A what-if answer's margins (the order state's nine figures) and warning, in USD."""

    init_before: Decimal
    maint_before: Decimal
    equity_before: Decimal
    init_after: Decimal
    maint_after: Decimal
    equity_after: Decimal
    commission: Decimal
    warning: str = ""


def open_order(
    server_version: int,
    order: OrderFields,
    future: ListedFuture,
    status: str,
    what_if: WhatIf | None = None,
) -> Message:
    """openOrder at server >= 145: 127 fields at 177-178, 128 below 177 (faProfile); with
    ``what_if``, the answer to a what-if placeOrder (whatIf 1 and the order state's margins)."""
    _check_version(server_version)
    fields = [
        "5",
        str(order.order_id),
        *_contract11(future),
        order.action,
        str(order.quantity),
        order.order_type,
        fmt_decimal(order.lmt_price),
        fmt_decimal(order.aux_price),
        order.tif,
        order.oca_group,
        order.account,
        "",  # openClose
        "0",  # origin: customer
        order.order_ref,
        str(order.client_id),
        str(order.perm_id),
        fmt_bool(order.outside_rth),
        "0",  # hidden
        "0",  # discretionaryAmt
        "",  # goodAfterTime
        "",  # deprecated sharesAllocation
        "",  # faGroup
        "",  # faMethod
        "",  # faPercentage
    ]
    if server_version < FA_PROFILE_DESUPPORT:
        fields.append("")  # faProfile
    fields += [
        "",  # modelCode
        "",  # goodTillDate
        "",  # rule80A
        "",  # percentOffset
        "",  # settlingFirm
        "0",  # shortSaleSlot
        "",  # designatedLocation
        "-1",  # exemptCode
        "0",  # auctionStrategy
        "",  # startingPrice
        "",  # stockRefPrice
        "",  # delta
        "",  # stockRangeLower
        "",  # stockRangeUpper
        "",  # displaySize
        "0",  # blockOrder
        "0",  # sweepToFill
        "0",  # allOrNone
        "",  # minQty
        str(order.oca_type),
        "0",  # eTradeOnly
        "0",  # firmQuoteOnly
        "",  # nbboPriceCap
        str(order.parent_id),
        "0",  # triggerMethod
        "",  # volatility
        "0",  # volatilityType
        "",  # deltaNeutralOrderType: empty, so its 8 optional fields are absent
        "",  # deltaNeutralAuxPrice
        "0",  # continuousUpdate
        "0",  # referencePriceType
        "",  # trailStopPrice
        "",  # trailingPercent
        "",  # basisPoints
        "",  # basisPointsType
        "",  # comboLegsDescrip
        "0",  # combo legs count
        "0",  # order combo legs count
        "0",  # smart combo routing params count
        "",  # scaleInitLevelSize
        "",  # scaleSubsLevelSize
        "",  # scalePriceIncrement: empty, so no scale fields
        "",  # hedgeType: empty, so no hedgeParam
        "0",  # optOutSmartRouting
        "",  # clearingAccount
        "",  # clearingIntent
        "0",  # notHeld
        "0",  # delta-neutral contract present
        "",  # algoStrategy: empty, so no algo params
        "0",  # solicited
        fmt_bool(what_if is not None),  # whatIf
        status,
        *_margins(what_if),  # init/maint/equity-with-loan margins before, change, after
        fmt_decimal(what_if.commission) if what_if else "",  # commission
        "",  # minCommission
        "",  # maxCommission
        "USD" if what_if else "",  # commissionCurrency
        what_if.warning if what_if else "",  # warningText
        "0",  # randomizeSize
        "0",  # randomizePrice
        "0",  # conditions count
        "",  # adjustedOrderType
        "",  # triggerPrice
        "",  # trailStopPrice
        "",  # lmtPriceOffset
        "",  # adjustedStopPrice
        "",  # adjustedStopLimitPrice
        "",  # adjustedTrailingAmount
        "0",  # adjustableTrailingUnit
        "",  # softDollarTier name
        "",  # softDollarTier value
        "",  # softDollarTier displayName
        "",  # cashQty
        "0",  # dontUseAutoPriceForHedge
        "0",  # isOmsContainer
        "0",  # discretionaryUpToLimitPrice
        "0",  # usePriceMgmtAlgo
        "",  # duration
        "",  # postToAts
        "0",  # autoCancelParent
        "",  # minTradeQty
        "",  # minCompeteSize
        "",  # competeAgainstBestOffset
        "",  # midOffsetAtWhole
        "",  # midOffsetAtHalf
    ]
    expected = 127 if server_version >= FA_PROFILE_DESUPPORT else 128
    return _checked(fields, expected, "openOrder")


def _margins(what_if: WhatIf | None) -> list[str]:
    if what_if is None:
        return [""] * 9
    w = what_if
    return [
        fmt_decimal(v)
        for v in (
            w.init_before,
            w.maint_before,
            w.equity_before,
            w.init_after - w.init_before,
            w.maint_after - w.maint_before,
            w.equity_after - w.equity_before,
            w.init_after,
            w.maint_after,
            w.equity_after,
        )
    ]


def open_order_end() -> Message:
    return _checked(["53", "1"], 2, "openOrderEnd")


def order_status(
    *,
    order_id: int,
    status: str,
    filled: int,
    remaining: int,
    avg_fill_price: Decimal,
    perm_id: int,
    parent_id: int,
    last_fill_price: Decimal,
    client_id: int,
    why_held: str = "",
) -> Message:
    """orderStatus at server >= 131: no version field, 12 fields."""
    return _checked(
        [
            "3",
            str(order_id),
            status,
            str(filled),
            str(remaining),
            fmt_decimal(avg_fill_price),
            str(perm_id),
            str(parent_id),
            fmt_decimal(last_fill_price),
            str(client_id),
            why_held,
            "0",  # mktCapPrice
        ],
        12,
        "orderStatus",
    )


class ExecutionFields(Protocol):
    """What execDetails needs to know about an execution."""

    @property
    def exec_id(self) -> str: ...

    @property
    def order_id(self) -> int: ...

    @property
    def perm_id(self) -> int: ...

    @property
    def client_id(self) -> int: ...

    @property
    def order_ref(self) -> str: ...

    @property
    def account(self) -> str: ...

    @property
    def side(self) -> str: ...

    @property
    def shares(self) -> int: ...

    @property
    def price(self) -> Decimal: ...

    @property
    def time(self) -> datetime: ...

    @property
    def cum_qty(self) -> int: ...

    @property
    def avg_price(self) -> Decimal: ...


def exec_details(
    server_version: int, req_id: int, execution: ExecutionFields, future: ListedFuture
) -> Message:
    """execDetails (no version field): 32 fields at 178, 31 below (no pendingPriceRevision)."""
    _check_version(server_version)
    fields = [
        "11",
        str(req_id),
        str(execution.order_id),
        *_contract11(future),
        str(execution.exec_id),
        fmt_ib_time(execution.time),
        execution.account,
        future.exchange,
        execution.side,
        str(execution.shares),
        fmt_decimal(execution.price),
        str(execution.perm_id),
        str(execution.client_id),
        "0",  # liquidation
        str(execution.cum_qty),
        fmt_decimal(execution.avg_price),
        execution.order_ref,
        "",  # evRule
        "",  # evMultiplier
        "",  # modelCode
        "2",  # lastLiquidity: removed liquidity
    ]
    if server_version >= PENDING_PRICE_REVISION:
        fields.append("0")
    expected = 32 if server_version >= PENDING_PRICE_REVISION else 31
    return _checked(fields, expected, "execDetails")


def exec_details_end(req_id: int) -> Message:
    return _checked(["55", "1", str(req_id)], 3, "execDetailsEnd")


def commission_report(
    exec_id: str, commission: Decimal, currency: str, realized_pnl: Decimal | None
) -> Message:
    """commissionReport: exactly 8 fields; an opening fill reports realizedPNL as unset."""
    return _checked(
        [
            "59",
            "1",
            exec_id,
            fmt_decimal(commission),
            currency,
            UNSET_DOUBLE_TEXT if realized_pnl is None else fmt_decimal(realized_pnl),
            UNSET_DOUBLE_TEXT,  # yield
            "",  # yieldRedemptionDate
        ],
        8,
        "commissionReport",
    )


def position(account: str, future: ListedFuture, quantity: int, avg_cost: Decimal) -> Message:
    """position: exactly 16 fields; avgCost is per contract (price x multiplier)."""
    return _checked(
        ["61", "3", account, *_contract11(future), str(quantity), fmt_decimal(avg_cost)],
        16,
        "position",
    )


def position_end() -> Message:
    return _checked(["62", "1"], 2, "positionEnd")


def update_account_value(key: str, value: str, currency: str, account: str) -> Message:
    return _checked(["6", "2", key, value, currency, account], 6, "updateAccountValue")


def update_portfolio(
    *,
    future: ListedFuture,
    quantity: int,
    market_price: Decimal,
    market_value: Decimal,
    average_cost: Decimal,
    unrealized_pnl: Decimal,
    realized_pnl: Decimal,
    account: str,
) -> Message:
    """updatePortfolio: exactly 20 fields; it carries primaryExchange, not exchange."""
    return _checked(
        [
            "7",
            "8",
            *_contract11(future, exchange=""),
            str(quantity),
            fmt_decimal(market_price),
            fmt_decimal(market_value),
            fmt_decimal(average_cost),
            fmt_decimal(unrealized_pnl),
            fmt_decimal(realized_pnl),
            account,
        ],
        20,
        "updatePortfolio",
    )


def update_account_time(hh_mm: str) -> Message:
    return _checked(["8", "1", hh_mm], 3, "updateAccountTime")


def account_download_end(account: str) -> Message:
    return _checked(["54", "1", account], 3, "accountDownloadEnd")


def account_update_multi(
    req_id: int, account: str, model_code: str, key: str, value: str, currency: str
) -> Message:
    return _checked(
        ["73", "1", str(req_id), account, model_code, key, value, currency],
        8,
        "accountUpdateMulti",
    )


def account_update_multi_end(req_id: int) -> Message:
    return _checked(["74", "1", str(req_id)], 3, "accountUpdateMultiEnd")


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> Message:
    return _checked(["63", "1", str(req_id), account, tag, value, currency], 7, "accountSummary")


def account_summary_end(req_id: int) -> Message:
    return _checked(["64", "1", str(req_id)], 3, "accountSummaryEnd")


def completed_orders_end() -> Message:
    """completedOrdersEnd: the id only."""
    return _checked(["102"], 1, "completedOrdersEnd")


# ---------------------------------------------------------------- client -> server parsers


def _int(fields: Message, index: int, name: str) -> int:
    try:
        text = fields[index]
    except IndexError:
        raise ProtocolError(f"{name} missing at field {index} of {fields[:3]}...") from None
    if text == "":
        return 0
    try:
        return int(text)
    except ValueError:
        try:
            as_float = float(text)
        except ValueError:
            raise ProtocolError(f"{name} {text!r} at field {index} is not a number") from None
        if not as_float.is_integer():
            raise ProtocolError(f"{name} {text!r} at field {index} is not whole") from None
        return int(as_float)


def _decimal(text: str, name: str) -> Decimal | None:
    if text == "":
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ProtocolError(f"{name} {text!r} is not a number") from None


def _need(fields: Message, count: int, name: str) -> None:
    if len(fields) < count:
        raise ProtocolError(f"{name} has {len(fields)} fields, at least {count} expected")


@dataclass(frozen=True)
class ContractSpec:
    """The 12 contract fields `ib_async` sends in requests."""

    con_id: int
    symbol: str
    sec_type: str
    last_trade_date_or_contract_month: str
    strike: str
    right: str
    multiplier: str
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str
    trading_class: str


def parse_contract(fields: Message, start: int) -> ContractSpec:
    _need(fields, start + 12, "contract")
    return ContractSpec(
        _int(fields, start, "conId"),
        *fields[start + 1 : start + 12],
    )


def parse_start_api(fields: Message) -> int:
    """startApi `71, 2, clientId, optCapab`: the client id."""
    _need(fields, 3, "startApi")
    return _int(fields, 2, "clientId")


@dataclass(frozen=True)
class PlaceOrder:
    """The placeOrder fields the gateway acts on."""

    order_id: int
    contract: ContractSpec
    action: str
    quantity: Decimal
    order_type: str
    lmt_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    oca_group: str
    account: str
    order_ref: str
    transmit: bool
    parent_id: int
    outside_rth: bool
    oca_type: int
    what_if: bool = False


def parse_place_order(fields: Message, server_version: int) -> PlaceOrder:
    """placeOrder (id 3, no version field): 114 fields at 177-178, 115 at 176 (faProfile)."""
    oca_type_index = 46 if server_version >= FA_PROFILE_DESUPPORT else 47
    _need(fields, oca_type_index + 1, "placeOrder")
    quantity = _decimal(fields[17], "totalQuantity")
    if quantity is None:
        raise ProtocolError("placeOrder without totalQuantity")
    return PlaceOrder(
        order_id=_int(fields, 1, "orderId"),
        contract=parse_contract(fields, 2),
        action=fields[16],
        quantity=quantity,
        order_type=fields[18],
        lmt_price=_decimal(fields[19], "lmtPrice"),
        aux_price=_decimal(fields[20], "auxPrice"),
        tif=fields[21],
        oca_group=fields[22],
        account=fields[23],
        order_ref=fields[26],
        transmit=fields[27] == "1",
        parent_id=_int(fields, 28, "parentId"),
        outside_rth=fields[33] == "1",
        oca_type=_int(fields, oca_type_index, "ocaType"),
        # whatIf stands 38 fields after ocaType (ibapi's placeOrder at these versions).
        what_if=len(fields) > oca_type_index + 38 and fields[oca_type_index + 38] == "1",
    )


@dataclass(frozen=True)
class ExecutionsRequest:
    req_id: int
    client_id: int
    account: str
    time: str
    symbol: str
    sec_type: str
    exchange: str
    side: str


def parse_executions_request(fields: Message) -> ExecutionsRequest:
    """reqExecutions `7, 3, reqId, clientId, acctCode, time, symbol, secType, exchange, side`."""
    _need(fields, 10, "reqExecutions")
    return ExecutionsRequest(_int(fields, 2, "reqId"), _int(fields, 3, "clientId"), *fields[4:10])


@dataclass(frozen=True)
class ContractDetailsRequest:
    req_id: int
    contract: ContractSpec
    include_expired: bool


def parse_contract_details_request(fields: Message) -> ContractDetailsRequest:
    """reqContractDetails `9, 8, reqId, contract(12), includeExpired, secIdType, secId[, issuerId]`."""
    _need(fields, 16, "reqContractDetails")
    return ContractDetailsRequest(
        _int(fields, 2, "reqId"), parse_contract(fields, 3), fields[15] == "1"
    )


@dataclass(frozen=True)
class RealTimeBarsRequest:
    req_id: int
    contract: ContractSpec
    bar_size: int
    what_to_show: str
    use_rth: bool


def parse_real_time_bars_request(fields: Message) -> RealTimeBarsRequest:
    """reqRealTimeBars `50, 3, reqId, contract(12), barSize, whatToShow, useRTH, options`."""
    _need(fields, 18, "reqRealTimeBars")
    return RealTimeBarsRequest(
        _int(fields, 2, "reqId"),
        parse_contract(fields, 3),
        _int(fields, 15, "barSize"),
        fields[16],
        fields[17] == "1",
    )


@dataclass(frozen=True)
class HistoricalDataRequest:
    req_id: int
    contract: ContractSpec
    end_date_time: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool


def parse_historical_data_request(fields: Message) -> HistoricalDataRequest:
    """reqHistoricalData (no version field): 23 fields for a non-BAG contract."""
    _need(fields, 23, "reqHistoricalData")
    return HistoricalDataRequest(
        req_id=_int(fields, 1, "reqId"),
        contract=parse_contract(fields, 2),
        end_date_time=fields[15],
        bar_size=fields[16],
        duration=fields[17],
        use_rth=fields[18] == "1",
        what_to_show=fields[19],
        format_date=_int(fields, 20, "formatDate"),
        keep_up_to_date=fields[21] == "1",
    )


def parse_req_id(fields: Message, name: str) -> int:
    """The reqId of `id, version, reqId, ...` messages (cancels, account requests)."""
    _need(fields, 3, name)
    return _int(fields, 2, "reqId")


def parse_order_id(fields: Message) -> int:
    """cancelOrder `4, 1, orderId[, manualOrderCancelTime]`."""
    _need(fields, 3, "cancelOrder")
    return _int(fields, 2, "orderId")


@dataclass(frozen=True)
class AccountSummaryRequest:
    req_id: int
    group: str
    tags: tuple[str, ...]


def parse_account_summary_request(fields: Message) -> AccountSummaryRequest:
    """reqAccountSummary `62, 1, reqId, group, tags`."""
    _need(fields, 5, "reqAccountSummary")
    tags = tuple(tag for tag in fields[4].split(",") if tag)
    return AccountSummaryRequest(_int(fields, 2, "reqId"), fields[3], tags)


def parse_ib_datetime(text: str) -> datetime:
    """`YYYYMMDD HH:MM:SS[ TZ]` or `YYYYMMDD-HH:MM:SS` (UTC); a naive time is taken as UTC."""
    text = text.strip()
    if "-" in text[:9] and len(text) == 17:
        return datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
    parts = text.split()
    if len(parts) not in (2, 3):
        raise ProtocolError(f"date-time {text!r} is not 'YYYYMMDD HH:MM:SS[ TZ]'")
    try:
        as_utc = datetime.strptime(f"{parts[0]} {parts[1]} +0000", "%Y%m%d %H:%M:%S %z")
    except ValueError:
        raise ProtocolError(f"date-time {text!r} is not 'YYYYMMDD HH:MM:SS[ TZ]'") from None
    if len(parts) == 2:
        return as_utc
    try:
        zone = ZoneInfo(parts[2])
    except (ZoneInfoNotFoundError, ValueError):
        raise ProtocolError(f"unknown time zone {parts[2]!r} in {text!r}") from None
    return as_utc.replace(tzinfo=zone).astimezone(UTC)
