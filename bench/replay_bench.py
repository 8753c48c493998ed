"""Replay speed against issue 14's four targets, end to end, with a bare loop as the yardstick.

Both sides read the same seeded synthetic CSV of MES 5-minute bars (written by gen_series.py on first
use) with the same reader, and write the same report (summary.json, trades.csv, equity.png). In
between, the replay runs the full architecture (container, trading service, engine state machine,
simulated broker, journal, events and commands); the bare loop is a plain Python loop over the Rust
z-score with a handful of local variables. Settings, per the issue: ``signal_close``, no brackets,
no session rules (and no breaker limits, so the bare loop stays a bare loop). The two trade lists
must be identical, or the benchmark fails.

The four figures, each with its target and whether it is met:

* ``startup_s``: a 25-bar replay as a process, start to exit (bench/startup_bench.py);
* ``per_round_trip_us``: what the architecture costs over the bare loop, per round trip:
  (replay seconds - bare loop seconds) / round trips (quiet bars cost next to nothing; trades do);
* ``replay_over_bare_ratio``: the 1M-bar replay end to end over the bare loop timed in the same run;
* ``zscore_update_many_ns``: the Rust z-score's batch update, ns per value (bench/zscore_bench.py).

Wall times on a shared machine move with its load: the load average is printed with the figures.

Prints one JSON object to stdout.

    python -m bench.replay_bench [--bars N] [--runs R]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from adapters.simulated.market_data import read_bar_file
from application.report import ReplayInputs, summarize
from bench import run_facts, startup_bench
from bench.zscore_bench import TARGET_BATCH_NS, best_ns, mes_closes
from domain.calendar import cme_trade_date
from domain.position import ExitReason, RoundTrip
from domain.values import MES, Side
from entrypoints.replay import load_series, run_replay, trade_dates
from entrypoints.report_output import write_report
from entrypoints.settings import load_settings

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "replay_bench.yaml"
TARGET_BARS_PER_S = 500_000
TARGET_RATIO = 2.0
TARGET_TRIP_US = 50.0


def synthetic(bars: int, seed: int) -> Path:
    from bench.gen_series import START, generate, write_csv

    path = HERE / "out" / f"synthetic_{bars}_{seed}_{START:%Y%m%d}.csv"
    if not path.exists():
        write_csv(path, generate(bars, seed))
    return path


def architecture(path: Path, out: Path) -> list[RoundTrip]:
    settings = load_settings(CONFIG)
    series = load_series(settings, path)
    # As the replay command runs it (its process ends after the report).
    result = asyncio.run(run_replay(settings, series, last_in_process=True))
    write_report(out, result.summary, result.round_trips)
    return result.round_trips


def bare_loop(path: Path, out: Path) -> list[RoundTrip]:
    """The same strategy with nothing in between: z-score, two thresholds, fills at the close."""
    import native_core

    settings = load_settings(CONFIG)
    series = read_bar_file(path, tick_size=MES.tick_size)
    entry = Decimal(settings.strategy.z_threshold_entry)
    exit_ = Decimal(settings.strategy.z_threshold_exit)
    # Exact inclusive tests on z = num/sqrt(var): |z| >= p/q  <=>  num^2 q^2 >= p^2 var.
    ep, eq = entry.as_integer_ratio()
    xp, xq = exit_.as_integer_ratio()
    ep2, eq2, xp2, xq2 = ep * ep, eq * eq, xp * xp, xq * xq
    entry_f, exit_f = float(entry), float(exit_)
    hi_e, lo_e = entry_f * (1 + 1e-9), entry_f * (1 - 1e-9)
    hi_x, lo_x = exit_f * (1 + 1e-9), exit_f * (1 - 1e-9)
    zs = native_core.RollingZScore(settings.strategy.lookback_period)
    update = zs.update_exact
    closes = series.closes.tolist()
    epochs = series.epochs.tolist()
    seconds = series.bar_seconds
    trips: list[
        tuple[int, int, int, int, int]
    ] = []  # side, entry epoch, entry ticks, exit epoch, exit ticks
    side = 0
    entry_ticks = entry_epoch = 0
    for i, close in enumerate(closes):
        r = update(close)
        if r is None:
            continue
        value, num, var = r
        if side == 0:
            a = -value if value < 0 else value
            if a > hi_e or (a >= lo_e and num * num * eq2 >= ep2 * var):
                side = -1 if value > 0 else 1
                entry_ticks = round(close * 4)
                entry_epoch = epochs[i] + seconds
        else:
            a = -value if value < 0 else value
            if a < lo_x or (a <= hi_x and num * num * xq2 <= xp2 * var):
                trips.append(
                    (side, entry_epoch, entry_ticks, epochs[i] + seconds, round(close * 4))
                )
                side = 0
    commission = Decimal(settings.execution.commission_per_side) * 2
    round_trips = [
        RoundTrip(
            seq=n,
            side=Side.LONG if s == 1 else Side.SHORT,
            qty=1,
            entry_ts=datetime.fromtimestamp(t0, UTC),
            entry_price=MES.tick_size * p0,
            exit_ts=datetime.fromtimestamp(t1, UTC),
            exit_price=MES.tick_size * p1,
            exit_reason=ExitReason.SIGNAL,
            pnl_ticks=(p1 - p0) * s,
            gross_pnl=MES.tick_value * ((p1 - p0) * s),
            commissions=commission,
        )
        for n, (s, t0, p0, t1, p1) in enumerate(trips, start=1)
    ]
    summary = summarize(
        ReplayInputs(
            round_trips=round_trips,
            trade_dates=trade_dates(series),
            trade_date_of=cme_trade_date,
            bars_in=len(series),
            strategy_bars=len(series),
            breaker_trips=(),
            final_position=None,
            rows_refused=series.refused,
        )
    )
    write_report(out, summary, round_trips)
    return round_trips


def _best(fn, path: Path, runs: int) -> tuple[float, float, list[RoundTrip]]:  # type: ignore[no-untyped-def]
    """Best wall time and best CPU time (this process: user + system) of ``runs`` runs."""
    best = best_cpu = float("inf")
    trips: list[RoundTrip] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            started, cpu = time.perf_counter(), time.process_time()
            trips = fn(path, Path(tmp))
            best = min(best, time.perf_counter() - started)
            best_cpu = min(best_cpu, time.process_time() - cpu)
        # Untimed: each run starts from a collected, unfrozen heap.
        gc.unfreeze()
        gc.collect()
    return best, best_cpu, trips


def _key(trip: RoundTrip) -> tuple[object, ...]:
    return (
        trip.side,
        trip.entry_ts,
        trip.entry_price,
        trip.exit_ts,
        trip.exit_price,
        trip.pnl_ticks,
    )


def zscore_update_many_ns(count: int = 1_000_000, window: int = 20, repeat: int = 5) -> float:
    """The Rust z-score's ``update_many``, ns per value (as bench/zscore_bench.py measures it)."""
    import native_core

    closes = mes_closes(count)

    def batch() -> None:
        native_core.RollingZScore(window).update_many(closes)

    return best_ns(batch, count, repeat)


def _figure(value: float, target: float) -> dict[str, object]:
    return {"value": value, "target": target, "met": value <= target}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--startup-runs", type=int, default=10)
    args = parser.parse_args()
    load_before = os.getloadavg()
    path = synthetic(args.bars, args.seed)
    arch_s, arch_cpu, arch_trips = _best(architecture, path, args.runs)
    bare_s, bare_cpu, bare_trips = _best(bare_loop, path, args.runs)
    same = [_key(t) for t in arch_trips] == [_key(t) for t in bare_trips]
    arch_rate = args.bars / arch_s
    ratio = arch_s / bare_s
    trips = max(1, len(arch_trips))
    trip_us = (arch_s - bare_s) / trips * 1e6
    startup = startup_bench.measure(args.startup_runs)
    batch_ns = zscore_update_many_ns()
    print(
        json.dumps(
            {
                "benchmark": "replay_speed",
                "figures": {
                    "startup_s": _figure(float(str(startup["best_s"])), startup_bench.TARGET_S),
                    "per_round_trip_us": _figure(round(trip_us, 1), TARGET_TRIP_US),
                    "replay_over_bare_ratio": _figure(round(ratio, 3), TARGET_RATIO),
                    "zscore_update_many_ns": _figure(batch_ns, TARGET_BATCH_NS),
                },
                # The same two figures from CPU time, which a busy shared machine inflates less.
                "figures_cpu_time": {
                    "startup_s": _figure(float(str(startup["min_cpu_s"])), startup_bench.TARGET_S),
                    "per_round_trip_us": _figure(
                        round((arch_cpu - bare_cpu) / trips * 1e6, 1), TARGET_TRIP_US
                    ),
                    "replay_over_bare_ratio": _figure(round(arch_cpu / bare_cpu, 3), TARGET_RATIO),
                },
                "bars": args.bars,
                "seed": args.seed,
                "round_trips": len(arch_trips),
                "same_trades_as_bare_loop": same,
                "architecture_seconds": round(arch_s, 4),
                "architecture_cpu_seconds": round(arch_cpu, 4),
                "bare_loop_cpu_seconds": round(bare_cpu, 4),
                "architecture_bars_per_s": round(arch_rate),
                "bare_loop_seconds": round(bare_s, 4),
                "bare_loop_bars_per_s": round(args.bars / bare_s),
                "bars_per_s_target": TARGET_BARS_PER_S,
                "bars_per_s_met": arch_rate >= TARGET_BARS_PER_S,
                "startup": startup,
                "runs": args.runs,
                **run_facts(load_before),
            },
            indent=2,
        )
    )
    if not same:
        raise SystemExit("the replay and the bare loop disagree on the trades")


if __name__ == "__main__":
    main()
