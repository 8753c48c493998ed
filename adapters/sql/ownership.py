"""One daemon per journal, enforced where the journal is, not in a ``data_dir`` two working
directories do not share.

* PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) held on a connection of its own for
  the whole run. It is the database's: every daemon pointed at that database sees it, whatever its
  working directory, and the server drops it when the holder's session ends (``kill -9``, a crash).
* SQLite: an exclusive ``flock`` on ``<database file>-owner`` beside the database file (the place
  SQLite keeps its own ``-wal`` and ``-shm``), so every process opening that file meets it; the kernel
  drops it when the holder dies. A file of its own, so that SQLite's POSIX locks on the database are
  never touched.

:meth:`JournalOwnership.check` is asked while running: a PostgreSQL lock lost with its connection (the
server restarted) is taken again, unless another daemon took it meanwhile, which it reports.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from adapters.sql.database import describe

log = logging.getLogger(__name__)

LOCK_KEY = int.from_bytes(b"qsjourn1", "big")
"""The advisory lock's key (per database: two journals in one cluster do not meet)."""

OWNER_SUFFIX = "-owner"


class JournalInUseError(Exception):
    """Another daemon owns the journal; ``str()`` is one line."""


class JournalOwnership:
    """This process's claim on one journal database (see the module docstring)."""

    def __init__(self, url: str) -> None:
        self._url = url
        parsed = make_url(url)
        self._sqlite = parsed.drivername.startswith("sqlite")
        self._path = Path(parsed.database) if self._sqlite and parsed.database else None
        self._fd: int | None = None
        self._engine: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None

    @property
    def where(self) -> str:
        """The journal, for messages (never a password)."""
        return str(self._path) if self._path is not None else describe(self._url)

    async def acquire(self) -> None:
        """Take the journal, or raise :class:`JournalInUseError` when another daemon holds it.
        Database errors (unreachable) pass through."""
        if self._path is not None:
            await asyncio.to_thread(self._lock_file)
            return
        if not await self._lock_database():
            raise JournalInUseError(
                f"another quant-scalper daemon is running on the journal {self.where} "
                "(it holds the journal's lock): stop it first, or give this one its own database"
            )

    async def check(self) -> str | None:
        """None while this process still owns the journal; else why not (another daemon holds
        it). An unreachable database is not an answer: None, and it is asked again next time."""
        if self._path is not None:
            return self._check_file()
        conn = self._conn
        if conn is not None:
            try:
                async with asyncio.timeout(10):
                    await conn.execute(text("SELECT 1"))
                return None
            except Exception as exc:  # the session, and its lock, are gone
                log.warning("journal ownership: the lock's connection failed (%s)", exc)
                await self._drop_connection()
        try:
            if await self._lock_database():
                log.warning("journal ownership: lock taken again on %s", self.where)
                return None
        except Exception as exc:
            log.warning("journal ownership: cannot take the lock again yet (%s)", exc)
            return None
        return f"another daemon took the journal {self.where} while its lock was lost"

    async def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        await self._drop_connection()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    # -- SQLite ------------------------------------------------------------------------------

    def _owner_file(self) -> Path:
        assert self._path is not None
        return self._path.with_name(self._path.name + OWNER_SUFFIX)

    def _lock_file(self) -> None:
        path = self._owner_file()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise JournalInUseError(
                f"another quant-scalper daemon{holder} is running on the journal {self.where} "
                f"(it holds {path}): stop it first, or give this one its own database"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def _check_file(self) -> str | None:
        assert self._fd is not None
        try:
            same = os.stat(self._owner_file()).st_ino == os.fstat(self._fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return None
        return f"the journal's lock file {self._owner_file()} was removed or replaced"

    # -- PostgreSQL --------------------------------------------------------------------------

    async def _lock_database(self) -> bool:
        if self._engine is None:
            self._engine = create_async_engine(
                self._url, poolclass=NullPool, connect_args={"connect_timeout": 5}
            )
        conn = await self._engine.connect()
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            async with asyncio.timeout(10):
                got = await conn.scalar(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}
                )
        except BaseException:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # a dead connection may fail to close; it is gone either way
                log.debug("journal ownership: closing a dead connection failed", exc_info=True)


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
