"""Sweep throughput and memory: a 64-trial grid over 200k synthetic bars on each executor.

The bars (seeded synthetic MES 5-minute bars from gen_series.py, with bench/replay_bench.yaml's
settings: no session rules, so the 2030 dates trade) are read once, as the sweep does. Measured:

* single: the 64 trials one after another in one worker process (a 1-worker local pool): the
  single-replay throughput, trials/s;
* local: the same 64 on a 2-worker process pool (the sweep's default executor), results appended
  to a results file as the sweep does; target: trials/s >= 0.85 x 2 x single. Wall time needs two
  idle cores; the workers' CPU time (single's over local's: 1.0 means the pool adds no work) shows
  the overhead even on a busy machine;
* memory: the peak RSS (VmHWM) of each local worker after its share of the 64 trials, against a
  fresh process that ran one replay of the most expensive trial; target: <= 1.5x;
* dask, ray: the same 64 on 2-worker local clusters; target: within 1.3x the local time (judged
  on the run; the clusters' start-up is reported beside it). Each cluster is judged against a local
  run made just before it: the speed of a shared host drifts by a third over minutes, more than
  the overheads measured here.

Every executor must give the same records, or the benchmark fails. Prints one JSON object.

    python -m bench.sweep_bench [--bars N] [--executors local,dask,ray]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

from adapters.simulated.market_data import read_bar_file
from application.research.grid import parse_grid
from entrypoints.container import instrument_for, price_band_for
from entrypoints.research.executors import Job, open_runner
from entrypoints.research.plan import PlannedTrial, data_hash, plan
from entrypoints.settings import load_settings

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "replay_bench.yaml"
GRID: dict[str, object] = {
    "strategy.lookback_period": [10, 20, 30, 40],
    "strategy.z_threshold_entry": {
        "from": Decimal("1.5"),
        "to": Decimal("2.25"),
        "step": Decimal("0.25"),
    },
    "strategy.z_threshold_exit": {
        "from": Decimal("0.0"),
        "to": Decimal("0.75"),
        "step": Decimal("0.25"),
    },
}
TARGET_SPEEDUP_SHARE = 0.85
TARGET_MEMORY_RATIO = 1.5
TARGET_CLUSTER_RATIO = 1.3


def synthetic(bars: int, seed: int) -> Path:
    path = HERE / "out" / f"synthetic_{bars}_{seed}.csv"
    if not path.exists():
        from bench.gen_series import generate, write_csv

        write_csv(path, generate(bars, seed))
    return path


def _children() -> list[int]:
    """This process's child processes (the pool's workers), excluding helpers that exec'd."""
    me = os.getpid()
    kids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me and b"resource_tracker" not in cmdline:
            kids.append(int(entry.name))
    return kids


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def run_local(series, planned: list[PlannedTrial], workers: int, results: Path):  # type: ignore[no-untyped-def]
    """Wall seconds, the records, each worker's peak RSS (MiB), the workers' CPU seconds."""
    jobs = [Job(p.trial.key, p.settings) for p in planned]
    cpu_before = _children_cpu()
    started = time.perf_counter()
    with open_runner("local", series, workers=workers, address=None) as runner:
        lines = _collect(runner.run(jobs), results)
        elapsed = time.perf_counter() - started
        peaks = [_peak_rss_mib(pid) for pid in _children()]
    # The pool has joined its workers: their CPU time is in RUSAGE_CHILDREN now.
    return elapsed, lines, peaks, _children_cpu() - cpu_before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_cluster(name: str, series, planned: list[PlannedTrial], results: Path):  # type: ignore[no-untyped-def]
    """Start-up seconds, run seconds, the records."""
    jobs = [Job(p.trial.key, p.settings) for p in planned]
    with ExitStack() as stack:
        started = time.perf_counter()
        runner = stack.enter_context(open_runner(name, series, workers=2, address=None))  # type: ignore[arg-type]
        ready = time.perf_counter()
        lines = _collect(runner.run(jobs), results)
        done = time.perf_counter()
    return ready - started, done - ready, lines


def _collect(lines, results: Path) -> list[str]:  # type: ignore[no-untyped-def]
    from entrypoints.research.results import ResultsFile

    store = ResultsFile(results)
    got = []
    for line in lines:
        store.append(line)
        got.append(line)
    return sorted(got)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--executors", default="local,dask,ray")
    args = parser.parse_args()
    executors = args.executors.split(",")
    settings = load_settings(CONFIG, {})
    # The synthetic bars are dated 2030: read without the replay's "no bars from the future" check.
    series = read_bar_file(
        synthetic(args.bars, args.seed),
        tick_size=instrument_for(settings).tick_size,
        band=price_band_for(settings),
    )
    grid = parse_grid(GRID)
    planned = plan(settings, grid.points(), data_hash(series))
    assert len(planned) == 64, len(planned)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # single: one worker, every trial in turn
        single_s, single_lines, _, single_cpu = run_local(series, planned, 1, work / "single.jsonl")
        per_trial = [json.loads(line) for line in single_lines]
        heaviest_key = max(per_trial, key=lambda r: r["metrics"]["round_trips"])["key"]
        heaviest = next(p for p in planned if p.trial.key == heaviest_key)
        # one replay's peak memory: a fresh process running the heaviest trial once
        _, _, one_peaks, _ = run_local(series, [heaviest], 1, work / "one.jsonl")
        local_s, local_lines, worker_peaks, local_cpu = run_local(
            series, planned, 2, work / "local.jsonl"
        )
        same = local_lines == single_lines
        clusters: dict[str, dict[str, object]] = {}
        paired_s = local_s  # the local run just made
        for name in executors:
            if name == "local":
                continue
            if clusters:  # a fresh local run right before each later cluster
                paired_s, lines, _, _ = run_local(series, planned, 2, work / f"local-{name}.jsonl")
                same = same and lines == single_lines
            startup, run_s, lines = run_cluster(name, series, planned, work / f"{name}.jsonl")
            same = same and lines == single_lines
            clusters[name] = {
                "startup_seconds": round(startup, 2),
                "run_seconds": round(run_s, 2),
                "local_seconds_just_before": round(paired_s, 2),
                "run_over_local": round(run_s / paired_s, 3),
                "total_over_local": round((startup + run_s) / paired_s, 3),
                "met": run_s / paired_s <= TARGET_CLUSTER_RATIO,
                "met_including_startup": (startup + run_s) / paired_s <= TARGET_CLUSTER_RATIO,
            }
    single_rate = 64 / single_s
    local_rate = 64 / local_s
    share = local_rate / (2 * single_rate)
    one_peak = one_peaks[0]
    memory_ratio = max(worker_peaks) / one_peak
    print(
        json.dumps(
            {
                "benchmark": "sweep",
                "bars": len(series),
                "trials": 64,
                "round_trips_per_trial": {
                    "min": min(r["metrics"]["round_trips"] for r in per_trial),
                    "max": max(r["metrics"]["round_trips"] for r in per_trial),
                },
                "same_records_on_every_executor": same,
                "single_seconds": round(single_s, 2),
                "single_trials_per_s": round(single_rate, 3),
                "local_2_workers_seconds": round(local_s, 2),
                "local_trials_per_s": round(local_rate, 3),
                "local_over_2x_single": round(share, 3),
                "single_worker_cpu_seconds": round(single_cpu, 2),
                "local_workers_cpu_seconds": round(local_cpu, 2),
                "single_cpu_over_local_cpu": round(single_cpu / local_cpu, 3),
                "one_replay_peak_rss_mib": round(one_peak, 1),
                "worker_peak_rss_mib": [round(p, 1) for p in worker_peaks],
                "worker_over_one_replay_rss": round(memory_ratio, 3),
                "clusters": clusters,
                "targets": {
                    "local_over_2x_single": TARGET_SPEEDUP_SHARE,
                    "worker_over_one_replay_rss": TARGET_MEMORY_RATIO,
                    "cluster_over_local": TARGET_CLUSTER_RATIO,
                },
                "met": {
                    "throughput": share >= TARGET_SPEEDUP_SHARE,
                    "memory": memory_ratio <= TARGET_MEMORY_RATIO,
                    **{name: c["met"] for name, c in clusters.items()},
                },
                "load_average_at_start": [round(x, 2) for x in load],
                "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )
    if not same:
        raise SystemExit("the executors disagree on the records")


if __name__ == "__main__":
    main()
