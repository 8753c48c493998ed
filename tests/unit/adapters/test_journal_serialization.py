"""The SQL journal's pure mappings: records to rows and JSON and back, exactly; database URLs."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.sql import schema, serialization
from adapters.sql.database import DatabaseUrlError, database_url, describe, sync_url
from adapters.sql.serialization import (
    RecordedBar,
    SerializationError,
    bar_of_row,
    item_from_json,
    item_row,
    item_to_json,
    snapshot_from_json,
    snapshot_to_json,
    to_json,
)
from application.queries import RECORD_KINDS
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
from domain.engine import EngineSnapshot
from domain.events import OrderFilled
from domain.position import ExitReason, Fill, RoundTrip
from domain.values import Action, Side
from tests.support.builders import T0, bar, engine, fill, z

ET = ZoneInfo("America/New_York")
T = T0 + timedelta(microseconds=7)

RECORDS: list[JournalRecord] = [
    SignalRecord(T, T0, 5000.25, 0.1 + 0.2, SignalAction.ENTER, Side.SHORT, ""),
    SignalRecord(T, T0, 5000.25, None, SignalAction.SKIPPED, None, "max_trades_per_day"),
    OrderIntentRecord("QS-7-T", "target", Action.SELL, 2, "LMT", Decimal("5015.00"), T, "child"),
    OrderIntentRecord("QS-7-E", "entry", Action.BUY, 2, "MKT", None, T, "ref 5000.25"),
    OrderEventRecord("QS-7-E", "rejected", T, "201: margin"),
    FillRecord(
        Fill("e.1", "QS-7-E", Action.BUY, 2, Decimal("5000.5"), T, Decimal("1.24")), "entry"
    ),
    RoundTripRecord(
        RoundTrip(
            7,
            Side.LONG,
            3,
            T,
            Decimal("5000.083333333333333333333333"),
            T + timedelta(hours=1),
            Decimal("5001"),
            ExitReason.MAX_DURATION,
            11,
            Decimal("13.75"),
            Decimal("3.72"),
        )
    ),
    BreakerRecord(BreakerTripped(BreakerRule.MAX_TRADES, T, "50 entries this session")),
    BreakerRecord(
        BreakerTripped(BreakerRule.CONSECUTIVE_LOSSES, T, "3", until=T + timedelta(minutes=30))
    ),
    BreakerRecord(BreakerReset(T, "operator")),
    OperatorRecord("flatten", "telegram:1", T, "closing LONG 2"),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_a_record_survives_its_json_line_exactly(record: JournalRecord) -> None:
    line = item_to_json(record)
    assert "\n" not in line
    assert item_from_json(line) == record


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_a_record_survives_its_row_exactly(record: JournalRecord) -> None:
    table, row = item_row(record)
    kind = serialization.RECORDS[type(record)]
    assert table == kind.table
    assert kind.from_row({"id": 1, **row}) == record


def test_one_registry_entry_per_record_kind_each_with_its_own_table_and_identity() -> None:
    registry = serialization.RECORDS
    assert set(registry) == set(RECORD_KINDS) == {type(r) for r in RECORDS}
    assert len({kind.table for kind in registry.values()}) == len(registry)
    tables = {t.name: t for t in schema.JOURNAL_TABLES}
    for record in RECORDS:
        kind = registry[type(record)]
        table, row = item_row(record)
        assert kind.time_column in tables[table].c
        assert set(row) <= set(tables[table].c.keys())
        assert set(schema.NATURAL_KEYS[table]) <= set(row)  # the row carries its identity
        assert json.loads(item_to_json(record))["$type"] == kind.json_tag


def test_a_recorded_bar_survives_its_json_line_and_its_row() -> None:
    b = bar(T0, 5000.75, seconds=5, volume=12, high=5001.0, low=4999.5, open_=5000.0)
    item = RecordedBar("MESZ5", b)
    assert item_from_json(item_to_json(item)) == item
    table, row = item_row(item)
    assert table == "bars"
    assert bar_of_row(row) == b


def test_times_in_other_zones_come_back_as_the_same_instant_in_utc() -> None:
    record = OperatorRecord("pause", "op", T.astimezone(ET), "paused")
    back = item_from_json(item_to_json(record))
    assert isinstance(back, OperatorRecord)
    assert back.ts == T
    assert back.ts.tzinfo is UTC


def test_a_round_trip_row_carries_its_net_pnl_and_cme_trade_date() -> None:
    _, row = item_row(RECORDS[6])
    assert row["net_pnl"] == Decimal("10.03")
    assert row["trade_date"] == T0.date()  # 10:00 ET on a Tuesday


def _snapshot() -> EngineSnapshot:
    eng = engine(calendar=ContinuousCalendar())
    placed = [c for c in eng.on_bar(bar(T0), z(-2.5)) if isinstance(c, PlaceBracket)]
    eng.handle(OrderFilled(fill(placed[0].entry_key, Action.BUY, "5000.25", commission="0.1")))
    return eng.snapshot()


def test_an_engine_snapshot_survives_its_json_exactly() -> None:
    snapshot = _snapshot()
    text = snapshot_to_json(snapshot)
    assert snapshot_from_json(text) == snapshot
    # Decimals travel as their exact strings, never through a float.
    assert '"commissions":"0.1"' in text


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format=2), "has format 2; this code reads format 1"),
        (
            lambda d: d["snapshot"].pop("key_seq"),
            r"snapshot: EngineSnapshot is missing \['key_seq'\]",
        ),
        (lambda d: d["snapshot"].update(gates={}), r"unknown fields \['gates'\]"),
        (lambda d: d["snapshot"].update(key_seq="3"), "snapshot.key_seq: '3' is not a valid int"),
        (lambda d: d["snapshot"].update(state="FLYING"), "snapshot.state: 'FLYING'"),
        (
            lambda d: d["snapshot"]["position"].update(commissions="NaN"),
            "snapshot.position.commissions: 'NaN' is not a valid Decimal",
        ),
        (
            lambda d: d["snapshot"]["position"].update(opened_at="2025-03-04T15:00:00"),
            "snapshot.position.opened_at: .* is not a valid datetime",
        ),
        (
            lambda d: d["snapshot"]["orders"][0].update(role="boss"),
            r"snapshot.orders\[0\].role: 'boss'",
        ),
    ],
)
def test_a_stored_snapshot_that_does_not_fit_is_refused_naming_the_field(
    mutate: Any, message: str
) -> None:
    data = json.loads(snapshot_to_json(_snapshot()))
    mutate(data)
    with pytest.raises(SerializationError, match=message):
        snapshot_from_json(json.dumps(data))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (datetime(2025, 1, 1), "naive datetime"),
        (float("nan"), "non-finite float"),
        (Decimal("Infinity"), "non-finite Decimal"),
        (object(), "no JSON form for object"),
    ],
)
def test_values_without_an_exact_json_form_are_refused(value: object, message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        to_json(value)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{", "not JSON"),
        ('{"$type": "Nope"}', "unknown journal item type 'Nope'"),
        ('{"$type": "OperatorRecord", "command": "x"}', "missing"),
        ('{"$type": "RecordedBar", "contract": "X"}', "bad recorded bar"),
    ],
)
def test_a_spool_line_that_holds_no_item_is_an_error(line: str, message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        item_from_json(line)


def test_a_replaced_snapshot_is_still_exact() -> None:
    snapshot = replace(_snapshot(), reconcile_required="broker says 2, we say 1", closed_at=1)
    assert snapshot_from_json(snapshot_to_json(snapshot)) == snapshot


# -- database URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://qs:pw@db:5432/qs", "postgresql+psycopg://qs:pw@db:5432/qs"),
        ("postgres://qs@db/qs", "postgresql+psycopg://qs@db/qs"),
        ("postgresql+psycopg://qs@db/qs", "postgresql+psycopg://qs@db/qs"),
        ("sqlite:////var/lib/qs/j.sqlite3", "sqlite+aiosqlite:////var/lib/qs/j.sqlite3"),
        (" sqlite+aiosqlite:///j.db ", "sqlite+aiosqlite:///j.db"),
    ],
)
def test_database_urls_get_the_async_driver(url: str, expected: str) -> None:
    assert database_url(url, Path("var")) == expected


def test_no_database_url_means_sqlite_in_the_data_directory(tmp_path: Path) -> None:
    assert database_url(None, tmp_path) == (
        f"sqlite+aiosqlite:///{tmp_path.resolve()}/quant_scalper.sqlite3"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:hunter2@db/qs", r"unsupported scheme 'mysql'.*postgresql://"),
        ("postgresql+asyncpg://u:hunter2@db/qs", "unsupported scheme 'postgresql\\+asyncpg'"),
        ("sqlite://", "in-memory SQLite database would lose the journal"),
        ("not a url", "not a database URL"),
    ],
)
def test_unusable_database_urls_are_refused_without_the_password(url: str, message: str) -> None:
    with pytest.raises(DatabaseUrlError, match=message) as raised:
        database_url(url, Path("var"))
    assert "hunter2" not in str(raised.value)


def test_migrations_reach_the_same_database_through_a_sync_driver() -> None:
    assert sync_url("sqlite+aiosqlite:////x/j.db") == "sqlite:////x/j.db"
    assert sync_url("postgresql+psycopg://u:p@h/d") == "postgresql+psycopg://u:p@h/d"
    assert describe("postgresql+psycopg://u:p@h/d") == "postgresql+psycopg://u:***@h/d"
