"""Monte Carlo speed: both resamplings of a long trade list, printed as one JSON object on stdout.

Input: seeded synthetic round trips on MES's money grid (ticks of $1.25 less $1.24 of commission),
spread over trade dates at 20 a day. Times :func:`run_montecarlo` as the command runs it (the trade
bootstrap and the daily block bootstrap, with both risk limits on), best of ``--repeat`` runs.
Target: 10,000 paths of 5,000 trades in at most 2 s.

    .venv/bin/python -m bench.montecarlo_bench [--paths 10000] [--trades 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from application.research.montecarlo import Limits, TradeOutcome, run_montecarlo

TARGET_S = 2.0
TRADES_PER_DAY = 20
SEED = 20240304


def synthetic_trades(count: int, seed: int = SEED) -> list[TradeOutcome]:
    rng = np.random.default_rng(seed)
    ticks = rng.integers(-40, 61, size=count)  # stops at -40 ticks, targets at +60
    day = date(2024, 1, 2)
    trades = []
    for i, tick in enumerate(ticks.tolist()):
        if i and i % TRADES_PER_DAY == 0:
            day += timedelta(days=3 if day.weekday() == 4 else 1)
        trades.append(TradeOutcome(day, Decimal(tick) * Decimal("1.25") - Decimal("1.24")))
    return trades


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=10_000)
    parser.add_argument("--trades", type=int, default=5_000)
    parser.add_argument("--block", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    trades = synthetic_trades(args.trades)
    limits = Limits(max_daily_loss_usd=Decimal(200), max_consecutive_losses=3)
    best = float("inf")
    result = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        result = run_montecarlo(
            trades, paths=args.paths, block_days=args.block, seed=1, limits=limits
        )
        best = min(best, time.perf_counter() - t0)
    assert result is not None
    seconds = round(best, 3)
    print(
        json.dumps(
            {
                "benchmark": "montecarlo",
                "input": {
                    "trades": args.trades,
                    "trade_days": result.trade_days,
                    "paths": args.paths,
                    "block_days": args.block,
                    "seed": SEED,
                },
                "repeat": args.repeat,
                "seconds": seconds,
                "resampled_trades_per_s": round(2 * args.paths * args.trades / best),
                "median_final_pnl_usd": str(dict(result.trade_bootstrap.final_pnl_usd)[50]),
                "target_s": TARGET_S,
                "target_met": seconds <= TARGET_S,
                "machine": {
                    "python": sys.version.split()[0],
                    "platform": platform.platform(),
                    "processor": platform.machine(),
                    "cpu_count": os.cpu_count(),
                    "numpy": np.__version__,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
