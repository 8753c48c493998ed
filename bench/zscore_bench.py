"""Z-score engine speed: ns per update, printed as one JSON object on stdout.

Measures (a) the Rust engine's single ``update`` called from a Python loop, (b) its
``update_many`` on a numpy array, (c) the pure-Python reference's ``update``, (d) the
``RustZScoreEngine`` adapter (``update_exact`` plus the domain ``ZScore``). Input: seeded MES-like
closes (a random walk on the 0.25 grid around 5000). Each figure is the best of ``--repeat`` runs.

    .venv/bin/python bench/zscore_bench.py [--count 1000000] [--window 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from adapters.zscore.reference import RollingZScore as ReferenceZScore
from adapters.zscore.rust import RustZScoreEngine
from native_core import RollingZScore, __version__

TARGET_SINGLE_NS = 80.0
TARGET_BATCH_NS = 5.0
REFERENCE_COUNT = 200_000


def mes_closes(count: int, seed: int = 20240304) -> npt.NDArray[np.float64]:
    """A random walk of -2..+2 ticks per bar on the 0.25 grid, starting at 5000."""
    rng = np.random.default_rng(seed)
    ticks = 20_000 + np.cumsum(rng.integers(-2, 3, size=count))
    return (ticks * 0.25).astype(np.float64)


def best_ns(run: Callable[[], None], per: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        run()
        best = min(best, (time.perf_counter_ns() - t0) / per)
    return round(best, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    count, window, repeat = args.count, args.window, args.repeat

    closes = mes_closes(count)
    closes_list: list[float] = closes.tolist()
    ref_list = closes_list[: min(REFERENCE_COUNT, count)]

    def rust_single() -> None:
        update = RollingZScore(window).update
        for x in closes_list:
            update(x)

    def rust_exact() -> None:
        update_exact = RollingZScore(window).update_exact
        for x in closes_list:
            update_exact(x)

    def rust_batch() -> None:
        RollingZScore(window).update_many(closes)

    def reference_single() -> None:
        update = ReferenceZScore(window).update
        for x in ref_list:
            update(x)

    def rust_adapter() -> None:
        update = RustZScoreEngine(window).update
        for x in closes_list:
            update(x)

    def empty_loop() -> None:
        for _ in closes_list:
            pass

    single = best_ns(rust_single, count, repeat)
    batch = best_ns(rust_batch, count, repeat)
    result = {
        "benchmark": "zscore",
        "input": {"closes": count, "window": window, "seed": 20240304, "grid": 0.25},
        "repeat": repeat,
        "ns_per_update": {
            "rust_update": single,
            "rust_update_many": batch,
            "rust_update_exact": best_ns(rust_exact, count, repeat),
            "reference_update": best_ns(reference_single, len(ref_list), repeat),
            "rust_engine_adapter": best_ns(rust_adapter, count, repeat),
            "python_empty_loop": best_ns(empty_loop, count, repeat),
        },
        "reference_values": len(ref_list),
        "targets_ns": {"rust_update": TARGET_SINGLE_NS, "rust_update_many": TARGET_BATCH_NS},
        "targets_met": {
            "rust_update": single <= TARGET_SINGLE_NS,
            "rust_update_many": batch <= TARGET_BATCH_NS,
        },
        "machine": {
            "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpu_count": os.cpu_count(),
            "numpy": np.__version__,
            "native_core": __version__,
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
