"""The journal's read side on PostgreSQL or SQLite (``application.queries.JournalReader``).

Reports, ``/pnl`` and the replay from the store read through this; it returns domain types only.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql import schema
from adapters.sql.serialization import RECORDS, bar_of_row
from application.queries import R, SessionPnl, session_pnl_of
from domain.bar import Bar
from domain.commands import RoundTripRecord

_TABLES = {t.name: t for t in schema.JOURNAL_TABLES}


def _window(
    stmt: Select[Any],
    column: ColumnElement[datetime],
    start: datetime | None,
    end: datetime | None,
) -> Select[Any]:
    if start is not None:
        stmt = stmt.where(column >= start)
    if end is not None:
        stmt = stmt.where(column < end)
    return stmt


class SqlJournalReader:
    """Reads what :class:`adapters.sql.journal.SqlJournal` wrote."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def records_of(
        self, kind: type[R], start: datetime | None = None, end: datetime | None = None
    ) -> list[R]:
        try:
            stored = RECORDS[kind]
        except KeyError:
            raise TypeError(f"{kind.__name__} is not a journal record kind") from None
        table = _TABLES[stored.table]
        stmt = _window(select(table), table.c[stored.time_column], start, end).order_by(table.c.id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [cast(R, stored.from_row(row)) for row in rows]

    async def bars(
        self,
        contract: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Bar]:
        table = schema.bars
        stmt = _window(select(table), table.c.ts, start, end)
        if contract is not None:
            stmt = stmt.where(table.c.contract == contract)
        stmt = stmt.order_by(table.c.ts, table.c.id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [bar_of_row(row) for row in rows]

    async def session_pnl(self, trade_date: date) -> SessionPnl:
        stored = RECORDS[RoundTripRecord]
        table = _TABLES[stored.table]
        stmt = select(table).where(table.c.trade_date == trade_date).order_by(table.c.id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        trips = [cast(RoundTripRecord, stored.from_row(row)).trip for row in rows]
        return session_pnl_of(trade_date, trips)
