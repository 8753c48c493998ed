"""``quant-scalper ibkr-check`` against the TWS test gateway, run as a real process."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.support.tws import GatewayBar, TwsGateway

pytestmark = pytest.mark.timeout(60)


async def _run_check(gateway: TwsGateway, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "QS_IBKR__PORT": str(gateway.port), "QS_IBKR__CLIENT_ID": "41"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "entrypoints.cli",
        "ibkr-check",
        "--bar-timeout",
        "20",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    feeding = asyncio.get_running_loop().create_task(_feed_bars(gateway))
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 50)
    finally:
        feeding.cancel()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _feed_bars(gateway: TwsGateway) -> None:
    """Once the check subscribes, stream a 5-second bar every 50 ms."""
    now = datetime.now(UTC).replace(microsecond=0)
    t = now - timedelta(seconds=now.second % 5)
    price = Decimal("6000")
    while True:
        for sub in gateway.realtime_subscriptions:
            await gateway.push_bar(sub.con_id, GatewayBar(t, price, price + 1, price - 1, price))
            t += timedelta(seconds=5)
        await asyncio.sleep(0.05)


async def test_the_check_reports_version_accounts_contract_positions_and_three_bars() -> None:
    async with TwsGateway() as gateway:
        code, out, err = await _run_check(gateway, "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["ok"] is True
    assert answer["server_version"] == 178
    assert answer["accounts"] == ["DU1234567"]
    listed = {c.local_symbol: c for c in gateway.contracts}
    contract = answer["contract"]
    assert contract["local_symbol"] in listed
    assert contract["con_id"] == listed[contract["local_symbol"]].con_id
    assert answer["positions"] == []
    assert len(answer["bars"]) == 3
    assert {b["close"] for b in answer["bars"]} == {6000.0}
    assert gateway.orders == []  # nothing placed without --test-order


async def test_a_test_order_is_placed_far_from_the_market_and_cancelled() -> None:
    async with TwsGateway() as gateway:
        code, out, err = await _run_check(gateway, "--test-order")
    assert code == 0, err
    [order] = gateway.orders
    assert (order.action, order.order_type, order.quantity) == ("BUY", "LMT", 1)
    assert order.lmt_price == Decimal("3000")
    assert order.status == "Cancelled"
    assert order.filled == 0
    assert "test order: BUY 1 LMT 3000.00: Submitted, then Cancelled" in out
