"""The ``quant-scalper`` command line.

Exit codes: 0 success; 2 invalid command line or configuration; 3 unreadable or malformed input
data; 4 IB Gateway unreachable or unusable (nothing listening, a refused version or client id, a
timeout, no contract or bars); 1 anything unexpected (a bug: the traceback is shown). Expected
failures print one clear message and no traceback.
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
EXIT_UNAVAILABLE = 4


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

    ibkr = sub.add_parser(
        "ibkr-check",
        help="check that the configured IB Gateway works for the bot (places nothing by default)",
        description="Connect to IB Gateway (ibkr.* in the config, or QS_IBKR__HOST, QS_IBKR__PORT, "
        "QS_IBKR__CLIENT_ID), qualify the front MES contract, read accounts, positions and three "
        "5-second bars.",
    )
    ibkr.add_argument("--config", type=Path, help="YAML config file")
    ibkr.add_argument("--json", action="store_true", help="print one JSON object")
    ibkr.add_argument(
        "--test-order",
        action="store_true",
        help="also place a 1-lot buy limit far below the market and cancel it",
    )
    ibkr.add_argument(
        "--bar-timeout", type=float, default=30.0, metavar="S", help="wait this long for 3 bars"
    )

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
    if args.command == "ibkr-check":
        return _ibkr_check(settings, args)
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


def _ibkr_check(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from entrypoints.ibkr_check import CheckFailed, run_check

    try:
        result = asyncio.run(
            run_check(settings, bar_timeout_s=args.bar_timeout, test_order=args.test_order)
        )
    except CheckFailed as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}))
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if args.json:
        print(json.dumps({"ok": True, **result.as_json()}))
    else:
        print("\n".join(result.lines()))
    return EXIT_OK


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.logging.level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
