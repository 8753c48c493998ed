"""What an alert costs the trading loop: ``TelegramNotifier.notify`` timed call by call.

Two runs against the fake Bot API on loopback, through real aiogram: one while the API answers, one
while it refuses connections (the sender keeps failing and backing off meanwhile). notify() only
enqueues, so both should cost the same few microseconds.

Prints one JSON object to stdout.

    python -m bench.notifier_bench [--alerts N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import time
from datetime import UTC, datetime

from adapters.clock import SystemClock
from adapters.telegram.notifier import TelegramNotifier
from domain.commands import Alert, AlertKind, Severity
from tests.support.bot_api import FakeBotApi


async def _run(alerts: int, *, api_down: bool) -> dict[str, float]:
    async with FakeBotApi() as api:
        bot = api.bot(timeout=2)
        notifier = TelegramNotifier(
            bot,
            [42],
            clock=SystemClock(),
            queue_size=1000,
            initial_backoff_s=0.05,
            max_backoff_s=0.4,
        )
        notifier.start()
        if api_down:
            api.refuse_connections()
        times: list[float] = []
        gc.disable()
        try:
            for i in range(alerts):
                alert = Alert(AlertKind.ANOMALY, Severity.WARNING, f"a{i}", datetime.now(UTC))
                started = time.perf_counter()
                notifier.notify(alert)
                times.append(time.perf_counter() - started)
                if i % 100 == 0:
                    await asyncio.sleep(0)  # the sender runs (and fails) meanwhile
        finally:
            gc.enable()
        if api_down:
            api.up()
        await notifier.close(timeout=2.0)
        await bot.session.close()
    us = sorted(t * 1e6 for t in times)
    return {
        "p50_us": round(us[len(us) // 2], 2),
        "p99_us": round(us[int(len(us) * 0.99)], 2),
        "p999_us": round(us[int(len(us) * 0.999)], 2),
        "max_us": round(us[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=20_000)
    args = parser.parse_args()
    up = asyncio.run(_run(args.alerts, api_down=False))
    down = asyncio.run(_run(args.alerts, api_down=True))
    print(
        json.dumps(
            {
                "benchmark": "telegram_notify_cost",
                "alerts": args.alerts,
                "api_up": up,
                "api_down": down,
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
