"""``quant-scalper replay``: recorded bars through the trading service with the simulated adapters.

The daemon's twin: the same TradingService and engine, with SimulatedAdapters and a ManualClock that
follows the recorded timestamps. Deterministic: the same input and settings give the same journal,
summary.json and trades.csv, byte for byte.

The bars come from a file (:func:`load_series`) or from the bars the daemon recorded in the journal
store (:func:`load_store_series`); either way they become one :class:`BarSeries` and take the same
:func:`run_replay` path.
"""

from __future__ import annotations

import bisect
import gc
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from application.bar_series import BarSeries, band_refusals
from application.queries import JournalReader
from application.report import (
    PriceBars,
    ReplayInputs,
    ReplaySummary,
    count_blocked,
    summarize,
)
from domain.aggregation import AggregationStats
from domain.bar import Bar
from domain.calendar import cme_trade_date
from domain.position import RoundTrip
from domain.price_band import PRICE_JUMP, PRICE_RANGE, PriceBand
from entrypoints.container import (
    build_container,
    init_resources,
    instrument_for,
    price_band_for,
    read_bar_file_for,
    shutdown_resources,
    zscore_factory,
)
from entrypoints.settings import Settings

if TYPE_CHECKING:
    from adapters.simulated.repositories import InMemoryJournal


@dataclass(frozen=True, slots=True, repr=False)
class ReplayResult:
    summary: ReplaySummary
    round_trips: list[RoundTrip]
    aggregation: AggregationStats
    journal: InMemoryJournal
    series: BarSeries

    def __repr__(self) -> str:
        # Short on purpose: asyncio.run formats the repr of its main task, result included, twice
        # on the way out (Python 3.11's signal.getsignal puts the SIGINT handler, which holds the
        # task, into a ValueError message). A full repr of a 1M-bar replay took 0.35 s each time.
        return f"ReplayResult({len(self.round_trips)} round trips, {len(self.series)} bars)"


def load_series(settings: Settings, path: Path, bar_seconds: int | None = None) -> BarSeries:
    """Read a bar file, refusing rows off the instrument's tick grid, outside its price band, or
    stamped after the wall clock's now (see ``adapters.simulated.market_data.read_bar_file``)."""
    return read_bar_file_for(settings, path, bar_seconds)


class StoreBarsError(Exception):
    """The recorded bars of a window cannot be replayed as one series; ``str()`` is one line."""


async def load_store_series(
    settings: Settings,
    reader: JournalReader,
    start: datetime,
    end: datetime,
    *,
    contract: str | None = None,
    bar_seconds: int | None = None,
    source: str = "journal",
) -> BarSeries:
    """The bars recorded in the journal that start in ``[start, end)``, as one series.

    ``contract`` (a local symbol such as ``MESM5``) keeps one contract's bars; without it the bars of
    every contract are taken, which is right across a roll (one contract's bars after the other's)
    but refused when two contracts' bars overlap in time. ``bar_seconds`` keeps bars of one size; it
    is needed only when bars of several sizes were recorded in the window. Rows off the instrument's
    tick grid are refused and counted as ``off_tick``, as :func:`read_bar_file` does, so the same bars
    give the same summary from the store as from a file.
    """
    where = f" of {contract}" if contract is not None else ""
    window = f"from {_utc(start)} to {_utc(end)}"
    bars = await reader.bars(contract, start, end)
    if not bars:
        raise StoreBarsError(f"no bars{where} recorded in the {source} {window}")
    sizes = sorted({b.seconds for b in bars})
    if bar_seconds is not None:
        bars = [b for b in bars if b.seconds == bar_seconds]
        if not bars:
            raise StoreBarsError(
                f"no {bar_seconds}s bars{where} recorded in the {source} {window} "
                f"(recorded: {_sizes(sizes)})"
            )
    elif len(sizes) > 1:
        raise StoreBarsError(
            f"bars of several sizes ({_sizes(sizes)}){where} recorded in the {source} {window}: "
            "choose one with --bar-seconds"
        )
    for previous, bar in itertools.pairwise(bars):
        if bar.epoch < previous.end_epoch:
            raise StoreBarsError(
                f"recorded bars of more than one contract overlap at {_utc(bar.ts)} in the "
                f"{source}: choose one with --contract"
            )
    return series_of_bars(
        bars,
        tick_size=instrument_for(settings).tick_size,
        source=Path(f"<{source}>"),
        band=price_band_for(settings),
    )


def series_of_bars(
    bars: Sequence[Bar],
    *,
    tick_size: Decimal | None,
    source: Path,
    band: PriceBand | None = None,
) -> BarSeries:
    """Bars of one size, oldest first, as a :class:`BarSeries` (off-tick rows and rows outside the
    price band refused and counted, as :func:`read_bar_file` does)."""
    n = len(bars)
    if n == 0:
        raise ValueError("series_of_bars: no bars")
    seconds = bars[0].seconds
    if any(b.seconds != seconds for b in bars):
        raise ValueError("series_of_bars: bars of one size only")
    epochs = np.fromiter((b.epoch for b in bars), np.int64, n)
    opens = np.fromiter((b.open for b in bars), np.float64, n)
    highs = np.fromiter((b.high for b in bars), np.float64, n)
    lows = np.fromiter((b.low for b in bars), np.float64, n)
    closes = np.fromiter((b.close for b in bars), np.float64, n)
    volumes = np.fromiter((b.volume for b in bars), np.int64, n)
    refused: dict[str, int] = {}
    refused_lines: dict[str, list[int]] = {}
    bad = np.zeros(n, dtype=bool)
    masks: list[tuple[str, np.ndarray]] = []
    if tick_size is not None:
        # The same test as read_bar_file's, so a bar refused from a file is refused here too.
        step = float(tick_size)
        off = np.zeros(n, dtype=bool)
        for column in (opens, highs, lows, closes):
            q = column / step
            off |= q != np.round(q)
        masks.append(("off_tick", off))
        bad |= off
    if band is not None:
        masks.extend(
            zip(
                (PRICE_RANGE, PRICE_JUMP),
                band_refusals(band, lows, highs, closes, bad),
                strict=True,
            )
        )
    for reason, mask in masks:
        if mask.any():
            refused[reason] = int(mask.sum())
            refused_lines[reason] = np.flatnonzero(mask)[:5].tolist()
            bad |= mask
    if bad.any():
        keep = ~bad
        epochs, volumes = epochs[keep], volumes[keep]
        opens, highs, lows, closes = opens[keep], highs[keep], lows[keep], closes[keep]
    return BarSeries(
        source=source,
        bar_seconds=seconds,
        epochs=epochs,
        opens=opens,
        highs=highs,
        lows=lows,
        closes=closes,
        volumes=volumes,
        rows_read=n,
        refused=refused,
        refused_lines=refused_lines,
    )


def _utc(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _sizes(sizes: list[int]) -> str:
    return ", ".join(f"{s}s" for s in sizes)


async def run_replay(
    settings: Settings,
    series: BarSeries,
    *,
    on_progress: Callable[[int], None] | None = None,
    last_in_process: bool = False,
) -> ReplayResult:
    """Replay ``series`` and summarise the result.

    ``last_in_process``: the process ends soon after (the replay command). The objects the replay
    built are then frozen out of the cyclic collector's sight rather than walked: the collector is
    paused during the replay, so all of them sit in its youngest generation, and its first
    collection afterwards would walk each one (0.4-0.8 s at 1M bars). A process that goes on
    replaying (a sweep worker) must not: cyclic garbage in a frozen heap is never collected.
    """
    # A replay keeps what it builds (journal records, trips, alerts) until it ends: the cyclic
    # collector would only re-walk that growing heap (measured: 15% of a 1M-bar replay).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return await _replay(settings, series, on_progress)
    finally:
        if collecting:
            if last_in_process:
                gc.freeze()
            gc.enable()


async def _replay(
    settings: Settings, series: BarSeries, on_progress: Callable[[int], None] | None
) -> ReplayResult:
    container = build_container(settings, "simulated", bar_source=series, on_progress=on_progress)
    container.check_dependencies()
    await init_resources(container)
    try:
        runner = container.services.fast_replay()
        service = runner.service
        await runner.run(container.adapters.market_data())
        journal: InMemoryJournal = container.adapters.journal()
        trips = journal.round_trips()
        signals = journal.signals()
        summary = summarize(
            ReplayInputs(
                round_trips=trips,
                trade_dates=trade_dates(series),
                trade_date_of=cme_trade_date,
                bars_in=service.counters.bars_in,
                strategy_bars=service.counters.strategy_bars,
                breaker_trips=[(t.ts, t.rule.value) for t in journal.breaker_trips()],
                final_position=service.engine.position.snapshot(),
                rows_refused=series.refused,
                signals_blocked=count_blocked(signals),
                prices=price_bars(series),
                signals=signals,
                intents=journal.intents(),
                account_size_usd=settings.report.account_size_usd,
                point_value=instrument_for(settings).multiplier,
            )
        )
        return ReplayResult(summary, trips, service.aggregator.stats, journal, series)
    finally:
        await shutdown_resources(container)


def trade_dates(series: BarSeries) -> list[date]:
    """CME trade dates that had bars. Trade dates change at 18:00 ET, a whole hour in UTC, so the
    distinct UTC hours of the bars give them exactly."""
    # Sorted and deduplicated by hand: np.unique imports numpy.ma, a replay's start-up for nothing.
    hours = np.sort(series.epochs // 3600)
    hours = hours[np.r_[True, hours[1:] != hours[:-1]]] if len(hours) else hours
    return trade_dates_of_hours(hours.tolist())


_MAX_TRADE_DATE_HOURS = 74
"""A trade date never spans more hours than this: Friday 18:00 ET to Monday 18:00 ET (the weekend
maps to Monday) is 72, plus a DST change, plus one."""


def trade_dates_of_hours(hours: Sequence[int]) -> list[date]:
    """The CME trade dates of some distinct UTC hours (hours since the epoch), sorted ascending.

    The trade date of an instant never decreases as the instant grows, so the hours of one trade
    date are a run of the sorted hours: each run's end is found by bisection (inside the longest
    run a trade date can have), a handful of lookups per trade date instead of one per hour (at
    1M 5-minute bars: ~20,000 instead of ~83,000)."""

    def trade_date(hour: int) -> date:
        return cme_trade_date(datetime.fromtimestamp(hour * 3600, UTC))

    dates: list[date] = []
    i, n = 0, len(hours)
    while i < n:
        day = trade_date(hours[i])
        limit = bisect.bisect_left(hours, hours[i] + _MAX_TRADE_DATE_HOURS, i + 1, n)
        dates.append(day)
        i = bisect.bisect_right(hours, day, i + 1, limit, key=trade_date)
    return dates


def price_bars(series: BarSeries) -> PriceBars:
    """The series' bars as the report's columns: its own arrays, not copied."""
    return PriceBars(
        starts=series.epochs,
        seconds=series.bar_seconds,
        opens=series.opens,
        highs=series.highs,
        lows=series.lows,
        closes=series.closes,
    )


def strategy_zscores(settings: Settings, closes: npt.NDArray[np.float64]) -> list[float]:
    """The z of each strategy bar's close, by the configured engine (NaN while undefined)."""
    engine = zscore_factory(settings.zscore.engine)(settings.strategy.lookback_period)
    values: list[float] = engine.update_many(np.ascontiguousarray(closes)).values.tolist()
    return values
