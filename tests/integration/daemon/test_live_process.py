"""``quant-scalper run`` on IB Gateway as a real process: the TWS test gateway runs in this test's
event loop, the daemon in its own process with its own signal handlers and exit codes."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tests.support.live_process import daemon_env as _env
from tests.support.live_process import open_a_long as _open_a_long
from tests.support.live_process import start_daemon as _start
from tests.support.tws import TwsGateway

pytestmark = pytest.mark.timeout(120)


async def test_sigterm_with_a_position_flattens_and_exits_0(tmp_path: Path) -> None:
    async with TwsGateway() as gateway:
        proc = await _start(_env(gateway.port, tmp_path))
        con_id = await _open_a_long(gateway, proc)
        loop = asyncio.get_running_loop()
        sent = loop.time()
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        took = loop.time() - sent
        assert proc.returncode == 0, err.decode()
        assert gateway.position(con_id) == 0
        assert not [o for o in gateway.orders if o.is_working]
        line = out.decode().strip().splitlines()[-1]
        assert line.startswith("stopped (signal):"), line
        assert "position +0" in line
        for step in ("entries stopped", "flattened", "loose orders cancelled", "disconnected"):
            assert step in line, line
        # The budget is shutdown.timeout_s (25 s); bench/shutdown_bench.py measures the real figure.
        assert took < 30, f"the shutdown took {took:.1f} s"


async def test_keeping_the_bracket_on_sigterm_leaves_it_working_at_ib(tmp_path: Path) -> None:
    async with TwsGateway() as gateway:
        proc = await _start(_env(gateway.port, tmp_path, QS_SHUTDOWN__FLATTEN="false"))
        con_id = await _open_a_long(gateway, proc)
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        assert gateway.position(con_id) == 1
        assert sorted(o.order_type for o in gateway.orders if o.is_working) == ["LMT", "STP"]
        assert "position +1" in out.decode()


async def test_a_second_signal_exits_at_once_without_waiting_for_the_flatten(
    tmp_path: Path,
) -> None:
    async with TwsGateway() as gateway:
        proc = await _start(_env(gateway.port, tmp_path, QS_SHUTDOWN__TIMEOUT_S="60"))
        con_id = await _open_a_long(gateway, proc)
        gateway.faults.hold_fills = True  # the flatten will not fill: the shutdown would wait
        proc.send_signal(signal.SIGTERM)
        await gateway.wait_for(
            lambda: len(gateway.orders) == 4, timeout=30, what="the flatten order at IB"
        )
        loop = asyncio.get_running_loop()
        sent = loop.time()
        proc.send_signal(signal.SIGINT)  # the operator's Ctrl-C
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 130, err.decode()
        assert loop.time() - sent < 15
        assert gateway.position(con_id) == 1  # forced: the operator chose not to wait


async def test_a_sigterm_sent_twice_at_once_is_one_graceful_stop(tmp_path: Path) -> None:
    """GNU timeout signals the daemon and then its process group: the same SIGTERM twice."""
    async with TwsGateway() as gateway:
        proc = await _start(_env(gateway.port, tmp_path))
        con_id = await _open_a_long(gateway, proc)
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        assert gateway.position(con_id) == 0
        # (The kernel may merge the two into one delivery; either way it is one graceful stop.)
        assert "position +0" in out.decode().strip().splitlines()[-1]


async def test_an_unreachable_gateway_is_one_line_and_exit_4(tmp_path: Path) -> None:
    gateway = TwsGateway()
    await gateway.start()
    port = gateway.port
    await gateway.stop()
    proc = await _start(_env(port, tmp_path))
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 4
    # The console also gets the log (warnings about the config, the connect attempt); the verdict
    # is one line, and no traceback.
    text = err.decode()
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, text
    assert lines[0].startswith("error: cannot connect to IB Gateway at 127.0.0.1:")
    assert f":{port}" in lines[0]
    assert not out.strip()
