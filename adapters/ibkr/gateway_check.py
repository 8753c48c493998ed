"""What ``quant-scalper ibkr-check`` asks of IB Gateway, through ib_async.

It connects, qualifies the front contract by the bot's roll rule, and reads the accounts, the
positions and a few 5-second bars. It places nothing unless asked: with ``test_order`` it places a
1-lot buy limit far below the market (half the last price, on the tick grid), waits until IB holds
it, and cancels it.

The outcome is a :class:`GatewayReport`; a check that could not complete says why in its ``error``
(one line for a human) rather than by an exception, so the command needs no IB type to tell.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from ib_async import LimitOrder

from adapters.ibkr.client import IbClient, IbConnectError
from adapters.ibkr.contracts import ContractError, IbkrContractResolver
from adapters.ibkr.mapping import bar_from_realtime
from domain.bar import Bar

TEST_ORDER_REF = "QS-CHECK"


@dataclass
class GatewayReport:
    """What the Gateway answered; ``error`` set when the check stopped short."""

    server_version: int = 0
    accounts: list[str] = field(default_factory=list)
    contract: dict[str, Any] = field(default_factory=dict)
    positions: list[dict[str, Any]] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    test_order: dict[str, Any] | None = None
    error: str | None = None


class _Failed(Exception):
    """The check cannot go on; the message is the report's ``error``."""


class IbkrGatewayCheck:
    """The ibkr-check's conversation with IB Gateway over ``client`` (connected and disconnected
    here: a check is one short session)."""

    def __init__(self, client: IbClient, resolver: IbkrContractResolver, symbol: str) -> None:
        self._client = client
        self._resolver = resolver
        self._symbol = symbol

    async def run(
        self, now: datetime, *, bars: int, bar_timeout_s: float, test_order: bool
    ) -> GatewayReport:
        report = GatewayReport()
        try:
            await self._client.connect()
        except IbConnectError as exc:
            report.error = str(exc)
            return report
        try:
            await self._check(report, now, bars, bar_timeout_s, test_order)
        except _Failed as exc:
            report.error = str(exc)
        except (TimeoutError, ConnectionError) as exc:
            report.error = (
                f"IB Gateway stopped answering during the check: {str(exc) or type(exc).__name__}"
            )
        finally:
            self._client.disconnect()
        return report

    async def _check(
        self, report: GatewayReport, now: datetime, bars: int, bar_timeout_s: float, order: bool
    ) -> None:
        client, resolver = self._client, self._resolver
        try:
            contract = await resolver.front_month(now)
        except (ContractError, TimeoutError) as exc:
            raise _Failed(f"cannot qualify the {self._symbol} contract: {exc}") from exc
        ib_contract = resolver.ib_contract(contract)
        positions = await client.positions()
        report.server_version = client.server_version
        report.accounts = client.accounts()
        report.contract = {
            "local_symbol": contract.local_symbol,
            "con_id": contract.con_id,
            "expiry": contract.expiry.isoformat(),
        }
        report.positions = [
            {
                "account": p.account,
                "con_id": p.contract.conId,
                "local_symbol": p.contract.localSymbol,
                "position": int(p.position),
                "avg_cost": str(p.avgCost),
            }
            for p in positions
        ]
        report.bars = await _read_bars(client, ib_contract, bars, bar_timeout_s)
        if order:
            if not report.bars:
                raise _Failed("no bar arrived, so there is no price to place a safe test order")
            report.test_order = await _test_order(client, ib_contract, report.bars[-1].close)


async def _read_bars(client: IbClient, contract: Any, count: int, timeout_s: float) -> list[Bar]:
    got: list[Bar] = []
    done = asyncio.Event()
    subscription = await client.realtime_bars(contract)

    def on_update(items: Any, has_new_bar: bool) -> None:
        if has_new_bar and items:
            got.append(bar_from_realtime(items[-1]))
            if len(got) >= count:
                done.set()

    subscription.updateEvent += on_update
    try:
        await asyncio.wait_for(done.wait(), timeout_s)
    except TimeoutError as exc:
        raise _Failed(
            f"only {len(got)} of {count} 5-second bars arrived in {timeout_s:g} s: is the market "
            "open, and does the account have a CME real-time data subscription?"
        ) from exc
    finally:
        subscription.updateEvent -= on_update
        client.cancel_realtime_bars(subscription)
    return got[:count]


async def _test_order(client: IbClient, contract: Any, last: float) -> dict[str, Any]:
    tick = Decimal("0.25")
    price = ((Decimal(repr(last)) / 2 / tick).to_integral_value(ROUND_DOWN) * tick).quantize(
        Decimal("0.01")
    )
    order = LimitOrder("BUY", 1, float(price), tif="DAY", orderRef=TEST_ORDER_REF)
    order.orderId = client.next_order_id()
    trade = client.place(contract, order)
    placed = await _wait_status(trade, {"PreSubmitted", "Submitted", "Cancelled", "Inactive"})
    if placed not in ("PreSubmitted", "Submitted"):
        raise _Failed(f"the test order was not accepted: {placed} {_last_log(trade)}")
    client.cancel(trade.order)
    cancelled = await _wait_status(trade, {"Cancelled", "ApiCancelled"})
    if cancelled not in ("Cancelled", "ApiCancelled"):
        raise _Failed(f"the test order was not cancelled (status {cancelled}): cancel it by hand")
    return {"price": str(price), "placed": placed, "cancelled": cancelled}


async def _wait_status(trade: Any, wanted: set[str], timeout_s: float = 10.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while trade.orderStatus.status not in wanted and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return str(trade.orderStatus.status)


def _last_log(trade: Any) -> str:
    return trade.log[-1].message if trade.log else ""
