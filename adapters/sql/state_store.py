"""The engine's snapshots in the database (the StateStore port), and the run log (``sessions``).

A snapshot is stored as exact JSON (:func:`adapters.sql.serialization.snapshot_to_json`) and the last
``keep`` are kept. While the database is unreachable, ``save`` writes the snapshot to a local
fallback file instead (atomically, fsync'd) and ``load`` returns whichever of the two is newer, so a
restart during an outage resumes from the last state, not from the last state the database saw.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.private_files import open_private, private_dir
from adapters.sql import schema
from adapters.sql.journal import is_outage
from adapters.sql.serialization import (
    SerializationError,
    resume_from_json,
    resume_to_json,
    snapshot_from_json,
    snapshot_to_json,
)
from application.ports import ResumePoint
from domain.engine import EngineSnapshot

log = logging.getLogger(__name__)


class StoreUnavailableError(RuntimeError):
    """The database cannot be reached and there is no local fallback to use instead."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


_TMP_SEQ = itertools.count()


def _write_atomically(path: Path, text: str) -> None:
    private_dir(path.parent)
    # A temporary name of its own per write: two saves at once (a checkpoint and a snapshot after
    # a fill) must not replace each other's half-written file.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{next(_TMP_SEQ)}.tmp")
    with os.fdopen(open_private(tmp, os.O_WRONLY | os.O_TRUNC), "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _decode(
    row: tuple[datetime, str, str | None],
) -> tuple[EngineSnapshot, ResumePoint | None]:
    _, body, resume = row
    return snapshot_from_json(body), None if resume is None else resume_from_json(resume)


class SqlStateStore:
    """The StateStore port on PostgreSQL or SQLite (see the module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        keep: int = 50,
        fallback: Path | None = None,
        timeout_s: float = 10.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self._engine = engine
        self._keep = keep
        self._fallback = fallback
        self._timeout = timeout_s
        self._clock = clock

    async def save(self, snapshot: EngineSnapshot, resume: ResumePoint | None = None) -> None:
        """Store a snapshot and its resume point (and drop all but the newest ``keep``); during an
        outage, store them in the fallback file (without one, raise :class:`StoreUnavailableError`)."""
        body = snapshot_to_json(snapshot)
        resume_text = None if resume is None else resume_to_json(resume)
        saved_at = self._clock()
        table = schema.engine_snapshots
        try:
            async with asyncio.timeout(self._timeout), self._engine.begin() as conn:
                await conn.execute(
                    insert(table).values(
                        saved_at=saved_at,
                        state=snapshot.state.value,
                        last_bar_end=snapshot.last_bar_end,
                        body=body,
                        resume=resume_text,
                    )
                )
                oldest_kept = (
                    select(table.c.id)
                    .order_by(table.c.id.desc())
                    .offset(self._keep - 1)
                    .limit(1)
                    .scalar_subquery()
                )
                await conn.execute(delete(table).where(table.c.id < oldest_kept))
        except Exception as exc:
            if not is_outage(exc):
                raise
            if self._fallback is None:
                raise StoreUnavailableError(f"cannot save the engine snapshot: {exc}") from exc
            log.warning("state store: database unreachable; snapshot saved to %s", self._fallback)
            text = json.dumps(
                {"saved_at": saved_at.isoformat(), "body": body, "resume": resume_text}
            )
            await asyncio.to_thread(_write_atomically, self._fallback, text)
            return
        if self._fallback is not None:
            await asyncio.to_thread(self._fallback.unlink, missing_ok=True)

    async def load_resume(self) -> tuple[EngineSnapshot, ResumePoint | None] | None:
        """The newest snapshot and its resume point, from the database or the fallback file."""
        local = await asyncio.to_thread(self._read_fallback)
        try:
            stored = await self._latest()
        except Exception as exc:
            if not is_outage(exc):
                raise
            if local is None:
                raise StoreUnavailableError(f"cannot load the engine snapshot: {exc}") from exc
            log.warning(
                "state store: database unreachable; using the snapshot in the fallback file"
            )
            return _decode(local)
        candidates = [c for c in (stored, local) if c is not None]
        if not candidates:
            return None
        return _decode(max(candidates, key=lambda c: c[0]))

    async def count(self) -> int:
        """How many snapshots the database holds."""
        async with self._engine.connect() as conn:
            n = await conn.scalar(select(func.count()).select_from(schema.engine_snapshots))
        return int(n or 0)

    async def _latest(self) -> tuple[datetime, str, str | None] | None:
        table = schema.engine_snapshots
        async with asyncio.timeout(self._timeout), self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(table.c.saved_at, table.c.body, table.c.resume)
                    .order_by(table.c.id.desc())
                    .limit(1)
                )
            ).first()
        return None if row is None else (row.saved_at, row.body, row.resume)

    def _read_fallback(self) -> tuple[datetime, str, str | None] | None:
        if self._fallback is None or not self._fallback.exists():
            return None
        try:
            data = json.loads(self._fallback.read_text(encoding="utf-8"))
            resume = data.get("resume")
            return (
                datetime.fromisoformat(data["saved_at"]),
                str(data["body"]),
                None if resume is None else str(resume),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SerializationError(
                f"snapshot fallback file {self._fallback} is unreadable: {exc}"
            ) from exc

    # -- the run log -------------------------------------------------------------------------

    async def begin_session(
        self, session_id: str, mode: str, started_at: datetime, contract: str | None
    ) -> None:
        """Record that a run started (once per ``session_id``)."""
        async with self._engine.begin() as conn:
            exists = await conn.scalar(
                select(schema.sessions.c.id).where(schema.sessions.c.id == session_id)
            )
            if exists is None:
                await conn.execute(
                    insert(schema.sessions).values(
                        id=session_id, mode=mode, started_at=started_at, contract=contract
                    )
                )

    async def end_session(
        self, session_id: str, ended_at: datetime, clean_exit: bool, outcome: str
    ) -> None:
        """Record how a run ended."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(schema.sessions)
                .where(schema.sessions.c.id == session_id)
                .values(ended_at=ended_at, clean_exit=clean_exit, outcome=outcome)
            )
