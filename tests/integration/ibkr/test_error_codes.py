"""IB's codes through real ib_async and the TWS test gateway: each one is classed, counted and acted
on as the table says (issue 16 item 1), and the rejects keep their reason (item 2).

The expected classes are written out here, apart from the table in ``adapters/ibkr/errors.py``, so a
row changed there by mistake fails here.
"""

from __future__ import annotations

import socket
from collections import Counter
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from adapters.ibkr.session import DATA_GATE, FATAL_GATE, GATE
from domain.commands import AlertKind
from domain.engine import EngineState
from tests.support.live_bot import QUIET_CLOSES, SIGNAL_CLOSE, START, live_bot
from tests.support.live_daemon import daemon_settings, live_daemon
from tests.support.tws import TwsGateway

pytestmark = pytest.mark.timeout(120)

# code -> the class the daemon must put it in (IB's TWS API message-code tables).
CORPUS: dict[int, str] = {
    **dict.fromkeys((1300, 2110, 502, 504, 507, 509, 326, 10182), "connectivity"),
    **dict.fromkeys((2103, 2104, 2105, 2106, 2107, 2108, 2119, 2157, 2158, 10225), "data_farm"),
    **dict.fromkeys((2100, 2101, 2150, 2168, 2169, 2174, 2176, 2187, 165, 366), "information"),
    **dict.fromkeys((104, 399, 404, 2102, 2109, 2137, 10349), "order_warning"),
    202: "order_cancelled",
    **dict.fromkeys((161, 10147, 10148, 10149), "cancel_refused"),
    **dict.fromkeys((103, 110, 200, 201, 203, 382, 387, 388, 434, 451, 460, 463), "order_reject"),
    **dict.fromkeys((100, 162, 420), "pacing"),
    **dict.fromkeys((354, 10089, 10090, 10167, 10168), "entitlement"),
    **dict.fromkeys((321, 322), "request_error"),
    9876: "unknown",
    31337: "unknown",
}
GATING = {354, 10089, 10090, 10167, 10168, 10197, 503, 505, 1100, 1101, 1102, 2103, 2105, 2157}
"""Codes that stop entries, restore the link or (a broken farm) make the next OK resubscribe the
bars: each has its own test (here, or test_connection_notices.py for the farms)."""


async def test_every_code_in_the_corpus_is_classed_counted_and_stops_nothing() -> None:
    quiet = {code: cls for code, cls in CORPUS.items() if code not in GATING}
    assert len(quiet) >= 40
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        before = Counter(bot.session.notices)
        for code in quiet:
            await gateway.send_error(code, f"scripted notice {code}")
        await bot.wait_for(
            lambda: sum(bot.session.notices.values()) - sum(before.values()) == len(quiet),
            "every code counted",
        )
        got = Counter(bot.session.notices)
        got.subtract(before)
        assert +got == Counter(quiet.values())
        assert bot.session.unknown_codes == Counter({9876: 1, 31337: 1})
        # None of them ends the link, gates an entry or pages the operator.
        assert bot.session.link_up
        assert gateway.connections == 1
        assert not bot.engine.entry_gates
        assert not bot.alerts(AlertKind.CONNECTION)[1:]  # the first is "connected"
        # ... and the bot still trades.
        await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
        await bot.wait_for(lambda: gateway.position(bot.con_id) == 1, "the entry")


async def test_a_competing_session_gates_entries_alerts_once_and_a_new_bar_reopens() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        t = await bot.push(["5000"] * 2, at=START)
        for _ in range(15):  # IB sends 10197 in bunches
            await gateway.send_error(10197, "No market data during competing live session")
        await bot.wait_for(lambda: DATA_GATE in bot.engine.entry_gates, "the data gate")
        await bot.wait_for(lambda: bot.session.notices["entitlement"] == 15, "all 15 counted")
        [alert] = bot.alerts(AlertKind.STALE_DATA)
        assert "log out the other session" in alert
        assert "10197" in alert
        bot.clock.advance(timedelta(seconds=1))
        await bot.push(["5000"], at=t + timedelta(seconds=5))
        await bot.wait_for(lambda: DATA_GATE not in bot.engine.entry_gates, "the gate reopened")
        assert bot.alerts(AlertKind.STALE_DATA)[-1] == "market data flows again: entries resume"


@pytest.mark.parametrize("code", [354, 10089, 10090, 10167, 10168])
async def test_missing_market_data_gates_entries_and_names_the_subscription(code: int) -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        await gateway.send_error(code, "Requested market data is not subscribed.", req_id=1)
        await bot.wait_for(lambda: DATA_GATE in bot.engine.entry_gates, "the data gate")
        [alert] = bot.alerts(AlertKind.STALE_DATA)
        assert f"({code})" in alert
        assert "CME real-time data for MES" in alert
        assert bot.session.link_up  # a data problem, not a link problem


@pytest.mark.parametrize("code", [503, 505])
async def test_a_gateway_that_cannot_serve_us_stops_entries_and_pages(code: int) -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        await gateway.send_error(code, "The TWS is out of date and must be upgraded.")
        await bot.wait_for(lambda: FATAL_GATE in bot.engine.entry_gates, "the gate")
        assert any(f"({code})" in a for a in bot.alerts(AlertKind.CONNECTION))
        assert GATE not in bot.engine.entry_gates


async def test_10349_with_cancelled_on_a_live_stop_is_confirmed_and_the_stop_kept() -> None:
    """ib_async 2.1 marks a live order Cancelled on 10349 (its TIF set to DAY by a preset); the
    order still works at IB. The engine must not hear a cancel, nor flatten, nor re-place."""
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
        await bot.wait_for(lambda: bot.engine.state is EngineState.LONG, "the position")
        await bot.wait_for(
            lambda: sum(o.is_working for o in gateway.orders) == 2, "the bracket working"
        )
        [stop] = [o for o in gateway.orders if o.is_working and o.order_type == "STP"]
        orders_before = len(gateway.orders)
        open_requests = sum(1 for m, _ in gateway.received if m in (5, 16))
        await gateway.send_error(
            10349, "Order TIF was set to DAY based on order preset.", req_id=stop.order_id
        )
        # The broker asks IB's open orders, which still list the stop.
        await bot.wait_for(
            lambda: sum(1 for m, _ in gateway.received if m in (5, 16)) > open_requests,
            "the open orders asked",
        )
        await bot.wait_for(
            lambda: stop.order_ref in {o.key for o in bot.session.broker.working_orders()},
            "the stop known working again",
        )
        await bot.settled()
        assert not bot.order_events("cancelled")
        assert bot.engine.state is EngineState.LONG
        assert stop.order_ref in {o.key for o in bot.engine.working_orders.values()}
        assert len(gateway.orders) == orders_before  # nothing re-placed, nothing flattened
        assert gateway.position(bot.con_id) == 1
        assert bot.session.notices["order_warning"] == 1


async def test_a_margin_reject_keeps_ib_s_reason_in_the_journal_and_the_alert() -> None:
    text = (
        "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED "
        "POSITION YOUR EQUITY WITH LOAN VALUE [1000.00 USD] MUST EXCEED THE INITIAL MARGIN "
        "[1650.00 USD]"
    )
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        gateway.faults.reject_next(201, text)
        await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
        await bot.wait_for(lambda: bool(bot.alerts(AlertKind.ORDER_REJECTED)), "the rejection")
        await bot.settled()
        [alert] = bot.alerts(AlertKind.ORDER_REJECTED)
        assert "IB rejected the order (201)" in alert
        assert "INITIAL MARGIN [1650.00 USD]" in alert
        assert "reqId" not in alert  # IB's words, not ib_async's log prefix
        rejected = bot.order_events("rejected")
        assert rejected
        assert all("INITIAL MARGIN [1650.00 USD]" in r.detail for r in rejected)
        assert len(gateway.orders) == 3  # the bracket once: a reject is never retried


@pytest.mark.parametrize(
    ("code", "text", "plain"),
    [
        (
            110,
            "The price does not conform to the minimum price variation for this contract.",
            "not a multiple of the contract's tick",
        ),
        (200, "No security definition has been found for the request", "no security definition"),
        (
            451,
            "The order value 25,000 USD exceeds the Total Value Limit of 20,000 USD",
            "over the account's Total Value Limit",
        ),
        (460, "Trading permissions are not enabled for futures", "no trading permission"),
        (203, "The security is not available or allowed for this account", "not allowed"),
    ],
)
async def test_each_reject_reaches_the_journal_and_the_alert_with_its_reason(
    code: int, text: str, plain: str
) -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        gateway.faults.reject_next(code, text)
        await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
        await bot.wait_for(lambda: bool(bot.alerts(AlertKind.ORDER_REJECTED)), "the rejection")
        await bot.settled()
        [alert] = bot.alerts(AlertKind.ORDER_REJECTED)
        assert f"({code})" in alert
        assert text in alert
        assert plain.lower() in alert.lower()
        rejected = bot.order_events("rejected")
        assert rejected
        assert all(text in r.detail for r in rejected)
        assert len(gateway.orders) == 3  # never retried
        assert bot.engine.status().breaker.rejects_today == 1


async def test_the_daemon_s_metrics_count_ib_codes_by_class_and_the_unknown_ones(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with TwsGateway() as gateway:
        settings = daemon_settings(gateway.port, tmp_path, QS_OBSERVABILITY__PORT=str(port))
        async with live_daemon(gateway, settings, start=START) as daemon:
            for code in (9876, 9876, 2109, 10197):
                await gateway.send_error(code, f"scripted notice {code}")
            await daemon.wait_for(
                lambda: daemon.session.unknown_codes[9876] == 2, "the unknown codes counted"
            )
            await daemon.wait_for(lambda: daemon.session.notices["entitlement"] == 1, "all counted")
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/metrics") as response,
            ):
                metrics = await response.text()
            await daemon.stop()
    assert "# TYPE qs_broker_notices_total counter" in metrics
    assert 'qs_broker_notices_total{class="unknown"} 2' in metrics
    assert 'qs_broker_notices_total{class="order_warning"} 1' in metrics
    assert 'qs_broker_notices_total{class="entitlement"} 1' in metrics
    assert 'qs_broker_notices_total{class="fatal"} 0' in metrics
    assert "qs_entries_blocked 1" in metrics  # the competing session holds entries back


async def test_three_refused_entries_trip_the_breaker_and_none_is_retried() -> None:
    text = "Order rejected - reason:YOUR ORDER IS NOT ACCEPTED ... INITIAL MARGIN [1650.00 USD]"
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        t = START
        for n in range(1, 4):
            gateway.faults.reject_next(201, text)
            t = await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=t)
            await bot.wait_for(
                lambda n=n: len(bot.alerts(AlertKind.ORDER_REJECTED)) == n, f"rejection {n}"
            )
            await bot.settled()
        [tripped] = bot.alerts(AlertKind.BREAKER_TRIPPED)
        assert tripped.startswith("circuit breaker max_rejects_per_day: 3 entry orders rejected")
        assert "INITIAL MARGIN" in tripped
        assert bot.engine.status().breaker.rejects_halt
        placed = len(gateway.orders)
        assert placed == 9  # three brackets, each sent once
        # A fourth signal opens nothing: the breaker holds entries for the session.
        await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=t)
        assert len(gateway.orders) == placed
        assert bot.engine.state is EngineState.IDLE


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (354, "Requested market data is not subscribed."),
        (10089, "Requested market data requires additional subscription for API."),
    ],
)
async def test_a_start_without_the_cme_subscription_refuses_to_arm_in_one_line(
    code: int, text: str
) -> None:
    """IB answers the bar subscription itself with the entitlement error: the daemon is up,
    entries are refused, and the operator reads which subscription is missing."""
    async with TwsGateway() as gateway:
        gateway.faults.no_market_data = (code, text)
        async with live_bot(gateway) as bot:
            await bot.wait_for(lambda: DATA_GATE in bot.engine.entry_gates, "the data gate")
            [alert] = bot.alerts(AlertKind.STALE_DATA)
            assert alert.startswith("entries stopped: IB: ")
            assert f"({code})" in alert
            assert "subscribe to CME real-time data for MES" in alert
            assert not gateway.realtime_subscriptions
            assert "CME real-time data" in bot.engine.entry_gates[DATA_GATE]


async def test_a_reconcile_while_a_10349_is_being_confirmed_still_counts_the_stop() -> None:
    """Between ib_async's Cancelled and IB's open orders confirming the stop, a reconcile must
    not find the live stop missing (the engine would close the position)."""
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
        await bot.wait_for(lambda: bot.engine.state is EngineState.LONG, "the position")
        await bot.wait_for(
            lambda: sum(o.is_working for o in gateway.orders) == 2, "the bracket working"
        )
        [stop] = [o for o in gateway.orders if o.is_working and o.order_type == "STP"]
        gateway.faults.unanswered[5] = lambda fields: True  # the confirmation waits on IB
        open_requests = sum(1 for m, _ in gateway.received if m == 5)
        await gateway.send_error(
            10349, "Order TIF was set to DAY based on order preset.", req_id=stop.order_id
        )
        await bot.wait_for(
            lambda: sum(1 for m, _ in gateway.received if m == 5) > open_requests,
            "the open orders asked",
        )
        assert stop.order_ref in {o.key for o in bot.session.broker.working_orders()}
        orders = len(gateway.orders)
        bot.clock.advance(timedelta(seconds=1))
        await bot.session.reconcile("test")
        await bot.settled()
        assert bot.engine.state is EngineState.LONG
        assert len(gateway.orders) == orders  # no exit sent
        del gateway.faults.unanswered[5]
