"""The ``quant-scalper`` command line.

Exit codes: 0 success; 2 invalid command line or configuration (including a malformed time or date,
an output file that cannot be written, a journal store whose schema is missing or out of date, a
logging directory or an SQLite journal that cannot be written);
3 unreadable or malformed input data, or none where some was asked for (no recorded bars in a
window); 4 IB Gateway or the database unreachable or unusable (nothing listening, a refused version
or client id, a timeout, no contract or bars, the observability port in use); 5 another daemon owns
the journal (``run``); 130 interrupted (Ctrl-C); 1 anything unexpected (a bug: one line, and the
traceback in the log file, or in a file of its own named on that line). No failure shows a
traceback.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

# The project's modules (and pydantic, numpy behind them) are imported in main(), while the cyclic
# collector is paused for start-up (see _StartUp): importing this module costs next to nothing.
if TYPE_CHECKING:
    from application.bar_series import BarSeries
    from entrypoints.replay import ReplayResult
    from entrypoints.settings import Settings

EXIT_OK = 0
EXIT_BUG = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_UNAVAILABLE = 4
EXIT_IN_USE = 5
EXIT_INTERRUPTED = 130

_DEFAULT_SPEED = -1.0  # --speed not given: daemon.speed from the config


# Commands whose arguments live in a module of their own, with their one-line help. A module (and
# what it imports: numpy, the research and Monte Carlo code) is loaded only when its command is
# the one being run: every other command's start-up, a sweep's replays included, skips it.
_MODULE_COMMANDS: dict[str, tuple[str, str]] = {
    "sweep": (
        "entrypoints.research.arguments",
        "run the engine over a grid of parameters (grid, random or Optuna search)",
    ),
    "walkforward": (
        "entrypoints.research.walkforward_arguments",
        "optimise on train windows, trade the choice on the next test window, stitch",
    ),
    "montecarlo": (
        "entrypoints.montecarlo_cli",
        "resample a trade list: percentiles of final P&L and drawdown, odds of the limits",
    ),
    "fills": (
        "entrypoints.fills_cli",
        "how optimistic the paper fills were: each fill against its bar and its aim",
    ),
}


class _Refused:
    """Stands in for an argument's value that its ``type`` refused, until the parse ends."""


_REFUSED = _Refused()


class _Parser(argparse.ArgumentParser):
    """argparse's parser, except that a command line with several mistakes names them all: a value
    its ``type`` or ``choices`` refuse is noted and the parse goes on, and the error at its end
    (or argparse's own, such as a missing option) lists every refusal too (argparse alone stops at
    the first). The commands' parsers are of this class too (``add_subparsers`` makes them of their
    parent's). With ``exit_on_error=False`` it is argparse's parser unchanged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refusals: list[str] = []

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._refusals = []
        parsed, extras = super().parse_known_args(args, namespace)
        if self._refusals:
            last = self._refusals.pop()
            self.error(last)  # with the others before it
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        mistakes = [*self._refusals, message]
        self._refusals = []
        if len(mistakes) > 1:
            message = f"{len(mistakes)} bad arguments:\n" + "\n".join(f"  {m}" for m in mistakes)
        super().error(message)

    # argparse's own hooks (stable since Python 2.7): converting one value, checking its choices.
    def _get_value(self, action: argparse.Action, arg_string: str) -> Any:
        try:
            return super()._get_value(action, arg_string)
        except argparse.ArgumentError as exc:
            if not self.exit_on_error:
                raise
            self._refusals.append(str(exc))
            return _REFUSED

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if value is _REFUSED:
            return
        try:
            super()._check_value(action, value)
        except argparse.ArgumentError as exc:
            # An unknown command: nothing after it can be read.
            if action.nargs == argparse.PARSER or not self.exit_on_error:
                raise
            self._refusals.append(str(exc))


def _requested(argv: Sequence[str] | None) -> str | None:
    """The command ``argv`` asks for: its first word that is not an option (None: there is none)."""
    words = sys.argv[1:] if argv is None else argv
    return next((word for word in words if not word.startswith("-")), None)


def _module_command(sub: argparse._SubParsersAction[Any], name: str, requested: str | None) -> None:
    """Add command ``name`` of :data:`_MODULE_COMMANDS`: complete if it is the requested one, else
    its name and help only (all that the top-level help and the choice of a command need)."""
    module, help_ = _MODULE_COMMANDS[name]
    parser = sub.add_parser(name, help=help_)
    if name == requested:
        import importlib

        importlib.import_module(module).configure(parser)


def _parser(requested: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; only the ``requested`` command's arguments are complete for the
    commands of :data:`_MODULE_COMMANDS`."""
    parser = _Parser(
        prog="quant-scalper",
        description="Z-score mean-reversion trading for MES futures (Interactive Brokers).",
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay = sub.add_parser(
        "replay",
        help="run recorded bars through the engine with the simulated broker",
        description="Replay a CSV or Parquet bar file (ts,open,high,low,close,volume), or the bars "
        "the daemon recorded in the journal store (--from-db), through the same engine the daemon "
        "runs, with the simulated broker, and report the results.",
    )
    bars_from = replay.add_mutually_exclusive_group(required=True)
    bars_from.add_argument("path", type=Path, nargs="?", help="bar file (.csv or .parquet)")
    bars_from.add_argument(
        "--from-db", action="store_true", help="replay the bars recorded in the journal store"
    )
    replay.add_argument("--config", type=Path, help="YAML config file (default: built-in defaults)")
    replay.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="write summary.json, trades.csv, equity.png and report.html here",
    )
    replay.add_argument(
        "--bar-seconds",
        type=_bar_seconds,
        help="size of the bars in the file (default: inferred from spacing); with --from-db, the "
        "size of the recorded bars to replay (needed only if several were recorded)",
    )
    replay.add_argument("--no-progress", action="store_true", help="never draw the progress bar")
    replay.add_argument(
        "--start", metavar="T", help="--from-db: first bar start, ISO-8601 with zone or a date"
    )
    replay.add_argument("--end", metavar="T", help="--from-db: bars starting before this")
    replay.add_argument(
        "--contract", metavar="LOCAL_SYMBOL", help="--from-db: one contract's bars (e.g. MESM5)"
    )
    _journal_parsers(sub, requested)

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

    run = sub.add_parser(
        "run",
        help="run the daemon (by default: the simulated broker on the shipped recorded feed)",
        description="Trade until stopped (SIGTERM or SIGINT). With daemon.broker: simulated it "
        "plays daemon.feed against the simulated broker, journaling to the configured store, and a "
        "restart continues from the last bar it processed.",
    )
    run.add_argument("--config", type=Path, help="YAML config file")
    run.add_argument(
        "--speed",
        type=_speed,
        default=_DEFAULT_SPEED,
        metavar="N|max",
        help="simulated feed: N times faster than real time, or max (default: daemon.speed)",
    )
    run.add_argument(
        "--exit-at-end", action="store_true", help="simulated feed: exit when it has been played"
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="IB Gateway: signals, journal and alerts, but no orders are sent",
    )

    _module_command(sub, "montecarlo", requested)
    _module_command(sub, "fills", requested)

    sub.add_parser("version", help="print the version")
    return parser


def _journal_parsers(sub: argparse._SubParsersAction[Any], requested: str | None) -> None:
    """``db``, ``trades`` and ``report``: the commands on the journal store (database.* settings;
    the embedded SQLite file in database.data_dir when database.url is not set)."""
    db = sub.add_parser("db", help="the journal store's schema (alembic migrations)")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_sub.add_parser(
        "upgrade", help="migrate the store to the newest schema (creates the SQLite file)"
    )
    upgrade.add_argument("--config", type=Path, help="YAML config file")
    current = db_sub.add_parser("current", help="print the store's schema revision, or 'empty'")
    current.add_argument("--config", type=Path, help="YAML config file")

    trades = sub.add_parser("trades", help="round trips from the journal store")
    trades_sub = trades.add_subparsers(dest="trades_command", required=True, metavar="ACTION")
    export = trades_sub.add_parser(
        "export",
        help="write round trips as CSV (the replay report's trades.csv columns)",
        description="Write the round trips that exit in [--start, --end) as CSV, with the columns "
        "of the replay report's trades.csv. T: ISO-8601 with a zone, or a date (00:00 UTC).",
    )
    export.add_argument(
        "--csv", type=Path, required=True, metavar="FILE", help="output ('-': stdout)"
    )
    export.add_argument("--start", metavar="T", help="round trips exiting at or after T")
    export.add_argument("--end", metavar="T", help="round trips exiting before T")
    export.add_argument("--config", type=Path, help="YAML config file")

    report = sub.add_parser(
        "report",
        help="the replay's metrics and report for journaled sessions",
        description="Metrics of the round trips of one CME trade date (--session; the session "
        "opening at 18:00 New York time the evening before, by exit time) or of a range of them "
        "(--from, --to), with their breaker events; --report also writes report.html with the "
        "recorded bars, the trades and the metrics.",
    )
    which = report.add_mutually_exclusive_group(required=True)
    which.add_argument("--session", metavar="YYYY-MM-DD", help="CME trade date")
    which.add_argument("--from", dest="first", metavar="YYYY-MM-DD", help="first CME trade date")
    report.add_argument("--to", dest="last", metavar="YYYY-MM-DD", help="last CME trade date")
    report.add_argument("--config", type=Path, help="YAML config file")
    report.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="write summary.json, trades.csv, equity.png and report.html here",
    )

    _module_command(sub, "sweep", requested)
    _module_command(sub, "walkforward", requested)


MAX_BAR_SECONDS = 3600
"""The largest input bar a strategy bar can be built from (strategy bars divide an hour)."""


def _bar_seconds(text: str) -> int:
    from entrypoints.options import whole_number

    return whole_number("--bar-seconds", high=MAX_BAR_SECONDS, unit="seconds")(text)


class _VersionAction(argparse.Action):
    """``--version``: the installed version, looked up only when asked for (reading the package
    metadata imports the email package: a cost every command's start-up paid for nothing)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings,
            dest,
            nargs=0,
            default=argparse.SUPPRESS,
            help="show program's version number and exit",
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser._print_message(f"quant-scalper {_version()}\n", sys.stdout)
        parser.exit()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("quant-scalper")
    except PackageNotFoundError:  # pragma: no cover - a source tree that is not installed
        return "unknown"


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"--speed must be a positive number or max, got {text!r}")
    return value


class _StartUp:
    """The cyclic garbage collector, paused while a command starts up.

    Start-up (the imports, pydantic's schemas, the settings, the parser) builds some 90,000 objects
    that live as long as the process, and next to no garbage; as the heap grows the collector would
    walk them again and again (measured: a sixth of the CPU of a short replay's start-up). So it
    is paused from the start of :func:`main` until the command's work begins (:meth:`over`); then
    what start-up built is frozen out of the collector's sight (``gc.freeze``, as CPython
    advises for long-lived start-up objects) and collection resumes. :meth:`close` restores the
    state main() found (a test calls main() many times in one process)."""

    def __init__(self) -> None:
        self._was_enabled = gc.isenabled()
        self._frozen = False
        gc.disable()

    def over(self) -> None:
        if self._was_enabled and not gc.isenabled():
            if not self._frozen:
                gc.freeze()
                self._frozen = True
            gc.enable()

    def close(self) -> None:
        if self._frozen:
            gc.unfreeze()
            self._frozen = False
        if self._was_enabled:
            gc.enable()


def _one_blas_thread() -> None:
    """numpy's OpenBLAS starts a thread per core when numpy is imported, and they spin while it
    starts: a tenth of a short replay's CPU, for matrix routines no command uses. A command runs
    single-threaded BLAS unless the environment asks otherwise; it must be decided before numpy
    is first imported, so a process that already has numpy (a test calling main()) is left as
    it is. Child processes (a sweep's workers) inherit it, which is what a pool of one process
    per core wants anyway."""
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main(argv: Sequence[str] | None = None) -> int:
    _one_blas_thread()
    start_up = _StartUp()
    try:
        args = _parser(_requested(argv)).parse_args(argv)
        try:
            return _main(args, start_up)
        except KeyboardInterrupt:  # Ctrl-C before the daemon's own signal handling is in place
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as exc:  # the last resort: a bug, said in one line, its traceback kept
            return _unexpected(exc, args.command)
    finally:
        start_up.close()


def console() -> None:
    """The ``quant-scalper`` command (and ``python -m entrypoints.cli``): :func:`main`, then the
    process's exit with its code.

    Whatever is still alive is frozen out of the cyclic collector's sight first (``gc.freeze``):
    the interpreter's teardown would otherwise walk the whole heap, which start-up made large, in
    its final collections, for a process about to end (measured: ~70 ms, a sixth of a short
    replay from start to exit). The teardown itself still runs (atexit handlers, logging's
    flush, objects freed by reference counting), but finalisers of objects caught in reference
    cycles do not: nothing may count on them at exit (files are written in ``with`` blocks or
    flushed and closed explicitly, resources shut down before main() returns)."""
    code = main()
    gc.freeze()
    sys.exit(code)


def _unexpected(exc: Exception, command: str) -> int:
    """An error no path expected: one line on standard error, the traceback in the log file (or,
    for the commands that keep none, a file of its own); exit 1."""
    import tempfile
    import traceback

    from entrypoints import logs

    what = " ".join(f"{type(exc).__name__}: {exc}".split())
    if len(what) > 300:
        what = what[:297] + "..."
    where = logs.record_in_file(f"{command}: unexpected error: {what}", exc)
    if where is None:
        try:
            fd, name = tempfile.mkstemp(prefix="quant-scalper-error-", suffix=".txt")
            with open(fd, "w", encoding="utf-8") as handle:
                traceback.print_exception(exc, file=handle)
            where = Path(name)
        except OSError:
            where = None
    kept = f"; the traceback is in {where}" if where is not None else ""
    print(f"error: unexpected error (a bug, please report it): {what}{kept}", file=sys.stderr)
    return EXIT_BUG


def _main(args: argparse.Namespace, start_up: _StartUp) -> int:
    from entrypoints.settings import SettingsError, load_settings

    if args.command == "version":
        print(f"quant-scalper {_version()}")
        return EXIT_OK
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    if args.command == "run":
        from entrypoints import logs

        try:
            logs.configure(
                level=settings.logging.level,
                fmt=settings.logging.format,
                directory=settings.logging.dir,
            )
        except OSError as exc:
            print(f"error: {_log_dir_problem(settings.logging.dir, exc)}", file=sys.stderr)
            return EXIT_USAGE
    else:
        _configure_logging(settings)
    for warning in settings.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    if args.command == "config":
        print(f"{args.config or 'defaults'}: OK")
        return EXIT_OK
    if args.command == "replay" and not args.from_db:
        # Start-up includes the replay's own modules (most of a short replay's imports).
        import entrypoints.progress
        import entrypoints.replay
        import entrypoints.report_output  # noqa: F401
    start_up.over()
    if args.command == "replay":
        if args.from_db:
            return _journal_command(settings, args)
        return _replay(settings, args)
    if args.command in ("db", "trades", "report"):
        return _journal_command(settings, args)
    if args.command == "sweep":
        from entrypoints.research.command import sweep_command

        return sweep_command(settings, args)
    if args.command == "walkforward":
        from entrypoints.research.walkforward import walkforward_command

        return walkforward_command(settings, args)
    if args.command == "ibkr-check":
        return _ibkr_check(settings, args)
    if args.command == "montecarlo":
        return _montecarlo(settings, args)
    if args.command == "fills":
        return _fills(settings, args)
    if args.command == "run":
        return _run(settings, args)
    raise AssertionError(args.command)  # pragma: no cover - argparse enforces the choices


def _log_dir_problem(directory: Path, exc: OSError) -> str:
    """Why the daemon cannot keep its log file in ``logging.dir``, in one line."""
    if isinstance(exc, FileExistsError | NotADirectoryError):
        return f"logging.dir {directory}: a file is in the way (a directory is needed for the logs)"
    if isinstance(exc, PermissionError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"logging.dir {directory}: not writable by this user{where}"
    return f"logging.dir {directory}: cannot write the log file: {exc.strerror or exc}"


def _replay(settings: Settings, args: argparse.Namespace, series: BarSeries | None = None) -> int:
    """A replay of the bar file ``args.path``, or of ``series`` (the bars of ``--from-db``)."""
    import asyncio

    from application.bar_series import BarFileError, BarSizeError
    from domain.errors import DomainError
    from entrypoints.progress import ProgressBar
    from entrypoints.replay import load_series, run_replay
    from entrypoints.report_output import format_summary, write_report

    if series is None:
        if args.start is not None or args.end is not None or args.contract is not None:
            print("error: --start, --end and --contract apply to --from-db only", file=sys.stderr)
            return EXIT_USAGE
        strategy_seconds = settings.strategy.bar_minutes * 60
        if args.bar_seconds is not None and strategy_seconds % args.bar_seconds:
            print(
                f"error: --bar-seconds {args.bar_seconds} does not divide the strategy bar "
                f"({strategy_seconds} s): such bars cannot build it",
                file=sys.stderr,
            )
            return EXIT_USAGE
        try:
            series = load_series(settings, args.path, args.bar_seconds)
        except BarSizeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except BarFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    source = args.path if args.path is not None else "--from-db"
    refused = sum(series.refused.values())
    if refused * 2 > series.rows_read:
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in series.refused.items())
        print(
            f"warning: {source}: {refused:,} of {series.rows_read:,} rows refused ({reasons}); "
            f"replaying the {len(series):,} that are left",
            file=sys.stderr,
        )
    progress = None
    if not args.no_progress and sys.stderr.isatty():
        progress = ProgressBar(len(series), "replay")
    try:
        result = asyncio.run(
            run_replay(settings, series, on_progress=progress, last_in_process=True)
        )
    except DomainError as exc:  # a domain rule refusing this input with this config
        print(f"error: {source}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(format_summary(result.summary))
    stats = result.aggregation
    if stats.uncovered:
        print(f"warning: {_uncovered_note(result)}", file=sys.stderr)
    print(
        f"aggregation: {stats.bars_in} bars in, {stats.bars_out} strategy bars, "
        f"gaps {stats.gaps}, duplicates {stats.duplicates}, late {stats.late_dropped}, "
        f"out of order {stats.out_of_order_merged}, outside session {stats.outside_session_dropped}"
    )
    if args.report is not None:
        from entrypoints.report_html import replay_context  # Bokeh: only for a report

        try:
            written = write_report(
                args.report,
                result.summary,
                result.round_trips,
                replay_context(settings, result, source),
            )
        except OSError as exc:
            print(
                f"error: --report {args.report}: cannot write: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        print("report: " + ", ".join(str(p) for p in written))
    return EXIT_OK


def _uncovered_note(result: ReplayResult) -> str:
    """Why bars outside the session calendar were not traded (the calendar fails closed)."""
    from domain.engine import CALENDAR_NOT_COVERED, EntryBlock

    stats = result.aggregation
    refused = result.summary.signals_blocked.get(CALENDAR_NOT_COVERED, 0)
    why = next(
        (
            s.detail.split(": ", 1)[1]
            for s in result.journal.signals()
            if EntryBlock.reason_of(s.detail) == CALENDAR_NOT_COVERED
        ),
        "",
    )
    return (
        f"{stats.uncovered:,} of {stats.bars_in:,} bars are on dates the session calendar does not "
        f"cover, so nothing is traded there: {refused:,} entry signals refused"
        + (f"; {why}" if why else "")
        + ". session.calendar: none replays them without session rules"
    )


def _journal_command(settings: Settings, args: argparse.Namespace) -> int:
    """The commands on the journal store (entrypoints.journal_cli), their errors as exit codes."""
    from entrypoints import journal_cli as jc
    from entrypoints.container.store import StoreError, StoreUnavailable
    from entrypoints.replay import StoreBarsError

    try:
        if args.command == "db":
            if args.db_command == "upgrade":
                jc.db_upgrade(settings)
            else:
                jc.db_current(settings)
        elif args.command == "trades":
            jc.export_trades(settings, args.config, args.csv, args.start, args.end)
        elif args.command == "report":
            jc.session_report(
                settings, args.config, args.session, args.report, args.first, args.last
            )
        else:
            series = jc.store_series(
                settings, args.config, args.start, args.end, args.contract, args.bar_seconds
            )
            return _replay(settings, args, series)
    except StoreUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except (StoreError, jc.CommandInputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (jc.NothingFound, StoreBarsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def _report_command(
    produce: Callable[[], tuple[str, object | None]],
    *,
    usage: tuple[type[Exception], ...] = (),
    bad_input: tuple[type[Exception], ...] = (),
) -> int:
    """A command that reads the store or a file and prints a report: the store's and the input's
    errors as one line and the exit code that goes with each."""
    from entrypoints import journal_cli as jc
    from entrypoints.container.store import StoreError, StoreUnavailable

    try:
        text, written = produce()
    except StoreUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except (StoreError, jc.CommandInputError, *usage) as exc:  # type: ignore[misc]
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (jc.NothingFound, *bad_input) as exc:  # type: ignore[misc]
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(text)
    if written is not None:
        print(f"written: {written}")
    return EXIT_OK


def _montecarlo(settings: Settings, args: argparse.Namespace) -> int:
    from entrypoints import montecarlo_cli as mc

    return _report_command(
        lambda: mc.montecarlo(settings, args),
        usage=(mc.MonteCarloUsageError,),
        bad_input=(mc.TradesFileError,),
    )


def _fills(settings: Settings, args: argparse.Namespace) -> int:
    from entrypoints import fills_cli

    return _report_command(lambda: fills_cli.fills_report(settings, args))


def _run(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from application.bar_series import BarFileError
    from entrypoints.container.store import StoreError, StoreUnavailable
    from entrypoints.daemon import RunOptions, StartupError, install_stop_signals, run_daemon
    from entrypoints.telegram.dispatcher import BotTokenInUse

    speed = settings.daemon.speed if args.speed is _DEFAULT_SPEED else args.speed
    options = RunOptions(
        speed=speed, exit_at_end=args.exit_at_end, config_path=args.config, dry_run=args.dry_run
    )

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        result = await run_daemon(settings, options, stop=stop)
        if settings.daemon.broker == "ibkr":
            steps = ", ".join(f"{step} {t:.2f} s" for step, t in result.shutdown.items())
            print(
                f"stopped ({result.stopped_by}): {result.bars} bars, position "
                f"{result.position:+d}; shutdown: {steps or 'none'}"
            )
            return
        resumed = ""
        if result.resumed_from:
            at = datetime.fromtimestamp(result.resumed_from, UTC)
            resumed = f" from the checkpoint at {at:%Y-%m-%d %H:%M:%S} UTC"
        print(
            f"stopped ({result.stopped_by}): {result.bars} bars played{resumed}, "
            f"position {result.position:+d}"
        )

    try:
        asyncio.run(main())
    except BotTokenInUse as exc:
        print(f"error: telegram: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except StoreUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BarFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return EXIT_OK


def _ibkr_check(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio
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
    # Alembic logs its plugins at import and every migration context at INFO: noise around a
    # command's output and its one-line errors. Its warnings still show.
    logging.getLogger("alembic").setLevel(logging.WARNING)


if __name__ == "__main__":  # pragma: no cover
    console()
