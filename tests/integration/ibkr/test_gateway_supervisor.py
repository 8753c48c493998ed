"""The Gateway supervisor that does not trust the socket, the paper-account check and IB's clock
(issue 16 items 3-4), through real ib_async and the TWS test gateway."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.ibkr.heartbeat import READY_GATE
from adapters.ibkr.session import ACCOUNT_GATE, GATE, MARGIN_GATE
from application.ports import BrokerError
from application.reconcile import broker_report
from domain.commands import AlertKind, Severity
from domain.engine import EngineState
from domain.events import ReconcileFailed
from tests.support.live_bot import QUIET_CLOSES, SIGNAL_CLOSE, START, bot_settings, live_bot
from tests.support.tws import TwsGateway

pytestmark = pytest.mark.timeout(120)

REQ_OPEN_ORDERS, REQ_POSITIONS = 5, 61
"""TWS message ids of the requests a reconcile and a bracket check send."""


def _critical(bot: object, kind: AlertKind) -> list[str]:
    return [
        a.text
        for a in bot.notifier.alerts  # type: ignore[attr-defined]
        if a.kind is kind and a.severity is Severity.CRITICAL
    ]


async def test_a_gateway_that_answers_nothing_gates_entries_sends_no_order_and_says_what_to_do() -> (
    None
):
    async with TwsGateway() as gateway:
        settings = bot_settings(
            gateway.port, QS_IBKR__HEARTBEAT_S="0.2", QS_IBKR__REQUEST_TIMEOUT_S="1"
        )
        async with live_bot(gateway, settings=settings) as bot:
            t = await bot.push(["5000"] * 2, at=START)
            assert bot.session.heartbeat.beats >= 0
            await bot.wait_for(lambda: bot.session.heartbeat.beats >= 1, "a heartbeat answered")
            gateway.faults.silent = True
            await bot.wait_for(lambda: READY_GATE in bot.engine.entry_gates, "the ready gate")
            [alert] = _critical(bot, AlertKind.CONNECTION)
            assert "answered nothing" in alert
            assert "two-factor" in alert
            assert bot.session.client.connected  # the socket never closed
            # A signal while the Gateway is silent opens nothing, and nothing reaches IB.
            orders = len(gateway.orders)
            await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=t)
            assert bot.engine.state is EngineState.IDLE
            assert len(gateway.orders) == orders
            # It answers again: the orders are resynced, the position reconciled, entries reopen.
            reconciled = len(bot.order_events("reconciled"))
            bot.clock.advance(timedelta(seconds=1))
            gateway.faults.silent = False
            await bot.wait_for(lambda: READY_GATE not in bot.engine.entry_gates, "reopened")
            assert len(bot.order_events("reconciled")) == reconciled + 1
            assert bot.alerts(AlertKind.CONNECTION)[-1].startswith("IB Gateway answers again")
            assert gateway.connections == 1


async def test_a_live_account_gets_no_order_and_the_alert_names_it() -> None:
    async with TwsGateway(accounts=("U7654321",)) as gateway, live_bot(gateway) as bot:
        await bot.wait_for(lambda: ACCOUNT_GATE in bot.engine.entry_gates, "the account gate")
        [alert] = _critical(bot, AlertKind.CONNECTION)
        assert "U7654321" in alert
        assert "ibkr.paper" in alert
        await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
        assert bot.engine.state is EngineState.IDLE
        assert gateway.orders == []


async def test_a_live_account_trades_when_paper_is_off() -> None:
    async with TwsGateway(accounts=("U7654321",)) as gateway:
        settings = bot_settings(gateway.port, QS_IBKR__PAPER="false")
        async with live_bot(gateway, settings=settings) as bot:
            await bot.settled()
            assert ACCOUNT_GATE not in bot.engine.entry_gates
            await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
            await bot.wait_for(lambda: gateway.position(bot.con_id) == 1, "the entry")


async def test_a_clock_off_from_ib_s_by_more_than_the_limit_is_an_alert_at_connect() -> None:
    ib_time = START + timedelta(seconds=42)
    async with TwsGateway(now=lambda: ib_time) as gateway:
        settings = bot_settings(gateway.port, QS_IBKR__MAX_CLOCK_SKEW_S="5")
        async with live_bot(gateway, settings=settings) as bot:
            [alert] = [a.text for a in bot.notifier.alerts if a.kind is AlertKind.ANOMALY]
            assert "-42 s from IB Gateway's" in alert
            assert "NTP" in alert


async def test_a_clock_within_the_limit_says_nothing() -> None:
    ib_time = datetime(2026, 11, 24, 15, 0, 3, tzinfo=UTC)
    async with TwsGateway(now=lambda: ib_time) as gateway:
        settings = bot_settings(gateway.port, QS_IBKR__MAX_CLOCK_SKEW_S="5")
        async with live_bot(gateway, settings=settings) as bot:
            assert not [a for a in bot.notifier.alerts if a.kind is AlertKind.ANOMALY]


async def test_an_account_that_cannot_carry_one_entry_is_refused_with_ib_s_figures() -> None:
    async with TwsGateway() as gateway:
        gateway.equity_with_loan = Decimal("1000.00")
        async with live_bot(gateway) as bot:
            await bot.wait_for(lambda: MARGIN_GATE in bot.engine.entry_gates, "the margin gate")
            [alert] = _critical(bot, AlertKind.CONNECTION)
            assert "initial margin after 1,650.00 USD, equity with loan 1,000.00 USD" in alert
            assert "risk.max_position_size" in alert
            await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
            assert gateway.orders == []  # the what-if placed nothing, and no entry followed


async def test_an_account_that_can_carry_it_arms_and_nothing_is_placed_by_the_check() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        assert bot.session.margin_checked is not None
        assert "initial margin after 1,650.00 USD" in bot.session.margin_checked
        assert gateway.orders == []
        await bot.settled()
        assert MARGIN_GATE not in bot.engine.entry_gates
        await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
        await bot.wait_for(lambda: gateway.position(bot.con_id) == 1, "the entry")


async def test_a_silent_gateway_is_not_sent_the_periodic_reconcile_so_no_mismatch_is_raised() -> (
    None
):
    """A reconcile sent to a Gateway that answers nothing only times out, and a failed reconcile
    halts entries with a mismatch alert on top of the silence's own (seen in the soak). The
    heartbeat reconciles once it answers again."""
    async with TwsGateway() as gateway:
        settings = bot_settings(
            gateway.port, QS_IBKR__HEARTBEAT_S="0.2", QS_IBKR__REQUEST_TIMEOUT_S="0.5"
        )
        async with live_bot(gateway, settings=settings) as bot:
            await bot.push(["5000"] * 2, at=START)
            await bot.wait_for(lambda: bot.session.heartbeat.beats >= 1, "a heartbeat answered")
            gateway.faults.silent = True
            await bot.wait_for(lambda: READY_GATE in bot.engine.entry_gates, "the ready gate")
            bot.clock.advance(timedelta(minutes=10))  # the periodic reconcile (5 min) is due
            await bot.session.check_periodic()
            asked = {msg_id for _, msg_id in gateway.ignored_while_silent}
            assert REQ_POSITIONS not in asked
            assert REQ_OPEN_ORDERS not in asked
            gateway.faults.silent = False
            await bot.wait_for(lambda: READY_GATE not in bot.engine.entry_gates, "reopened")
            await bot.settled()
            assert bot.alerts(AlertKind.RECONCILE_MISMATCH) == []
            assert bot.engine.status().reconcile_required is None
            # Answering again, the periodic reconcile runs as before.
            bot.clock.advance(timedelta(minutes=10))
            reconciled = len(bot.order_events("reconciled"))
            await bot.session.check_periodic()
            await bot.settled()
            assert len(bot.order_events("reconciled")) == reconciled + 1


async def test_a_gateway_that_falls_silent_while_the_bracket_is_checked_is_not_asked_the_position() -> (
    None
):
    async with TwsGateway() as gateway:
        settings = bot_settings(gateway.port, QS_IBKR__REQUEST_TIMEOUT_S="0.5")
        async with live_bot(gateway, settings=settings) as bot:
            await bot.settled()
            bot.clock.advance(timedelta(minutes=10))  # the periodic reconcile (5 min) is due
            gateway.faults.silent = True
            # A beat goes out first and times out first: the Gateway is not ready by the time
            # the bracket check (its open orders) has timed out too.
            await asyncio.gather(bot.session.heartbeat.beat(), bot.session.check_periodic())
            assert not bot.session.heartbeat.ready
            asked = {msg_id for _, msg_id in gateway.ignored_while_silent}
            assert REQ_OPEN_ORDERS in asked
            assert REQ_POSITIONS not in asked


async def test_a_request_the_gateway_leaves_unanswered_is_named_in_the_error_not_left_blank() -> (
    None
):
    """A request timing out raises a TimeoutError with no text: the reason used to read "IB did
    not answer: " with nothing after it, in the reconcile alert the operator gets."""
    async with TwsGateway() as gateway:
        settings = bot_settings(gateway.port, QS_IBKR__REQUEST_TIMEOUT_S="0.3")
        async with live_bot(gateway, settings=settings) as bot:
            await bot.settled()
            gateway.faults.silent = True
            with pytest.raises(BrokerError, match=r"^IB did not answer: TimeoutError$"):
                await bot.session.broker.position()
            report = await broker_report(bot.session.broker, START, "periodic")
            assert isinstance(report, ReconcileFailed)
            assert report.reason == "periodic: IB did not answer: TimeoutError"


async def test_an_advisor_s_paper_master_account_is_a_paper_account() -> None:
    async with TwsGateway(accounts=("DF7654321",)) as gateway, live_bot(gateway) as bot:
        await bot.settled()
        assert ACCOUNT_GATE not in bot.engine.entry_gates
        assert not _critical(bot, AlertKind.CONNECTION)


async def test_a_gateway_back_from_its_restart_waiting_for_the_login_is_reminded_of_until_logged_in() -> (
    None
):
    """The weekly restart needs a two-factor login: until someone logs in the Gateway takes no
    API connection (the Docker images' relay accepts and closes it). The operator hears of it at
    once and again with backoff, not once then never; the position keeps its bracket at IB; the
    login brings the link back with the orders resynced and the position reconciled."""
    async with TwsGateway() as gateway:
        settings = bot_settings(
            gateway.port,
            QS_IBKR__CONNECT_TIMEOUT_S="30",  # a closed socket ends an attempt at once
            QS_IBKR__OUTAGE_REMINDER_S="0.5",
            QS_IBKR__OUTAGE_REMINDER_MAX_S="1",
        )
        async with live_bot(gateway, settings=settings) as bot:
            await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
            await bot.wait_for(lambda: gateway.position(bot.con_id) == 1, "the entry")
            legs = [o for o in gateway.orders if o.parent_id]
            await bot.wait_for(lambda: all(o.is_working for o in legs), "the bracket at IB")
            await gateway.restart(login_required=True)

            def reminders() -> list[str]:
                return [a for a in _critical(bot, AlertKind.CONNECTION) if "out of reach" in a]

            await bot.wait_for(lambda: len(reminders()) >= 3, "three reminders", timeout=60)
            assert "log in on the Gateway" in reminders()[0]
            assert "two-factor" in reminders()[0]
            texts = bot.alerts(AlertKind.CONNECTION)
            assert "lost the connection to IB Gateway" in texts
            [first] = [t for t in texts if t.startswith("cannot connect")]  # then the reminders
            assert "closed it before the API handshake" in first
            assert "waiting for its login" in first
            assert gateway.refused_logins >= 3
            assert GATE in bot.engine.entry_gates
            assert not bot.session.link_up
            assert all(o.is_working for o in legs)  # the position stays protected at IB
            assert len(gateway.orders) == 3

            gateway.log_in()
            await bot.wait_for(lambda: bot.session.link_up, "the reconnect", timeout=60)
            await bot.wait_for(lambda: not bot.engine.entry_gates, "entries open again")
            assert bot.alerts(AlertKind.CONNECTION)[-1].startswith("reconnected to IB Gateway")
            assert bot.engine.state is EngineState.LONG
            assert len(gateway.orders) == 3  # the bracket was kept, not re-sent
            after = len(reminders())
            await bot.settled()
            assert len(reminders()) == after  # no reminder once it is back
