"""A store whose tables were changed by hand, whose version table is gone, or whose SQLite file is
corrupt: each told apart from an outage, refused with a fix that works."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from adapters.sql import migrate
from adapters.sql.database import create_engine as create_async_engine
from adapters.sql.database import database_url, sync_url
from adapters.sql.journal import SCHEMA_DRIFT, SqlJournal
from adapters.sql.spool import Spool
from domain.commands import SignalAction, SignalRecord
from entrypoints.cli import EXIT_USAGE, main
from entrypoints.container.store import (
    SchemaOutOfDate,
    StoreCorrupt,
    require_current_schema,
    upgrade_schema,
)
from tests.support.builders import T0
from tests.support.postgres import create_database, drop_database

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config" / "sample.yaml"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store at the newest schema."""
    if request.param == "sqlite":
        url = database_url(None, tmp_path)
        migrate.upgrade(url)
        yield url
        return
    server = request.getfixturevalue("postgres_url")
    url = create_database(server, "qs_faults")
    migrate.upgrade(url)
    try:
        yield url
    finally:
        drop_database(server, url)


def _sql(url: str, *statements: str) -> None:
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def test_a_dropped_column_is_schema_drift_refused_with_the_fix(store: str) -> None:
    _sql(store, "ALTER TABLE signals DROP COLUMN detail")
    with pytest.raises(SchemaOutOfDate) as caught:
        require_current_schema(store, Path("c.yaml"))
    line = str(caught.value)
    assert "\n" not in line
    assert "its tables differ from it (column signals.detail missing)" in line
    assert "restore it from a backup" in line


async def test_a_dropped_column_while_running_is_told_apart_from_an_outage(
    store: str, tmp_path: Path
) -> None:
    engine = create_async_engine(store, connect_timeout_s=2)
    problems: list[str | None] = []
    journal = SqlJournal(
        engine, Spool(tmp_path / "journal.spool"), retry_interval_s=0.05, on_problem=problems.append
    )
    await journal.start()
    try:
        _sql(store, "ALTER TABLE signals DROP COLUMN detail")
        journal.append(
            SignalRecord(T0, T0 - timedelta(minutes=5), 5000.0, 2.5, SignalAction.ENTER, None, "")
        )
        assert await journal.flush_within(30)  # kept: in the spool
        async with asyncio.timeout(30):
            while journal.problem is None:
                await asyncio.sleep(0.01)
        assert journal.problem.startswith(SCHEMA_DRIFT), journal.problem
        assert len(problems) == 1
        assert (problems[0] or "").startswith(SCHEMA_DRIFT)
    finally:
        await journal.close(timeout=10)
        await engine.dispose()


def test_tables_without_their_version_table_are_stamped_by_db_upgrade(store: str) -> None:
    _sql(store, "DROP TABLE alembic_version")
    with pytest.raises(SchemaOutOfDate) as caught:
        require_current_schema(store, Path("c.yaml"))
    assert "has the journal's tables but no schema version" in str(caught.value)
    assert "quant-scalper db upgrade --config c.yaml" in str(caught.value)
    assert upgrade_schema(store) == migrate.head()  # not "table bars already exists"
    require_current_schema(store, Path("c.yaml"))


def test_tables_without_a_version_that_differ_are_not_stamped(store: str) -> None:
    _sql(store, "DROP TABLE alembic_version", "ALTER TABLE fills DROP COLUMN role")
    with pytest.raises(SchemaOutOfDate, match=r"no schema version, and they are not schema"):
        upgrade_schema(store)
    assert migrate.current(store) is None


def test_a_corrupt_sqlite_file_is_refused_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "var"
    url = database_url(None, data_dir)
    migrate.upgrade(url)
    db = data_dir / "quant_scalper.sqlite3"
    conn = sqlite3.connect(db)
    try:
        conn.executemany(
            "INSERT INTO bars (contract, ts, seconds, open, high, low, close, volume) "
            "VALUES ('MESZ5', ?, 5, 1, 1, 1, 1, 1)",
            [(f"2025-03-04 15:{i // 60:02d}:{i % 60:02d}.{i:06d}",) for i in range(3000)],
        )
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    size = db.stat().st_size
    with db.open("r+b") as f:  # scribble over pages in the middle of the file
        f.seek(size // 2)
        f.write(b"\xa5" * 8192)
    with pytest.raises(StoreCorrupt, match="fails SQLite's integrity check"):
        require_current_schema(url)
    monkeypatch.setenv("QS_DATABASE__DATA_DIR", str(data_dir))
    assert main(["run", "--config", str(CONFIG), "--exit-at-end"]) == EXIT_USAGE
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "integrity check" in errors[0]
