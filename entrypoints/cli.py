"""The ``quant-scalper`` command line.

Exit codes: 0 success; 2 invalid command line or configuration; 3 unreadable or malformed input
data; 1 anything unexpected (a bug: the traceback is shown). Expected failures print one clear
message and no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from adapters.simulated.market_data import BarFileError
from domain.errors import DomainError
from entrypoints.settings import Settings, SettingsError, load_settings

EXIT_OK = 0
EXIT_BUG = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quant-scalper",
        description="Z-score mean-reversion trading for MES futures (Interactive Brokers).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay = sub.add_parser(
        "replay",
        help="run recorded bars through the engine with the simulated broker",
        description="Replay a CSV or Parquet bar file (ts,open,high,low,close,volume) through the "
        "same engine the daemon runs, with the simulated broker, and report the results.",
    )
    replay.add_argument("path", type=Path, help="bar file (.csv or .parquet)")
    replay.add_argument("--config", type=Path, help="YAML config file (default: built-in defaults)")
    replay.add_argument(
        "--report", type=Path, metavar="DIR", help="write summary.json, trades.csv, equity.png here"
    )
    replay.add_argument(
        "--bar-seconds",
        type=int,
        help="size of the bars in the file (default: inferred from spacing)",
    )
    replay.add_argument("--no-progress", action="store_true", help="never draw the progress bar")

    check = sub.add_parser("config", help="validate a config file and show its warnings")
    check.add_argument("--config", type=Path, help="YAML config file")

    sub.add_parser("version", help="print the version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        from importlib.metadata import version

        print(f"quant-scalper {version('quant-scalper')}")
        return EXIT_OK
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    _configure_logging(settings)
    for warning in settings.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    if args.command == "config":
        print(f"{args.config or 'defaults'}: OK")
        return EXIT_OK
    if args.command == "replay":
        return _replay(settings, args)
    raise AssertionError(args.command)  # pragma: no cover - argparse enforces the choices


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from entrypoints.progress import ProgressBar
    from entrypoints.replay import load_series, run_replay
    from entrypoints.report_output import format_summary, write_report

    try:
        series = load_series(settings, args.path, args.bar_seconds)
    except BarFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    progress = None
    if not args.no_progress and sys.stderr.isatty():
        progress = ProgressBar(len(series), "replay")
    try:
        result = asyncio.run(run_replay(settings, series, on_progress=progress))
    except DomainError as exc:  # a domain rule refusing this input with this config
        print(f"error: {args.path}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(format_summary(result.summary))
    stats = result.aggregation
    print(
        f"aggregation: {stats.bars_in} bars in, {stats.bars_out} strategy bars, "
        f"gaps {stats.gaps}, duplicates {stats.duplicates}, late {stats.late_dropped}, "
        f"out of order {stats.out_of_order_merged}, outside session {stats.outside_session_dropped}"
    )
    if args.report is not None:
        written = write_report(args.report, result.summary, result.round_trips)
        print("report: " + ", ".join(str(p) for p in written))
    return EXIT_OK


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.logging.level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
