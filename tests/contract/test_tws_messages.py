"""Every message the TWS test gateway builds decodes with `ib_async` 2.1.0 and with IB's `ibapi`.

Each message goes through the real byte framing and then through the client's own decoder with
a recording wrapper. Both decoders swallow some errors (`ib_async` logs exceptions in its `wrap`
handlers; `ibapi` logs a field-count mismatch and returns), so every test asserts the exact
callbacks and their values: a swallowed decode error leaves a missing or different call.
"""

from __future__ import annotations

import inspect
import struct
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from ib_async import IB, ExecutionFilter, Future, LimitOrder, MarketOrder, StopOrder
from ib_async.decoder import Decoder as IbAsyncDecoder

from tests.support.tws import protocol as wire
from tests.support.tws.contracts import liquid_hours, mes_future, mes_quarterlies, trading_hours
from tests.support.tws.gateway import GatewayBar, GatewayExecution, GatewayOrder, TwsGateway

Call = tuple[str, tuple[Any, ...]]
VERSIONS = pytest.mark.parametrize("version", [176, 178])
DECODERS = pytest.mark.parametrize(
    "decoder", ["ib_async", pytest.param("ibapi", marks=pytest.mark.dev)]
)
UNSET_DOUBLE = 1.7976931348623157e308

FUT = mes_future(2026, 12)
ACCOUNT = "DU1234567"
ORDER = GatewayOrder(
    order_id=5,
    client_id=7,
    perm_id=1_000_000_003,
    account=ACCOUNT,
    con_id=FUT.con_id,
    action="SELL",
    quantity=2,
    order_type="STP",
    lmt_price=None,
    aux_price=Decimal("4990.25"),
    tif="GTC",
    outside_rth=True,
    oca_group="oca-1",
    oca_type=1,
    parent_id=4,
    transmit=True,
    order_ref="b-1-sl",
    status="Submitted",
)
EXECUTION = GatewayExecution(
    exec_id="0000e0d5.00000002.01.01",
    order_id=5,
    perm_id=1_000_000_003,
    client_id=7,
    order_ref="b-1-sl",
    con_id=FUT.con_id,
    side="SLD",
    shares=2,
    price=Decimal("4990.25"),
    time=datetime(2026, 11, 24, 15, 0, 5, tzinfo=UTC),
    commission=Decimal("1.24"),
    account=ACCOUNT,
    cum_qty=2,
    avg_price=Decimal("4990.25"),
    realized_pnl=Decimal("-101.24"),
)
BAR = wire.BarFields(
    open=Decimal("5000"),
    high=Decimal("5001"),
    low=Decimal("4999.75"),
    close=Decimal("5000.25"),
    volume=12,
    wap=Decimal("5000.5"),
    count=4,
)
CONTRACT_NAMES = (
    "conId",
    "symbol",
    "secType",
    "lastTradeDateOrContractMonth",
    "multiplier",
    "exchange",
    "currency",
    "localSymbol",
    "tradingClass",
)
EXPECTED_CONTRACT = {
    "conId": FUT.con_id,
    "symbol": "MES",
    "secType": "FUT",
    "lastTradeDateOrContractMonth": "20261218",
    "multiplier": "5",
    "exchange": "CME",
    "currency": "USD",
    "localSymbol": "MESZ6",
    "tradingClass": "MES",
}

COVERED: set[str] = set()


def covers(*builders: Callable[..., wire.Message]) -> Callable[[Any], Any]:
    """Register the builders a test exercises, for the completeness check."""

    def register(test: Any) -> Any:
        COVERED.update(b.__name__ for b in builders)
        return test

    return register


# ---------------------------------------------------------------- decoding harness


class _IbAsyncRecorder:
    """Stands in for ib_async's Wrapper: records every callback the Decoder makes."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.ib = SimpleNamespace(TimezoneTWS=None)  # read by execDetails for naive times
        self.defaultTimezone = UTC

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: self.calls.append((name, args))


def _decode_ib_async(version: int, message: wire.Message) -> list[Call]:
    frame = wire.encode_frame(message)
    (size,) = struct.unpack(">I", frame[:4])
    assert size == len(frame) - 4
    # ib_async.client.Client._onSocketHasData, then the handler itself so exceptions surface
    fields = frame[4:].decode(errors="backslashreplace").split("\0")
    fields.pop()
    recorder = _IbAsyncRecorder()
    decoder = IbAsyncDecoder(recorder, version)  # type: ignore[arg-type]
    decoder.handlers[int(fields[0])](fields)
    return recorder.calls


def _decode_ibapi(version: int, message: wire.Message) -> list[Call]:
    from ibapi import comm  # type: ignore[import-untyped]
    from ibapi.decoder import Decoder as IbapiDecoder  # type: ignore[import-untyped]
    from ibapi.wrapper import EWrapper  # type: ignore[import-untyped]

    class Recorder(EWrapper):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[Call] = []

    def recording(name: str) -> Callable[..., None]:
        def record(self: Recorder, *args: Any) -> None:
            self.calls.append((name, args))

        return record

    for name, _ in inspect.getmembers(EWrapper, inspect.isfunction):
        if not name.startswith("_"):
            setattr(Recorder, name, recording(name))

    size, text, rest = comm.read_msg(wire.encode_frame(message))
    assert (size, rest) == (len(text), b"")
    # ibapi.client.EClient.run below the protobuf version: text id, then the NUL-split rest
    msg_id, _, body = text.partition(b"\0")
    recorder = Recorder()
    IbapiDecoder(recorder, version).interpret(comm.read_fields(body), int(msg_id))
    return recorder.calls


DECODE = {"ib_async": _decode_ib_async, "ibapi": _decode_ibapi}


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _plain_calls(calls: list[Call]) -> list[Call]:
    return [(name, tuple(_plain(a) for a in args)) for name, args in calls]


def _attrs(obj: object, *names: str) -> dict[str, Any]:
    return {name: _plain(getattr(obj, name)) for name in names}


def _only(calls: list[Call], name: str) -> tuple[Any, ...]:
    assert [c[0] for c in calls] == [name], calls
    return calls[0][1]


# ---------------------------------------------------------------- simple messages

SIMPLE: list[tuple[Callable[..., wire.Message], tuple[Any, ...], Call]] = [
    (wire.next_valid_id, (42,), ("nextValidId", (42,))),
    (wire.managed_accounts, (("DU1", "DU2"),), ("managedAccounts", ("DU1,DU2",))),
    (wire.current_time, (1_795_536_000,), ("currentTime", (1_795_536_000,))),
    (wire.contract_details_end, (5,), ("contractDetailsEnd", (5,))),
    (wire.open_order_end, (), ("openOrderEnd", ())),
    (wire.exec_details_end, (9,), ("execDetailsEnd", (9,))),
    (wire.position_end, (), ("positionEnd", ())),
    (
        wire.update_account_value,
        ("NetLiquidation", "100000", "USD", ACCOUNT),
        ("updateAccountValue", ("NetLiquidation", "100000", "USD", ACCOUNT)),
    ),
    (wire.update_account_time, ("15:00",), ("updateAccountTime", ("15:00",))),
    (wire.account_download_end, (ACCOUNT,), ("accountDownloadEnd", (ACCOUNT,))),
    (
        wire.account_update_multi,
        (3, ACCOUNT, "", "TotalCashValue", "100000", "USD"),
        ("accountUpdateMulti", (3, ACCOUNT, "", "TotalCashValue", "100000", "USD")),
    ),
    (wire.account_update_multi_end, (3,), ("accountUpdateMultiEnd", (3,))),
    (
        wire.account_summary,
        (4, ACCOUNT, "NetLiquidation", "100000", "USD"),
        ("accountSummary", (4, ACCOUNT, "NetLiquidation", "100000", "USD")),
    ),
    (wire.account_summary_end, (4,), ("accountSummaryEnd", (4,))),
    (wire.completed_orders_end, (), ("completedOrdersEnd", ())),
]
COVERED.update(builder.__name__ for builder, _, _ in SIMPLE)


@DECODERS
@VERSIONS
@pytest.mark.parametrize(
    ("builder", "args", "expected"), SIMPLE, ids=[b.__name__ for b, _, _ in SIMPLE]
)
def test_simple_messages_decode_to_one_callback(
    decoder: str,
    version: int,
    builder: Callable[..., wire.Message],
    args: tuple[Any, ...],
    expected: Call,
) -> None:
    assert DECODE[decoder](version, builder(*args)) == [expected]


@covers(wire.error)
@DECODERS
@VERSIONS
def test_error_carries_code_text_and_advanced_reject(decoder: str, version: int) -> None:
    message = wire.error(12, 201, "Order rejected - reason: test", '{"reason":"x"}')
    assert len(message) == 6
    args = _only(DECODE[decoder](version, message), "error")
    if decoder == "ibapi":
        assert args == (12, 0, 201, "Order rejected - reason: test", '{"reason":"x"}')
    else:
        assert args == (12, 201, "Order rejected - reason: test", '{"reason":"x"}')


@covers(wire.order_status)
@DECODERS
@VERSIONS
def test_order_status_decodes_every_field(decoder: str, version: int) -> None:
    message = wire.order_status(
        order_id=5,
        status="Submitted",
        filled=1,
        remaining=1,
        avg_fill_price=Decimal("4990.25"),
        perm_id=1_000_000_003,
        parent_id=4,
        last_fill_price=Decimal("4990.25"),
        client_id=7,
    )
    assert len(message) == 12
    assert _plain_calls(DECODE[decoder](version, message)) == [
        (
            "orderStatus",
            (5, "Submitted", 1.0, 1.0, 4990.25, 1_000_000_003, 4, 4990.25, 7, "", 0.0),
        )
    ]


@covers(wire.realtime_bar)
@DECODERS
@VERSIONS
def test_realtime_bar_decodes_time_and_ohlcv(decoder: str, version: int) -> None:
    message = wire.realtime_bar(3, 1_795_532_400, BAR)
    assert len(message) == 11
    assert _plain_calls(DECODE[decoder](version, message)) == [
        ("realtimeBar", (3, 1_795_532_400, 5000.0, 5001.0, 4999.75, 5000.25, 12.0, 5000.5, 4))
    ]


@covers(wire.commission_report)
@DECODERS
@VERSIONS
@pytest.mark.parametrize(
    ("realized", "expected_realized"), [(None, UNSET_DOUBLE), (Decimal("-101.24"), -101.24)]
)
def test_commission_report_decodes(
    decoder: str, version: int, realized: Decimal | None, expected_realized: float
) -> None:
    message = wire.commission_report("0000e0d5.00000002.01.01", Decimal("1.24"), "USD", realized)
    assert len(message) == 8
    name = "commissionAndFeesReport" if decoder == "ibapi" else "commissionReport"
    (report,) = _only(DECODE[decoder](version, message), name)
    commission = "commissionAndFees" if decoder == "ibapi" else "commission"
    assert _attrs(report, "execId", commission, "currency", "realizedPNL") == {
        "execId": "0000e0d5.00000002.01.01",
        commission: 1.24,
        "currency": "USD",
        "realizedPNL": expected_realized,
    }


@covers(wire.position)
@DECODERS
@VERSIONS
def test_position_decodes_contract_size_and_cost(decoder: str, version: int) -> None:
    message = wire.position(ACCOUNT, FUT, -2, Decimal("24951.25"))
    assert len(message) == 16
    account, contract, size, avg_cost = _only(DECODE[decoder](version, message), "position")
    assert (account, _plain(size), avg_cost) == (ACCOUNT, -2.0, 24951.25)
    assert _attrs(contract, *CONTRACT_NAMES) == EXPECTED_CONTRACT


@covers(wire.update_portfolio)
@DECODERS
@VERSIONS
def test_update_portfolio_decodes_values(decoder: str, version: int) -> None:
    message = wire.update_portfolio(
        future=FUT,
        quantity=1,
        market_price=Decimal("5001.5"),
        market_value=Decimal("25007.5"),
        average_cost=Decimal("25001.25"),
        unrealized_pnl=Decimal("6.25"),
        realized_pnl=Decimal("-12.5"),
        account=ACCOUNT,
    )
    assert len(message) == 20
    contract, *values, account = _only(DECODE[decoder](version, message), "updatePortfolio")
    assert [_plain(v) for v in values] == [1.0, 5001.5, 25007.5, 25001.25, 6.25, -12.5]
    assert account == ACCOUNT
    expected = {**EXPECTED_CONTRACT, "exchange": "", "primaryExchange": ""}
    assert _attrs(contract, *CONTRACT_NAMES, "primaryExchange") == expected


@covers(wire.contract_details)
@DECODERS
@VERSIONS
@pytest.mark.parametrize("sec_type", ["FUT", "CONTFUT"])
def test_contract_details_decode(decoder: str, version: int, sec_type: str) -> None:
    start = date(2026, 11, 24)
    message = wire.contract_details(
        8,
        FUT,
        trading_hours=trading_hours(start),
        liquid_hours=liquid_hours(start),
        sec_type=sec_type,
    )
    assert len(message) == 40
    req_id, details = _only(DECODE[decoder](version, message), "contractDetails")
    assert req_id == 8
    assert _attrs(details.contract, *CONTRACT_NAMES) == {**EXPECTED_CONTRACT, "secType": sec_type}
    assert _attrs(
        details,
        "marketName",
        "minTick",
        "contractMonth",
        "timeZoneId",
        "tradingHours",
        "liquidHours",
        "realExpirationDate",
        "longName",
        "minSize",
        "sizeIncrement",
    ) == {
        "marketName": "MES",
        "minTick": 0.25,
        "contractMonth": "202612",
        "timeZoneId": "US/Central",
        "tradingHours": trading_hours(start),
        "liquidHours": liquid_hours(start),
        "realExpirationDate": "20261218",
        "longName": "Micro E-Mini S&P 500 Stock Price Index",
        "minSize": 1.0,
        "sizeIncrement": 1.0,
    }


@covers(wire.exec_details)
@DECODERS
@VERSIONS
@pytest.mark.parametrize("req_id", [-1, 2])
def test_exec_details_decode(decoder: str, version: int, req_id: int) -> None:
    message = wire.exec_details(version, req_id, EXECUTION, FUT)
    assert len(message) == (32 if version >= 178 else 31)
    got_req_id, contract, execution = _only(DECODE[decoder](version, message), "execDetails")
    assert got_req_id == req_id
    assert _attrs(contract, *CONTRACT_NAMES) == EXPECTED_CONTRACT
    assert _attrs(
        execution,
        "execId",
        "orderId",
        "acctNumber",
        "exchange",
        "side",
        "shares",
        "price",
        "permId",
        "clientId",
        "cumQty",
        "avgPrice",
        "orderRef",
    ) == {
        "execId": "0000e0d5.00000002.01.01",
        "orderId": 5,
        "acctNumber": ACCOUNT,
        "exchange": "CME",
        "side": "SLD",
        "shares": 2.0,
        "price": 4990.25,
        "permId": 1_000_000_003,
        "clientId": 7,
        "cumQty": 2.0,
        "avgPrice": 4990.25,
        "orderRef": "b-1-sl",
    }
    # ib_async parses the time; ibapi hands over the text
    expected_time: object = (
        "20261124 15:00:05 UTC"
        if decoder == "ibapi"
        else datetime(2026, 11, 24, 15, 0, 5, tzinfo=UTC)
    )
    assert execution.time == expected_time


@covers(wire.open_order)
@DECODERS
@VERSIONS
def test_open_order_decodes_every_order_field_the_bot_uses(decoder: str, version: int) -> None:
    message = wire.open_order(version, ORDER, FUT, "Submitted")
    assert len(message) == (127 if version >= 177 else 128)
    order_id, contract, order, state = _only(DECODE[decoder](version, message), "openOrder")
    assert order_id == 5
    assert _attrs(contract, *CONTRACT_NAMES) == EXPECTED_CONTRACT
    assert _attrs(
        order,
        "orderId",
        "clientId",
        "permId",
        "action",
        "totalQuantity",
        "orderType",
        "auxPrice",
        "tif",
        "ocaGroup",
        "ocaType",
        "account",
        "orderRef",
        "outsideRth",
        "parentId",
    ) == {
        "orderId": 5,
        "clientId": 7,
        "permId": 1_000_000_003,
        "action": "SELL",
        "totalQuantity": 2.0,
        "orderType": "STP",
        "auxPrice": 4990.25,
        "tif": "GTC",
        "ocaGroup": "oca-1",
        "ocaType": 1,
        "account": ACCOUNT,
        "orderRef": "b-1-sl",
        "outsideRth": True,
        "parentId": 4,
    }
    assert order.lmtPrice == UNSET_DOUBLE  # an empty lmtPrice is "unset" in both clients
    assert state.status == "Submitted"


@DECODERS
@VERSIONS
def test_a_what_if_answer_decodes_its_margins_in_both_clients(decoder: str, version: int) -> None:
    answer = wire.WhatIf(
        init_before=Decimal("0"),
        maint_before=Decimal("0"),
        equity_before=Decimal("25000.00"),
        init_after=Decimal("1650.00"),
        maint_after=Decimal("1485.00"),
        equity_after=Decimal("25000.00"),
        commission=Decimal("0.62"),
        warning="test warning",
    )
    message = wire.open_order(version, ORDER, FUT, "PreSubmitted", answer)
    assert len(message) == (127 if version >= 177 else 128)
    _, _, order, state = _only(DECODE[decoder](version, message), "openOrder")
    assert order.whatIf is True
    assert float(state.initMarginAfter) == 1650.0
    assert float(state.initMarginChange) == 1650.0
    assert float(state.equityWithLoanAfter) == 25000.0
    assert float(state.maintMarginAfter) == 1485.0
    commission = getattr(state, "commission", None)  # ib_async 2.1 names it commissionAndFees
    assert float(commission if commission is not None else state.commissionAndFees) == 0.62
    assert state.warningText == "test warning"


@covers(wire.historical_data)
@DECODERS
@VERSIONS
@pytest.mark.parametrize(
    ("dates", "expected_ib_async"),
    [
        (
            ["1795532400", "1795532460"],
            [datetime(2026, 11, 24, 15, 0, tzinfo=UTC), datetime(2026, 11, 24, 15, 1, tzinfo=UTC)],
        ),
        (
            ["20261124 15:00:00 UTC", "20261124 15:01:00 UTC"],
            [datetime(2026, 11, 24, 15, 0, tzinfo=UTC), datetime(2026, 11, 24, 15, 1, tzinfo=UTC)],
        ),
    ],
    ids=["formatDate=2", "formatDate=1"],
)
def test_historical_data_decodes_bars_and_ends_the_request(
    decoder: str, version: int, dates: list[str], expected_ib_async: list[datetime]
) -> None:
    message = wire.historical_data(
        6, "20261124-14:55:00", "20261124-15:05:00", [(d, BAR) for d in dates]
    )
    assert len(message) == 5 + 8 * 2
    calls = DECODE[decoder](version, message)
    assert [name for name, _ in calls] == ["historicalData", "historicalData", "historicalDataEnd"]
    assert calls[-1][1] == (6, "20261124-14:55:00", "20261124-15:05:00")
    average = "wap" if decoder == "ibapi" else "average"
    for (_, (req_id, bar)), text in zip(calls[:2], dates, strict=True):
        assert req_id == 6
        assert _attrs(
            bar, "date", "open", "high", "low", "close", "volume", average, "barCount"
        ) == {
            "date": text,  # both hand the text to the wrapper
            "open": 5000.0,
            "high": 5001.0,
            "low": 4999.75,
            "close": 5000.25,
            "volume": 12.0,
            average: 5000.5,
            "barCount": 4,
        }
    if decoder == "ib_async":
        from ib_async.util import parseIBDatetime

        assert [parseIBDatetime(d) for d in dates] == expected_ib_async


@covers(wire.historical_data_update)
@DECODERS
@VERSIONS
def test_historical_data_update_keeps_its_odd_field_order(decoder: str, version: int) -> None:
    message = wire.historical_data_update(6, "1795532400", BAR)
    assert len(message) == 10
    req_id, bar = _only(DECODE[decoder](version, message), "historicalDataUpdate")
    assert req_id == 6
    average = "wap" if decoder == "ibapi" else "average"
    assert _attrs(bar, "date", "open", "high", "low", "close", "volume", average, "barCount") == {
        "date": "1795532400",
        "open": 5000.0,
        "high": 5001.0,
        "low": 4999.75,
        "close": 5000.25,
        "volume": 12.0,
        average: 5000.5,
        "barCount": 4,
    }


@covers(wire.handshake_reply)
@VERSIONS
def test_handshake_reply_is_two_fields_without_a_message_id(version: int) -> None:
    message = wire.handshake_reply(version, datetime(2026, 11, 24, 22, 47, 4, tzinfo=UTC))
    frame = wire.encode_frame(message)
    # ib_async recognises the handshake only by "no server version yet and exactly 2 fields"
    assert wire.split_payload(frame[4:]) == [str(version), "20261124 22:47:04 UTC"]


def test_every_builder_is_covered() -> None:
    builders = {
        name
        for name, fn in inspect.getmembers(wire, inspect.isfunction)
        if fn.__module__ == wire.__name__
        and not name.startswith("_")
        and inspect.signature(fn).return_annotation == "Message"
    }
    assert builders == COVERED


# ---------------------------------------------------------------- the harness catches errors


@DECODERS
@pytest.mark.parametrize(
    ("broken", "intact"),
    [
        (wire.next_valid_id(42)[:-1], [("nextValidId", (42,))]),
        (
            wire.order_status(
                order_id=5,
                status="Filled",
                filled=1,
                remaining=0,
                avg_fill_price=Decimal(5000),
                perm_id=1,
                parent_id=0,
                last_fill_price=Decimal(5000),
                client_id=7,
            )[:-2],
            [("orderStatus", (5, "Filled", 1.0, 0.0, 5000.0, 1, 0, 5000.0, 7, "", 0.0))],
        ),
        (wire.open_order(178, ORDER, FUT, "Submitted")[:-30], None),
        (wire.position(ACCOUNT, FUT, 1, Decimal(1))[:-1], None),
    ],
    ids=["wrapped-handler", "fixed-count", "open-order", "position"],
)
def test_a_short_message_never_passes_as_decoded(
    decoder: str, broken: wire.Message, intact: list[Call] | None
) -> None:
    """Whatever a decoder does with a message one field short, these tests would notice."""
    try:
        calls = DECODE[decoder](178, broken)
    except Exception:  # raising is one of the two acceptable outcomes
        return
    assert calls == [] or (intact is not None and _plain_calls(calls) != intact)


# ---------------------------------------------------------------- a whole session


@pytest.fixture
async def session_messages(request: pytest.FixtureRequest) -> AsyncIterator[TwsGateway]:
    version: int = request.param
    listed = mes_quarterlies(date(2026, 11, 24))
    async with TwsGateway(server_version=version, contracts=listed) as gateway:
        yield gateway


@DECODERS
@pytest.mark.parametrize("session_messages", [176, 178], indirect=True)
async def test_every_message_of_a_full_session_decodes(
    decoder: str, session_messages: TwsGateway
) -> None:
    gateway = session_messages
    t0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)

    def bar(index: int, close: str, low: str | None = None) -> GatewayBar:
        price = Decimal(close)
        return GatewayBar(
            t0 + timedelta(seconds=5 * index),
            price,
            price,
            price if low is None else Decimal(low),
            price,
        )

    ib = IB()
    await ib.connectAsync("127.0.0.1", gateway.port, clientId=7, raiseSyncErrors=True)
    try:
        [mes] = await ib.qualifyContractsAsync(Future("MES", "202612", "CME"))
        assert isinstance(mes, Future)
        await ib.reqContractDetailsAsync(Future("MES", "202611", "GLOBEX"))  # error 200
        realtime = ib.reqRealTimeBars(mes, 5, "TRADES", False)
        await gateway.wait_for(lambda: gateway.realtime_subscriptions != [])
        await gateway.push_bar(mes.conId, bar(0, "5000"))
        history = await ib.reqHistoricalDataAsync(
            mes, "", "300 S", "1 min", "TRADES", False, formatDate=2, keepUpToDate=True
        )
        entry = ib.placeOrder(mes, MarketOrder("BUY", 1, orderRef="e"))
        await gateway.wait_for(entry.isDone)
        stop = ib.placeOrder(mes, StopOrder("SELL", 1, 4990, orderRef="s"))
        target = ib.placeOrder(mes, LimitOrder("SELL", 1, 5100, orderRef="t"))
        await gateway.wait_for(lambda: target.orderStatus.status == "Submitted")
        ib.cancelOrder(target.order)
        await gateway.push_bar(mes.conId, bar(1, "4995", low="4989"))
        await gateway.wait_for(lambda: stop.isDone() and target.isDone())
        await gateway.wait_for(lambda: len(realtime) == 2 and len(history) == 1)
        await gateway.send_error(1102, "Connectivity restored - data maintained.")
        await ib.reqExecutionsAsync(ExecutionFilter())
        await ib.accountSummaryAsync()
        await ib.reqCurrentTimeAsync()
        ib.client.reqIds(1)  # type: ignore[no-untyped-call]
        ib.disconnect()
        await gateway.wait_for(lambda: gateway.connections == 0)
    finally:
        ib.disconnect()

    emitted = {int(fields[0]) for _, fields in gateway.sent}
    every_kind = {
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        11,
        15,
        17,
        49,
        50,
        52,
        53,
        54,
        55,
        59,
        61,
        62,
        63,
        64,
        73,
        74,
        90,
        102,
    }
    assert emitted == every_kind
    for _, fields in gateway.sent:
        calls = DECODE[decoder](gateway.server_version, fields)
        assert calls, f"no callback for {fields}"
        errors = [args for name, args in calls if name == "error"]
        if fields[0] == "4":
            assert len(errors) == 1
            assert int(fields[3]) in errors[0]
        else:
            assert errors == [], f"{decoder} reported {errors} for {fields}"
