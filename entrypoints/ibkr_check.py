"""``quant-scalper ibkr-check``: is the IB Gateway this config points at usable by the bot?

It connects, qualifies the front MES contract by the bot's roll rule, and reads the accounts, the
positions and a few 5-second bars. It places nothing unless asked: with ``test_order`` it places a
1-lot buy limit far below the market (half the last price, on the tick grid), waits until IB holds
it, and cancels it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from ib_async import LimitOrder

from adapters.ibkr.client import IbClient, IbConnectError
from adapters.ibkr.contracts import ContractError, IbkrContractResolver
from adapters.ibkr.mapping import bar_from_realtime
from domain.bar import Bar
from entrypoints.container import build_container
from entrypoints.settings import Settings

TEST_ORDER_REF = "QS-CHECK"


class CheckFailed(Exception):
    """The check could not complete; the message is one line for a human."""


@dataclass
class CheckResult:
    server_version: int
    accounts: list[str]
    contract: dict[str, Any]
    positions: list[dict[str, Any]]
    bars: list[dict[str, Any]] = field(default_factory=list)
    test_order: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "server_version": self.server_version,
            "accounts": self.accounts,
            "contract": self.contract,
            "positions": self.positions,
            "bars": self.bars,
        }
        if self.test_order is not None:
            out["test_order"] = self.test_order
        return out

    def lines(self) -> list[str]:
        c = self.contract
        out = [
            f"connected: server version {self.server_version}, accounts {', '.join(self.accounts)}",
            f"contract: {c['local_symbol']} conId {c['con_id']} expiring {c['expiry']}",
            f"positions: {len(self.positions)}"
            + "".join(f"\n  {p['local_symbol']} {p['position']:+d}" for p in self.positions),
            f"bars: {len(self.bars)}"
            + "".join(
                f"\n  {b['ts']} O {b['open']} H {b['high']} L {b['low']} C {b['close']} "
                f"V {b['volume']}"
                for b in self.bars
            ),
        ]
        if self.test_order is not None:
            t = self.test_order
            out.append(f"test order: BUY 1 LMT {t['price']}: {t['placed']}, then {t['cancelled']}")
        return out


async def run_check(
    settings: Settings, *, bars: int = 3, bar_timeout_s: float = 30.0, test_order: bool = False
) -> CheckResult:
    """Run the check against the Gateway in ``settings.ibkr``; raises :class:`CheckFailed`."""
    adapters = build_container(settings, "live").adapters
    client: IbClient = adapters.ibkr_client()
    resolver: IbkrContractResolver = adapters.contracts()
    try:
        await client.connect()
    except IbConnectError as exc:
        raise CheckFailed(str(exc)) from exc
    try:
        try:
            contract = await resolver.front_month(datetime.now(UTC))
        except (ContractError, TimeoutError) as exc:
            symbol = settings.instrument.symbol
            raise CheckFailed(f"cannot qualify the {symbol} contract: {exc}") from exc
        ib_contract = resolver.ib_contract(contract)
        positions = await client.positions()
        result = CheckResult(
            server_version=client.server_version,
            accounts=client.accounts(),
            contract={
                "local_symbol": contract.local_symbol,
                "con_id": contract.con_id,
                "expiry": contract.expiry.isoformat(),
            },
            positions=[
                {
                    "account": p.account,
                    "con_id": p.contract.conId,
                    "local_symbol": p.contract.localSymbol,
                    "position": int(p.position),
                    "avg_cost": str(p.avgCost),
                }
                for p in positions
            ],
        )
        received = await _read_bars(client, ib_contract, bars, bar_timeout_s)
        result.bars = [_bar_json(b) for b in received]
        if test_order:
            if not received:
                raise CheckFailed("no bar arrived, so there is no price to place a safe test order")
            result.test_order = await _test_order(client, ib_contract, received[-1].close)
        return result
    except (TimeoutError, ConnectionError) as exc:
        raise CheckFailed(
            f"IB Gateway stopped answering during the check: {exc or type(exc).__name__}"
        ) from exc
    finally:
        client.disconnect()


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
        raise CheckFailed(
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
        raise CheckFailed(f"the test order was not accepted: {placed} {_last_log(trade)}")
    client.cancel(trade.order)
    cancelled = await _wait_status(trade, {"Cancelled", "ApiCancelled"})
    if cancelled not in ("Cancelled", "ApiCancelled"):
        raise CheckFailed(
            f"the test order was not cancelled (status {cancelled}): cancel it by hand"
        )
    return {"price": str(price), "placed": placed, "cancelled": cancelled}


async def _wait_status(trade: Any, wanted: set[str], timeout_s: float = 10.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while trade.orderStatus.status not in wanted and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return str(trade.orderStatus.status)


def _last_log(trade: Any) -> str:
    return trade.log[-1].message if trade.log else ""


def _bar_json(bar: Bar) -> dict[str, Any]:
    return {
        "ts": bar.ts.isoformat(),
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
        "volume": bar.volume,
    }
