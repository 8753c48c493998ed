"""Which database, and the async engine for it.

``database.url`` unset means the embedded default: one SQLite file in the data directory. A
``postgresql://`` URL is PostgreSQL through psycopg 3. The engine is created and disposed explicitly
by whoever owns its lifecycle (the container's Resource), never at import or in a constructor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.private_files import sqlite_files

SQLITE_FILE = "quant_scalper.sqlite3"

_ASYNC_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}


class DatabaseUrlError(ValueError):
    """A database URL this program cannot use."""


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise DatabaseUrlError(f"database.url is not a database URL: {exc}") from exc


def database_url(url: str | None, data_dir: Path) -> str:
    """The async SQLAlchemy URL to use: ``url`` with its driver made explicit, or the SQLite default.

    ``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://``; ``sqlite://`` becomes
    ``sqlite+aiosqlite://``. Any other scheme or driver is refused, naming it (never the password).
    """
    if url is None or not url.strip():
        return f"sqlite+aiosqlite:///{(data_dir / SQLITE_FILE).resolve()}"
    parsed = _parse(url.strip())
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is None:
        raise DatabaseUrlError(
            f"database.url {parsed.render_as_string(hide_password=True)!r}: unsupported scheme "
            f"{parsed.drivername!r}; use postgresql://... (psycopg 3) or leave it unset for SQLite"
        )
    if driver.startswith("sqlite") and parsed.database in (None, "", ":memory:"):
        raise DatabaseUrlError(
            "database.url: an in-memory SQLite database would lose the journal; give a file path"
        )
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """The same database through a synchronous driver (for alembic): pysqlite, or psycopg."""
    parsed = _parse(url)
    if parsed.drivername.startswith("sqlite"):
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is None:
        raise DatabaseUrlError(f"unsupported database scheme {parsed.drivername!r}")
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def describe(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    return _parse(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the report queries read while the writer writes; synchronous=FULL makes a commit
    # durable when it returns (the journal's flush promises that); foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
    finally:
        cursor.close()


def create_engine(url: str, *, connect_timeout_s: float = 5.0) -> AsyncEngine:
    """An async engine for an URL from :func:`database_url`. Dispose of it with ``await dispose()``.

    PostgreSQL connections are checked before use (a pooled connection may have died with the server)
    and connecting gives up after ``connect_timeout_s``, so an outage shows up quickly instead of
    hanging the journal's writer. A SQLite file and its directory are created if missing, private
    (0600, 0700).
    """
    parsed = _parse(url)
    if parsed.drivername == "sqlite+aiosqlite":
        if parsed.database:
            sqlite_files(Path(parsed.database))
        engine = create_async_engine(
            parsed, connect_args={"timeout": connect_timeout_s}, pool_pre_ping=True
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.drivername == "postgresql+psycopg":
        return create_async_engine(
            parsed,
            pool_pre_ping=True,
            connect_args={"connect_timeout": max(1, round(connect_timeout_s))},
        )
    raise DatabaseUrlError(
        f"{describe(url)}: expected a URL from database_url() (postgresql+psycopg or sqlite+aiosqlite)"
    )
