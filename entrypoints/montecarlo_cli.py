"""``quant-scalper montecarlo``: the Monte Carlo of a trade list (``--trades FILE``: the trades.csv a
replay writes, or ``trades export`` gives; ``--from-db``: the round trips in the journal store).

It reads the round trips, runs :func:`application.research.montecarlo.run_montecarlo` with the
config's ``risk.max_daily_loss`` and ``risk.max_consecutive_losses``, prints a table and writes
``montecarlo.json`` (the same inputs and seed give the same bytes). Failures are exceptions whose
``str()`` is one line: :class:`TradesFileError` is input data that cannot be used (exit 3),
:class:`MonteCarloUsageError` a bad command line (exit 2); with ``--from-db`` the store's
errors as ``trades export`` maps them.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from application.queries import JournalReader
from application.research.montecarlo import (
    DEFAULT_BLOCK_DAYS,
    DEFAULT_PATHS,
    Limits,
    MonteCarloResult,
    PathStats,
    TradeOutcome,
    run_montecarlo,
    trade_days_between,
)
from domain.calendar import cme_trade_date
from entrypoints.options import add_seed, whole_number
from entrypoints.settings import Settings

RESULT_JSON = "montecarlo.json"
DEFAULT_DB_OUT = Path("reports/montecarlo")
REQUIRED_COLUMNS = ("exit_time", "net_pnl_usd")
_CENT = Decimal("0.01")


class TradesFileError(Exception):
    """A trades file that cannot be used, named with the line at fault."""


class MonteCarloUsageError(Exception):
    """A command-line value that cannot be used (an option out of place, an unwritable --out)."""


def configure(parser: argparse.ArgumentParser) -> None:
    """The ``montecarlo`` command's description and arguments (its name and one-line help are in
    the command table of :mod:`entrypoints.cli`)."""
    parser.description = (
        "Resample the round trips (iid) and their daily P&L (blocks of --block "
        "consecutive CME trade dates): percentiles of final net P&L and max drawdown, the "
        "probability that a day reaches risk.max_daily_loss and of a streak of "
        "risk.max_consecutive_losses losing trades (limits from --config, else the defaults). "
        "Seeded: the same input and seed give the same output."
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--trades", type=Path, metavar="FILE", help="a trades.csv (replay --report, trades export)"
    )
    source.add_argument(
        "--from-db", action="store_true", help="the round trips in the journal store"
    )
    parser.add_argument(
        "--paths",
        type=whole_number("--paths"),
        default=DEFAULT_PATHS,
        metavar="N",
        help=f"resampled paths per method (default {DEFAULT_PATHS:,})",
    )
    parser.add_argument(
        "--block",
        type=whole_number("--block"),
        metavar="K",
        help=f"trade dates per block of the daily bootstrap (default {DEFAULT_BLOCK_DAYS}, or "
        "the trade dates spanned if fewer)",
    )
    add_seed(parser, "random seed (default 0)")
    parser.add_argument("--config", type=Path, help="YAML config file (the risk limits)")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help=f"write {RESULT_JSON} here (default: the trades file's folder; with --from-db "
        f"{DEFAULT_DB_OUT})",
    )
    parser.add_argument("--start", metavar="T", help="--from-db: round trips exiting at or after T")
    parser.add_argument("--end", metavar="T", help="--from-db: round trips exiting before T")


# ---------------------------------------------------------------- reading the round trips


def read_trades_csv(path: Path) -> list[TradeOutcome]:
    """The round trips of a trades.csv (columns ``exit_time`` and ``net_pnl_usd`` at least), in
    closing order. Raises :class:`TradesFileError` naming the file, the line and what is wrong."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return parse_trades_csv(handle, str(path))
    except OSError as exc:
        raise TradesFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise TradesFileError(f"{path}: not a text file ({exc.reason})") from None


def parse_trades_csv(lines: Any, source: str) -> list[TradeOutcome]:
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise TradesFileError(f"{source}: empty: no header row, no round trips")
        names = [cell.strip() for cell in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise TradesFileError(
                f"{source}: line 1: missing column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)} (a trades.csv as replay --report writes it)"
            )
        at_ts, at_pnl = names.index("exit_time"), names.index("net_pnl_usd")
        rows: list[tuple[datetime, TradeOutcome]] = []
        for cells in reader:
            line = reader.line_num
            if not cells or not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(names):
                raise TradesFileError(
                    f"{source}: line {line}: {len(cells)} fields, the header has {len(names)}"
                )
            exit_ts = _exit_time(cells[at_ts], source, line)
            pnl = _money(cells[at_pnl], source, line)
            rows.append((exit_ts, TradeOutcome(cme_trade_date(exit_ts), pnl)))
    except csv.Error as exc:
        raise TradesFileError(f"{source}: line {reader.line_num}: not CSV: {exc}") from None
    if not rows:
        raise TradesFileError(f"{source}: no round trips (only a header row)")
    rows.sort(key=lambda row: row[0])  # closing order, as trades.csv has it
    return [trade for _, trade in rows]


def _exit_time(text: str, source: str, line: int) -> datetime:
    try:
        ts = datetime.fromisoformat(text.strip())
    except ValueError:
        ts = None
    if ts is None or ts.utcoffset() is None:
        raise TradesFileError(
            f"{source}: line {line}: exit_time {text!r} is not an ISO-8601 time with a zone "
            "(2013-10-07T14:35:00Z)"
        )
    return ts


def _money(text: str, source: str, line: int) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise TradesFileError(
            f"{source}: line {line}: net_pnl_usd {text!r} is not an amount in USD"
        )
    return value


def trades_from_store(
    settings: Settings, config: Path | None, start: str | None, end: str | None
) -> list[TradeOutcome]:
    """The round trips in the journal store exiting in ``[start, end)``, in closing order."""
    # The store's libraries only when the store is read.
    from domain.commands import RoundTripRecord  # noqa: PLC0415
    from entrypoints.container import init_resources, shutdown_resources  # noqa: PLC0415
    from entrypoints.container.store import journal_store  # noqa: PLC0415
    from entrypoints.journal_cli import NothingFound, parse_window  # noqa: PLC0415

    lo, hi = parse_window(start, end)
    store = journal_store(settings, config)
    store.check_dependencies()

    async def read() -> list[TradeOutcome]:
        await init_resources(store)
        try:
            reader: JournalReader = await store.reader()
            with store.database_errors():
                records = await reader.records_of(RoundTripRecord, lo, hi)
        finally:
            await shutdown_resources(store)
        trips = sorted((r.trip for r in records), key=lambda t: t.exit_ts)
        return [TradeOutcome(cme_trade_date(t.exit_ts), t.net_pnl) for t in trips]

    trades = asyncio.run(read())
    if not trades:
        raise NothingFound("the journal store holds no round trips in that window")
    return trades


# ---------------------------------------------------------------- output


def limits_of(settings: Settings) -> Limits:
    return Limits(
        max_daily_loss_usd=settings.risk.max_daily_loss,
        max_consecutive_losses=settings.risk.max_consecutive_losses,
    )


def result_json(result: MonteCarloResult, source: str) -> dict[str, Any]:
    """The result as JSON: money as exact decimal strings, probabilities as floats."""
    limits = result.limits
    observed = result.observed
    return {
        "source": source,
        "trades": result.trades,
        "trade_days": result.trade_days,
        "paths": result.paths,
        "block_days": result.block_days,
        "seed": result.seed,
        "percentiles": [p for p, _ in result.trade_bootstrap.final_pnl_usd],
        "limits": {
            "max_daily_loss_usd": _money_text(limits.max_daily_loss_usd),
            "max_consecutive_losses": limits.max_consecutive_losses,
        },
        "observed": {
            "final_pnl_usd": _money_text(observed.final_pnl_usd),
            "max_drawdown_usd": _money_text(observed.max_drawdown_usd),
            "days_at_daily_loss": observed.days_at_daily_loss,
            "longest_losing_streak": observed.longest_losing_streak,
        },
        "trade_bootstrap": _stats_json(result.trade_bootstrap),
        "daily_block_bootstrap": _stats_json(result.daily_bootstrap),
    }


def _stats_json(stats: PathStats) -> dict[str, Any]:
    return {
        "path_length": stats.path_length,
        "final_pnl_usd": {f"p{p}": _money_text(v) for p, v in stats.final_pnl_usd},
        "max_drawdown_usd": {f"p{p}": _money_text(v) for p, v in stats.max_drawdown_usd},
        "p_final_loss": stats.p_final_loss,
        "p_daily_loss_path": stats.p_daily_loss_path,
        "daily_loss_day_share": stats.daily_loss_day_share,
        "p_losing_streak": stats.p_losing_streak,
    }


def _money_text(value: Decimal | None) -> str | None:
    """Exact: two decimals for cents, more only where the amount has them."""
    if value is None:
        return None
    cents = value.quantize(_CENT)
    return format(cents if cents == value else value.normalize(), "f")


def format_result(result: MonteCarloResult, source: str) -> str:
    """The readable table."""
    limits, observed = result.limits, result.observed
    trades, days = result.trade_bootstrap, result.daily_bootstrap
    daily_limit = limits.max_daily_loss_usd
    lines = [
        f"Monte Carlo of {result.trades:,} round trip{'s' if result.trades != 1 else ''} over "
        f"{result.trade_days} trade day{'s' if result.trade_days != 1 else ''} ({source})",
        f"{result.paths:,} paths per method, seed {result.seed}; trades: {trades.path_length:,} "
        f"drawn with replacement; daily blocks: {days.path_length} trade days in blocks of "
        f"{result.block_days}",
        f"observed: net P&L {_money_text(observed.final_pnl_usd)}, max drawdown "
        f"{_money_text(observed.max_drawdown_usd)}, longest losing streak "
        f"{observed.longest_losing_streak}"
        + (
            ""
            if observed.days_at_daily_loss is None
            else f", {observed.days_at_daily_loss} day"
            f"{'s' if observed.days_at_daily_loss != 1 else ''} at the daily loss limit"
        ),
        "",
        f"{'':38}{'trades':>14}{'daily blocks':>16}",
    ]
    for title, ours, theirs in (
        ("final net P&L, USD", trades.final_pnl_usd, days.final_pnl_usd),
        ("max drawdown, USD", trades.max_drawdown_usd, days.max_drawdown_usd),
    ):
        for i, ((p, a), (_, b)) in enumerate(zip(ours, theirs, strict=True)):
            label = f"{title if i == 0 else '':<30}{p:>3}th %"
            lines.append(f"{label:<38}{_money_text(a):>14}{_money_text(b):>16}")
    rows: list[tuple[str, float | None, float | None]] = [
        ("P(final net P&L < 0)", trades.p_final_loss, days.p_final_loss)
    ]
    if daily_limit is not None:
        rows.append(
            (
                f"P(a day at max_daily_loss {_money_text(daily_limit)})",
                trades.p_daily_loss_path,
                days.p_daily_loss_path,
            )
        )
        rows.append(
            (
                "  share of trading days there",
                trades.daily_loss_day_share,
                days.daily_loss_day_share,
            )
        )
    if limits.max_consecutive_losses is not None:
        rows.append(
            (
                f"P({limits.max_consecutive_losses} losing trades in a row)",
                trades.p_losing_streak,
                days.p_losing_streak,
            )
        )
    for label, by_trades, by_days in rows:
        lines.append(f"{label:<38}{_pct(by_trades):>14}{_pct(by_days):>16}")
    if daily_limit is None:
        lines.append("risk.max_daily_loss is off: no daily-loss probability")
    if limits.max_consecutive_losses is None:
        lines.append("risk.max_consecutive_losses is off: no losing-streak probability")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def write_json(directory: Path, document: dict[str, Any]) -> Path:
    """``montecarlo.json`` in ``directory`` (created); raises MonteCarloUsageError if it cannot be."""
    path = directory / RESULT_JSON
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise MonteCarloUsageError(
            f"--out {directory}: cannot write: {exc.strerror or exc}"
        ) from None
    return path


def montecarlo(settings: Settings, args: argparse.Namespace) -> tuple[str, Path]:
    """Run the command: returns the table and where the JSON went. Raises TradesFileError,
    MonteCarloUsageError (and the store's errors with --from-db)."""
    if args.trades is not None and (args.start is not None or args.end is not None):
        raise MonteCarloUsageError("--start and --end apply to --from-db only")
    trades: Sequence[TradeOutcome]
    if args.trades is not None:
        trades = read_trades_csv(args.trades)
        source = str(args.trades)
        out = args.out if args.out is not None else args.trades.parent
    else:
        trades = trades_from_store(settings, args.config, args.start, args.end)
        source = "--from-db"
        out = args.out if args.out is not None else DEFAULT_DB_OUT
    span = len(trade_days_between(trades[0].trade_date, trades[-1].trade_date))
    block = args.block if args.block is not None else min(DEFAULT_BLOCK_DAYS, span)
    if block > span:
        raise MonteCarloUsageError(
            f"--block {block}: longer than the {span} trade day{'s' if span != 1 else ''} "
            f"the round trips of {source} span"
        )
    try:
        result = run_montecarlo(
            trades, paths=args.paths, block_days=block, seed=args.seed, limits=limits_of(settings)
        )
    except ValueError as exc:  # the P&L itself (e.g. more decimals than money has)
        raise TradesFileError(f"{source}: {exc}") from None
    path = write_json(out, result_json(result, source))
    return format_result(result, source), path
