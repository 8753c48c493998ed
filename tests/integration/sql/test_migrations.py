"""Alembic migrations on SQLite and PostgreSQL: the round trip, the schema check, and that the
migrations build exactly the tables the code declares."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

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
    (newer / "versions" / "0002_more.py").write_text(
        '"""A later revision."""\n'
        "import sqlalchemy as sa\n"
        "from alembic import op\n\n"
        'revision = "0002"\ndown_revision = "0001"\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade() -> None:\n"
        '    op.create_table("later", sa.Column("id", sa.Integer(), primary_key=True))\n\n\n'
        "def downgrade() -> None:\n"
        '    op.drop_table("later")\n'
    )
    migrate.upgrade(empty_db)  # to 0001, the head of the real migrations
    assert migrate.check_schema(empty_db, "c.yaml", migrations=newer) == (
        "database schema is at 0001, the code needs 0002: "
        "run `quant-scalper db upgrade --config c.yaml`"
    )
    migrate.upgrade(empty_db, migrations=newer)
    assert migrate.check_schema(empty_db, migrations=newer) is None
    line = migrate.check_schema(empty_db)  # the database is ahead of this code
    assert line is not None
    assert "0002, which this code does not know" in line
    migrate.downgrade(empty_db, "0001", migrations=newer)
    assert migrate.check_schema(empty_db) is None


def test_the_schema_check_of_an_unreachable_database_is_one_line() -> None:
    line = migrate.check_schema("postgresql+psycopg://nobody:secret@127.0.0.1:9/none")
    assert line is not None
    assert line.startswith("cannot read the schema version of postgresql+psycopg://nobody:***@")
    assert "secret" not in line
    assert "\n" not in line
