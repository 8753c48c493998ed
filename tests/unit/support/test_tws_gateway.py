"""The TWS test gateway, driven end to end by real, unmodified `ib_async` 2.1.0 on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from ib_async import (
    IB,
    ContFuture,
    Contract,
    ExecutionFilter,
    Future,
    LimitOrder,
    MarketOrder,
    StopOrder,
    Trade,
)

from tests.support.tws import GatewayBar, ListedFuture, TwsGateway, mes_quarterlies

LISTED = mes_quarterlies(date(2026, 11, 24))
Z6, H7 = LISTED[0], LISTED[1]
T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 09:00 US/Central
CLIENT = 7


def bar(
    index: int,
    close: str,
    *,
    open_: str | None = None,
    high: str | None = None,
    low: str | None = None,
    volume: int = 10,
) -> GatewayBar:
    """The `index`-th 5-second bar after T0."""
    c = Decimal(close)
    o = c if open_ is None else Decimal(open_)
    return GatewayBar(
        T0 + timedelta(seconds=5 * index),
        o,
        max(o, c) if high is None else Decimal(high),
        min(o, c) if low is None else Decimal(low),
        c,
        volume,
    )


def contract(future: ListedFuture = Z6) -> Future:
    return Future(conId=future.con_id, exchange="CME")


async def qualify(ib: IB, request: Contract) -> Contract | None:
    """The single result of qualifyContractsAsync (None when unknown or ambiguous)."""
    [result] = await ib.qualifyContractsAsync(request)
    assert not isinstance(result, list)
    return result


async def connect(gateway: TwsGateway, client_id: int = CLIENT, timeout: float = 5) -> IB:
    """Connect the way the adapter does; raiseSyncErrors proves every start-up end marker came."""
    ib = IB()
    await ib.connectAsync(
        "127.0.0.1", gateway.port, clientId=client_id, timeout=timeout, raiseSyncErrors=True
    )
    return ib


@pytest.fixture
async def gateway() -> AsyncIterator[TwsGateway]:
    async with TwsGateway(contracts=LISTED) as gw:
        yield gw


@pytest.fixture
async def ib(gateway: TwsGateway) -> AsyncIterator[IB]:
    client = await connect(gateway)
    yield client
    client.disconnect()


async def priced(gateway: TwsGateway, close: str = "5000.25", index: int = 0) -> None:
    await gateway.push_bar(Z6.con_id, bar(index, close))


# ---------------------------------------------------------------- handshake and start-up


@pytest.mark.parametrize("version", [178, 176])
async def test_handshake_negotiates_the_gateway_version(version: int) -> None:
    async with TwsGateway(server_version=version, contracts=LISTED) as gw:
        client = await connect(gw)
        assert client.client.serverVersion() == version
        assert client.managedAccounts() == ["DU1234567"]
        qualified = await qualify(client, Future("MES", "202612", "CME"))
        assert qualified is not None
        assert qualified.conId == Z6.con_id
        client.disconnect()


@pytest.mark.parametrize(
    ("server_version", "client_min", "client_max"),
    [(178, 157, 177), (176, 177, 178)],
)
async def test_handshake_refuses_a_client_whose_range_excludes_the_version(
    server_version: int, client_min: int, client_max: int
) -> None:
    async with TwsGateway(server_version=server_version, contracts=LISTED) as gw:
        client = IB()
        client.client.MinClientVersion = client_min
        client.client.MaxClientVersion = client_max
        with pytest.raises((TimeoutError, ConnectionError)):
            await client.connectAsync("127.0.0.1", gw.port, clientId=CLIENT, timeout=0.5)
        assert gw.refused_handshakes == 1
        assert gw.received == []


async def test_start_up_requests_are_all_answered(gateway: TwsGateway, ib: IB) -> None:
    # `connect` used raiseSyncErrors=True, so every awaited end marker arrived.
    requested = {msg_id for msg_id, _ in gateway.received}
    assert {71, 61, 5, 99, 6, 76, 7} <= requested
    values = {v.tag: v.value for v in ib.accountValues() if v.currency == "USD"}
    assert values["NetLiquidation"] == "100000"
    summary = await ib.accountSummaryAsync()
    assert {(s.tag, s.value) for s in summary} >= {("TotalCashValue", "100000")}
    server_time = await ib.reqCurrentTimeAsync()
    assert abs(server_time - datetime.now(UTC)) < timedelta(seconds=5)


async def test_req_ids_answers_with_the_next_unused_order_id(gateway: TwsGateway, ib: IB) -> None:
    trade = ib.placeOrder(contract(), LimitOrder("BUY", 1, 4000))
    await gateway.wait_for(lambda: trade.orderStatus.status == "Submitted")
    answers: list[int] = []
    ib.wrapper.nextValidId = answers.append  # type: ignore[method-assign,assignment]  # a spy
    ib.client.reqIds(1)  # type: ignore[no-untyped-call]
    await gateway.wait_for(lambda: answers != [])
    assert answers == [trade.order.orderId + 1]


@pytest.mark.parametrize(("version", "place_order_fields"), [(178, 114), (176, 115)])
async def test_client_messages_have_the_documented_field_counts(
    version: int, place_order_fields: int
) -> None:
    async with TwsGateway(server_version=version, contracts=LISTED) as gw:
        client = await connect(gw)
        await client.qualifyContractsAsync(Future("MES", "202612", "CME"))
        client.reqRealTimeBars(contract(), 5, "TRADES", False)
        await client.reqHistoricalDataAsync(contract(), "", "60 S", "5 secs", "TRADES", False)
        client.placeOrder(contract(), StopOrder("SELL", 1, 4990))
        await gw.wait_for(lambda: len(gw.orders) == 1)
        client.disconnect()
        counts = {msg_id: len(fields) for msg_id, fields in gw.received}
        assert counts == {
            71: 4,  # startApi
            61: 2,  # reqPositions
            5: 2,  # reqOpenOrders
            99: 2,  # reqCompletedOrders
            6: 4,  # reqAccountUpdates
            76: 6,  # reqAccountUpdatesMulti
            7: 10,  # reqExecutions
            9: 19,  # reqContractDetails (issuerId from 176)
            50: 19,  # reqRealTimeBars
            20: 23,  # reqHistoricalData
            3: place_order_fields,  # placeOrder: faProfile below 177
        }


@pytest.mark.parametrize("version", [178, 176])
async def test_order_fields_are_read_kept_and_echoed(version: int) -> None:
    async with TwsGateway(server_version=version, contracts=LISTED) as gw:
        client = await connect(gw)
        order = StopOrder(
            "SELL",
            2,
            4990.25,
            tif="GTC",
            outsideRth=True,
            ocaGroup="oca-9",
            ocaType=1,
            orderRef="ref-9",
            account="DU1234567",
        )
        trade = client.placeOrder(contract(), order)
        await gw.wait_for(lambda: trade.orderStatus.status == "Submitted")
        [kept] = gw.orders
        assert (
            kept.action,
            kept.quantity,
            kept.order_type,
            kept.aux_price,
            kept.tif,
            kept.outside_rth,
            kept.oca_group,
            kept.oca_type,
            kept.order_ref,
            kept.account,
            kept.client_id,
            kept.transmit,
        ) == (
            "SELL",
            2,
            "STP",
            Decimal("4990.25"),
            "GTC",
            True,
            "oca-9",
            1,
            "ref-9",
            "DU1234567",
            7,
            True,
        )
        client.disconnect()
        await gw.wait_for(lambda: gw.connections == 0)
        again = await connect(gw)
        [echoed] = again.openTrades()
        assert (
            echoed.order.tif,
            echoed.order.outsideRth,
            echoed.order.ocaGroup,
            echoed.order.ocaType,
            echoed.order.orderRef,
            echoed.order.auxPrice,
            echoed.order.totalQuantity,
        ) == ("GTC", True, "oca-9", 1, "ref-9", 4990.25, 2.0)
        again.disconnect()


# ---------------------------------------------------------------- contracts


@pytest.mark.parametrize(
    ("request_contract", "expected"),
    [
        (Future("MES", "202612", "CME"), Z6),
        (Future("MES", "20270319", "CME"), H7),
        (Future("MES", "202703", "CME", currency="USD", multiplier="5"), H7),
        (Future(conId=H7.con_id), H7),
        (Future(localSymbol="MESZ6", exchange="CME"), Z6),
    ],
    ids=["month", "last-trade-date", "month-with-details", "conId", "localSymbol"],
)
async def test_qualifies_mes(ib: IB, request_contract: Future, expected: ListedFuture) -> None:
    qualified = await qualify(ib, request_contract)
    assert qualified is not None
    assert (qualified.conId, qualified.localSymbol) == (expected.con_id, expected.local_symbol)
    assert qualified.lastTradeDateOrContractMonth == expected.last_trade_date.strftime("%Y%m%d")
    assert (qualified.multiplier, qualified.tradingClass, qualified.secType) == ("5", "MES", "FUT")


async def test_lists_every_quarterly_without_an_expiry(gateway: TwsGateway, ib: IB) -> None:
    await priced(gateway)  # the gateway clock follows pushed bars: today is 2026-11-24
    details = await ib.reqContractDetailsAsync(Future("MES", exchange="CME"))
    assert [d.contract.localSymbol for d in details if d.contract] == [
        "MESZ6",
        "MESH7",
        "MESM7",
        "MESU7",
        "MESZ7",
    ]
    first = details[0]
    assert first.realExpirationDate == "20261218"
    assert first.contractMonth == "202612"
    assert first.minTick == 0.25
    assert first.timeZoneId == "US/Central"
    assert first.tradingHours.startswith("20261124:1700-20261125:1600")
    assert await qualify(ib, Future("MES", exchange="CME")) is None  # ambiguous


async def test_cont_future_qualifies_to_the_front_conid(ib: IB) -> None:
    front = await qualify(ib, ContFuture("MES", "CME", currency="USD"))
    assert front is not None
    assert (front.secType, front.conId) == ("CONTFUT", Z6.con_id)


@pytest.mark.parametrize(
    "request_contract",
    [
        Future("MES", "202612", "GLOBEX"),
        Future("MES", "202611", "CME"),
        Future("ES", "202612", "CME"),
        Future(conId=123),
    ],
    ids=["GLOBEX", "not-a-quarterly", "other-symbol", "unknown-conId"],
)
async def test_unknown_contracts_end_with_error_200(ib: IB, request_contract: Future) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, text, c: errors.append(code)
    details = await ib.reqContractDetailsAsync(request_contract)
    assert details == []
    assert errors == [200]


# ---------------------------------------------------------------- bars


async def test_streams_pushed_bars_into_real_time_bars(gateway: TwsGateway, ib: IB) -> None:
    bars = ib.reqRealTimeBars(contract(), 5, "TRADES", False)
    await gateway.wait_for(lambda: len(gateway.realtime_subscriptions) == 1)
    pushed = [
        bar(0, "5000.25", open_="5000", high="5001", low="4999.75", volume=12),
        bar(1, "5000.5"),
        bar(2, "4999.75"),
    ]
    for b in pushed:
        await gateway.push_bar(Z6.con_id, b)
    await gateway.wait_for(lambda: len(bars) == 3)
    assert [b.time for b in bars] == [p.start for p in pushed]
    first = bars[0]
    assert (first.open_, first.high, first.low, first.close, first.volume) == (
        5000.0,
        5001.0,
        4999.75,
        5000.25,
        12.0,
    )
    [sub] = gateway.realtime_subscriptions
    assert (sub.con_id, sub.client_id) == (Z6.con_id, CLIENT)
    ib.cancelRealTimeBars(bars)
    await gateway.wait_for(lambda: gateway.realtime_subscriptions == [])


async def test_dropped_subscriptions_stream_again_only_after_resubscribing(
    gateway: TwsGateway, ib: IB
) -> None:
    bars = ib.reqRealTimeBars(contract(), 5, "TRADES", False)
    await gateway.wait_for(lambda: len(gateway.realtime_subscriptions) == 1)
    gateway.drop_realtime_subscriptions()
    await gateway.push_bar(Z6.con_id, bar(0, "5000"))
    again = ib.reqRealTimeBars(contract(), 5, "TRADES", False)
    await gateway.wait_for(lambda: len(gateway.realtime_subscriptions) == 1)
    await gateway.push_bar(Z6.con_id, bar(1, "5001"))
    await gateway.wait_for(lambda: len(again) == 1)
    assert len(bars) == 0
    assert [b.start for b in gateway.history(Z6.con_id)] == [T0, T0 + timedelta(seconds=5)]


async def test_historical_bars_aggregate_stored_five_second_bars(
    gateway: TwsGateway, ib: IB
) -> None:
    # 15:00:00-15:01:55 never streamed, then one streamed bar at 15:02:00
    gateway.add_history(
        Z6.con_id, [bar(i, str(5000 + Decimal(i) / 4), volume=i + 1) for i in range(24)]
    )
    await gateway.push_bar(Z6.con_id, bar(24, "5010"))
    minutes = await ib.reqHistoricalDataAsync(
        contract(), "", "600 S", "1 min", "TRADES", False, formatDate=2
    )
    assert [b.date for b in minutes] == [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]
    first = minutes[0]
    assert (first.open, first.high, first.low, first.close) == (5000.0, 5002.75, 5000.0, 5002.75)
    assert first.volume == sum(range(1, 13))
    assert first.barCount == 12
    five_secs = await ib.reqHistoricalDataAsync(
        contract(),
        T0 + timedelta(seconds=30),
        "20 S",
        "5 secs",
        "TRADES",
        False,
        formatDate=1,
    )
    assert [b.date for b in five_secs] == [T0 + timedelta(seconds=s) for s in (10, 15, 20, 25)]
    assert [b.close for b in five_secs] == [5000.5, 5000.75, 5001.0, 5001.25]
    five_mins = await ib.reqHistoricalDataAsync(
        contract(), "20261124-15:05:00", "1 D", "5 mins", "TRADES", False, formatDate=2
    )
    assert [(b.date, b.open, b.close, b.barCount) for b in five_mins] == [(T0, 5000.0, 5010.0, 25)]


async def test_historical_request_without_data_ends_with_error_162(ib: IB) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, text, c: errors.append(code)
    bars = await ib.reqHistoricalDataAsync(contract(), "", "60 S", "5 secs", "TRADES", False)
    assert list(bars) == []
    assert errors == [162]


async def test_keep_up_to_date_streams_the_forming_bar(gateway: TwsGateway, ib: IB) -> None:
    await gateway.push_bar(Z6.con_id, bar(0, "5000"))
    bars = await ib.reqHistoricalDataAsync(
        contract(), "", "300 S", "1 min", "TRADES", False, formatDate=2, keepUpToDate=True
    )
    assert len(bars) == 1
    await gateway.push_bar(Z6.con_id, bar(1, "5002", high="5003"))
    await gateway.wait_for(lambda: bars[-1].close == 5002.0)
    await gateway.push_bar(Z6.con_id, bar(12, "4999"))  # 15:01:00 opens a new minute
    await gateway.wait_for(lambda: len(bars) == 2)
    assert (bars[0].high, bars[0].volume) == (5003.0, 20.0)
    assert (bars[1].date, bars[1].close) == (T0 + timedelta(minutes=1), 4999.0)


# ---------------------------------------------------------------- market orders


@pytest.mark.parametrize(
    ("sequence", "fills_when_filled", "commission"),
    [("exec_first", 1, 0.62), ("status_first", 0, 0.62), ("commission_first", 1, 0.0)],
)
async def test_market_order_fill_sequences_as_ib_async_sees_them(
    gateway: TwsGateway, ib: IB, sequence: str, fills_when_filled: int, commission: float
) -> None:
    gateway.faults.fill_sequence = sequence  # type: ignore[assignment]
    await priced(gateway, "5000.25")
    seen_at_filled: list[int] = []
    trade = ib.placeOrder(contract(), MarketOrder("BUY", 1, orderRef="entry-1"))
    trade.filledEvent += lambda t: seen_at_filled.append(len(t.fills))
    await gateway.wait_for(lambda: trade.isDone() and len(trade.fills) == 1)
    await gateway.wait_for(lambda: bool(ib.positions()))
    assert seen_at_filled == [fills_when_filled]
    [fill] = trade.fills
    assert (fill.execution.price, fill.execution.orderRef, fill.execution.clientId) == (
        5000.25,
        "entry-1",
        CLIENT,
    )
    assert fill.commissionReport.commission == commission
    [held] = ib.positions()
    assert (held.position, held.avgCost) == (1.0, 25001.25)
    await gateway.wait_for(lambda: bool(ib.portfolio()))
    [item] = ib.portfolio()
    assert (item.position, item.marketPrice, item.averageCost) == (1.0, 5000.25, 25001.25)
    [execution] = gateway.executions
    assert (execution.side, execution.shares, execution.commission) == ("BOT", 1, Decimal("0.62"))
    assert gateway.position(Z6.con_id) == 1


async def test_market_order_without_a_price_is_rejected_with_201(
    gateway: TwsGateway, ib: IB
) -> None:
    trade = ib.placeOrder(contract(), MarketOrder("BUY", 1))
    await gateway.wait_for(trade.isDone)
    assert trade.orderStatus.status == "Cancelled"
    assert [entry.errorCode for entry in trade.log if entry.errorCode] == [201]
    assert gateway.position(Z6.con_id) == 0


async def test_scripted_rejection_cancels_the_order_with_its_code(
    gateway: TwsGateway, ib: IB
) -> None:
    await priced(gateway)
    gateway.faults.reject_next()
    trade = ib.placeOrder(contract(), MarketOrder("BUY", 1))
    await gateway.wait_for(trade.isDone)
    assert trade.orderStatus.status == "Cancelled"
    [rejection] = [entry for entry in trade.log if entry.errorCode]
    assert rejection.errorCode == 201
    assert "reason: test" in rejection.message
    assert gateway.executions == []
    follow_up = ib.placeOrder(contract(), MarketOrder("BUY", 1))
    await gateway.wait_for(follow_up.isDone)
    assert follow_up.orderStatus.status == "Filled"


async def test_partial_fills_report_submitted_until_the_rest_fills(
    gateway: TwsGateway, ib: IB
) -> None:
    await priced(gateway)
    gateway.faults.partial_fill_next(1, 1)
    statuses: list[tuple[str, float]] = []
    trade = ib.placeOrder(contract(), MarketOrder("SELL", 4))
    trade.statusEvent += lambda t: statuses.append((t.orderStatus.status, t.orderStatus.filled))
    await gateway.wait_for(lambda: trade.isDone() and len(trade.fills) == 3)
    assert [f.execution.shares for f in trade.fills] == [1.0, 1.0, 2.0]
    assert ("Submitted", 1.0) in statuses
    assert ("Submitted", 2.0) in statuses
    assert statuses[-1] == ("Filled", 4.0)
    await gateway.wait_for(lambda: bool(ib.positions()))
    assert ib.positions()[0].position == -4.0


async def test_duplicate_statuses_leave_one_filled_event(gateway: TwsGateway, ib: IB) -> None:
    await priced(gateway)
    gateway.faults.duplicate_statuses = 2
    filled: list[Trade] = []
    trade = ib.placeOrder(contract(), MarketOrder("BUY", 1))
    trade.filledEvent += filled.append
    await gateway.wait_for(lambda: trade.isDone() and bool(ib.positions()))
    statuses = [fields for msg_id, fields in gateway.received if msg_id == 3]
    assert len(statuses) == 1
    assert len(filled) == 1


# ---------------------------------------------------------------- resting orders and brackets


@pytest.mark.parametrize(
    ("order", "pushed", "fill_price"),
    [
        (StopOrder("SELL", 1, 4990), bar(1, "4995", low="4990"), Decimal("4990")),
        (StopOrder("SELL", 1, 4990), bar(1, "4985", open_="4987"), Decimal("4987")),
        (StopOrder("SELL", 1, 4990), bar(1, "4995", low="4990.25"), None),
        (StopOrder("BUY", 1, 5010), bar(1, "5005", high="5010"), Decimal("5010")),
        (StopOrder("BUY", 1, 5010), bar(1, "5015", open_="5012"), Decimal("5012")),
        (LimitOrder("SELL", 1, 5010), bar(1, "5005", high="5010"), Decimal("5010")),
        (LimitOrder("SELL", 1, 5010), bar(1, "5005", high="5009.75"), None),
        (LimitOrder("BUY", 1, 4990), bar(1, "4995", low="4990"), Decimal("4990")),
        (LimitOrder("BUY", 1, 4990), bar(1, "4995", low="4990.25"), None),
    ],
    ids=[
        "stop-sell-touched",
        "stop-sell-gap",
        "stop-sell-untouched",
        "stop-buy-touched",
        "stop-buy-gap",
        "limit-sell-touched",
        "limit-sell-untouched",
        "limit-buy-touched",
        "limit-buy-untouched",
    ],
)
async def test_resting_orders_match_pushed_bars(
    gateway: TwsGateway,
    ib: IB,
    order: StopOrder | LimitOrder,
    pushed: GatewayBar,
    fill_price: Decimal | None,
) -> None:
    await priced(gateway, "5000")
    trade = ib.placeOrder(contract(), order)
    await gateway.wait_for(lambda: trade.orderStatus.status == "Submitted")
    await gateway.push_bar(Z6.con_id, pushed)
    if fill_price is None:
        assert gateway.executions == []
        assert gateway.orders[0].status == "Submitted"
    else:
        await gateway.wait_for(trade.isDone)
        assert [e.price for e in gateway.executions] == [fill_price]
        assert trade.orderStatus.avgFillPrice == float(fill_price)


async def test_bracket_goes_live_on_the_last_transmit_and_the_stop_closes_it(
    gateway: TwsGateway, ib: IB
) -> None:
    await priced(gateway, "5000")
    parent = MarketOrder("BUY", 1, orderId=ib.client.getReqId(), transmit=False, orderRef="b-1")
    target = LimitOrder(
        "SELL",
        1,
        5010,
        orderId=ib.client.getReqId(),
        parentId=parent.orderId,
        transmit=False,
        tif="GTC",
        outsideRth=True,
        orderRef="b-1-tp",
    )
    stop = StopOrder(
        "SELL",
        1,
        4990,
        orderId=ib.client.getReqId(),
        parentId=parent.orderId,
        transmit=True,
        tif="GTC",
        outsideRth=True,
        orderRef="b-1-sl",
    )
    parent_trade = ib.placeOrder(contract(), parent)
    target_trade = ib.placeOrder(contract(), target)
    await gateway.wait_for(lambda: len(gateway.orders) == 2)
    assert [o.live for o in gateway.orders] == [False, False]
    assert gateway.executions == []
    assert parent_trade.orderStatus.status == "PendingSubmit"
    stop_trade = ib.placeOrder(contract(), stop)
    await gateway.wait_for(lambda: parent_trade.isDone() and bool(ib.positions()))
    await gateway.wait_for(lambda: stop_trade.orderStatus.status == "Submitted")
    assert target_trade.orderStatus.status == "Submitted"
    assert ib.positions()[0].position == 1.0
    gw_stop = gateway.order_by_ref("b-1-sl")
    assert gw_stop is not None
    assert (gw_stop.parent_id, gw_stop.tif, gw_stop.outside_rth, gw_stop.transmit) == (
        parent.orderId,
        "GTC",
        True,
        True,
    )
    assert (stop_trade.order.permId, target_trade.order.permId) == (
        gw_stop.perm_id,
        gateway.orders[1].perm_id,
    )

    await gateway.push_bar(Z6.con_id, bar(1, "4992", low="4989.75"))
    await gateway.wait_for(lambda: stop_trade.isDone() and target_trade.isDone())
    assert stop_trade.orderStatus.status == "Filled"
    assert target_trade.orderStatus.status == "Cancelled"
    assert [(e.order_ref, e.side, e.price) for e in gateway.executions] == [
        ("b-1", "BOT", Decimal("5000")),
        ("b-1-sl", "SLD", Decimal("4990")),
    ]
    await gateway.wait_for(lambda: ib.positions() == [])
    assert gateway.position(Z6.con_id) == 0


async def test_bracket_children_wait_for_a_resting_parent(gateway: TwsGateway, ib: IB) -> None:
    await priced(gateway, "5000")
    bracket = ib.bracketOrder("BUY", 1, 4995, 5010, 4985, orderRef="b-2")
    trades = [ib.placeOrder(contract(), o) for o in bracket]
    await gateway.wait_for(lambda: all(t.orderStatus.status != "PendingSubmit" for t in trades))
    assert [t.orderStatus.status for t in trades] == ["Submitted", "PreSubmitted", "PreSubmitted"]
    await gateway.push_bar(Z6.con_id, bar(1, "4980", low="4980"))  # under the child stop too
    await gateway.wait_for(trades[0].isDone)
    assert gateway.executions[0].price == Decimal("4995")
    await gateway.wait_for(lambda: trades[2].orderStatus.status == "Submitted")
    assert len(gateway.executions) == 1  # children activated after this bar, not on it
    await gateway.push_bar(Z6.con_id, bar(2, "5011", high="5011"))
    await gateway.wait_for(lambda: trades[1].isDone() and trades[2].isDone())
    assert [t.orderStatus.status for t in trades] == ["Filled", "Filled", "Cancelled"]
    assert gateway.position(Z6.con_id) == 0


async def test_rejected_bracket_parent_cancels_its_children(gateway: TwsGateway, ib: IB) -> None:
    await priced(gateway)
    gateway.faults.reject_next(203, "The security is not available for this account")
    trades = [ib.placeOrder(contract(), o) for o in ib.bracketOrder("BUY", 1, 4995, 5010, 4985)]
    await gateway.wait_for(lambda: all(t.isDone() for t in trades))
    assert [t.orderStatus.status for t in trades] == ["Cancelled"] * 3
    assert [e.errorCode for e in trades[0].log if e.errorCode] == [203]
    assert [o.status for o in gateway.orders] == ["Cancelled"] * 3


async def test_oca_fill_cancels_the_other_member(gateway: TwsGateway, ib: IB) -> None:
    await priced(gateway, "5000")
    entry = ib.placeOrder(contract(), MarketOrder("BUY", 1))
    await gateway.wait_for(entry.isDone)
    exits = ib.oneCancelsAll([LimitOrder("SELL", 1, 5010), StopOrder("SELL", 1, 4990)], "oca-1", 1)
    target, stop = (ib.placeOrder(contract(), o) for o in exits)
    await gateway.wait_for(lambda: stop.orderStatus.status == "Submitted")
    assert [(o.oca_group, o.oca_type) for o in gateway.orders[1:]] == [("oca-1", 1)] * 2
    await gateway.push_bar(Z6.con_id, bar(1, "5010", high="5010.25"))
    await gateway.wait_for(lambda: target.isDone() and stop.isDone())
    assert (target.orderStatus.status, stop.orderStatus.status) == ("Filled", "Cancelled")
    assert [entry.errorCode for entry in stop.log if entry.errorCode] == []
    await gateway.wait_for(lambda: ib.positions() == [])


async def test_cancel_order_and_global_cancel(gateway: TwsGateway, ib: IB) -> None:
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, text, c: errors.append((req_id, code))
    first = ib.placeOrder(contract(), LimitOrder("BUY", 1, 4900))
    second = ib.placeOrder(contract(), StopOrder("BUY", 1, 5100))
    third = ib.placeOrder(contract(), LimitOrder("SELL", 1, 5100))
    await gateway.wait_for(lambda: third.orderStatus.status == "Submitted")
    ib.cancelOrder(first.order)
    await gateway.wait_for(first.isDone)
    assert first.orderStatus.status == "Cancelled"
    ib.reqGlobalCancel()  # type: ignore[no-untyped-call]
    await gateway.wait_for(lambda: second.isDone() and third.isDone())
    assert [o.status for o in gateway.orders] == ["Cancelled"] * 3
    # orderStatus Cancelled comes first (as at TWS), so ib_async keeps 202 out of trade.log
    await gateway.wait_for(lambda: len(errors) == 3)
    assert errors == [(t.order.orderId, 202) for t in (first, second, third)]


async def test_broker_cancel_reaches_the_trade(gateway: TwsGateway, ib: IB) -> None:
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, c: errors.append((req_id, code, text))
    trade = ib.placeOrder(contract(), LimitOrder("BUY", 1, 4900, orderRef="gtc-1"))
    await gateway.wait_for(lambda: trade.orderStatus.status == "Submitted")
    await gateway.cancel_by_broker("gtc-1", 202, "Order Canceled - reason: margin")
    await gateway.wait_for(lambda: trade.isDone() and errors != [])
    assert trade.orderStatus.status == "Cancelled"
    assert errors == [(trade.order.orderId, 202, "Order Canceled - reason: margin")]


async def test_modified_stop_triggers_at_its_new_price(gateway: TwsGateway, ib: IB) -> None:
    await priced(gateway, "5000")
    trade = ib.placeOrder(contract(), StopOrder("SELL", 1, 4990, orderRef="trail-1"))
    await gateway.wait_for(lambda: trade.orderStatus.status == "Submitted")
    trade.order.auxPrice = 4995
    ib.placeOrder(contract(), trade.order)
    await gateway.wait_for(lambda: gateway.orders[0].aux_price == Decimal(4995))
    assert len(gateway.orders) == 1
    await gateway.push_bar(Z6.con_id, bar(1, "4996", low="4994.75"))
    await gateway.wait_for(trade.isDone)
    assert [e.price for e in gateway.executions] == [Decimal(4995)]


async def test_off_tick_price_is_refused_with_110(gateway: TwsGateway, ib: IB) -> None:
    trade = ib.placeOrder(contract(), LimitOrder("BUY", 1, 4900.1))
    await gateway.wait_for(trade.isDone)
    assert trade.log[-1].errorCode == 110
    assert gateway.orders == []


async def test_held_order_reports_are_answered_to_requests_and_sent_on_release(
    gateway: TwsGateway, ib: IB
) -> None:
    await priced(gateway, "5000.25")
    gateway.faults.hold_order_reports = True
    trade = ib.placeOrder(contract(), MarketOrder("BUY", 1, orderRef="quiet-1"))
    await gateway.wait_for(lambda: gateway.position(Z6.con_id) == 1)
    assert trade.orderStatus.status == "PendingSubmit"  # nothing unasked reached the client
    [execution] = await ib.reqExecutionsAsync()  # an answer to a request is not held
    assert execution.execution.orderRef == "quiet-1"
    gateway.faults.hold_order_reports = False
    assert await gateway.release_order_reports() >= 4  # openOrder, status, exec, commission
    await gateway.wait_for(lambda: trade.orderStatus.status == "Filled")
    assert await gateway.release_order_reports() == 0


async def test_held_fill_reports_keep_the_acknowledgement_and_hold_the_fill(
    gateway: TwsGateway, ib: IB
) -> None:
    await priced(gateway, "5000.25")
    gateway.faults.hold_fill_reports = True
    trade = ib.placeOrder(contract(), MarketOrder("BUY", 1, orderRef="quiet-2"))
    await gateway.wait_for(lambda: trade.orderStatus.status == "PreSubmitted")
    assert gateway.position(Z6.con_id) == 1
    assert trade.fills == []
    await gateway.release_order_reports()
    await gateway.wait_for(lambda: trade.orderStatus.status == "Filled")
    assert len(trade.fills) == 1


# ---------------------------------------------------------------- reconnects and restarts


async def test_held_fill_while_disconnected_is_seen_after_reconnect(
    gateway: TwsGateway, ib: IB
) -> None:
    await priced(gateway, "5000.25")
    gateway.faults.hold_fills = True
    trade = ib.placeOrder(contract(), MarketOrder("BUY", 2, orderRef="held-1"))
    await gateway.wait_for(lambda: trade.orderStatus.status == "Submitted")
    assert gateway.executions == []
    ib.disconnect()
    await gateway.wait_for(lambda: gateway.connections == 0)
    await gateway.fill_held("held-1", Decimal("5001"))
    assert gateway.position(Z6.con_id) == 2
    again = await connect(gateway)
    try:
        [fill] = again.fills()
        assert (fill.execution.orderRef, fill.execution.shares, fill.execution.price) == (
            "held-1",
            2.0,
            5001.0,
        )
        assert fill.commissionReport.commission == pytest.approx(1.24)
        [execution] = again.executions()
        assert execution.permId == gateway.orders[0].perm_id
        [held] = again.positions()
        assert held.position == 2.0
        assert again.openTrades() == []
    finally:
        again.disconnect()


async def test_open_orders_come_back_at_reconnect_with_their_ids(
    gateway: TwsGateway, ib: IB
) -> None:
    trade = ib.placeOrder(contract(), StopOrder("SELL", 1, 4900, orderRef="stop-1", tif="GTC"))
    await gateway.wait_for(lambda: trade.orderStatus.status == "Submitted")
    ib.disconnect()
    await gateway.wait_for(lambda: gateway.connections == 0)
    again = await connect(gateway)
    try:
        [restored] = again.openTrades()
        assert (restored.order.orderId, restored.order.permId) == (
            trade.order.orderId,
            trade.order.permId,
        )
        assert (restored.order.orderRef, restored.order.auxPrice, restored.order.tif) == (
            "stop-1",
            4900.0,
            "GTC",
        )
        assert restored.orderStatus.status == "Submitted"
        assert again.client.getReqId() > trade.order.orderId
    finally:
        again.disconnect()


async def test_restart_keeps_state_and_listens_on_the_same_port(
    gateway: TwsGateway, ib: IB
) -> None:
    await priced(gateway)
    entry = ib.placeOrder(contract(), MarketOrder("BUY", 1))
    stop = ib.placeOrder(contract(), StopOrder("SELL", 1, 4990, orderRef="stop-2"))
    await gateway.wait_for(lambda: entry.isDone() and stop.orderStatus.status == "Submitted")
    port = gateway.port
    disconnected: list[bool] = []
    ib.disconnectedEvent += lambda: disconnected.append(True)
    await gateway.restart()
    await gateway.wait_for(lambda: disconnected == [True])
    assert gateway.port == port
    again = await connect(gateway)
    try:
        assert [p.position for p in again.positions()] == [1.0]
        assert [t.order.orderRef for t in again.openTrades()] == ["stop-2"]
        assert len(again.fills()) == 1
    finally:
        again.disconnect()


async def test_restart_downtime_refuses_connections_until_it_is_over(
    gateway: TwsGateway, ib: IB
) -> None:
    restarting = asyncio.create_task(gateway.restart(downtime=0.3))
    await gateway.wait_for(lambda: not gateway.listening)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", gateway.port)
    await restarting
    again = await connect(gateway)
    again.disconnect()


async def test_client_id_in_use_makes_connect_fail(gateway: TwsGateway) -> None:
    gateway.faults.client_id_in_use(CLIENT)
    client = IB()
    errors: list[int] = []
    client.errorEvent += lambda req_id, code, text, c: errors.append(code)
    with pytest.raises((TimeoutError, ConnectionError)):
        await client.connectAsync("127.0.0.1", gateway.port, clientId=CLIENT, timeout=0.5)
    assert errors == [326]
    second = await connect(gateway)
    second.disconnect()


async def test_a_second_connection_with_a_live_client_id_gets_326(
    gateway: TwsGateway, ib: IB
) -> None:
    duplicate = IB()
    with pytest.raises((TimeoutError, ConnectionError)):
        await duplicate.connectAsync("127.0.0.1", gateway.port, clientId=CLIENT, timeout=0.5)
    assert gateway.connections == 1
    assert ib.isConnected()


async def test_disconnect_clients_keeps_state(gateway: TwsGateway, ib: IB) -> None:
    await priced(gateway)
    trade = ib.placeOrder(contract(), MarketOrder("SELL", 1))
    await gateway.wait_for(trade.isDone)
    await gateway.disconnect_clients()
    await gateway.wait_for(lambda: not ib.isConnected())
    again = await connect(gateway)
    try:
        assert [p.position for p in again.positions()] == [-1.0]
    finally:
        again.disconnect()


async def test_executions_are_filtered_by_time_and_client_id(gateway: TwsGateway, ib: IB) -> None:
    await priced(gateway, index=0)
    first = ib.placeOrder(contract(), MarketOrder("BUY", 1))
    await gateway.wait_for(first.isDone)
    await priced(gateway, index=12)  # one minute later
    second = ib.placeOrder(contract(), MarketOrder("SELL", 1))
    await gateway.wait_for(second.isDone)
    later = await ib.reqExecutionsAsync(ExecutionFilter(time="20261124-15:00:30"))
    assert [f.execution.orderId for f in later] == [second.order.orderId]
    mine = await ib.reqExecutionsAsync(ExecutionFilter(clientId=CLIENT))
    assert len(mine) == 2
    others = await ib.reqExecutionsAsync(ExecutionFilter(clientId=CLIENT + 1))
    assert others == []


# ---------------------------------------------------------------- notices


async def test_send_error_reaches_the_error_event(gateway: TwsGateway, ib: IB) -> None:
    received: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, c: received.append((req_id, code, text))
    for code, text in [
        (1100, "Connectivity between IB and TWS has been lost."),
        (1101, "Connectivity restored - data lost."),
        (1102, "Connectivity restored - data maintained."),
    ]:
        await gateway.send_error(code, text)
    await gateway.wait_for(lambda: len(received) == 3)
    assert [code for _, code, _ in received] == [1100, 1101, 1102]
    assert received[0] == (-1, 1100, "Connectivity between IB and TWS has been lost.")
    # ib_async answers 1102 with reqAccountSummary, which the gateway answers
    await gateway.wait_for(lambda: any(msg_id == 62 for msg_id, _ in gateway.received))
