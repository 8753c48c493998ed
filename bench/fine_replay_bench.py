"""The fast replay against the plain per-bar path, on bars finer than the strategy's.

Recorded data is mostly 1-minute bars or IB's 5-second real-time bars (what the daemon records).
Both paths replay the same seeded synthetic MES bars (bench/gen_series.py's walk, at 5 s and 60 s,
kept to CME Globex sessions as IB records them) through the same container with the shipped
default configuration (config/sample.yaml: brackets, breaker limits, session rules, 5-minute
strategy bars): once through ``FastReplay`` (what ``quant-scalper replay`` and every sweep trial
run), once through ``TradingService.run``, every bar through the engine. Their journals, engine
state, aggregation counters and alerts must be identical, or the benchmark fails.

Prints one JSON object: per bar size, the bars, strategy bars, round trips, and the best CPU time
of each path over ``--runs`` runs (CPU time: a busy shared machine inflates it less than wall time).

    python -m bench.fine_replay_bench [--runs R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

import numpy as np

from adapters.simulated.market_data import BarSeries, ReplayMarketData
from adapters.simulated.repositories import InMemoryJournal
from bench import run_facts
from bench.gen_series import generate, write_csv
from domain.calendar import build_calendar
from entrypoints.container import build_container
from entrypoints.replay import load_series
from entrypoints.settings import Settings, load_settings

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parent / "config" / "sample.yaml"
# (bar seconds, bars generated before keeping those in a session): about 12 and 40 weeks.
SIZES = ((5, 1_200_000), (60, 600_000))
SEED = 20261203


def in_session_bars(seconds: int, count: int) -> Path:
    """Seeded bars of ``seconds``, only those inside a CME Globex session (cached as CSV)."""
    path = HERE / "out" / f"in_session_{seconds}s_{count}_{SEED}.csv"
    if not path.exists():
        series = generate(count, SEED)
        series["epochs"] = series["epochs"][0] + seconds * np.arange(count, dtype=np.int64)
        calendar = build_calendar("cme_globex_equity")
        keep = np.array([calendar.session_at(t) is not None for t in series["epochs"].tolist()])
        write_csv(path, {name: column[keep] for name, column in series.items()})
    return path


async def _replay(settings: Settings, series: BarSeries, fast: bool) -> tuple[object, ...]:
    container = build_container(settings, "simulated", bar_source=series)
    service = container.services.trading()
    feed = ReplayMarketData(series)
    if fast:
        await container.services.fast_replay().run(feed)
    else:
        await service.run(feed, recording=True)
    journal = container.adapters.journal()
    assert isinstance(journal, InMemoryJournal)
    return (
        journal.records,
        service.engine.status(),
        service.aggregator.stats,
        service.counters.bars_in,
        service.counters.strategy_bars,
        list(container.adapters.notifier().alerts),
    )


def _best_cpu(
    settings: Settings, series: BarSeries, fast: bool, runs: int
) -> tuple[float, tuple[object, ...]]:
    best = float("inf")
    result: tuple[object, ...] = ()
    for _ in range(runs):
        started = time.process_time()
        result = asyncio.run(_replay(settings, series, fast))
        best = min(best, time.process_time() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings(CONFIG)
    load_before = os.getloadavg()
    figures = []
    same = True
    for seconds, count in SIZES:
        series = load_series(settings, in_session_bars(seconds, count))
        fast_s, fast = _best_cpu(settings, series, True, args.runs)
        plain_s, plain = _best_cpu(settings, series, False, args.runs)
        same = same and fast == plain
        records = fast[0]
        assert isinstance(records, list)
        figures.append(
            {
                "bar_seconds": seconds,
                "bars": len(series),
                "strategy_bars": fast[4],
                "round_trips": sum(type(r).__name__ == "RoundTripRecord" for r in records),
                "fast_replay_cpu_s": round(fast_s, 3),
                "plain_path_cpu_s": round(plain_s, 3),
                "speedup": round(plain_s / fast_s, 2),
                "same_results": fast == plain,
            }
        )
    print(
        json.dumps(
            {
                "benchmark": "fine_bar_replay",
                "config": str(CONFIG.relative_to(HERE.parent)),
                "figures": figures,
                "runs": args.runs,
                **run_facts(load_before),
            },
            indent=2,
        )
    )
    if not same:
        raise SystemExit("the fast replay and the plain path disagree")


if __name__ == "__main__":
    main()
