"""The SQL journal: ``append`` queues in process and returns at once; one writer task does the I/O.

The writer takes what is queued in batches and writes each batch in one transaction of
``INSERT ... ON CONFLICT DO NOTHING`` on every table's natural key, so a record written twice is
kept once. When the database cannot be reached, batches go to the durable local :class:`Spool`
instead (fsync'd per batch) and the journal reports itself unavailable; it tries the database again
with a growing interval, replays the spool in order when it answers, and only then writes new
records directly again. Nothing here raises into the caller of ``append``: a record the database
refuses for its content (not for an outage) is set aside in the spool's ``.rejected`` file.

Writes, not pings, decide that the database is back: after an outage the journal is available again
only once a write has been committed (the spool's lines, the records queued, or, when there is
nothing to write, a probe that commits a row and deletes it). A full disk (the spool's ``ENOSPC``,
SQLite's "database or disk is full", PostgreSQL's ``53100``) is a state of its own, said in
``problem``: records the spool cannot take wait in memory, ``flush`` does not wait for them, and
``close`` gives up on them at its deadline (the daemon replays from its last checkpoint).

Everything runs on the event loop that called :meth:`SqlJournal.start`; ``append`` must be called
from that loop's thread.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, delete, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    StatementError,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.sql import schema
from adapters.sql.serialization import (
    JournalItem,
    NumberedCommand,
    RecordedBar,
    Row,
    SerializationError,
    item_from_json,
    item_row,
    item_to_json,
)
from adapters.sql.spool import Spool
from application.backoff import BackoffPolicy, Retries
from application.queries import CommandOccurrences
from domain.bar import Bar
from domain.commands import JournalRecord, OperatorRecord

log = logging.getLogger(__name__)

_TABLES: dict[str, Table] = {t.name: t for t in schema.JOURNAL_TABLES}


# SQLSTATE classes that refuse the data itself: data exception, integrity constraint violation,
# program limit exceeded (say, an index row too large). Every other class (connection exception,
# operator intervention such as a shutdown, insufficient resources such as a full disk, a missing
# table or privilege, a serialization failure) is the store's state, which will change.
_REFUSING_SQLSTATE_CLASSES = frozenset({"22", "23", "54"})


def is_outage(exc: BaseException) -> bool:
    """Whether an error means "the database cannot take writes now" (keep the data, retry later)
    rather than "the database refuses this data" (retrying will not help).

    When in doubt it is an outage: the records wait in the spool instead of being set aside.
    """
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate:
            return sqlstate[:2] not in _REFUSING_SQLSTATE_CLASSES
        return isinstance(exc, OperationalError | InterfaceError)
    return isinstance(exc, DisconnectionError | OSError | TimeoutError)


SPOOL_AT_CLOSE_S = 5.0
"""How long a close waits for the spool to take what the database did not."""
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DISK_FULL = "disk full"
SCHEMA_DRIFT = "schema drift"
UNREACHABLE = "database unreachable"
_DRIFT_SQLSTATES = frozenset(
    {"42703", "42P01", "42P10"}
)  # undefined column, table; no ON CONFLICT key
_DRIFT_TEXTS = ("no such column", "no such table", "has no column named", "on conflict clause")


def is_schema_drift(exc: BaseException) -> bool:
    """Whether an error says the tables are not the ones the code writes (a column or table dropped
    by hand): not an outage that will pass, though the records still wait in the spool."""
    orig = getattr(exc, "orig", None) or exc
    if getattr(orig, "sqlstate", None) in _DRIFT_SQLSTATES:
        return True
    lowered = str(orig).lower()
    return any(t in lowered for t in _DRIFT_TEXTS)


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error says the disk (of the spool or of the database) is full."""
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS:
        return True
    orig = getattr(exc, "orig", None)
    if orig is not None and orig is not exc and is_disk_full(orig):
        return True
    sqlstate = getattr(orig, "sqlstate", None) or getattr(exc, "sqlstate", None)
    if sqlstate == "53100":  # PostgreSQL: disk_full
        return True
    text_ = str(orig if orig is not None else exc).lower()
    return "database or disk is full" in text_ or "no space left on device" in text_


class _Refused(Exception):
    """A batch the database refused for its content."""


class SqlJournal:
    """The Journal port on PostgreSQL or SQLite (see the module docstring).

    ``available`` is False while the database cannot be reached or written (the engine must then
    open nothing new); ``on_availability`` is called with the new value on every change.
    ``problem`` says why it is not available, starting with :data:`DISK_FULL`,
    :data:`SCHEMA_DRIFT` or :data:`UNREACHABLE`; ``on_problem`` is called with it (None once
    resolved) whenever that kind changes. ``backlog`` counts records appended but not yet in the
    database (queued in memory or waiting in the spool).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        spool: Spool,
        *,
        batch_size: int = 500,
        retry_interval_s: float = 0.5,
        max_retry_interval_s: float = 30.0,
        ping_interval_s: float = 5.0,
        write_timeout_s: float = 10.0,
        on_availability: Callable[[bool], None] | None = None,
        on_problem: Callable[[str | None], None] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._engine = engine
        self._spool = spool
        self._batch_size = batch_size
        self._ping_interval = ping_interval_s
        self._write_timeout = write_timeout_s
        self._on_availability = on_availability
        self._on_problem = on_problem
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._queue: deque[JournalItem] = deque()
        self._wake = asyncio.Event()
        self._occurrences = CommandOccurrences()
        self._appended = 0  # items ever appended
        self._done = 0  # items durable, in the database or the spool, counted in append order
        self._in_flight = 0
        self._spooled = 0  # items waiting in the spool
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        # Doubling from retry_interval_s to max_retry_interval_s, no jitter: one writer per store.
        self._retries = Retries(
            BackoffPolicy(initial_s=retry_interval_s, max_s=max_retry_interval_s)
        )
        self._next_retry = 0.0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.available = True
        self.problem: str | None = None
        self._spool_full: str | None = None  # why the spool cannot take lines (a full disk)
        self.written = 0
        """Rows sent to the database (duplicates included, which it drops)."""
        self.rejected = 0
        """Records set aside because the database refused them."""
        self.recoveries_tried = 0
        """Writes tried to find out whether the database is back."""

    # -- the port ----------------------------------------------------------------------------

    def append(self, record: JournalRecord) -> None:
        """Queue a record; returns at once (no I/O, no await). Every operator command is a row, even
        one identical to another (numbered: see ``CommandOccurrences``)."""
        if type(record) is OperatorRecord:
            self._queue.append(NumberedCommand(record, self._occurrences.next(record)))
        else:
            self._queue.append(record)
        self._appended += 1
        if not self._wake.is_set():
            self._wake.set()

    def append_bar(self, contract: str, bar: Bar) -> None:
        """Queue a bar of the recorded feed; returns at once."""
        self._queue.append(RecordedBar(contract, bar))
        self._appended += 1
        if not self._wake.is_set():
            self._wake.set()

    async def flush(self) -> None:
        """Wait until every record appended before this call is durable: committed to the database,
        or (while it is unreachable) fsync'd to the spool. No deadline: the trading path uses
        :meth:`flush_within`."""
        await self.flush_within(None)

    async def flush_within(self, timeout: float | None) -> bool:
        """:meth:`flush` with a deadline: True when the records are durable; False when ``timeout``
        seconds passed first, or at once while the disk is full (they wait in memory until it is
        not)."""
        if self._task is None or self._task.done():
            raise RuntimeError("SqlJournal.flush(): the writer is not running (call start())")
        target = self._appended
        if self._done >= target:
            return True
        if self._spool_full is not None and timeout is not None:
            return False
        future = asyncio.get_running_loop().create_future()
        entry = (target, future)
        self._waiters.append(entry)
        self._wake.set()
        if timeout is None:
            await future
            return True
        done, _ = await asyncio.wait({future}, timeout=timeout)
        if not done:
            if entry in self._waiters:
                self._waiters.remove(entry)
            future.cancel()
            return False
        return True

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def backlog(self) -> int:
        return len(self._queue) + self._in_flight + self._spooled

    async def start(self) -> None:
        """Open the spool (an earlier run's leftovers are replayed first) and start the writer."""
        if self._task is not None:
            raise RuntimeError("SqlJournal.start(): already started")
        self._spooled = await asyncio.to_thread(self._spool.open)
        if self._spooled:
            log.warning("journal: %d records from an earlier run wait in the spool", self._spooled)
        self._task = asyncio.create_task(self._run(), name="sql-journal-writer")

    async def close(self, timeout: float | None = None) -> None:
        """Write everything queued (to the database, else the spool) and stop the writer. After
        ``timeout`` seconds (a slow or hung database) the writer is stopped anyway and what it has
        not written goes to the spool, replayed at the next start; only if even the spool cannot
        take it (a full disk) is it lost, and the log says how many records."""
        if self._task is None:
            return
        self._closing = True
        self._wake.set()
        try:
            done, _ = await asyncio.wait({self._task}, timeout=timeout)
            if done:
                self._task.result()  # a writer that failed says so here
            else:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
                log.warning(
                    "journal: not written within %.1f s (%s); the rest goes to the spool",
                    timeout,
                    self.problem or "the database is slow",
                )
            await self._spool_the_rest()
        finally:
            self._spool.close()

    async def _spool_the_rest(self) -> None:
        """At close: whatever is still queued, to the spool (bounded: the disk may be full)."""
        if not self._queue:
            return
        left = list(self._queue)
        self._queue.clear()
        lines: list[str] = []
        for item in left:
            try:
                lines.append(item_to_json(item))
            except (ValueError, SerializationError):
                lines.append(repr(item))
        try:
            await asyncio.wait_for(asyncio.to_thread(self._spool.append, lines), SPOOL_AT_CLOSE_S)
        except (OSError, TimeoutError) as exc:
            log.error(
                "journal: closed with %d records lost: neither the database nor the spool %s "
                "took them (%s)",
                len(left),
                self._spool.path,
                exc,
            )
            return
        log.warning(
            "journal: %d records left in the spool %s for the next start",
            len(left),
            self._spool.path,
        )

    # -- the writer --------------------------------------------------------------------------

    async def _run(self) -> None:
        # Find out at once whether the database answers, not at the first record or ping.
        try:
            await self._ping()
        except Exception as exc:
            if not is_outage(exc):
                log.exception("journal writer: the first database check failed")
            else:
                log.warning("journal: database unreachable at start (%s)", _brief(exc))
            self._set_available(False, _reason(exc))
            self._schedule_retry()
        while True:
            self._wake.clear()
            try:
                if await self._step():
                    return
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not stop the journal for good
                log.exception("journal writer: unexpected error; retrying")
                await self._wait(self._retries.ceiling_s)

    async def _step(self) -> bool:
        """One round of work; True when closing and nothing is left to do."""
        if not self.available or self._spool.pending:
            now = time.monotonic()
            tried = self.available or now >= self._next_retry or self._closing
            if tried:
                reason = await self._recover()
                if reason is None:
                    self._set_available(True)
                    return False
                self._set_available(False, reason)
                self._schedule_retry()
            # A spool on a full disk is tried again with the database, not at every append.
            if self._queue and (tried or self._spool_full is None):
                await self._spool_queue()
            if self._closing:
                return True
            await self._wait(max(0.0, self._next_retry - time.monotonic()))
            return False
        if self._queue:
            await self._write_batch()
            return False
        if self._closing:
            return True
        if not await self._wait(self._ping_interval) and not self._closing:
            try:
                await self._ping()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                log.warning("journal: database unreachable (%s)", _brief(exc))
                self._set_available(False, _reason(exc))
                self._schedule_retry()
        return False

    async def _recover(self) -> str | None:
        """Try the database with a real write: the spool's lines first, else a batch of the
        records queued, else a probe. None when it took them; else why not."""
        self.recoveries_tried += 1
        if self._spool.pending:
            return await self._drain_spool()
        if self._queue:
            return await self._write_batch()
        try:
            await self._probe()
        except Exception as exc:
            if not is_outage(exc):
                raise
            return _reason(exc)
        return None

    async def _write_batch(self) -> str | None:
        """Write the next queued batch to the database; on an outage, to the spool. None when the
        database took it; else why not."""
        batch = [self._queue.popleft() for _ in range(min(self._batch_size, len(self._queue)))]
        self._in_flight = len(batch)
        reason: str | None = None
        try:
            try:
                await self._write_items(batch)
                durable = len(batch)
            except _Refused:
                durable = await self._write_one_by_one(batch)
                reason = self.problem if not self.available else None
            except Exception as exc:
                if not is_outage(exc):
                    raise
                reason = _reason(exc)
                if self.available:  # the outage starts here (else _step schedules the next try)
                    log.warning("journal: %s (%s); spooling", reason, _brief(exc))
                    self._schedule_retry()
                self._set_available(False, reason)
                durable = len(batch) if await self._to_spool(batch) else 0
        except BaseException:
            # A bug, or close() giving up on a hung database: the batch is queued again (written
            # twice at worst, which the natural keys absorb), never dropped.
            self._queue.extendleft(reversed(batch))
            self._in_flight = 0
            raise
        self._in_flight = 0
        self._mark_done(durable)
        return reason

    async def _wait(self, timeout: float) -> bool:
        """Sleep until woken (True) or ``timeout`` seconds pass (False)."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _schedule_retry(self) -> None:
        self._next_retry = time.monotonic() + self._retries.next_delay()

    def _set_available(self, value: bool, reason: str | None = None) -> None:
        if value:
            self._retries.reset()
            problem = None
        else:
            problem = self._spool_full or reason or UNREACHABLE
        changed = _kind(problem) != _kind(self.problem)
        self.problem = problem  # the latest word; the callback hears of a change of kind
        if changed:
            if problem is not None and problem.startswith(DISK_FULL):
                log.error("journal: %s; entries stay closed until it is written", problem)
            callback = self._on_problem
            if callback is not None:
                try:
                    callback(problem)
                except Exception:
                    log.exception("journal: the problem callback failed")
        if value == self.available:
            return
        self.available = value
        if value:
            log.warning("journal: database written again; spool replayed")
        availability = self._on_availability
        if availability is not None:
            try:
                availability(value)
            except Exception:
                log.exception("journal: the availability callback failed")

    def _mark_done(self, n: int) -> None:
        self._done += n
        done = self._done
        still: list[tuple[int, asyncio.Future[None]]] = []
        for target, future in self._waiters:
            if target <= done:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((target, future))
        self._waiters = still

    # -- database ----------------------------------------------------------------------------

    async def _ping(self) -> None:
        async with asyncio.timeout(self._write_timeout), self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def _probe(self) -> None:
        """A write the database must commit (a row added and removed in one transaction): what
        says it is back when there is nothing else to write. A ``SELECT 1`` answers on a full
        disk."""
        sessions = schema.sessions
        probe = f"journal-probe-{uuid.uuid4().hex}"
        async with asyncio.timeout(self._write_timeout), self._engine.begin() as conn:
            await conn.execute(
                insert(sessions).values(id=probe, mode="probe", started_at=_now_utc())
            )
            await conn.execute(delete(sessions).where(sessions.c.id == probe))

    async def _write_rows(self, conn: AsyncConnection, rows: Sequence[tuple[str, Row]]) -> None:
        by_table: dict[str, list[Row]] = {}
        for name, row in rows:
            by_table.setdefault(name, []).append(row)
        for name, table_rows in by_table.items():
            stmt = self._insert(_TABLES[name]).on_conflict_do_nothing(
                index_elements=list(schema.NATURAL_KEYS[name])
            )
            await conn.execute(stmt, table_rows)

    async def _write_items(self, items: Sequence[JournalItem]) -> None:
        """Write items in one transaction. Raises :class:`_Refused` if the database refuses the
        data, or the outage error if it cannot be reached."""
        try:
            rows = [item_row(item) for item in items]
        except (ValueError, SerializationError) as exc:
            raise _Refused(str(exc)) from exc
        try:
            async with asyncio.timeout(self._write_timeout), self._engine.begin() as conn:
                await self._write_rows(conn, rows)
        except Exception as exc:
            if is_outage(exc):
                raise
            if isinstance(exc, StatementError | ValueError | TypeError):
                raise _Refused(_brief(exc)) from exc
            raise
        self.written += len(rows)

    async def _write_one_by_one(self, items: Sequence[JournalItem]) -> int:
        """After a refused batch: write each item alone, set aside those refused. An outage midway
        sends the rest to the spool. Returns how many items are now durable (all, unless even the
        spool failed)."""
        for i, item in enumerate(items):
            try:
                await self._write_items([item])
            except _Refused as exc:
                await self._reject(item, str(exc))
            except Exception as exc:
                if not is_outage(exc):
                    self._queue.extendleft(reversed(items[i:]))
                    raise
                self._set_available(False, _reason(exc))
                self._schedule_retry()
                return len(items) if await self._to_spool(items[i:]) else i
        return len(items)

    async def _reject(self, item: JournalItem, reason: str) -> None:
        self.rejected += 1
        try:
            line = item_to_json(item)
        except (ValueError, SerializationError):
            line = repr(item)
        await asyncio.to_thread(self._spool.reject, line, reason)

    # -- spool -------------------------------------------------------------------------------

    async def _to_spool(self, items: Sequence[JournalItem]) -> bool:
        """Make items durable in the spool. If even that fails (disk full), they go back to the
        front of the queue, not durable (flush keeps waiting), rather than be lost; returns False."""
        lines: list[str] = []
        for item in items:
            try:
                lines.append(item_to_json(item))
            except (ValueError, SerializationError) as exc:
                await self._reject(item, str(exc))
        try:
            await asyncio.to_thread(self._spool.append, lines)
        except OSError as exc:
            if self._spool_full is None:
                log.error("journal: cannot write the spool %s: %s", self._spool.path, exc)
            if is_disk_full(exc):
                self._spool_full = f"{DISK_FULL}: the spool {self._spool.path}: {exc.strerror}"
            else:
                self._spool_full = f"{UNREACHABLE}; the spool {self._spool.path} fails: {exc}"
            self._set_available(False, self._spool_full)
            self._queue.extendleft(reversed(items))
            return False
        self._spool_full = None
        self._spooled += len(lines)
        return True

    async def _spool_queue(self) -> None:
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(self._batch_size, len(self._queue)))]
            self._in_flight = len(batch)
            try:
                durable = await self._to_spool(batch)
            except asyncio.CancelledError:
                self._queue.extendleft(reversed(batch))
                self._in_flight = 0
                raise
            self._in_flight = 0
            if not durable:
                return
            self._mark_done(len(batch))

    async def _drain_spool(self) -> str | None:
        """Write the spool to the database in order; None when it is empty (the database took every
        line), else why not."""
        spool = self._spool
        while True:
            lines, offset = await asyncio.to_thread(spool.read, self._batch_size)
            if not lines:
                await asyncio.to_thread(spool.clear)
                self._spooled = 0
                return None
            items: list[JournalItem] = []
            for line in lines:
                try:
                    items.append(item_from_json(line))
                except SerializationError as exc:
                    self.rejected += 1
                    await asyncio.to_thread(spool.reject, line, str(exc))
            try:
                await self._write_items(items)
            except _Refused:
                reason = await self._drain_one_by_one(items)
                if reason is not None:
                    return reason
            except Exception as exc:
                if not is_outage(exc):
                    raise
                return _reason(exc)
            spool.consume(offset)
            self._spooled = max(0, self._spooled - len(lines))

    async def _drain_one_by_one(self, items: Sequence[JournalItem]) -> str | None:
        for item in items:
            try:
                await self._write_items([item])
            except _Refused as exc:
                await self._reject(item, str(exc))
            except Exception as exc:
                if not is_outage(exc):
                    raise
                return _reason(exc)
        return None


def _brief(exc: BaseException) -> str:
    """The first line of an error, without SQLAlchemy's long tail."""
    orig: Any = getattr(exc, "orig", None) or exc
    return f"{type(orig).__name__}: {str(orig).strip().splitlines()[0] if str(orig) else ''}"


def _reason(exc: BaseException) -> str:
    """Why the database did not take a write, for ``problem`` (and the entry gate)."""
    if is_disk_full(exc):
        return f"{DISK_FULL}: {_brief(exc)}"
    if is_schema_drift(exc):
        return (
            f"{SCHEMA_DRIFT}: {_brief(exc)} (the tables were changed outside quant-scalper; "
            "records wait in the spool)"
        )
    return f"{UNREACHABLE}: {_brief(exc)}"


def _kind(problem: str | None) -> str | None:
    if problem is None:
        return None
    for kind in (DISK_FULL, SCHEMA_DRIFT):
        if problem.startswith(kind):
            return kind
    return UNREACHABLE


def _now_utc() -> datetime:
    return datetime.now(UTC)
