"""Bar-to-order latency through the TWS test gateway, over loopback, with real ib_async.

Each sample is one trade: ten quiet 1-minute bars (of 5-second bars) then a drop that makes a LONG
signal. The clock starts when the test gateway writes the 5-second bar that completes the signal bar,
and stops when the gateway has read all three orders of the bracket. In between: the socket, ib_async's
decoder, the bar feed, the aggregator, the z-score, the engine, the journal append, the broker adapter
and three placeOrder messages. The target then takes the position flat and the next sample starts.

Prints one JSON object to stdout.

    python bench/order_latency_bench.py [--trades N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from datetime import timedelta

from domain.engine import EngineState
from tests.support.live_bot import QUIET_CLOSES, SIGNAL_CLOSE, START, live_bot
from tests.support.tws import TwsGateway


async def _measure(trades: int) -> list[float]:
    samples: list[float] = []
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        t = START
        for _ in range(trades):
            t = await bot.push_minutes(QUIET_CLOSES, at=t)
            t = await bot.push([SIGNAL_CLOSE] * 11, at=t)
            placed = len(gateway.orders)
            started = time.perf_counter()
            # The minute's last 5-second bar completes the signal bar: it is decided at once.
            t = await bot.push([SIGNAL_CLOSE], at=t, streamed=False)
            deadline = started + 10.0
            while len(gateway.orders) < placed + 3:
                if time.perf_counter() > deadline:
                    raise RuntimeError(
                        f"no bracket 10 s after the signal bar closed (trade {len(samples) + 1}): "
                        f"{bot.engine.status()}"
                    )
                await asyncio.sleep(0)
            samples.append(time.perf_counter() - started)
            await bot.settled()
            assert bot.engine.state is EngineState.LONG
            # The target (5005) takes it flat; the quiet minutes after it rebuild the window.
            t = await bot.push([("5000", "5010", "5000", "5005")], at=t)
            await bot.wait_for(lambda: bot.service.engine.state is EngineState.IDLE, "the target")
            t += timedelta(minutes=1) - timedelta(seconds=t.second)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trades", type=int, default=30)
    args = parser.parse_args()
    samples = asyncio.run(_measure(args.trades))
    ms = sorted(s * 1000 for s in samples)
    print(
        json.dumps(
            {
                "benchmark": "bar_to_order_latency",
                "transport": "TWS test gateway on loopback, ib_async 2.1, server version 178",
                "trades": len(ms),
                "p50_ms": round(statistics.median(ms), 3),
                "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 3),
                "max_ms": round(ms[-1], 3),
                "mean_ms": round(statistics.fmean(ms), 3),
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
