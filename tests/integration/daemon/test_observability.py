"""GET /healthz and GET /metrics of the running daemon, on 127.0.0.1, on both venues. On IB Gateway
they speak for the IB link: down while the gateway is away, a reconnect counted, bars that stop
coming named."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.venues import DaemonVenue, IbkrDaemon

pytestmark = pytest.mark.timeout(120)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _samples(text: str) -> dict[str, float]:
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def _health(base: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as client, client.get(f"{base}/healthz") as response:
        return response.status, await response.json()


async def _metrics(base: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as client, client.get(f"{base}/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        return _samples(await response.text())


async def test_health_and_metrics_describe_the_running_daemon(
    venue: DaemonVenue, tmp_path: Path
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = venue.settings(tmp_path, QS_OBSERVABILITY__PORT=str(port))
    async with venue.run(settings, speed=20000.0) as daemon:
        orders = await daemon.trade()
        code, health = await _health(base)
        metrics = await _metrics(base)
        assert code == 200
        assert {
            "status",
            "state",
            "position",
            "connected",
            "last_bar_age_s",
            "journal_backlog",
        } <= set(health)
        assert health["connected"] is True
        assert health["status"] == "ok", health["problems"]
        for name in (
            "qs_broker_connected",
            "qs_last_bar_age_seconds",
            "qs_position_contracts",
            "qs_session_realized_pnl_usd",
            "qs_breaker_halted",
            "qs_orders_total",
            "qs_rejections_total",
            "qs_reconnects_total",
            "qs_journal_backlog",
            "qs_alert_backlog",
        ):
            assert name in metrics, name
        assert metrics["qs_orders_total"] >= orders
        assert metrics["qs_broker_connected"] == 1
        if isinstance(daemon, IbkrDaemon):
            await _the_ib_link(daemon, base, health, metrics)
        await daemon.stop()
    async with aiohttp.ClientSession() as client:
        try:
            async with client.get(f"{base}/healthz"):
                raise AssertionError("still serving after the daemon stopped")
        except aiohttp.ClientConnectionError:
            pass


async def _the_ib_link(
    daemon: IbkrDaemon, base: str, health: dict[str, Any], metrics: dict[str, float]
) -> None:
    """Health and metrics follow the IB link and its bars, not the process."""
    live, gateway, session = daemon.live, daemon.live.gateway, daemon.live.session
    # Long one contract, the last bar just ended: bars are flowing.
    assert (health["position"], health["state"], health["last_bar_age_s"]) == (1, "LONG", 0.0)
    assert (metrics["qs_position_contracts"], metrics["qs_reconnects_total"]) == (1, 0)
    assert metrics["qs_orders_total"] == 1  # the bracket

    # The gateway goes away: the daemon is down for a supervisor's probe (503).
    await gateway.stop()
    await live.wait_for(lambda: not session.link_up, "the link down")
    code, down = await _health(base)
    assert (code, down["status"], down["connected"]) == (503, "down", False)
    assert "broker link down" in down["problems"]
    assert (await _metrics(base))["qs_broker_connected"] == 0

    # It comes back: the reconnect is counted, the position is still there.
    await gateway.start()
    await live.wait_for(lambda: session.link_up and session.reconnects == 1, "the reconnect")
    code, up = await _health(base)
    assert (code, up["status"], up["connected"], up["position"]) == (200, "ok", True, 1)
    again = await _metrics(base)
    assert (again["qs_broker_connected"], again["qs_reconnects_total"]) == (1, 1)
    assert again["qs_position_contracts"] == 1

    # The socket stays up but IB lost the Gateway (1100): down too, until IB says it is back.
    await gateway.send_error(1100, "Connectivity between IB and Trader Workstation has been lost.")
    await live.wait_for(lambda: not session.link_up, "the 1100")
    code, lost = await _health(base)
    assert (code, lost["status"], lost["connected"]) == (503, "down", False)
    await gateway.send_error(1102, "Connectivity between IB and TWS has been restored")
    await live.wait_for(lambda: session.link_up, "the 1102")
    code, back = await _health(base)
    assert (code, back["status"], back["connected"]) == (200, "ok", True)

    # Connected, but no bar for two minutes of market time: degraded, and the problem named.
    live.clock.set(live.clock.now() + timedelta(minutes=2))
    code, quiet = await _health(base)
    assert (code, quiet["status"], quiet["connected"]) == (200, "degraded", True)
    assert quiet["last_bar_age_s"] == 120.0
    assert "last bar 120 s ago" in quiet["problems"]
    assert (await _metrics(base))["qs_last_bar_age_seconds"] == 120.0
