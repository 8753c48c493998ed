"""In-memory journal and state store: the Journal and StateStore ports for replay and tests."""

from __future__ import annotations

from domain.circuit_breaker import BreakerTripped
from domain.commands import (
    BreakerRecord,
    FillRecord,
    JournalRecord,
    OrderIntentRecord,
    RoundTripRecord,
    SignalRecord,
)
from domain.engine import EngineSnapshot
from domain.position import Fill, RoundTrip


class InMemoryJournal:
    """Keeps every record in order. Appending the same fill twice keeps one (idempotent by exec id)."""

    def __init__(self) -> None:
        self.records: list[JournalRecord] = []
        self._exec_ids: set[str] = set()
        self._intent_keys: set[str] = set()

    def append(self, record: JournalRecord) -> None:
        kind = type(record)
        if kind is FillRecord:
            exec_id = record.fill.exec_id  # type: ignore[union-attr]
            if exec_id in self._exec_ids:
                return
            self._exec_ids.add(exec_id)
        elif kind is OrderIntentRecord:
            key = record.key  # type: ignore[union-attr]
            if key in self._intent_keys:
                return
            self._intent_keys.add(key)
        self.records.append(record)

    async def flush(self) -> None:
        """Nothing is buffered."""

    def round_trips(self) -> list[RoundTrip]:
        return [r.trip for r in self.records if isinstance(r, RoundTripRecord)]

    def fills(self) -> list[Fill]:
        return [r.fill for r in self.records if isinstance(r, FillRecord)]

    def signals(self) -> list[SignalRecord]:
        return [r for r in self.records if isinstance(r, SignalRecord)]

    def intents(self) -> list[OrderIntentRecord]:
        return [r for r in self.records if isinstance(r, OrderIntentRecord)]

    def breaker_trips(self) -> list[BreakerTripped]:
        return [
            r.event
            for r in self.records
            if isinstance(r, BreakerRecord) and isinstance(r.event, BreakerTripped)
        ]


class InMemoryStateStore:
    """Keeps the last snapshot saved."""

    def __init__(self) -> None:
        self.snapshot: EngineSnapshot | None = None
        self.saves = 0

    async def save(self, snapshot: EngineSnapshot) -> None:
        self.snapshot = snapshot
        self.saves += 1

    async def load(self) -> EngineSnapshot | None:
        return self.snapshot
