"""Time and size of the replay report (summary.json, trades.csv, equity.png and report.html).

Two inputs: the shipped sample (config/sample.yaml) and the seeded synthetic series of the replay
benchmark (1,000,000 MES 5-minute bars, about 40,000 round trips; bench/replay_bench.yaml). Each is
replayed once (not timed); then building the report's context (price columns, strategy bars, the
z-score panel), writing report.html alone, and writing the whole folder (summary.json, trades.csv,
equity.png and report.html) are timed, best of ``--runs``.

Prints one JSON object to stdout. Targets (issue 15): 40,000 trades write the HTML in <= 3 s at
<= 15 MB; the sample's report.html <= 5 MB.

    python bench/report_bench.py [--bars N] [--runs R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from bench.replay_bench import CONFIG as SYNTHETIC_CONFIG
from bench.replay_bench import synthetic
from entrypoints.replay import load_series, run_replay
from entrypoints.report_html import REPORT_HTML, replay_context, write_report_html
from entrypoints.report_output import metrics_html, write_report
from entrypoints.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"
SAMPLE_CONFIG = ROOT / "config" / "sample.yaml"
TARGET_LARGE_SECONDS = 3.0
TARGET_LARGE_BYTES = 15_000_000
TARGET_SAMPLE_BYTES = 5_000_000


def measure(config: Path, data: Path, runs: int) -> dict[str, object]:
    settings = load_settings(config)
    series = load_series(settings, data)
    result = asyncio.run(run_replay(settings, series))
    best = dict.fromkeys(("context", "html", "folder"), float("inf"))
    size = 0
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            context = replay_context(settings, result, data)
            built = time.perf_counter()
            page = Path(tmp) / REPORT_HTML
            summary = result.summary
            write_report_html(page, summary, result.round_trips, context, metrics_html(summary))
            html_done = time.perf_counter()
            write_report(Path(tmp) / "all", summary, result.round_trips, context)
            done = time.perf_counter()
            size = page.stat().st_size
        best["context"] = min(best["context"], built - started)
        best["html"] = min(best["html"], html_done - built)
        best["folder"] = min(best["folder"], done - html_done)
    return {
        "bars": len(series),
        "round_trips": len(result.round_trips),
        "context_seconds": round(best["context"], 3),
        "html_seconds": round(best["html"], 3),
        "context_and_html_seconds": round(best["context"] + best["html"], 3),
        "whole_folder_seconds": round(best["folder"], 3),
        "report_html_bytes": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sample = measure(SAMPLE_CONFIG, SAMPLE, args.runs)
    large = measure(SYNTHETIC_CONFIG, synthetic(args.bars, args.seed), args.runs)
    print(
        json.dumps(
            {
                "benchmark": "report_output",
                "sample": sample,
                "synthetic": {"seed": args.seed, **large},
                "targets": {
                    "synthetic_context_and_html_seconds": TARGET_LARGE_SECONDS,
                    "synthetic_report_html_bytes": TARGET_LARGE_BYTES,
                    "sample_report_html_bytes": TARGET_SAMPLE_BYTES,
                },
                "met": {
                    "synthetic_seconds": float(str(large["context_and_html_seconds"]))
                    <= TARGET_LARGE_SECONDS,
                    "synthetic_bytes": int(str(large["report_html_bytes"])) <= TARGET_LARGE_BYTES,
                    "sample_bytes": int(str(sample["report_html_bytes"])) <= TARGET_SAMPLE_BYTES,
                },
                "runs": args.runs,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
