"""``quant-scalper fills --from-db``: how optimistic the paper fills were (application.fill_realism)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from application.fill_realism import FillCheck, FillGroup, by_hour, by_role, by_side, check_fills
from application.queries import JournalReader
from domain.commands import FillRecord, OrderIntentRecord, SignalRecord
from entrypoints.settings import Settings

CSV_COLUMNS = (
    "exec_id",
    "order_key",
    "role",
    "side",
    "qty",
    "price",
    "ts",
    "bar_start",
    "bar_low",
    "bar_high",
    "outside_ticks",
    "reference",
    "reference_kind",
    "slippage_ticks",
)


def configure(parser: argparse.ArgumentParser) -> None:
    """The ``fills`` command's description and arguments (its name and one-line help are in
    the command table of :mod:`entrypoints.cli`)."""
    parser.description = (
        "Each journaled fill beside the recorded bar it happened in (a buy below "
        "the bar's low or a sell above its high is a price the market never offered) and its "
        "slippage in ticks against what the order aimed at (the signal close for an entry or a "
        "signal exit, the stop or target price for a bracket leg), summed up by side, role and "
        "New York hour. T: ISO-8601 with a zone, or a date (00:00 UTC)."
    )
    parser.add_argument(
        "--from-db", action="store_true", required=True, help="the fills in the journal store"
    )
    parser.add_argument("--start", metavar="T", help="fills at or after T")
    parser.add_argument("--end", metavar="T", help="fills before T")
    parser.add_argument("--csv", type=Path, metavar="FILE", help="also write every fill as CSV")
    parser.add_argument("--config", type=Path, help="YAML config file")


def fills_report(settings: Settings, args: argparse.Namespace) -> tuple[str, str | None]:
    """The report's text, and where the CSV went (None: not asked)."""
    from entrypoints.journal_cli import NothingFound, parse_window, write_output  # noqa: PLC0415

    lo, hi = parse_window(args.start, args.end)
    checks = asyncio.run(_read(settings, args.config, lo, hi))
    if not checks:
        raise NothingFound("the journal store holds no fills in that window")
    written = None
    if args.csv is not None:
        write_output(args.csv, fills_csv(checks), "--csv")
        written = str(args.csv)
    return render(checks), written


async def _read(
    settings: Settings, config: Path | None, start: datetime | None, end: datetime | None
) -> list[FillCheck]:
    from entrypoints.container import (  # noqa: PLC0415
        init_resources,
        instrument_for,
        shutdown_resources,
    )
    from entrypoints.container.store import journal_store  # noqa: PLC0415

    store = journal_store(settings, config)
    store.check_dependencies()
    await init_resources(store)
    try:
        reader: JournalReader = await store.reader()
        with store.database_errors():
            fills = await reader.records_of(FillRecord, start, end)
            if not fills:
                return []
            first = min(r.fill.ts for r in fills)
            last = max(r.fill.ts for r in fills)
            # The orders' intents and signals come before their fills: a day's margin.
            signals = await reader.records_of(SignalRecord, first - timedelta(days=1), last)
            intents = await reader.records_of(
                OrderIntentRecord, first - timedelta(days=1), last + timedelta(microseconds=1)
            )
            bars = await reader.bars(
                None, first - timedelta(hours=1), last + timedelta(microseconds=1)
            )
    finally:
        await shutdown_resources(store)
    return check_fills(
        fills, bars=bars, signals=signals, intents=intents, tick=instrument_for(settings).tick_size
    )


def _ticks(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _table(title: str, groups: Sequence[FillGroup]) -> list[str]:
    lines = [
        f"{title:<18}{'fills':>7}{'mean slip':>11}{'median':>9}"
        f"{'better than bar':>17}{'worse than bar':>16}{'no bar':>8}"
    ]
    for g in groups:
        if not g.fills:
            continue
        lines.append(
            f"{g.label:<18}{g.fills:>7}{_ticks(g.mean_slippage_ticks):>11}"
            f"{_ticks(g.median_slippage_ticks):>9}{g.outside_better:>17}{g.outside_worse:>16}"
            f"{g.without_bar:>8}"
        )
    return lines


def render(checks: Sequence[FillCheck]) -> str:
    first, last = checks[0].ts, checks[-1].ts
    optimistic = [c for c in checks if c.outside_ticks is not None and c.outside_ticks > 0]
    lines = [
        f"Paper-fill realism: {len(checks)} fills, {first.isoformat()} to {last.isoformat()}",
        "slippage in ticks against the order's aim, positive when it cost us; 'better than "
        "bar': a price the bar never traded",
        "",
        *_table("by side", by_side(checks)),
        "",
        *_table("by role", by_role(checks)),
        "",
        *_table("by hour (New York)", by_hour(checks)),
        "",
    ]
    if optimistic:
        lines.append(
            f"{len(optimistic)} of {len(checks)} fills were at prices the market never offered "
            "in their bar: live fills will be worse."
        )
    else:
        lines.append("No fill was at a price outside its bar's range.")
    return "\n".join(lines)


def fills_csv(checks: Sequence[FillCheck]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in checks:
        writer.writerow(
            (
                c.exec_id,
                c.order_key,
                c.role,
                c.side,
                c.qty,
                c.price,
                c.ts.isoformat(),
                "" if c.bar_start is None else c.bar_start.isoformat(),
                "" if c.bar_low is None else c.bar_low,
                "" if c.bar_high is None else c.bar_high,
                "" if c.outside_ticks is None else c.outside_ticks,
                "" if c.reference is None else c.reference,
                c.reference_kind,
                "" if c.slippage_ticks is None else c.slippage_ticks,
            )
        )
    return out.getvalue()
