"""The commands that work on the journal store: ``db upgrade``, ``db current``, ``trades export``,
``report --session``, and the loading half of ``replay --from-db``.

Each runs on the store named by the settings, through the composition root's
:class:`~entrypoints.container.store.JournalStore` (settings, container, ``check_dependencies()``,
``init_resources()``, read, ``shutdown_resources()``), and refuses a store whose schema is missing or
out of date before reading anything. Failures are exceptions whose ``str()`` is one line;
``entrypoints.cli`` prints that line and maps the exception to an exit code:
:class:`CommandInputError` and the store's misconfiguration or schema errors are a bad command line
or configuration, :class:`NothingFound` and :class:`~entrypoints.replay.StoreBarsError` are input
data that cannot be used, :class:`~entrypoints.container.store.StoreUnavailable` is a database that
does not answer.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from application.bar_series import BarSeries
from application.queries import JournalReader
from application.report import (
    PriceBars,
    ReplayInputs,
    ReplaySummary,
    TradeDetail,
    count_blocked,
    summarize,
    trade_details,
)
from domain.aggregation import BarAggregator
from domain.bar import Bar
from domain.calendar import ET, build_calendar, cme_trade_date, trade_date_window
from domain.circuit_breaker import BreakerReset, BreakerTripped
from domain.commands import (
    BreakerRecord,
    FillRecord,
    OrderIntentRecord,
    RoundTripRecord,
    SignalRecord,
)
from domain.errors import DomainError
from domain.position import ExitReason, Fill, OpenPosition, Position, RoundTrip
from entrypoints.container import (
    aggregation_calendar,
    init_resources,
    instrument_for,
    shutdown_resources,
)
from entrypoints.container.store import JournalStore, journal_store
from entrypoints.replay import load_store_series, strategy_zscores
from entrypoints.report_html import ReportContext, strategy_bars
from entrypoints.report_output import (
    format_summary,
    price_bars_of,
    trades_csv,
    utc,
    write_report,
)
from entrypoints.settings import Settings

STDOUT = "-"
"""``--csv -`` writes the CSV to standard output."""

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class CommandInputError(Exception):
    """A value on the command line that cannot be used (a malformed time, an unwritable file)."""


class NothingFound(Exception):
    """The store holds nothing for what was asked."""


# ---------------------------------------------------------------- command-line values


def parse_time(text: str, option: str) -> datetime:
    """``--start``/``--end``: ISO-8601 with a zone (``2025-03-04T15:00:00Z``, ``...-05:00``) or a
    date (``2025-03-04``, meaning 00:00 UTC). Returns an aware UTC datetime."""
    value = text.strip()
    try:
        day = date.fromisoformat(value) if _DATE.fullmatch(value) else None
    except ValueError as exc:
        raise CommandInputError(f"{option} {text!r}: not a valid date ({exc})") from None
    if day is not None:
        return datetime.combine(day, time(0), UTC)
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise CommandInputError(
            f"{option} {text!r}: not an ISO-8601 time with a zone (2025-03-04T15:00:00Z) "
            "or a date (2025-03-04)"
        ) from None
    if ts.utcoffset() is None:
        raise CommandInputError(
            f"{option} {text!r} has no time zone: add Z for UTC or an offset such as -05:00"
        )
    return ts.astimezone(UTC)


def parse_window(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    """``--start``/``--end`` as a half-open window ``[start, end)``, either bound optional."""
    lo = None if start is None else parse_time(start, "--start")
    hi = None if end is None else parse_time(end, "--end")
    if lo is not None and hi is not None:
        _require_order(lo, hi)
    return lo, hi


def _require_order(start: datetime, end: datetime) -> None:
    if start >= end:
        raise CommandInputError(
            f"--start {utc(start)} is not before --end {utc(end)}: the window is empty"
        )


def parse_trade_date(text: str, option: str = "--session") -> date:
    """``--session``, ``--from``, ``--to``: a CME trade date, ``YYYY-MM-DD``, Monday to Friday."""
    value = text.strip()
    try:
        if not _DATE.fullmatch(value):
            raise ValueError("expected YYYY-MM-DD")
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise CommandInputError(f"{option} {text!r}: not a date YYYY-MM-DD ({exc})") from None
    if day.weekday() >= 5:
        monday = day + timedelta(days=7 - day.weekday())
        raise CommandInputError(
            f"{option} {day.isoformat()} is a {day.strftime('%A')}, not a CME trade date "
            f"(weekend trading belongs to Monday {monday.isoformat()})"
        )
    return day


def write_output(path: Path, text: str, option: str) -> None:
    try:
        with path.open("w", encoding="utf-8", newline="") as out:
            out.write(text)
    except OSError as exc:
        raise CommandInputError(f"{option} {path}: cannot write: {exc.strerror or exc}") from None


# ---------------------------------------------------------------- db


def db_upgrade(settings: Settings) -> None:
    """``db upgrade``: migrate the configured store to the newest schema."""
    store = journal_store(settings)
    store.check_dependencies()
    revision = store.upgrade()
    print(f"database at {revision} ({store.name()})")


def db_current(settings: Settings) -> None:
    """``db current``: the store's schema revision, or ``empty``."""
    store = journal_store(settings)
    store.check_dependencies()
    print(store.revision() or "empty")


# ---------------------------------------------------------------- trades export


def export_trades(
    settings: Settings,
    config: Path | None,
    csv_path: Path,
    start: str | None,
    end: str | None,
) -> None:
    """``trades export``: the round trips that exit in ``[start, end)`` as the replay's trades.csv."""
    lo, hi = parse_window(start, end)
    store = journal_store(settings, config)
    store.check_dependencies()
    trips, details = asyncio.run(_round_trips(store, settings, lo, hi))
    text = trades_csv(trips, details)
    rows = f"{len(trips)} round trip{'s' if len(trips) != 1 else ''}"
    if str(csv_path) == STDOUT:
        sys.stdout.write(text)
        print(f"{rows} written", file=sys.stderr)
        return
    write_output(csv_path, text, "--csv")
    print(f"{rows} written to {csv_path}")


async def _round_trips(
    store: JournalStore, settings: Settings, start: datetime | None, end: datetime | None
) -> tuple[list[RoundTrip], list[TradeDetail]]:
    """The round trips exiting in the window, with the details trades.csv gives of each (entry z,
    bracket prices from the journal; MAE/MFE from the bars recorded while they were held)."""
    await init_resources(store)
    try:
        reader: JournalReader = await store.reader()
        with store.database_errors():
            trips = [r.trip for r in await reader.records_of(RoundTripRecord, start, end)]
            if not trips:
                return trips, []
            first_entry = min(t.entry_ts for t in trips)
            last_exit = max(t.exit_ts for t in trips)
            signals = await reader.records_of(SignalRecord, None, last_exit + _JUST_AFTER)
            intents = await reader.records_of(OrderIntentRecord, None, last_exit + _JUST_AFTER)
            bars = await reader.bars(None, first_entry, last_exit + _JUST_AFTER)
    finally:
        await shutdown_resources(store)
    details = trade_details(
        trips,
        prices=price_bars_of(bars),
        signals=signals,
        intents=intents,
        point_value=instrument_for(settings).multiplier,
    )
    return trips, details


_JUST_AFTER = timedelta(microseconds=1)


# ---------------------------------------------------------------- report --session


@dataclass(frozen=True, slots=True)
class SessionReport:
    """CME trade dates ``first``..``last`` from the journal, summarised like a replay."""

    trade_date: date
    """The first trade date of the window."""
    start: datetime
    end: datetime
    summary: ReplaySummary
    round_trips: list[RoundTrip]
    breaker_events: list[BreakerTripped | BreakerReset]
    prices: PriceBars | None = None
    last_date: date | None = None

    @property
    def label(self) -> str:
        if self.last_date is None or self.last_date == self.trade_date:
            return f"Session {self.trade_date.isoformat()}"
        return f"Sessions {self.trade_date.isoformat()} to {self.last_date.isoformat()}"


def session_report(
    settings: Settings,
    config: Path | None,
    session: str | None,
    report_dir: Path | None,
    first: str | None = None,
    last: str | None = None,
) -> None:
    """``report --session D`` or ``report --from D1 --to D2``: the replay's metrics for the round
    trips of those CME trade dates (by exit time), with their breaker events; ``report_dir`` also
    gets the replay's report files, report.html among them."""
    if session is not None:
        if last is not None:
            raise CommandInputError("--to goes with --from, not with --session")
        first_date = last_date = parse_trade_date(session)
    else:
        if first is None or last is None:
            raise CommandInputError("report needs --session D, or both --from D1 and --to D2")
        first_date = parse_trade_date(first, "--from")
        last_date = parse_trade_date(last, "--to")
        if last_date < first_date:
            raise CommandInputError(
                f"--to {last_date.isoformat()} is before --from {first_date.isoformat()}"
            )
    store = journal_store(settings, config)
    store.check_dependencies()
    report = asyncio.run(build_session_report(store, settings, first_date, last_date))
    dates = (
        f"trade date {first_date.isoformat()}"
        if first_date == last_date
        else f"trade dates {first_date.isoformat()} to {last_date.isoformat()}"
    )
    if (
        not report.round_trips
        and not report.breaker_events
        and report.summary.bars_in == 0
        and report.summary.final_position is None
    ):
        raise NothingFound(
            f"nothing journaled for {dates} in {store.name()} "
            "(no round trips, bars or breaker events)"
        )
    span = "trade date" if first_date == last_date else dates
    print(
        f"{report.label}: CME {span} from {_et(report.start)} to "
        f"{_et(report.end)} New York time ({utc(report.start)} to {utc(report.end)})"
    )
    text = format_summary(report.summary)
    title, _, rest = text.partition("\n")
    if title == "Replay summary":  # the same table; a journaled session is not a replay
        text = f"{report.label} summary\n{rest}"
    print(text)
    print(f"Breaker events: {len(report.breaker_events)}")
    for event in report.breaker_events:
        print(f"  {_breaker_line(event)}")
    if report_dir is not None:
        try:
            written = write_report(
                report_dir,
                report.summary,
                report.round_trips,
                journal_context(settings, report, store.name()),
            )
        except OSError as exc:
            raise CommandInputError(
                f"--report {report_dir}: cannot write: {exc.strerror or exc}"
            ) from None
        print("report: " + ", ".join(str(p) for p in written))


def journal_context(settings: Settings, report: SessionReport, store: str) -> ReportContext:
    """What report.html shows of a journaled window besides its summary."""
    seconds = settings.strategy.bar_minutes * 60
    zscores = None
    if report.prices is not None:
        bars = strategy_bars(report.prices, seconds)
        zscores = strategy_zscores(settings, bars.closes)
    return ReportContext(
        title=f"{report.label} from the journal",
        source=f"journal {store}, {utc(report.start)} to {utc(report.end)}",
        source_sha256=None,
        config=settings.redacted(),
        prices=report.prices,
        strategy_seconds=seconds,
        z_entry=float(settings.strategy.z_threshold_entry),
        z_exit=float(settings.strategy.z_threshold_exit),
        zscores=zscores,
        breaker_trips=[
            (e.ts, e.rule.value) for e in report.breaker_events if isinstance(e, BreakerTripped)
        ],
    )


async def build_session_report(
    store: JournalStore, settings: Settings, trade_date: date, last_date: date | None = None
) -> SessionReport:
    """Read from ``store`` the round trips, breaker events and recorded bars of trade dates
    ``trade_date`` to ``last_date`` (default: that one date), and the position at the end (rebuilt
    from every fill journaled before it), and summarise them."""
    last = trade_date if last_date is None else last_date
    start, _ = trade_date_window(trade_date)
    _, end = trade_date_window(last)
    await init_resources(store)
    try:
        reader: JournalReader = await store.reader()
        with store.database_errors():
            trip_records = await reader.records_of(RoundTripRecord, start, end)
            breaker_records = await reader.records_of(BreakerRecord, start, end)
            bars = await reader.bars(None, start, end)
            fills = await reader.records_of(FillRecord, None, end)
            signals = await reader.records_of(SignalRecord, None, end)
            intents = await reader.records_of(OrderIntentRecord, None, end)
    finally:
        await shutdown_resources(store)

    def inside(ts: datetime) -> bool:
        # The trade-date rule itself decides, so the selection cannot drift from the domain's.
        return trade_date <= cme_trade_date(ts) <= last

    trips = [r.trip for r in trip_records if inside(r.trip.exit_ts)]
    events = [r.event for r in breaker_records if inside(r.event.ts)]
    dates = (
        [trade_date]
        if last == trade_date
        else sorted(
            {cme_trade_date(b.ts) for b in bars} | {cme_trade_date(t.exit_ts) for t in trips}
        )
    )
    prices = price_bars_of(bars)
    summary = summarize(
        ReplayInputs(
            round_trips=trips,
            trade_dates=dates,
            trade_date_of=cme_trade_date,
            bars_in=len(bars),
            strategy_bars=_strategy_bars(settings, bars),
            breaker_trips=[(e.ts, e.rule.value) for e in events if isinstance(e, BreakerTripped)],
            final_position=_position_after(settings, [r.fill for r in fills]),
            rows_refused={},
            signals_blocked=count_blocked(
                r for r in signals if start <= r.ts < end and inside(r.ts)
            ),
            prices=prices,
            signals=signals,
            intents=intents,
            account_size_usd=settings.report.account_size_usd,
            point_value=instrument_for(settings).multiplier,
        )
    )
    return SessionReport(trade_date, start, end, summary, trips, events, prices, last)


def _strategy_bars(settings: Settings, bars: Sequence[Bar]) -> int:
    """How many strategy bars the configured aggregation builds from the recorded bars, fed to it
    as the trading service feeds it (each bar first closes what time has passed, then is added)."""
    calendar = aggregation_calendar(settings, build_calendar(settings.session.calendar))
    aggregator = BarAggregator(settings.strategy.bar_minutes * 60, calendar)
    try:
        for bar in bars:
            aggregator.close_before(bar.epoch)
            aggregator.add(bar)
    except DomainError as exc:  # bars the configured strategy size cannot be built from
        print(f"warning: strategy bars not counted: {exc}", file=sys.stderr)
        return 0
    return aggregator.stats.bars_out


def _position_after(settings: Settings, fills: Sequence[Fill]) -> OpenPosition | None:
    """The position the journaled fills leave open (None: flat)."""
    position = Position(instrument_for(settings))
    try:
        for fill in fills:
            position.apply(fill, ExitReason.EXTERNAL)  # the reason names trips, which are not kept
    except DomainError as exc:
        print(f"warning: open position not rebuilt from the fills: {exc}", file=sys.stderr)
        return None
    return position.snapshot()


def _et(ts: datetime) -> str:
    return ts.astimezone(ET).strftime("%Y-%m-%d %H:%M")


def _breaker_line(event: BreakerTripped | BreakerReset) -> str:
    if isinstance(event, BreakerTripped):
        until = f" until {utc(event.until)}" if event.until is not None else ""
        detail = f": {event.detail}" if event.detail else ""
        return f"{utc(event.ts)}  tripped {event.rule.value}{until}{detail}"
    return f"{utc(event.ts)}  reset: {event.reason}"


# ---------------------------------------------------------------- replay --from-db


def store_series(
    settings: Settings,
    config: Path | None,
    start: str | None,
    end: str | None,
    contract: str | None,
    bar_seconds: int | None,
) -> BarSeries:
    """The recorded bars ``replay --from-db`` replays (see :func:`entrypoints.replay.load_store_series`)."""
    if start is None or end is None:
        raise CommandInputError("replay --from-db needs both --start and --end")
    lo, hi = parse_time(start, "--start"), parse_time(end, "--end")
    _require_order(lo, hi)
    store = journal_store(settings, config)
    store.check_dependencies()
    return asyncio.run(_store_series(store, settings, lo, hi, contract, bar_seconds))


async def _store_series(
    store: JournalStore,
    settings: Settings,
    start: datetime,
    end: datetime,
    contract: str | None,
    bar_seconds: int | None,
) -> BarSeries:
    await init_resources(store)
    try:
        reader: JournalReader = await store.reader()
        with store.database_errors():
            return await load_store_series(
                settings,
                reader,
                start,
                end,
                contract=contract,
                bar_seconds=bar_seconds,
                source="database",
            )
    finally:
        await shutdown_resources(store)
