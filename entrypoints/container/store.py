"""The journal store as the commands see it: which database the settings name, its schema, its engine.

The one place the entrypoints turn Settings into a database URL or engine and check the schema; part of
the composition root because it builds the SQL adapter's engine. :class:`JournalStore` is the graph
the journal commands (``db``, ``trades``, ``report``, ``replay --from-db``, ``montecarlo --from-db``)
run on: the store's URL, its engine as a Resource, and the journal reader over it.
``database.url`` unset means the embedded SQLite file in ``database.data_dir``. Every error here is a
:class:`StoreError` whose ``str()`` is one line that never shows a password.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import cast
from urllib.parse import unquote

from dependency_injector import containers, providers
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.private_files import private_dir
from adapters.sql import migrate
from adapters.sql.database import DatabaseUrlError, create_engine, database_url, describe
from adapters.sql.queries import SqlJournalReader
from entrypoints.settings import Settings

UPGRADE_COMMAND = "quant-scalper db upgrade --config {config}"


class StoreError(Exception):
    """The store cannot be used as configured; ``str()`` is one line."""


class StoreMisconfigured(StoreError):
    """``database.url`` or ``database.data_dir`` cannot name a usable store."""


class SchemaOutOfDate(StoreError):
    """The store's schema is not the one this code needs (or it has none): one line, naming the
    command that fixes it when there is one."""


class StoreCorrupt(StoreError):
    """The store's file fails its integrity check."""


class StoreUnavailable(StoreError):
    """The database does not answer (or refused the connection)."""


def store_url(settings: Settings) -> str:
    """The async SQLAlchemy URL of the configured store (the SQLite default when no URL is set).

    A URL whose user name or password holds an ``@`` that is not percent-encoded is refused without
    being shown: no parser can tell where such a password ends, and each one prints a part of it as
    the host. Any other refusal is scrubbed of every part of the password, however the URL parsed.
    """
    secret = settings.database.url
    raw = None if secret is None else secret.get_secret_value()
    if raw is not None and raw.partition("://")[2].count("@") > 1:
        raise StoreMisconfigured(
            "database.url: the user name or password holds an '@' that is not percent-encoded "
            "(write it as %40); the URL is not shown, so no part of the password is"
        )
    try:
        return database_url(raw, settings.database.data_dir)
    except DatabaseUrlError as exc:
        raise StoreMisconfigured(scrub(str(exc), raw)) from None
    except ValueError as exc:  # SQLAlchemy's own parse: a port that is not a number, say
        raise StoreMisconfigured(
            f"database.url is not a database URL: {scrub(str(exc), raw)}"
        ) from None


def password_parts(url: str | None) -> list[str]:
    """Every form in which ``url``'s password could show up in a message: as written, decoded, as
    the parser read it, and each piece between unencoded ``@`` and ``/`` (longest first)."""
    if not url:
        return []
    rest = url.partition("://")[2] or url
    userinfo = rest.rpartition("@")[0]
    password = userinfo.partition(":")[2]
    parts = {password, unquote(password)}
    try:
        parsed = make_url(url).password
    except (ArgumentError, ValueError):  # the raw forms above still apply
        parsed = None
    if parsed:
        parts.add(str(parsed))
    for piece in re.split(r"[@/]", password):
        if len(piece) >= 3:
            parts.add(piece)
    return sorted((p for p in parts if p), key=len, reverse=True)


def scrub(text: str, url: str | None) -> str:
    """``text`` with every part of ``url``'s password replaced by ``***``."""
    for part in password_parts(url):
        text = text.replace(part, "***")
    return text


def upgrade_hint(config: Path | None) -> str:
    """The command that brings the configured store's schema up to date."""
    return UPGRADE_COMMAND.format(config=config if config is not None else "FILE")


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for any other database."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return None
    return Path(parsed.database)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


@contextmanager
def unavailable_on_database_errors(url: str) -> Iterator[None]:
    """Turn the driver's "cannot reach or open the database" errors into :class:`StoreUnavailable`."""
    try:
        yield
    except (DBAPIError, OSError, TimeoutError) as exc:
        raise StoreUnavailable(
            f"database {describe(url)}: {scrub(_first_line(exc), url)}"
        ) from None


def schema_revision(url: str) -> str | None:
    """The store's schema revision; None when it has none. Never creates a SQLite file."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return None
    with unavailable_on_database_errors(url):
        return migrate.current(url)


def require_current_schema(url: str, config: Path | None = None) -> None:
    """Return if the store's schema is what this code needs; else raise :class:`SchemaOutOfDate`
    (one line naming ``quant-scalper db upgrade --config FILE``) or :class:`StoreUnavailable`."""
    fix = f"run `{upgrade_hint(config)}`"
    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise SchemaOutOfDate(
            f"database {describe(url)} does not exist yet (no schema; the code needs "
            f"{migrate.head()}): {fix}"
        )
    if path is not None:
        problem = migrate.integrity_problem(url)
        if problem is not None:
            raise StoreCorrupt(
                f"database {describe(url)} fails SQLite's integrity check ({problem}): it is "
                "corrupt; restore it from a backup (the daemon will not trade on it)"
            )
    # Reach the database first, so that "unreachable" is not reported as "out of date".
    schema_revision(url)
    problem = migrate.check_schema(url, str(config) if config is not None else "FILE")
    if problem is not None:
        raise SchemaOutOfDate(problem)


def upgrade_schema(url: str) -> str:
    """Migrate the store to the newest schema (creating a SQLite file and its directory if needed);
    returns the revision it is at."""
    path = sqlite_file(url)
    if path is not None:
        try:
            private_dir(path.parent)
        except OSError as exc:
            raise StoreMisconfigured(
                f"database.data_dir: cannot create {path.parent}: {exc.strerror or exc}"
            ) from None
    try:
        with unavailable_on_database_errors(url):
            migrate.upgrade(url)
            revision = migrate.current(url)
    except migrate.SchemaDriftError as exc:
        raise SchemaOutOfDate(str(exc)) from None
    if revision is None:  # pragma: no cover - alembic just wrote it
        raise StoreUnavailable(f"database {describe(url)}: no schema revision after the upgrade")
    return revision


@asynccontextmanager
async def open_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The configured store's async engine, disposed on exit. Errors reaching the database while it
    is open become :class:`StoreUnavailable`."""
    url = store_url(settings)
    engine = create_engine(url)
    try:
        with unavailable_on_database_errors(url):
            yield engine
    finally:
        await engine.dispose()


async def _current_engine(url: str, config: Path | None) -> AsyncIterator[AsyncEngine]:
    """The store's engine, once its schema is found current (:func:`require_current_schema`, run
    off the event loop as alembic is synchronous); disposed at ``shutdown_resources()``."""
    await asyncio.to_thread(require_current_schema, url, config)
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


class JournalStore(containers.DeclarativeContainer):
    """The journal commands' object graph.

    ``engine`` is a Resource: ``init_resources()`` refuses a store whose schema is missing or out of
    date (naming ``db upgrade --config FILE``) before anything is read, and ``shutdown_resources()``
    disposes of the engine. ``revision`` and ``upgrade`` work on the schema itself and need no
    engine. ``database_errors()`` is a context manager that turns the driver's "cannot reach the
    database" errors into :class:`StoreUnavailable`."""

    settings = providers.Dependency(instance_of=Settings)
    config_path: providers.Object[Path | None] = providers.Object(None)

    url = providers.Singleton(store_url, settings)
    name = providers.Callable(describe, url)
    revision = providers.Callable(schema_revision, url)
    upgrade = providers.Callable(upgrade_schema, url)
    database_errors = providers.Callable(unavailable_on_database_errors, url)
    engine = providers.Resource(_current_engine, url, config_path)
    # The engine is an async Resource, so the reader over it comes as an awaitable (``await
    # store.reader()`` after ``init_resources()``): said here, as the library's stubs do not.
    reader = cast(
        "providers.Singleton[Awaitable[SqlJournalReader]]",
        providers.Singleton(SqlJournalReader, engine),
    )


def journal_store(settings: Settings, config: Path | None = None) -> JournalStore:
    """The journal commands' container for the store ``settings`` name; ``config`` is the config
    file the messages tell a user to pass to ``db upgrade``."""
    return JournalStore(settings=settings, config_path=config)
