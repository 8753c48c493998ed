"""Schema migrations, run from code (the layout has no ``alembic.ini``).

The alembic scripts live in the repository's ``migrations/`` folder; these functions build alembic's
Config in code and run it on a synchronous connection to the given database. They block: call them
from a command, or from async code through ``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, make_url

from adapters.private_files import sqlite_files
from adapters.sql import schema
from adapters.sql.database import describe, sync_url

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def _config(migrations: Path) -> Config:
    if not (migrations / "env.py").is_file():
        raise FileNotFoundError(f"alembic migrations not found in {migrations}")
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    return cfg


@contextmanager
def _connection(url: str) -> Iterator[Connection]:
    sync = make_url(sync_url(url))
    if sync.drivername == "sqlite":
        connect_args: dict[str, object] = {}
        if sync.database:  # the embedded default lives in a data directory that may not exist yet
            sqlite_files(Path(sync.database))
    else:
        connect_args = {"connect_timeout": 10}
    engine = create_engine(sync, connect_args=connect_args)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def head(*, migrations: Path = MIGRATIONS_DIR) -> str:
    """The revision this code needs."""
    revision = ScriptDirectory.from_config(_config(migrations)).get_current_head()
    if revision is None:
        raise RuntimeError(f"no migrations in {migrations}")
    return revision


class SchemaDriftError(ValueError):
    """The database's tables are not the ones its schema version (or this code) says; ``str()`` is
    one line with what differs and what to do."""


def upgrade(url: str, revision: str = "head", *, migrations: Path = MIGRATIONS_DIR) -> None:
    """Migrate the database at ``url`` up to ``revision`` (default: the newest).

    A database that has the journal's tables but no version table (``alembic_version`` lost) is not
    created again (that fails: the tables exist): when its tables are exactly this code's schema,
    it is stamped with the newest revision; otherwise :class:`SchemaDriftError` says what differs.
    """
    cfg = _config(migrations)
    with _connection(url) as conn:
        if MigrationContext.configure(conn).get_current_revision() is None and _journal_tables(
            conn
        ):
            differences = _drift(conn)
            if differences:
                raise SchemaDriftError(
                    f"database {describe(url)} has journal tables but no schema version, and they "
                    f"are not schema {head(migrations=migrations)} ({'; '.join(differences)}): "
                    "restore its alembic_version table from a backup, or move the data to a "
                    "database created by `quant-scalper db upgrade`"
                )
            cfg.attributes["connection"] = conn
            command.stamp(cfg, "head")
            return
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(url: str, revision: str, *, migrations: Path = MIGRATIONS_DIR) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"``: no tables at all)."""
    cfg = _config(migrations)
    with _connection(url) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at; None for a database never migrated."""
    with _connection(url) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _journal_tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names()) & {t.name for t in schema.metadata.sorted_tables}


def _drift(conn: Connection) -> list[str]:
    """What the database lacks or has otherwise than this code's tables (tables, columns, types,
    constraints and indexes it needs); what it has in addition is no concern."""
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return [
        line
        for diff in compare_metadata(context, schema.metadata)
        if (line := _difference(diff)) is not None
    ]


def _difference(diff: Any) -> str | None:
    if isinstance(
        diff, list
    ):  # modify_type, modify_nullable, ...: [(op, schema, table, column, ...)]
        op, _, table, column = diff[0][:4]
        return f"{op.removeprefix('modify_')} of {table}.{column} differs"
    op = diff[0]
    if op == "add_table":
        return f"table {diff[1].name} missing"
    if op == "add_column":
        return f"column {diff[2]}.{diff[3].name} missing"
    if op in ("add_constraint", "add_index"):
        item = diff[1]
        return f"{op.removeprefix('add_')} {item.name} on {item.table.name} missing"
    return None  # remove_*: the database has more than the code needs


def schema_drift(url: str) -> list[str]:
    """How the database's tables differ from this code's schema (empty: not at all)."""
    with _connection(url) as conn:
        return _drift(conn)


def integrity_problem(url: str) -> str | None:
    """For a SQLite file: None when ``PRAGMA integrity_check`` passes, else its first finding.
    None for any other database."""
    sync = make_url(sync_url(url))
    if not sync.drivername.startswith("sqlite") or not sync.database:
        return None
    if not Path(sync.database).exists():
        return None
    engine = create_engine(sync)
    try:
        with engine.connect() as conn:
            rows = [str(r[0]) for r in conn.execute(text("PRAGMA integrity_check"))]
    except Exception as exc:  # "file is not a database", "database disk image is malformed"
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return first[0] if first else type(exc).__name__
    finally:
        engine.dispose()
    return None if rows == ["ok"] else "; ".join(rows[:3])


def check_schema(
    url: str, config_hint: str = "FILE", *, migrations: Path = MIGRATIONS_DIR
) -> str | None:
    """None when the database's schema is what this code needs; otherwise one line saying what is
    wrong and which command fixes it (``config_hint`` goes into that command)."""
    fix = f"run `quant-scalper db upgrade --config {config_hint}`"
    needed = head(migrations=migrations)
    try:
        found = current(url)
    except Exception as exc:  # whatever the driver raises: the line must say what happened
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return f"cannot read the schema version of {describe(url)}: {first[0] if first else exc}"
    if found == needed:
        differences = schema_drift(url)
        if not differences:
            return None
        return (
            f"database {describe(url)} is at schema {needed} but its tables differ from it "
            f"({'; '.join(differences)}): it was changed outside quant-scalper; restore it from "
            "a backup, or point database.url at a new database and run "
            f"`quant-scalper db upgrade --config {config_hint}`"
        )
    if found is None:
        with _connection(url) as conn:
            tables = _journal_tables(conn)
        if tables:
            return (
                f"database {describe(url)} has the journal's tables but no schema version (its "
                f"alembic_version table is missing): {fix} (it records the version when the "
                f"tables are schema {needed}, and says what differs when not)"
            )
        return f"database {describe(url)} has no schema (the code needs {needed}): {fix}"
    scripts = ScriptDirectory.from_config(_config(migrations))
    known = {s.revision for s in scripts.walk_revisions()}
    if found not in known:
        return (
            f"database schema is at {found}, which this code does not know (it needs {needed}): "
            "the database was migrated by a newer quant-scalper; run that version"
        )
    return f"database schema is at {found}, the code needs {needed}: {fix}"
