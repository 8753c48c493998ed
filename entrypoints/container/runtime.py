"""The daemon's store pieces: schema check, ownership, the journal with its outage spool, bar
recording. The start-up error, exit codes and options are :mod:`entrypoints.startup`'s."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.journal import UNREACHABLE, SqlJournal
from adapters.sql.ownership import JournalInUseError, JournalOwnership
from adapters.sql.spool import Spool, SpoolInUseError
from application.daemon import JOURNAL_CLOSE_S
from application.ports import Clock, Notifier
from application.services import EventInbox
from domain.bar import Bar
from domain.commands import Alert, AlertKind, Severity
from domain.events import EntryGateChanged
from entrypoints.container.store import (
    require_current_schema,
    sqlite_file,
    store_url,
    unavailable_on_database_errors,
    upgrade_schema,
)
from entrypoints.settings import Settings
from entrypoints.startup import EXIT_IN_USE, EXIT_USAGE, StartupError

log = logging.getLogger("quant_scalper.daemon")

SPOOL_FILE = "journal.spool"
SNAPSHOT_FALLBACK_FILE = "snapshot.fallback.json"
JOURNAL_GATE = "journal"
OWNER_GATE = "journal owner"
OWNER_CHECK_S = 5.0
"""How often a running daemon checks that it still owns the journal."""


class BarRecorder:
    """Records every market bar in the journal, so any session can be replayed exactly."""

    def __init__(self, journal: SqlJournal, contract: str | Callable[[], str]) -> None:
        self._journal = journal
        self._contract = contract if callable(contract) else lambda: contract

    def on_bar(self, bar: Bar) -> None:
        self._journal.append_bar(self._contract(), bar)


@contextlib.asynccontextmanager
async def gated_journal(
    engine: AsyncEngine,
    data_dir: Path,
    inbox: EventInbox,
    clock: Clock,
    alerts: Notifier | None = None,
) -> AsyncIterator[SqlJournal]:
    """The SQL journal with its outage spool in ``data_dir``, started; while the database cannot
    be written (unreachable, or its disk or the spool's full) it keeps the ``journal`` entry gate
    closed with the reason, and says so in an alert (the open position keeps its broker-held
    bracket). Closed on the way out, within :data:`JOURNAL_CLOSE_S`."""

    def on_problem(problem: str | None) -> None:
        gate = problem
        if problem is not None and problem.startswith(UNREACHABLE):
            gate = "the journal database is unreachable"
        inbox.put(EntryGateChanged(JOURNAL_GATE, gate, clock.now()))
        if alerts is None:
            return
        if problem is None:
            text, severity = "journal: written again; entries may open", Severity.INFO
        else:
            text = f"journal: {problem}; no new entries, the position keeps its bracket"
            severity = Severity.CRITICAL
        alerts.notify(Alert(AlertKind.ERROR, severity, text, clock.now()))

    journal = SqlJournal(engine, Spool(data_dir / SPOOL_FILE), on_problem=on_problem)
    try:
        await journal.start()
    except SpoolInUseError as exc:
        raise StartupError(str(exc), EXIT_IN_USE) from None
    try:
        yield journal
    finally:
        await journal.close(timeout=JOURNAL_CLOSE_S)


def _require_writable_sqlite(path: Path) -> None:
    """The embedded journal must be writable, and its directory too (SQLite writes its journal
    files beside it): else one line naming the file, exit 2 (a person must fix the permissions)."""
    try:
        with path.open("r+b"):  # opened for writing, nothing written
            pass
    except IsADirectoryError:
        raise StartupError(
            f"database file {path} is a directory, not an SQLite file", EXIT_USAGE
        ) from None
    except OSError as exc:
        raise StartupError(
            f"database file {path} is not writable by this user ({exc.strerror or exc}): the "
            "daemon journals every bar and order; fix its permissions or database.data_dir",
            EXIT_USAGE,
        ) from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise StartupError(
            f"database directory {path.parent} is not writable by this user: SQLite keeps its "
            "journal files there; fix its permissions or database.data_dir",
            EXIT_USAGE,
        )


async def prepare_store(settings: Settings, config_path: Path | None) -> None:
    """Start-up step 2: the embedded SQLite default is created on a fresh machine; any other store
    must be at the current schema (``quant-scalper db upgrade``, never behind the operator's back)."""
    url = store_url(settings)
    path = sqlite_file(url)
    if path is not None and path.exists():
        _require_writable_sqlite(path)
    if path is not None and not path.exists():
        revision = await asyncio.to_thread(upgrade_schema, url)
        log.info("created the embedded journal %s at schema %s", path, revision)
    else:
        await asyncio.to_thread(require_current_schema, url, config_path)


@contextlib.asynccontextmanager
async def journal_owner(
    settings: Settings, inbox: EventInbox, clock: Clock, alerts: Notifier
) -> AsyncIterator[JournalOwnership]:
    """This daemon's claim on the journal database (one daemon per journal, enforced by the
    database: see ``adapters.sql.ownership``), held for the run and checked every
    :data:`OWNER_CHECK_S`; a claim lost to another daemon closes the ``journal owner`` entry gate
    with an alert. Another daemon owning it at start is :class:`StartupError` with exit code
    :data:`EXIT_IN_USE`. Logs the data directory, as an absolute path."""
    url = store_url(settings)
    owner = JournalOwnership(url)
    try:
        with unavailable_on_database_errors(url):
            await owner.acquire()
    except JournalInUseError as exc:
        raise StartupError(str(exc), EXIT_IN_USE) from None
    log.info(
        "journal %s owned by this daemon (pid %d); data_dir %s",
        owner.where,
        os.getpid(),
        settings.database.data_dir.resolve(),
    )

    async def watch() -> None:
        lost: str | None = None
        while True:
            await asyncio.sleep(OWNER_CHECK_S)
            problem = await owner.check()
            if problem == lost:
                continue
            lost = problem
            inbox.put(EntryGateChanged(OWNER_GATE, problem, clock.now()))
            if problem is not None:
                text, severity = f"{problem}: no new entries", Severity.CRITICAL
            else:
                text, severity = "this daemon owns the journal again", Severity.INFO
            alerts.notify(Alert(AlertKind.ERROR, severity, text, clock.now()))

    task = asyncio.get_running_loop().create_task(watch(), name="journal owner")
    try:
        yield owner
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await owner.release()
