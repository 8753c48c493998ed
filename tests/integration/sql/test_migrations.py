"""Alembic migrations on SQLite and PostgreSQL: the round trip, the schema check, and that the
migrations build exactly the tables the code declares."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from adapters.sql import migrate, schema
from adapters.sql.database import database_url, sync_url
from tests.support.postgres import create_database, drop_database

TABLES = {t.name for t in schema.metadata.sorted_tables}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (a new one for every test)."""
    if request.param == "sqlite":
        yield database_url(None, tmp_path)
        return
    server = request.getfixturevalue("postgres_url")
    url = create_database(server, "qs_migrations")
    try:
        yield url
    finally:
        drop_database(server, url)


def _tables(url: str) -> set[str]:
    engine = create_engine(sync_url(url))
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_round_trips(empty_db: str) -> None:
    assert _tables(empty_db) == set()
    migrate.upgrade(empty_db)
    assert _tables(empty_db) == TABLES
    assert migrate.current(empty_db) == schema.SCHEMA_REVISION
    migrate.downgrade(empty_db, "base")
    assert _tables(empty_db) == set()
    assert migrate.current(empty_db) is None
    migrate.upgrade(empty_db)
    assert _tables(empty_db) == TABLES
    assert migrate.current(empty_db) == migrate.head() == schema.SCHEMA_REVISION


def test_the_migrations_build_exactly_the_declared_schema(empty_db: str) -> None:
    migrate.upgrade(empty_db)
    engine = create_engine(sync_url(empty_db))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, schema.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_the_schema_check_names_the_command_until_the_database_is_at_head(empty_db: str) -> None:
    line = migrate.check_schema(empty_db, "config/config.yaml")
    assert line is not None
    assert "has no schema" in line
    assert line.endswith("run `quant-scalper db upgrade --config config/config.yaml`")
    assert "\n" not in line
    migrate.upgrade(empty_db)
    assert migrate.check_schema(empty_db) is None


def test_the_schema_check_says_when_the_code_has_moved_on(empty_db: str, tmp_path: Path) -> None:
    newer = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, newer, ignore=shutil.ignore_patterns("__pycache__"))
    here = migrate.head()
    (newer / "versions" / "9999_more.py").write_text(
        '"""A later revision."""\n'
        "import sqlalchemy as sa\n"
        "from alembic import op\n\n"
        f'revision = "9999"\ndown_revision = "{here}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade() -> None:\n"
        '    op.create_table("later", sa.Column("id", sa.Integer(), primary_key=True))\n\n\n'
        "def downgrade() -> None:\n"
        '    op.drop_table("later")\n'
    )
    migrate.upgrade(empty_db)  # to the head of the real migrations
    assert migrate.check_schema(empty_db, "c.yaml", migrations=newer) == (
        f"database schema is at {here}, the code needs 9999: "
        "run `quant-scalper db upgrade --config c.yaml`"
    )
    migrate.upgrade(empty_db, migrations=newer)
    assert migrate.check_schema(empty_db, migrations=newer) is None
    line = migrate.check_schema(empty_db)  # the database is ahead of this code
    assert line is not None
    assert "9999, which this code does not know" in line
    migrate.downgrade(empty_db, here, migrations=newer)
    assert migrate.check_schema(empty_db) is None


def test_the_schema_check_of_an_unreachable_database_is_one_line() -> None:
    line = migrate.check_schema("postgresql+psycopg://nobody:secret@127.0.0.1:9/none")
    assert line is not None
    assert line.startswith("cannot read the schema version of postgresql+psycopg://nobody:***@")
    assert "secret" not in line
    assert "\n" not in line


def test_identical_commands_from_before_0002_survive_it_and_can_repeat_after(empty_db: str) -> None:
    migrate.upgrade(empty_db, "0001")
    engine = create_engine(sync_url(empty_db))
    row = {"command": "status", "by": "telegram:1", "ts": "2025-03-04 15:00:00", "outcome": "ok"}
    insert = text(
        "INSERT INTO operator_commands (command, by, ts, outcome) "
        "VALUES (:command, :by, :ts, :outcome)"
    )
    try:
        with engine.begin() as conn:
            conn.execute(insert, row)
        migrate.upgrade(empty_db)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO operator_commands (command, by, ts, outcome, occurrence) "
                    "VALUES (:command, :by, :ts, :outcome, 1)"
                ),
                row,
            )
            occurrences = conn.execute(
                text("SELECT occurrence FROM operator_commands ORDER BY id")
            ).scalars()
            assert list(occurrences) == [0, 1]
        migrate.downgrade(empty_db, "0001")
        with engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM operator_commands")).scalar_one()
        assert count == 1
    finally:
        engine.dispose()
