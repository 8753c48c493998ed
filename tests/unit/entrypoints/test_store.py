"""From settings to the journal store: its URL, its schema check (one line, naming the fix), its
migration and its engine; every error one line without the password."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from adapters.sql import migrate
from adapters.sql.database import SQLITE_FILE, database_url
from entrypoints.container.store import (
    SchemaOutOfDate,
    StoreMisconfigured,
    StoreUnavailable,
    open_engine,
    require_current_schema,
    schema_revision,
    sqlite_file,
    store_url,
    upgrade_schema,
)
from entrypoints.settings import DatabaseSettings, Settings


def _settings(data_dir: Path, url: str | None = None) -> Settings:
    return Settings(
        database=DatabaseSettings(url=None if url is None else SecretStr(url), data_dir=data_dir)
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (None, "sqlite+aiosqlite:///{data}/" + SQLITE_FILE),
        ("postgresql://q:pw@db:5432/j", "postgresql+psycopg://q:pw@db:5432/j"),
        ("postgres://q:pw@db/j", "postgresql+psycopg://q:pw@db/j"),
        ("sqlite:///{data}/other.db", "sqlite+aiosqlite:///{data}/other.db"),
    ],
)
def test_the_store_url_comes_from_database_settings(
    url: str | None, expected: str, tmp_path: Path
) -> None:
    data = tmp_path / "var"
    given = None if url is None else url.format(data=data)
    assert store_url(_settings(data, given)) == expected.format(data=data.resolve())


def test_a_url_of_another_database_is_misconfigured_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(StoreMisconfigured) as refused:
        store_url(_settings(tmp_path, "mysql://q:s3cret@db/j"))
    message = str(refused.value)
    assert "unsupported scheme 'mysql'" in message
    assert "s3cret" not in message
    assert "\n" not in message


def test_a_missing_sqlite_file_has_no_schema_and_is_not_created(tmp_path: Path) -> None:
    url = database_url(None, tmp_path / "var")
    assert schema_revision(url) is None
    with pytest.raises(SchemaOutOfDate) as refused:
        require_current_schema(url, Path("config/live.yaml"))
    message = str(refused.value)
    assert message.endswith("run `quant-scalper db upgrade --config config/live.yaml`")
    assert "\n" not in message
    assert not (tmp_path / "var").exists()


def test_an_empty_sqlite_file_has_no_schema(tmp_path: Path) -> None:
    url = database_url(None, tmp_path)
    sqlite3.connect(tmp_path / SQLITE_FILE).close()
    with pytest.raises(SchemaOutOfDate) as refused:
        require_current_schema(url)
    assert "has no schema" in str(refused.value)
    assert str(refused.value).endswith("run `quant-scalper db upgrade --config FILE`")


def test_upgrade_creates_the_data_dir_and_brings_the_schema_to_head(tmp_path: Path) -> None:
    url = database_url(None, tmp_path / "a" / "b")
    assert upgrade_schema(url) == migrate.head()
    assert sqlite_file(url) == (tmp_path / "a" / "b" / SQLITE_FILE).resolve()
    assert schema_revision(url) == migrate.head()
    require_current_schema(url)  # passes
    assert upgrade_schema(url) == migrate.head()  # a second upgrade changes nothing


def test_a_schema_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    url = database_url(None, tmp_path)
    upgrade_schema(url)
    with sqlite3.connect(tmp_path / SQLITE_FILE) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffff'")
    with pytest.raises(SchemaOutOfDate) as refused:
        require_current_schema(url)
    assert "at ffff, which this code does not know" in str(refused.value)


def test_a_data_dir_that_cannot_be_created_is_misconfigured(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    url = database_url(None, tmp_path / "file" / "var")
    with pytest.raises(StoreMisconfigured) as refused:
        upgrade_schema(url)
    assert str(refused.value).startswith(f"database.data_dir: cannot create {tmp_path / 'file'}")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_an_unreachable_server_is_unavailable_not_out_of_date(tmp_path: Path) -> None:
    settings = _settings(tmp_path, f"postgresql://q:s3cret@127.0.0.1:{_closed_port()}/j")
    url = store_url(settings)
    for check in (require_current_schema, schema_revision, upgrade_schema):
        with pytest.raises(StoreUnavailable) as refused:
            check(url)
        message = str(refused.value)
        assert message.startswith("database postgresql+psycopg://q:***@127.0.0.1:")
        assert "s3cret" not in message
        assert "\n" not in message


async def test_the_engine_is_open_inside_the_block_and_database_errors_are_one_line(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    upgrade_schema(store_url(settings))
    async with open_engine(settings) as engine, engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM round_trips"))).scalar() == 0
    with pytest.raises(StoreUnavailable) as refused:
        async with open_engine(settings) as engine, engine.connect() as conn:
            await conn.execute(text("SELECT * FROM no_such_table"))
    assert "no such table: no_such_table" in str(refused.value)
