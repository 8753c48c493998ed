"""In-memory journal: the Journal port and its read side, for replay and tests."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import date, datetime
from typing import cast

from application.queries import (
    CommandOccurrences,
    R,
    SessionPnl,
    in_window,
    record_key,
    record_time,
    session_pnl_of,
)
from domain.bar import Bar
from domain.calendar import cme_trade_date
from domain.circuit_breaker import BreakerTripped
from domain.commands import (
    BreakerRecord,
    FillRecord,
    JournalRecord,
    OperatorRecord,
    OrderIntentRecord,
    RoundTripRecord,
    SignalRecord,
)
from domain.position import Fill, RoundTrip


class InMemoryJournal:
    """Keeps every record in order, once per type and natural key (``application.queries.record_key``):
    appending the same fill, intent, signal or event twice keeps one. Recorded bars are kept once
    per contract, start and size. Identical operator commands are each kept (numbered by
    :class:`CommandOccurrences`).

    Appends are batched: ``append`` only queues the record (a replay appends nine per round trip),
    and the queue is checked for duplicates, in order, when the records are next read. What a
    reader sees is exactly what checking each append at once would have kept."""

    def __init__(self) -> None:
        self._records: list[JournalRecord] = []
        self._pending: list[JournalRecord] = []
        # The keys of the kept records, by their (final) type (application.queries.record_key).
        self._keys: dict[type, set[Hashable]] = {}
        # The kept records again, by their (final) type: a query reads its kind alone.
        self._by_kind: dict[type, list[JournalRecord]] = {}
        self._bars: dict[tuple[str, int, int], tuple[str, Bar]] = {}
        self._occurrences = CommandOccurrences()

    @property
    def records(self) -> list[JournalRecord]:
        """Every record kept, in the order first appended."""
        if self._pending:
            self._settle()
        return self._records

    def reopened(self) -> InMemoryJournal:
        """The same records as a restarted process's journal sees them: identical operator
        commands are numbered afresh (so a command journaled again is kept once)."""
        again = InMemoryJournal()
        again._records, again._keys, again._bars = self.records, self._keys, self._bars
        again._by_kind = self._by_kind
        return again

    def append(self, record: JournalRecord) -> None:
        self._pending.append(record)

    def _settle(self) -> None:
        """Keep the queued records that are not already kept (see the class docstring)."""
        pending, self._pending = self._pending, []
        keys = self._keys
        kept = self._records
        by_kind = self._by_kind
        occurrences = self._occurrences
        key_of = record_key
        for record in pending:
            occurrence = occurrences.next(record) if isinstance(record, OperatorRecord) else 0
            key = key_of(record, occurrence)
            kind = type(record)
            seen = keys.get(kind)
            if seen is None:
                seen = keys[kind] = set()
                by_kind.setdefault(kind, [])
            if key not in seen:
                seen.add(key)
                kept.append(record)
                by_kind[kind].append(record)

    def _of_kind(self, kind: type[R]) -> list[R]:
        """The kept records of type ``kind``, in order (records are final types)."""
        if self._pending:
            self._settle()
        return cast(list[R], self._by_kind.get(kind, []))

    def append_bar(self, contract: str, bar: Bar) -> None:
        self._bars.setdefault((contract, bar.epoch, bar.seconds), (contract, bar))

    async def flush(self) -> None:
        """Nothing is buffered."""

    def round_trips(self) -> list[RoundTrip]:
        return [r.trip for r in self._of_kind(RoundTripRecord)]

    def fills(self) -> list[Fill]:
        return [r.fill for r in self._of_kind(FillRecord)]

    def signals(self) -> list[SignalRecord]:
        return list(self._of_kind(SignalRecord))

    def intents(self) -> list[OrderIntentRecord]:
        return list(self._of_kind(OrderIntentRecord))

    def breaker_trips(self) -> list[BreakerTripped]:
        return [
            r.event for r in self._of_kind(BreakerRecord) if isinstance(r.event, BreakerTripped)
        ]

    # -- the read side (application.queries.JournalReader) ---------------------------------------

    async def records_of(
        self, kind: type[R], start: datetime | None = None, end: datetime | None = None
    ) -> list[R]:
        return [r for r in self._of_kind(kind) if in_window(record_time(r), start, end)]

    async def bars(
        self,
        contract: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Bar]:
        found = [
            bar
            for name, bar in self._bars.values()
            if (contract is None or name == contract) and in_window(bar.ts, start, end)
        ]
        return sorted(found, key=lambda b: b.epoch)

    async def session_pnl(self, trade_date: date) -> SessionPnl:
        trips = [t for t in self.round_trips() if cme_trade_date(t.exit_ts) == trade_date]
        return session_pnl_of(trade_date, trips)
