"""``quant-scalper ibkr-check``: is the IB Gateway this config points at usable by the bot?

It connects, qualifies the front MES contract by the bot's roll rule, and reads the accounts, the
positions and a few 5-second bars. It places nothing unless asked: with ``test_order`` it places a
1-lot buy limit far below the market (half the last price, on the tick grid), waits until IB holds
it, and cancels it. The talking to IB Gateway is the adapter's (``adapters.ibkr.gateway_check``),
built by the composition root; this module runs it and says what it found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from domain.bar import Bar
from entrypoints.container import init_resources, shutdown_resources
from entrypoints.container.commands import build_ibkr_check
from entrypoints.settings import Settings

if TYPE_CHECKING:
    from adapters.ibkr.gateway_check import IbkrGatewayCheck


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
    container = build_ibkr_check(settings)
    container.check_dependencies()
    await init_resources(container)
    try:
        check: IbkrGatewayCheck = container.check()
        report = await check.run(
            datetime.now(UTC), bars=bars, bar_timeout_s=bar_timeout_s, test_order=test_order
        )
    finally:
        await shutdown_resources(container)
    if report.error is not None:
        raise CheckFailed(report.error)
    return CheckResult(
        server_version=report.server_version,
        accounts=report.accounts,
        contract=report.contract,
        positions=report.positions,
        bars=[_bar_json(b) for b in report.bars],
        test_order=report.test_order,
    )


def _bar_json(bar: Bar) -> dict[str, Any]:
    return {
        "ts": bar.ts.isoformat(),
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
        "volume": bar.volume,
    }
