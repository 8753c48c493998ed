"""The IB Gateway daemon end to end (``run_daemon`` with ``daemon.broker: ibkr``): real ib_async
against the TWS test gateway, the real SQLite journal and state store, the session timer.

Bars are 1-minute strategy bars over a lookback of 10: eleven minutes of them make a LONG signal at
4990 with its bracket (stop 4980, target 5005), as in the live trading tests.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.ibkr.session import DATA_GATE
from adapters.simulated.clock import ManualClock
from adapters.sql.queries import SqlJournalReader
from domain.commands import (
    FillRecord,
    OperatorRecord,
    OrderIntentRecord,
    RoundTripRecord,
)
from domain.engine import EngineState
from domain.position import ExitReason
from entrypoints.container.store import open_engine
from entrypoints.daemon import RunOptions, StartupError, run_daemon
from entrypoints.settings import Settings
from tests.support.bot_api import FakeBotApi
from tests.support.live_bot import QUIET_CLOSES, SIGNAL_CLOSE, SIGNAL_END, START
from tests.support.live_daemon import LiveDaemon, daemon_settings, live_daemon
from tests.support.tws import GatewayBar, TwsGateway

pytestmark = pytest.mark.timeout(90)

REQ_HISTORICAL_DATA = 20
"""The client's reqHistoricalData message id (TWS API)."""

CHAT = 111

SHUTDOWN_STEPS = [
    "entries stopped",
    "flattened",
    "loose orders cancelled",
    "journal flushed",
    "alerts flushed",
    "disconnected",
]


async def _enter_long(daemon: LiveDaemon) -> None:
    await daemon.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
    await daemon.wait_for(lambda: daemon.engine.state is EngineState.LONG, "the entry fill")


def _working_refs(gateway: TwsGateway) -> set[str]:
    return {o.order_ref for o in gateway.orders if o.active and o.is_working}


def _telegram(api: FakeBotApi) -> dict[str, str]:
    """Settings that send the daemon's alerts to ``api``, a local Bot API server (what the
    operator receives is what these tests check, not the daemon's log lines)."""
    return {
        "QS_TELEGRAM__ENABLED": "true",
        "QS_TELEGRAM__TOKEN": api.token,
        "QS_TELEGRAM__API_BASE_URL": api.base_url,
        "QS_TELEGRAM__USERS": f'{{"{CHAT}": "operator"}}',
        "QS_TELEGRAM__CHAT_IDS": f"[{CHAT}]",
        "QS_TELEGRAM__RATE_LIMIT_PER_MINUTE": "600",
    }


def _alert_lines(api: FakeBotApi, containing: str) -> list[str]:
    """The alert lines the operator's chat received that contain ``containing``."""
    lines = [line for m in api.sent if m.chat_id == CHAT for line in m.text.splitlines()]
    return [line for line in lines if containing in line]


async def _records(settings: Settings, kind: type) -> list:  # type: ignore[type-arg]
    async with open_engine(settings) as db:
        return list(await SqlJournalReader(db).records_of(kind, None, None))


async def test_a_stop_flattens_cancels_the_legs_writes_everything_and_disconnects(
    tmp_path: Path,
) -> None:
    async with TwsGateway() as gateway:
        settings = daemon_settings(gateway.port, tmp_path)
        async with live_daemon(gateway, settings, start=START) as daemon:
            await _enter_long(daemon)
            con_id = daemon.con_id
            assert gateway.position(con_id) == 1
            assert len(_working_refs(gateway)) == 2  # the stop and the target
            result = await daemon.stop()

        assert list(result.shutdown) == SHUTDOWN_STEPS
        assert list(result.shutdown.values()) == sorted(result.shutdown.values())
        assert (result.stopped_by, result.position) == ("signal", 0)
        assert gateway.position(con_id) == 0
        # Every market bar is recorded, under the contract IB streamed, so the session replays.
        contract = daemon.session.contract
        assert contract is not None
        async with open_engine(settings) as db:
            bars = await SqlJournalReader(db).bars(contract.local_symbol)
        assert len(bars) == daemon.pushed == 132
        assert _working_refs(gateway) == set()
        await gateway.wait_for(lambda: gateway.connections == 0, what="the daemon disconnected")
        [trip] = [r.trip for r in await _records(settings, RoundTripRecord)]
        assert (trip.entry_price, trip.exit_price) == (Decimal("4990"), Decimal("4990"))
        assert trip.exit_reason is ExitReason.OPERATOR
        # Two fills, each booked once, with IB's commission.
        fills = [r.fill for r in await _records(settings, FillRecord)]
        assert [f.commission for f in fills] == [Decimal("0.62"), Decimal("0.62")]


async def test_keeping_the_bracket_leaves_it_at_ib_and_a_restart_resumes_the_position(
    tmp_path: Path,
) -> None:
    async with TwsGateway() as gateway:
        settings = daemon_settings(gateway.port, tmp_path, QS_SHUTDOWN__FLATTEN="false")
        async with live_daemon(gateway, settings, start=START) as daemon:
            await _enter_long(daemon)
            con_id = daemon.con_id
            legs = _working_refs(gateway)
            result = await daemon.stop()
        assert "flattened" not in result.shutdown
        assert result.position == 1
        assert gateway.position(con_id) == 1
        assert _working_refs(gateway) == legs  # the broker still protects the position

        later = START + SIGNAL_END + timedelta(minutes=2)
        async with live_daemon(gateway, settings, start=later) as daemon:
            await daemon.wait_for(
                lambda: (
                    daemon.engine.state is EngineState.LONG
                    and daemon.engine.status().reconcile_required is None
                    and daemon.handle.service.counters.commands > 0
                ),
                "the restored position, reconciled",
            )
            assert set(daemon.engine.working_orders) == legs
            # The stop still works, and the trade is booked once.
            await daemon.push([("4985", "4985", "4979.75", "4980")], at=later)
            await daemon.wait_for(lambda: daemon.engine.state is EngineState.IDLE, "the stop")
            await daemon.stop()
        trips = [r.trip for r in await _records(settings, RoundTripRecord)]
        assert [(t.exit_reason, t.exit_price) for t in trips] == [
            (ExitReason.STOP, Decimal("4980"))
        ]
        assert gateway.position(con_id) == 0


async def test_an_operator_stop_that_keeps_the_bracket_overrides_shutdown_flatten(
    tmp_path: Path,
) -> None:
    async with TwsGateway() as gateway:
        settings = daemon_settings(gateway.port, tmp_path)  # shutdown.flatten: true
        async with live_daemon(gateway, settings, start=START) as daemon:
            await _enter_long(daemon)
            await daemon.handle.console.stop("telegram:111", flatten=False)
            result = await daemon.stop()
        assert (result.stopped_by, result.position) == ("operator", 1)
        assert gateway.position(daemon.con_id) == 1
        commands = [r.command for r in await _records(settings, OperatorRecord)]
        assert "stop" in commands


async def test_a_dry_run_journals_signals_and_intents_but_sends_no_order(tmp_path: Path) -> None:
    async with TwsGateway() as gateway:
        settings = daemon_settings(gateway.port, tmp_path)
        async with live_daemon(gateway, settings, start=START, dry_run=True) as daemon:
            await daemon.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
            await daemon.wait_for(
                lambda: daemon.engine.state is EngineState.ENTERING_LONG, "the dry-run entry"
            )
            await daemon.stop()
        assert gateway.orders == []
        intents = await _records(settings, OrderIntentRecord)
        assert {r.role for r in intents} == {"entry", "stop", "target"}
        # The next real run does not inherit the dry run's entry that was never sent.
        async with live_daemon(gateway, settings, start=START + SIGNAL_END) as daemon:
            assert daemon.engine.state is EngineState.IDLE
            assert daemon.engine.working_orders == {}
            await daemon.stop()


async def test_the_z_score_is_warmed_up_from_ib_history_so_the_first_live_bar_can_signal(
    tmp_path: Path,
) -> None:
    async with TwsGateway() as gateway:
        con_id = gateway.contracts[0].con_id
        # Ten quiet minutes IB already has (streamed before the daemon started).
        t = START
        history = []
        for close in QUIET_CLOSES:
            for _ in range(12):
                history.append(GatewayBar(t, *(Decimal(close),) * 4))
                t += timedelta(seconds=5)
        gateway.add_history(con_id, history)
        settings = daemon_settings(gateway.port, tmp_path)
        async with live_daemon(gateway, settings, start=t) as daemon:
            assert daemon.con_id == con_id
            # One live minute at the signal close is enough: the window is already full.
            await daemon.push_minutes([SIGNAL_CLOSE], at=t)
            await daemon.wait_for(lambda: daemon.engine.state is EngineState.LONG, "the entry")
            await daemon.stop()


@pytest.mark.parametrize("fault", ["nothing listening", "client id in use"])
async def test_a_gateway_that_cannot_be_used_at_start_up_is_one_line_and_exit_4(
    tmp_path: Path, fault: str
) -> None:
    gateway = TwsGateway()
    await gateway.start()
    port = gateway.port
    if fault == "nothing listening":
        await gateway.stop()
    else:
        gateway.faults.client_id_in_use(17, times=5)
    settings = daemon_settings(port, tmp_path)
    try:
        with pytest.raises(StartupError) as caught:
            await run_daemon(settings, RunOptions(speed=None))
    finally:
        if gateway.listening:
            await gateway.stop()
    assert caught.value.exit_code == 4
    line = str(caught.value)
    assert "\n" not in line
    assert f"127.0.0.1:{port}" in line
    if fault == "client id in use":
        assert "client id 17" in line


async def test_dry_run_with_the_simulated_broker_is_refused_in_one_line(tmp_path: Path) -> None:
    settings = daemon_settings(1, tmp_path, QS_DAEMON__BROKER="simulated")
    with pytest.raises(StartupError) as caught:
        await run_daemon(settings, RunOptions(speed=None, dry_run=True))
    assert caught.value.exit_code == 2
    assert "--dry-run" in str(caught.value)


async def test_a_quiet_feed_is_flattened_before_the_close_and_the_day_is_summed_up_at_17(
    tmp_path: Path,
) -> None:
    async with TwsGateway() as gateway, FakeBotApi() as api:
        settings = daemon_settings(
            gateway.port,
            tmp_path,
            QS_SESSION__CALENDAR="cme_globex_equity",
            **_telegram(api),
        )
        async with live_daemon(gateway, settings, start=START) as daemon:
            await _enter_long(daemon)  # 10:11 New York
            # No bar comes any more; the session timer alone closes the position at 16:55.
            flatten_at = START.replace(hour=21, minute=55)  # 16:55 New York (EST)
            daemon.clock.set(flatten_at)
            await daemon.wait_for(lambda: daemon.engine.position.is_flat, "the flatten")
            assert gateway.position(daemon.con_id) == 0
            daemon.clock.set(START.replace(hour=22, minute=0, second=1))  # 17:00:01
            await api.wait_for(
                lambda: bool(_alert_lines(api, "daily_summary:")), 30.0, what="the summary"
            )
            await daemon.stop()
        [trip] = [r.trip for r in await _records(settings, RoundTripRecord)]
        assert trip.exit_reason is ExitReason.SESSION
        [summary] = _alert_lines(api, "daily_summary:")
        assert "session 2026-11-24 closed: 1 trades" in summary


async def test_entries_are_blocked_around_the_ib_gateway_restart_time(tmp_path: Path) -> None:
    async with TwsGateway() as gateway:
        # START is 10:00 New York: a restart at 10:05 blocks entries from 09:55 to 10:15.
        settings = daemon_settings(gateway.port, tmp_path, QS_IBKR__RESTART_TIME="10:05")
        async with live_daemon(gateway, settings, start=START) as daemon:
            await daemon.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
            await daemon.push(["4990"], at=START + SIGNAL_END)
            status = daemon.engine.status()
            assert daemon.engine.state is EngineState.IDLE
            assert status.entry_blocker is not None
            assert "IB Gateway restarts at 10:05" in status.entry_blocker
            await daemon.stop()
        assert gateway.orders == []
        assert await _records(settings, OrderIntentRecord) == []


async def test_a_session_timer_that_dies_is_paged_and_trading_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: object) -> None:
        raise RuntimeError("calendar table corrupt")

    monkeypatch.setattr("application.session_timer.SessionTimer.run", broken)
    async with TwsGateway() as gateway, FakeBotApi() as api:
        settings = daemon_settings(gateway.port, tmp_path, **_telegram(api))
        async with live_daemon(gateway, settings, start=START) as daemon:
            await api.wait_for(
                lambda: bool(_alert_lines(api, "the session timer task ended")),
                30.0,
                what="the error alert",
            )
            await _enter_long(daemon)
            assert daemon.engine.state is EngineState.LONG  # trading went on
            await daemon.stop()
    [paged] = _alert_lines(api, "the session timer task ended")
    assert " error: " in paged
    assert "calendar table corrupt" in paged


async def test_keeping_the_bracket_never_cancels_the_legs_of_an_entry_ib_has_filled(
    tmp_path: Path,
) -> None:
    # The commission report comes before the execution, which ib_async drops: the fill then waits
    # commission_wait_s for a report, and the engine does not know yet that IB holds +1.
    async with TwsGateway() as gateway:
        settings = daemon_settings(
            gateway.port,
            tmp_path,
            QS_SHUTDOWN__FLATTEN="false",
            QS_IBKR__COMMISSION_WAIT_S="30",
        )
        async with live_daemon(gateway, settings, start=START) as daemon:
            gateway.faults.fill_sequence = "commission_first"
            await daemon.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
            await daemon.push([SIGNAL_CLOSE], at=START + SIGNAL_END)
            await gateway.wait_for(lambda: gateway.position(daemon.con_id) == 1, what="the fill")
            assert daemon.engine.position.is_flat  # not told yet
            con_id = daemon.con_id
            await daemon.stop()
        assert gateway.position(con_id) == 1
        assert sorted(o.order_type for o in gateway.orders if o.is_working) == ["LMT", "STP"]


async def test_a_stop_while_still_connecting_ends_at_once_with_nothing_left(
    tmp_path: Path,
) -> None:
    async with TwsGateway() as gateway:
        gateway.faults.client_id_in_use(17, times=10)
        settings = daemon_settings(
            gateway.port,
            tmp_path,
            QS_IBKR__STARTUP_ATTEMPTS="5",
            QS_IBKR__CLIENT_ID_WAIT_S="30",
        )
        stop = asyncio.Event()
        run = asyncio.get_running_loop().create_task(
            run_daemon(settings, RunOptions(speed=None), stop=stop)
        )
        # The first attempt is refused (326); the next waits client_id_wait_s (30 s) first.
        await gateway.wait_for(
            lambda: gateway.faults._client_id_in_use[17] < 10, what="a refused connect"
        )
        stop.set()
        result = await asyncio.wait_for(run, 5)
        assert result.stopped_by == "signal during start-up"
        await gateway.wait_for(lambda: gateway.connections == 0, what="no connection left")


async def test_a_stop_while_warming_up_from_ib_history_ends_at_once(tmp_path: Path) -> None:
    # IB does not answer the history request: the warm-up would wait request_timeout_s (a minute
    # here; each request of a warm-up that pages back), the stop must not.
    async with TwsGateway() as gateway:
        gateway.faults.unanswered[REQ_HISTORICAL_DATA] = lambda fields: True
        settings = daemon_settings(gateway.port, tmp_path, QS_IBKR__REQUEST_TIMEOUT_S="60")
        stop = asyncio.Event()
        run = asyncio.get_running_loop().create_task(
            run_daemon(settings, RunOptions(speed=None), stop=stop, clock=ManualClock(START))
        )
        await gateway.wait_for(
            lambda: any(msg_id == REQ_HISTORICAL_DATA for msg_id, _ in gateway.received),
            what="the warm-up's history request",
        )
        stop.set()
        result = await asyncio.wait_for(run, 30)  # well inside the request's 60 s
        assert result.stopped_by == "signal during start-up"
        await gateway.wait_for(lambda: gateway.connections == 0, what="no connection left")


async def test_a_warm_up_refused_for_want_of_the_cme_subscription_refuses_to_arm(
    tmp_path: Path,
) -> None:
    """The warm-up's historical request is the start-up's market-data probe: on an account without
    the CME subscription IB's historical service answers 162 "No market data permissions" (162 is
    also its pacing code: only the text tells). Entries are refused, naming the subscription."""
    async with TwsGateway() as gateway:
        gateway.faults.no_historical_data = (
            162,
            "Historical Market Data Service error message:No market data permissions for CME FUT",
        )
        settings = daemon_settings(gateway.port, tmp_path)
        async with live_daemon(gateway, settings, start=START) as daemon:
            await daemon.wait_for(lambda: DATA_GATE in daemon.engine.entry_gates, "entries refused")
            reason = daemon.engine.entry_gates[DATA_GATE]
            assert "no market-data permission" in reason
            assert "(162)" in reason
            assert "subscribe to CME real-time data for MES" in reason
            assert daemon.session.notices["entitlement"] >= 1
            assert daemon.session.notices["pacing"] == 0
            await daemon.stop()
