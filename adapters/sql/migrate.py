"""Schema migrations, run from code (the layout has no ``alembic.ini``).

The alembic scripts live in the repository's ``migrations/`` folder; these functions build alembic's
Config in code and run it on a synchronous connection to the given database. They block: call them
from a command, or from async code through ``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, make_url

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
            Path(sync.database).parent.mkdir(parents=True, exist_ok=True)
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


def upgrade(url: str, revision: str = "head", *, migrations: Path = MIGRATIONS_DIR) -> None:
    """Migrate the database at ``url`` up to ``revision`` (default: the newest)."""
    cfg = _config(migrations)
    with _connection(url) as conn:
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
        return None
    if found is None:
        return f"database {describe(url)} has no schema (the code needs {needed}): {fix}"
    scripts = ScriptDirectory.from_config(_config(migrations))
    known = {s.revision for s in scripts.walk_revisions()}
    if found not in known:
        return (
            f"database schema is at {found}, which this code does not know (it needs {needed}): "
            "the database was migrated by a newer quant-scalper; run that version"
        )
    return f"database schema is at {found}, the code needs {needed}: {fix}"
