"""The IB Gateway daemon as a real process (``python -m entrypoints.cli run``) against the TWS test
gateway in the caller's event loop: for the process tests and bench/shutdown_bench.py."""

from __future__ import annotations

import asyncio
import os
import sys
from decimal import Decimal
from pathlib import Path

from tests.support.live_bot import QUIET_CLOSES, SIGNAL_CLOSE, START, STEP
from tests.support.tws import GatewayBar, TwsGateway

ROOT = Path(__file__).resolve().parents[2]


def daemon_env(port: int, tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        **os.environ,
        "QS_DAEMON__BROKER": "ibkr",
        "QS_DATABASE__DATA_DIR": str(tmp_path / "var"),
        "QS_LOGGING__DIR": str(tmp_path / "logs"),
        "QS_IBKR__PORT": str(port),
        "QS_IBKR__CONNECT_TIMEOUT_S": "5",
        "QS_IBKR__REQUEST_TIMEOUT_S": "5",
        "QS_IBKR__COMMISSION_WAIT_S": "0.3",
        "QS_IBKR__STARTUP_ATTEMPTS": "1",
        "QS_IBKR__RESTART_TIME": "null",
        "QS_IBKR__WATCHDOG_INTERVAL_S": "3600",
        "QS_IBKR__MAX_CLOCK_SKEW_S": "null",  # the gateway's time follows the pushed bars
        "QS_STRATEGY__BAR_MINUTES": "1",
        "QS_STRATEGY__LOOKBACK_PERIOD": "10",
        "QS_SESSION__CALENDAR": "none",
        "QS_SESSION__NO_ENTRY_IN_ROLL_WEEK": "false",
        "QS_RISK__MAX_POSITION_DURATION_HOURS": "null",
        "QS_ZSCORE__ENGINE": "python",
    }
    env.update(overrides)
    return env


async def start_daemon(
    env: dict[str, str], *, console: Path | None = None
) -> asyncio.subprocess.Process:
    """Start ``quant-scalper run``. Its stdout and stderr are pipes for ``communicate()``, or, with
    ``console``, appended to that file: a long run nobody reads the pipes of must not fill them
    and block on its own logging."""
    if console is None:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "entrypoints.cli",
            "run",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    with console.open("ab") as out:  # the child keeps its own copy of the descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "entrypoints.cli",
            "run",
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )


def console_tail(console: Path, lines: int = 40) -> str:
    """The last lines a daemon started with ``console`` wrote, for a failure message."""
    if not console.exists():
        return "(no output)"
    return "\n".join(console.read_text(errors="replace").splitlines()[-lines:])


REQ_POSITIONS, REQ_HISTORICAL_DATA = 61, 20
"""TWS client message ids (tws-protocol.md): the daemon's last two start-up requests."""


async def wait_started(
    gateway: TwsGateway,
    proc: asyncio.subprocess.Process,
    since: int,
    *,
    timeout: float = 60.0,
    console: Path | None = None,
) -> int:
    """Wait until a daemon started after ``gateway.received[since]`` is through its start-up: bars
    subscribed, the z-score warmed up from IB's history, and the broker's report asked for after
    that (the reconcile's positions request); returns the subscribed conId.

    A bar pushed earlier could land in the warm-up's history too: the test's bars are stamped in
    the past, so IB's history would serve their minute as complete."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    def started() -> bool:
        ids = [msg_id for msg_id, _ in gateway.received[since:]]
        if REQ_HISTORICAL_DATA not in ids or not gateway.realtime_subscriptions:
            return False
        return REQ_POSITIONS in ids[ids.index(REQ_HISTORICAL_DATA) :]

    while not started():
        if proc.returncode is not None or loop.time() > deadline:
            if console is not None:
                output = console_tail(console)
            else:
                output = "" if proc.returncode is None else (await proc.communicate())[1].decode()
            raise AssertionError(f"the daemon did not start (exit {proc.returncode}): {output}")
        await asyncio.sleep(0.01)
    return gateway.realtime_subscriptions[0].con_id


async def open_a_long(gateway: TwsGateway, proc: asyncio.subprocess.Process) -> int:
    """Wait for the daemon's bar subscription, then stream the bars of a LONG signal."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not gateway.realtime_subscriptions:
        if proc.returncode is not None or loop.time() > deadline:
            _, err = await proc.communicate()
            raise AssertionError(f"the daemon did not subscribe: {err.decode()}")
        await asyncio.sleep(0.02)
    con_id = gateway.realtime_subscriptions[0].con_id
    t = START
    for close in [*QUIET_CLOSES, SIGNAL_CLOSE]:
        for _ in range(12):
            await gateway.push_bar(con_id, GatewayBar(t, *(Decimal(close),) * 4))
            t += STEP
    # The signal bar completes with the next bar after it.
    await gateway.push_bar(con_id, GatewayBar(t, *(Decimal(SIGNAL_CLOSE),) * 4))
    await gateway.wait_for(lambda: gateway.position(con_id) == 1, timeout=30, what="the entry")
    await gateway.wait_for(
        lambda: sum(o.is_working for o in gateway.orders) == 2, what="the bracket legs working"
    )
    return con_id
