"""The Journal, JournalReader and StateStore ports: one suite, run on the in-memory adapters, on SQLite
(a file in a temporary directory) and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.simulated.repositories import InMemoryJournal
from adapters.sql import migrate, schema
from adapters.sql.database import create_engine, database_url
from adapters.sql.journal import SqlJournal
from adapters.sql.queries import SqlJournalReader
from adapters.sql.spool import Spool
from adapters.sql.state_store import SqlStateStore
from application.ports import Journal, StateStore
from application.queries import RECORD_KINDS, JournalReader, record_time
from domain.bar import Bar
from domain.calendar import ContinuousCalendar
from domain.circuit_breaker import BreakerReset, BreakerRule, BreakerTripped
from domain.commands import (
    BreakerRecord,
    FillRecord,
    JournalRecord,
    OperatorRecord,
    OrderEventRecord,
    OrderIntentRecord,
    PlaceBracket,
    RoundTripRecord,
    SignalAction,
    SignalRecord,
)
from domain.engine import Engine, EngineSnapshot, EngineState
from domain.events import OrderFilled, PauseRequested
from domain.position import ExitReason, Fill, RoundTrip
from domain.values import Action, Side
from entrypoints.replay import load_series, run_replay
from entrypoints.settings import load_settings
from tests.support.builders import T0, bar, engine, fill, z

ROOT = Path(__file__).resolve().parents[2]
ET = ZoneInfo("America/New_York")


class RecordingJournal(Journal, Protocol):
    def append_bar(self, contract: str, bar: Bar) -> None: ...


@dataclass
class Backend:
    journal: RecordingJournal
    reader: JournalReader
    state: StateStore | None
    """The engine snapshot store on the same database; None in memory (a replay keeps none)."""
    reopen: Callable[[], Awaitable[Backend]]
    """A restart: the journal stops, and a new journal and store open on the same data (the
    in-memory ones: the same objects)."""


@pytest.fixture(scope="module")
def migrated_postgres(postgres_database: str) -> str:
    migrate.upgrade(postgres_database)
    return postgres_database


async def _clear(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for table in (*schema.JOURNAL_TABLES, schema.engine_snapshots, schema.sessions):
            await conn.execute(delete(table))


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "memory":
        memory = InMemoryJournal()

        def reopened(journal: InMemoryJournal) -> Callable[[], Awaitable[Backend]]:
            async def again() -> Backend:
                fresh = journal.reopened()
                return Backend(fresh, fresh, None, reopened(fresh))

            return again

        yield Backend(memory, memory, None, reopened(memory))
        return
    if request.param == "sqlite":
        url = database_url(None, tmp_path)
        await asyncio.to_thread(migrate.upgrade, url)
    else:
        url = request.getfixturevalue("migrated_postgres")
    engines: list[AsyncEngine] = []
    journals: list[SqlJournal] = []

    async def open_() -> Backend:
        for running in journals:  # a restart: the journal before it has stopped
            await running.close()
        eng = create_engine(url)
        engines.append(eng)
        journal = SqlJournal(eng, Spool(tmp_path / "spool" / "journal.jsonl"))
        await journal.start()
        journals.append(journal)
        return Backend(journal, SqlJournalReader(eng), SqlStateStore(eng, keep=3), open_)

    first = await open_()
    await _clear(engines[0])
    try:
        yield first
    finally:
        for journal in journals:
            await journal.close()
        for eng in engines:
            await eng.dispose()


# -- records ------------------------------------------------------------------------------------

MICRO = timedelta(microseconds=123456)


def _records() -> list[JournalRecord]:
    """One or more of every kind, with the awkward values: None fields, microseconds, a 28-digit
    average price, a float z that is not a short decimal."""
    t = T0 + MICRO
    trip = RoundTrip(
        seq=1,
        side=Side.SHORT,
        qty=3,
        entry_ts=t,
        entry_price=Decimal("5000.083333333333333333333333"),
        exit_ts=t + timedelta(minutes=25),
        exit_price=Decimal("4990.25"),
        exit_reason=ExitReason.TARGET,
        pnl_ticks=118,
        gross_pnl=Decimal("147.50"),
        commissions=Decimal("3.72"),
    )
    return [
        SignalRecord(
            t,
            T0 - timedelta(minutes=5),
            5000.25,
            -2.0000000000000004,
            SignalAction.ENTER,
            Side.LONG,
            "",
        ),
        SignalRecord(
            t + timedelta(minutes=5),
            T0,
            5001.0,
            None,
            SignalAction.SKIPPED,
            None,
            "paused by operator",
        ),
        OrderIntentRecord("QS-1-E", "entry", Action.BUY, 1, "MKT", None, t, "ref 5000.25"),
        OrderIntentRecord(
            "QS-1-S", "stop", Action.SELL, 1, "STP", Decimal("4990.00"), t, "bracket child"
        ),
        OrderEventRecord("QS-1-E", "accepted", t, ""),
        OrderEventRecord("-", "reconciled", t, "position 0"),
        FillRecord(
            Fill("0001.abc.01", "QS-1-E", Action.BUY, 1, Decimal("5000.25"), t, Decimal("0.62")),
            "entry",
        ),
        FillRecord(
            Fill(
                "0001.abc.02",
                "QS-1-S",
                Action.SELL,
                2,
                Decimal("4990"),
                t + timedelta(minutes=1),
                Decimal("1.24"),
            ),
            "stop",
        ),
        RoundTripRecord(trip),
        BreakerRecord(
            BreakerTripped(
                BreakerRule.CONSECUTIVE_LOSSES,
                t,
                "3 losing trades in a row",
                until=t + timedelta(minutes=30),
            )
        ),
        BreakerRecord(BreakerTripped(BreakerRule.DAILY_LOSS, t, "session P&L -201.25 <= -200")),
        BreakerRecord(BreakerReset(t + timedelta(hours=8), "session_open")),
        OperatorRecord("pause", "telegram:4242", t, "paused"),
    ]


def _of(kind: type[JournalRecord], records: list[JournalRecord]) -> list[JournalRecord]:
    return [r for r in records if type(r) is kind]


async def _read_all(reader: JournalReader) -> dict[str, list[JournalRecord]]:
    return {k.__name__: list(await reader.records_of(k)) for k in RECORD_KINDS}


async def test_every_record_kind_comes_back_equal(backend: Backend) -> None:
    records = _records()
    for r in records:
        backend.journal.append(r)
    await backend.journal.flush()
    got = await _read_all(backend.reader)
    assert got == {k.__name__: _of(k, records) for k in RECORD_KINDS}


async def test_a_whole_replay_journal_comes_back_equal(backend: Backend) -> None:
    settings = load_settings(ROOT / "config" / "sample.yaml")
    sample = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"
    result = await run_replay(settings, load_series(settings, sample))
    records = result.journal.records
    assert len(records) > 1000
    for r in records:
        backend.journal.append(r)
    await backend.journal.flush()
    assert await _read_all(backend.reader) == {k.__name__: _of(k, records) for k in RECORD_KINDS}


async def test_appending_the_same_records_again_changes_nothing(backend: Backend) -> None:
    records: list[JournalRecord] = [r for r in _records() if not isinstance(r, OperatorRecord)]
    for r in records + records:
        backend.journal.append(r)
    await backend.journal.flush()
    once = await _read_all(backend.reader)
    # Again, through a journal opened afresh (a restart replaying what it journaled before).
    again = await backend.reopen()
    for r in reversed(records):
        again.journal.append(r)
    await again.journal.flush()
    assert (
        await _read_all(again.reader) == once == {k.__name__: _of(k, records) for k in RECORD_KINDS}
    )


async def test_records_come_back_in_the_order_they_were_appended(backend: Backend) -> None:
    # Out of time order on purpose: a late execution report carries an earlier time.
    fills = [
        FillRecord(
            fill(f"QS-{i}-E", Action.BUY, "5000", at=T0 - timedelta(seconds=i), exec_id=f"x{i}"),
            "entry",
        )
        for i in (5, 1, 9, 3, 7)
    ]
    for f in fills:
        backend.journal.append(f)
    await backend.journal.flush()
    assert await backend.reader.records_of(FillRecord) == fills


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, [0, 1, 2, 3]),
        (T0 + timedelta(minutes=1), None, [1, 2, 3]),
        (None, T0 + timedelta(minutes=2), [0, 1]),  # the end is exclusive
        (T0 + timedelta(minutes=1), T0 + timedelta(minutes=3), [1, 2]),
        (T0 + timedelta(hours=1), None, []),
    ],
)
async def test_reads_select_a_time_window(
    backend: Backend, start: datetime | None, end: datetime | None, expected: list[int]
) -> None:
    signals = [
        SignalRecord(
            T0 + timedelta(minutes=i), T0, 5000.0, 2.5, SignalAction.EXIT, Side.LONG, f"{i}"
        )
        for i in range(4)
    ]
    for s in signals:
        backend.journal.append(s)
    await backend.journal.flush()
    got = await backend.reader.records_of(SignalRecord, start, end)
    assert got == [signals[i] for i in expected]
    assert all(start is None or record_time(s) >= start for s in got)


async def test_session_pnl_sums_the_round_trips_of_a_trade_date(backend: Backend) -> None:
    def trip(exit_et: datetime, gross: str, seq: int) -> RoundTripRecord:
        exit_ts = exit_et.astimezone(UTC)
        return RoundTripRecord(
            RoundTrip(
                seq,
                Side.LONG,
                1,
                exit_ts - timedelta(minutes=10),
                Decimal("5000"),
                exit_ts,
                Decimal("5001"),
                ExitReason.SIGNAL,
                4,
                Decimal(gross),
                Decimal("1.24"),
            )
        )

    for r in (
        trip(datetime(2025, 3, 4, 17, 59, tzinfo=ET), "5.00", 1),  # trade date 2025-03-04
        trip(datetime(2025, 3, 4, 18, 5, tzinfo=ET), "-2.50", 2),  # 18:00 ET: next trade date
        trip(datetime(2025, 3, 5, 9, 30, tzinfo=ET), "1.24", 3),  # net zero: neither win nor loss
        trip(datetime(2025, 3, 3, 10, 0, tzinfo=ET), "100", 4),
    ):
        backend.journal.append(r)
    await backend.journal.flush()
    pnl = await backend.reader.session_pnl(date(2025, 3, 5))
    assert (pnl.trades, pnl.wins, pnl.losses) == (2, 0, 1)
    assert (pnl.gross_pnl, pnl.commissions, pnl.net_pnl) == (
        Decimal("-1.26"),
        Decimal("2.48"),
        Decimal("-3.74"),
    )
    empty = await backend.reader.session_pnl(date(2025, 3, 6))
    assert (empty.trades, empty.net_pnl) == (0, Decimal(0))


async def test_recorded_bars_come_back_by_contract_and_time_once_each(backend: Backend) -> None:
    five_s = [bar(T0 + timedelta(seconds=5 * i), 5000.0 + i / 4, seconds=5) for i in range(6)]
    for b in [*five_s, *five_s[:3]]:
        backend.journal.append_bar("MESH5", b)
    backend.journal.append_bar("MESM5", five_s[0])
    await backend.journal.flush()
    assert await backend.reader.bars("MESH5") == five_s
    window = await backend.reader.bars(
        "MESH5", T0 + timedelta(seconds=5), T0 + timedelta(seconds=15)
    )
    assert window == five_s[1:3]
    assert await backend.reader.bars("MESM5") == five_s[:1]
    assert len(await backend.reader.bars()) == 7


async def test_every_operator_command_is_a_row_even_identical_ones(backend: Backend) -> None:
    """A flood of one command stamped with one time (market time stands still between bars) is
    that many rows; a restart journaling them again (in the same order) adds none."""
    status = OperatorRecord("status", "telegram:4242", T0, "allowed")
    other = OperatorRecord("status", "telegram:7", T0, "refused")
    commands = [status] * 40 + [other] * 3 + [status] * 10
    for c in commands:
        backend.journal.append(c)
    await backend.journal.flush()
    assert await backend.reader.records_of(OperatorRecord) == commands
    again = await backend.reopen()
    for c in commands[:5]:
        again.journal.append(c)
    await again.journal.flush()
    assert await again.reader.records_of(OperatorRecord) == commands


# -- snapshots -----------------------------------------------------------------------------------


def _mid_trade() -> Engine:
    """Long one contract with its stop and target working, paused by the operator."""
    eng = engine(calendar=ContinuousCalendar())
    placed = [c for c in eng.on_bar(bar(T0), z(-2.5)) if isinstance(c, PlaceBracket)]
    eng.handle(OrderFilled(fill(placed[0].entry_key, Action.BUY, "5000.25")))
    eng.handle(PauseRequested(T0 + timedelta(minutes=1), "telegram:4242"))
    return eng


STORES = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
"""The state store's contract: the backends that keep snapshots."""


@STORES
async def test_a_mid_trade_snapshot_comes_back_equal_and_restores_the_engine(
    backend: Backend,
) -> None:
    original = _mid_trade()
    snapshot = original.snapshot()
    assert snapshot.state is EngineState.LONG
    assert len(snapshot.orders) == 2
    assert backend.state is not None
    assert await backend.state.load_resume() is None
    await backend.state.save(snapshot)
    again = (await backend.reopen()).state
    assert again is not None
    loaded = await again.load_resume()
    assert loaded == (snapshot, None)
    restored = Engine.restore(original.config, loaded[0])
    later = bar(T0 + timedelta(minutes=5), 5000.0)
    assert restored.on_bar(later, z(0.25)) == original.on_bar(later, z(0.25))


@STORES
async def test_the_latest_snapshot_is_the_one_loaded(backend: Backend) -> None:
    snapshots: list[EngineSnapshot] = [
        replace(_mid_trade().snapshot(), key_seq=n, last_bar_end=1_741_100_400 + 300 * n)
        for n in range(5)
    ]
    assert backend.state is not None
    for s in snapshots:
        await backend.state.save(s)
    assert await backend.state.load_resume() == (snapshots[-1], None)
