"""Recoveries that fail half way must be retried, not left gated; what IB reports late or out of
order must still be booked right. (Found by review; each test failed before its fix.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from ib_async import CommissionReport, Contract, Execution, Order, OrderStatus, Trade
from ib_async import Fill as IbFill
from ib_async.objects import TradeLogEntry

from adapters.ibkr.broker import IbkrBroker
from adapters.simulated.clock import ManualClock
from application.services import EventInbox
from domain.commands import AlertKind, FillRecord
from domain.engine import EngineState
from domain.events import OrderCancelled, OrderFilled
from domain.values import MES
from tests.support.live_bot import QUIET_CLOSES, SIGNAL_CLOSE, START, bot_settings, live_bot
from tests.support.tws import TwsGateway
from tests.support.tws import protocol as wire

pytestmark = pytest.mark.timeout(60)


def _resync_executions_unanswered(gateway: TwsGateway, on: dict[str, bool]) -> None:
    """The bot's own reqExecutions (filtered by its client id) times out while ``on['silent']``;
    ib_async's start-up request (no filter) is still answered."""
    gateway.faults.unanswered[7] = lambda fields: (
        on["silent"] and wire.parse_executions_request(fields).client_id != 0
    )


async def test_a_reconnect_whose_resync_times_out_is_tried_again_until_it_works() -> None:
    async with TwsGateway() as gateway:
        settings = bot_settings(gateway.port, QS_IBKR__REQUEST_TIMEOUT_S="0.5")
        state = {"silent": False}
        _resync_executions_unanswered(gateway, state)
        async with live_bot(gateway, settings=settings) as bot:
            await bot.push(["5000"], at=START)
            state["silent"] = True
            await gateway.disconnect_clients()
            await bot.wait_for(
                lambda: any("reconnect failed" in a for a in bot.alerts(AlertKind.CONNECTION)),
                "a failed bring-up",
            )
            state["silent"] = False  # IB answers again
            await bot.wait_for(lambda: bot.session.link_up, "the retried reconnect", timeout=10)
            await bot.wait_for(lambda: not bot.engine.entry_gates, "entries open again")


async def test_a_failed_recovery_after_1102_reconnects_instead_of_gating_forever() -> None:
    async with TwsGateway() as gateway:
        settings = bot_settings(gateway.port, QS_IBKR__REQUEST_TIMEOUT_S="0.5")
        state = {"silent": False}
        _resync_executions_unanswered(gateway, state)
        async with live_bot(gateway, settings=settings) as bot:
            await bot.push(["5000"], at=START)
            await gateway.send_error(1100, "Connectivity between IB and TWS has been lost.")
            await bot.wait_for(lambda: bool(bot.engine.entry_gates), "the gate")
            state["silent"] = True
            await gateway.send_error(1102, "Connectivity restored - data maintained.")
            await bot.wait_for(
                lambda: any("recovery" in a for a in bot.alerts(AlertKind.CONNECTION)),
                "the failed recovery alert",
            )
            state["silent"] = False
            await bot.wait_for(lambda: bot.session.reconnects >= 1, "a reconnect", timeout=10)
            await bot.wait_for(lambda: not bot.engine.entry_gates, "entries open again")


async def test_a_fill_booked_after_a_reconnect_carries_ib_s_commission() -> None:
    async with TwsGateway(commission=Decimal("1.23")) as gateway, live_bot(gateway) as bot:
        gateway.faults.hold_fills = True
        await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
        await bot.wait_for(lambda: len(gateway.orders) == 3, "the bracket")
        await gateway.disconnect_clients()
        await gateway.fill_held(gateway.orders[0].order_ref)
        await bot.wait_for(lambda: bot.engine.state is EngineState.LONG, "the fill")
        await bot.settled()
        [fill] = [r.fill for r in bot.journal.records if isinstance(r, FillRecord)]
        assert fill.commission == Decimal("1.23")  # IB's report, not the configured 0.62


async def test_the_watchdog_survives_a_check_that_fails() -> None:
    async with TwsGateway() as gateway:
        settings = bot_settings(gateway.port, QS_IBKR__WATCHDOG_INTERVAL_S="0.05")
        async with live_bot(gateway, settings=settings) as bot:
            failures = 0

            async def broken(*, force: bool = False) -> None:
                nonlocal failures
                failures += 1
                raise ConnectionError("Socket disconnect")

            bot.session.check_roll = broken  # type: ignore[method-assign]
            await bot.wait_for(lambda: failures >= 3, "three watchdog rounds despite failures")
            assert len(bot.alerts(AlertKind.ANOMALY)) == 1  # alerted once, not every round


class _Client:
    """The few IbClient calls the broker makes, recording its callbacks (our own class's fake)."""

    connected = True
    account = ""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    def on_order_status(self, handler: Any) -> None:
        self.handlers["status"] = handler

    def on_execution(self, handler: Any) -> None:
        self.handlers["exec"] = handler

    def on_commission(self, handler: Any) -> None:
        self.handlers["commission"] = handler

    def open_trades(self) -> list[Trade]:
        return []


async def test_a_cancel_reported_before_the_partial_fill_s_execution_comes_after_it() -> None:
    client = _Client()
    inbox = EventInbox()
    IbkrBroker(
        client=client,  # type: ignore[arg-type]
        sink=inbox,
        instrument=MES,
        clock=ManualClock(START),
        key_prefix="QS",
        commission_per_contract=Decimal("0.62"),
    )
    order = Order(orderId=5, action="BUY", totalQuantity=2, orderType="MKT", orderRef="QS-1-1-E")
    trade = Trade(Contract(conId=1), order, OrderStatus(orderId=5, status="Submitted"))
    client.handlers["status"](trade)
    # IB cancels the rest after 1 of 2 filled, and says so before that lot's execution arrives.
    trade.orderStatus = OrderStatus(orderId=5, status="Cancelled", filled=1, remaining=1)
    trade.log.append(TradeLogEntry(datetime.now(UTC), "Cancelled", "Order Canceled", 202))
    client.handlers["status"](trade)
    execution = Execution(
        execId="e1", time=START, orderId=5, orderRef="QS-1-1-E", side="BOT", shares=1, price=4990.0
    )
    report = CommissionReport(execId="e1", commission=0.62)
    client.handlers["exec"](trade, IbFill(Contract(conId=1), execution, report, START))
    events = [inbox.pop() for _ in range(len(inbox))]
    kinds = [type(e) for e in events]
    assert kinds[1:] == [OrderFilled, OrderCancelled]  # after OrderAccepted


async def test_an_end_waiting_for_fills_that_never_come_is_passed_on_after_a_while() -> None:
    client = _Client()
    inbox = EventInbox()
    IbkrBroker(
        client=client,  # type: ignore[arg-type]
        sink=inbox,
        instrument=MES,
        clock=ManualClock(START),
        key_prefix="QS",
        commission_per_contract=Decimal("0.62"),
        commission_wait_s=0.1,
    )
    order = Order(orderId=6, action="BUY", totalQuantity=3, orderType="MKT", orderRef="QS-1-2-E")
    trade = Trade(Contract(conId=1), order, OrderStatus(orderId=6, status="Submitted"))
    client.handlers["status"](trade)
    execution = Execution(
        execId="e2", time=START, orderId=6, orderRef="QS-1-2-E", side="BOT", shares=1, price=4990.0
    )
    # One lot reported, still waiting for its commission; IB then says 2 filled and cancels.
    client.handlers["exec"](trade, IbFill(Contract(conId=1), execution, CommissionReport(), START))
    trade.orderStatus = OrderStatus(orderId=6, status="Cancelled", filled=2, remaining=1)
    client.handlers["status"](trade)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    events: list[object] = []
    while not any(isinstance(e, OrderCancelled) for e in events) and loop.time() < deadline:
        await asyncio.sleep(0.05)
        events += [inbox.pop() for _ in range(len(inbox))]
    kinds = [type(e) for e in events]
    assert OrderCancelled in kinds, "the cancel was held back for good"
    assert kinds.index(OrderFilled) < kinds.index(OrderCancelled)
