"""The journal's read side, and what makes two journal records "the same".

Every journal keeps a record once per type and natural key (:func:`record_key`), so journaling the same
events twice (a restart that replays bars after its last snapshot, a spool replayed after an outage)
changes nothing. Operator commands are the exception that proves the rule: two identical commands
with the same time and user are two commands (a flood of ``/status``), so a journal numbers the
identical ones it is given (:class:`CommandOccurrences`) and the number is part of their key; a
restart numbers afresh, so the commands it journals again are still kept once. Reads return
records of one kind in the order they were first appended.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol, TypeVar

from domain.bar import Bar
from domain.circuit_breaker import BreakerTripped
from domain.commands import (
    BreakerRecord,
    FillRecord,
    JournalRecord,
    OperatorRecord,
    OrderEventRecord,
    OrderIntentRecord,
    RoundTripRecord,
    SignalRecord,
)
from domain.position import RoundTrip
from domain.record import record
from domain.values import ZERO

R = TypeVar("R", bound=JournalRecord)

RECORD_KINDS: tuple[type[JournalRecord], ...] = (
    SignalRecord,
    OrderIntentRecord,
    OrderEventRecord,
    FillRecord,
    RoundTripRecord,
    BreakerRecord,
    OperatorRecord,
)


def record_key(rec: JournalRecord, occurrence: int = 0) -> Hashable:
    """The natural key of a journal record among the records of its own type.

    A fill is its execution id, an order intent its idempotency key, a round trip its side and entry
    and exit times, a signal its bar and action; order events and breaker events are keyed by what
    happened, to what, and when; an operator command by when, who, what and its ``occurrence``
    (see :class:`CommandOccurrences`). Enum members appear as their values (an enum's values are
    unique, and hashing a member runs Python code: this runs on every append).
    """
    kind = type(rec)  # exact types: records are final
    if kind is FillRecord:
        return rec.fill.exec_id  # type: ignore[union-attr]
    if kind is OrderIntentRecord:
        return rec.key  # type: ignore[union-attr]
    if kind is SignalRecord:
        return (rec.ts, rec.bar_start, rec.action.value)  # type: ignore[union-attr]
    if kind is OrderEventRecord:
        return (rec.key, rec.status, rec.ts, rec.detail)  # type: ignore[union-attr]
    if isinstance(rec, RoundTripRecord):
        trip = rec.trip
        return (trip.side.value, trip.entry_ts, trip.exit_ts)
    if isinstance(rec, BreakerRecord):
        event = rec.event
        if isinstance(event, BreakerTripped):
            return ("tripped", event.rule.value, event.ts)
        return ("reset", event.reason, event.ts)
    if not isinstance(rec, OperatorRecord):
        raise TypeError(f"not a journal record: {rec!r}")
    return (rec.ts, rec.by, rec.command, occurrence)


class CommandOccurrences:
    """Numbers identical operator commands (same time, user and command) 0, 1, 2, ... in the order
    a journal is given them, so that each is its own row.

    Remembers the last ``remember`` distinct commands (a flood repeats one; commands are rare).
    """

    def __init__(self, remember: int = 1024) -> None:
        self._seen: OrderedDict[tuple[object, ...], int] = OrderedDict()
        self._remember = remember

    def next(self, rec: OperatorRecord) -> int:
        key = (rec.ts, rec.by, rec.command)
        n = self._seen.pop(key, -1) + 1
        self._seen[key] = n
        if len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        return n


def record_time(rec: JournalRecord) -> datetime:
    """When a record happened, for time-window queries (a round trip: its exit)."""
    if isinstance(rec, FillRecord):
        return rec.fill.ts
    if isinstance(rec, RoundTripRecord):
        return rec.trip.exit_ts
    if isinstance(rec, BreakerRecord):
        return rec.event.ts
    return rec.ts


def in_window(ts: datetime, start: datetime | None, end: datetime | None) -> bool:
    """``start <= ts < end``, either bound optional."""
    return (start is None or ts >= start) and (end is None or ts < end)


@record
class SessionPnl:
    """Realized results of one CME trade date (round trips by exit time, 18:00 ET rule)."""

    trade_date: date
    trades: int
    wins: int
    losses: int
    gross_pnl: Decimal
    commissions: Decimal

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_pnl - self.commissions


def session_pnl_of(trade_date: date, trips: list[RoundTrip]) -> SessionPnl:
    """Sum the round trips of one trade date (wins have net P&L > 0, losses < 0)."""
    return SessionPnl(
        trade_date=trade_date,
        trades=len(trips),
        wins=sum(1 for t in trips if t.net_pnl > 0),
        losses=sum(1 for t in trips if t.net_pnl < 0),
        gross_pnl=sum((t.gross_pnl for t in trips), ZERO),
        commissions=sum((t.commissions for t in trips), ZERO),
    )


class JournalReader(Protocol):
    """What reports, ``/pnl`` and the replay from the store read back from a journal.

    Windows are ``start <= t < end`` on the record's time (:func:`record_time`), either bound
    optional; results come in the order the records were first appended.
    """

    async def records_of(
        self, kind: type[R], start: datetime | None = None, end: datetime | None = None
    ) -> list[R]: ...

    async def bars(
        self,
        contract: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Bar]:
        """Recorded bars by start time (``None``: every contract), oldest first."""
        ...

    async def session_pnl(self, trade_date: date) -> SessionPnl: ...
