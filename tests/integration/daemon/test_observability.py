"""GET /healthz and GET /metrics of the running (simulated) daemon, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp

from entrypoints.daemon import DaemonHandle, RunOptions, run_daemon
from entrypoints.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config" / "sample.yaml"


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


async def test_health_and_metrics_describe_the_running_daemon(tmp_path: Path) -> None:
    port = _free_port()
    settings = load_settings(
        CONFIG, {"QS_DATABASE__DATA_DIR": str(tmp_path), "QS_OBSERVABILITY__PORT": str(port)}
    )
    handles: list[DaemonHandle] = []
    daemon = asyncio.get_running_loop().create_task(
        run_daemon(settings, RunOptions(speed=20000.0), on_ready=handles.append)
    )
    while not handles or handles[0].service.counters.orders_sent < 3:
        await asyncio.sleep(0.01)
        assert not daemon.done()
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{base}/healthz") as response:
            assert response.status == 200
            health = await response.json()
        async with client.get(f"{base}/metrics") as response:
            assert response.status == 200
            assert response.content_type == "text/plain"
            metrics = _samples(await response.text())
    assert {"status", "state", "position", "connected", "last_bar_age_s", "journal_backlog"} <= set(
        health
    )
    assert health["connected"] is True
    assert health["status"] == "ok"
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
    assert metrics["qs_orders_total"] >= 3
    assert metrics["qs_broker_connected"] == 1
    handles[0].stop.set()
    await asyncio.wait_for(daemon, 30)
    async with aiohttp.ClientSession() as client:
        try:
            async with client.get(f"{base}/healthz"):
                raise AssertionError("still serving after the daemon stopped")
        except aiohttp.ClientConnectionError:
            pass
