"""The supervisor's answers to IB's connection notices, through real ib_async and the test gateway."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.commands import AlertKind
from tests.support.live_bot import START, live_bot
from tests.support.tws import TwsGateway

pytestmark = pytest.mark.timeout(60)


async def test_a_client_id_in_use_is_waited_out_and_the_same_id_kept() -> None:
    async with TwsGateway() as gateway:
        gateway.faults.client_id_in_use(17, times=2)
        async with live_bot(gateway) as bot:
            assert bot.session.link_up
            assert bot.session.client.client_id == 17
            [failed] = bot.alerts(AlertKind.CONNECTION)[:1]
            assert "client id 17 is already in use" in failed
            assert "326" in failed
            await bot.push(["5000"], at=START)  # and it trades on


async def test_1100_then_1102_gates_entries_and_reopens_after_a_reconcile() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        await gateway.send_error(
            1100, "Connectivity between IB and Trader Workstation has been lost."
        )
        await bot.wait_for(lambda: bool(bot.engine.entry_gates), "the gate")
        reconciled = len(bot.order_events("reconciled"))
        bot.clock.advance(timedelta(seconds=1))  # the journal keeps one record per time and content
        await gateway.send_error(1102, "Connectivity restored - data maintained.")
        await bot.wait_for(lambda: not bot.engine.entry_gates, "the gate reopened")
        assert len(bot.order_events("reconciled")) == reconciled + 1
        assert gateway.connections == 1  # the socket was never dropped
        assert bot.alerts(AlertKind.CONNECTION)[-1] == "IB connectivity restored (data kept)"


async def test_data_farm_notices_never_drop_the_order_link_and_a_restored_farm_resubscribes() -> (
    None
):
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        t = await bot.push(["5000"] * 2, at=START)
        requests = sum(1 for m, _ in gateway.received if m == 50)
        await gateway.send_error(2103, "Market data farm connection is broken:usfarm")
        await bot.push(["5000"], at=t)
        assert bot.session.link_up
        assert not bot.engine.entry_gates
        assert sum(1 for m, _ in gateway.received if m == 50) == requests
        await gateway.send_error(2104, "Market data farm connection is OK:usfarm")
        await bot.wait_for(
            lambda: sum(1 for m, _ in gateway.received if m == 50) == requests + 1,
            "a new real-time bar request",
        )
        assert gateway.connections == 1
