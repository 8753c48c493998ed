"""The replay's own adapters where speed changed how they keep state: the manual clock (an epoch,
its datetime built when asked) and the in-memory journal (appends queued, checked when read)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.simulated.clock import ManualClock
from adapters.simulated.repositories import InMemoryJournal
from domain.bar import Bar
from domain.commands import FillRecord, OperatorRecord, OrderEventRecord, RoundTripRecord
from domain.position import ExitReason, Fill, RoundTrip
from domain.values import Action, Side

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _bar(start: datetime, seconds: int = 300) -> Bar:
    return Bar(start, seconds, 5000.0, 5000.5, 4999.5, 5000.25, 10)


def test_the_manual_clock_follows_bar_ends_and_never_runs_backwards() -> None:
    clock = ManualClock(T0)
    clock.on_bar(_bar(T0))
    assert clock.now() == T0 + timedelta(minutes=5)
    assert clock.now().tzinfo is UTC
    clock.on_bar(_bar(T0 - timedelta(hours=1)))  # an older bar moves nothing
    assert clock.now() == T0 + timedelta(minutes=5)
    clock.skip(_bar(T0 + timedelta(minutes=10)))
    assert clock.now() == T0 + timedelta(minutes=15)
    clock.advance(timedelta(seconds=30))
    assert clock.now() == T0 + timedelta(minutes=15, seconds=30)
    clock.on_bar(_bar(T0 + timedelta(minutes=10)))  # ends before now: nothing
    assert clock.now() == T0 + timedelta(minutes=15, seconds=30)
    clock.set(T0)
    assert clock.now() == T0 + timedelta(minutes=15, seconds=30)
    clock.set(T0 + timedelta(hours=1))
    clock.on_bar(_bar(T0 + timedelta(minutes=55)))  # ends at the hour: not after now
    assert clock.now() == T0 + timedelta(hours=1)
    clock.on_bar(_bar(T0 + timedelta(hours=1)))
    assert clock.now() == T0 + timedelta(hours=1, minutes=5)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(timedelta(seconds=-1))


def _fill(exec_id: str, ts: datetime) -> FillRecord:
    return FillRecord(
        Fill(exec_id, "QS-1-E", Action.BUY, 1, Decimal("5000.25"), ts, Decimal("0.62")), "entry"
    )


def _trip(seq: int, ts: datetime) -> RoundTripRecord:
    return RoundTripRecord(
        RoundTrip(
            seq,
            Side.LONG,
            1,
            ts,
            Decimal("5000.25"),
            ts + timedelta(minutes=5),
            Decimal("5001"),
            ExitReason.SIGNAL,
            3,
            Decimal("3.75"),
            Decimal("1.24"),
        )
    )


def test_queued_appends_keep_what_checking_each_at_once_would_keep() -> None:
    journal = InMemoryJournal()
    a, b = _fill("SIM-1", T0), _fill("SIM-2", T0)
    trip = _trip(1, T0)
    event = OrderEventRecord("QS-1-E", "accepted", T0, "")
    command = OperatorRecord("pause", "42", T0, "entries paused")
    journal.append(a)
    journal.append(event)
    journal.append(a)  # the same fill again: kept once
    assert journal.records == [a, event]
    journal.append(b)
    journal.append(event)  # already kept before this batch
    journal.append(trip)
    journal.append(command)
    journal.append(command)  # two identical operator commands are two commands
    journal.append(trip)
    assert journal.records == [a, event, b, trip, command, command]
    assert journal.fills() == [a.fill, b.fill]
    assert journal.round_trips() == [trip.trip]
    assert journal.signals() == []
    again = journal.reopened()
    again.append(command)  # numbered afresh after a restart: the first is already kept
    again.append(_fill("SIM-3", T0))
    assert again.records[:6] == [a, event, b, trip, command, command]
    assert len(again.records) == 7
    assert [f.exec_id for f in again.fills()] == ["SIM-1", "SIM-2", "SIM-3"]
