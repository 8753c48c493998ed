"""The in-memory journal keeps a record once per natural key, with keys kept by record type: it
keeps exactly the records a plain first-seen filter on the documented natural key keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.simulated.repositories import InMemoryJournal
from domain.circuit_breaker import BreakerReset, BreakerRule, BreakerTripped
from domain.commands import (
    BreakerRecord,
    FillRecord,
    JournalRecord,
    OperatorRecord,
    OrderEventRecord,
    OrderIntentRecord,
    RoundTripRecord,
    SignalAction,
    SignalRecord,
)
from domain.position import ExitReason, Fill, RoundTrip
from domain.values import Action, Side

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
# The same instants in another zone: equal datetimes are one key, whatever their zone.
NEW_YORK = timezone(timedelta(hours=-5))

_times = st.builds(
    lambda minutes, zoned: (T0 + timedelta(minutes=minutes)).astimezone(NEW_YORK if zoned else UTC),
    st.integers(0, 2),
    st.booleans(),
)
_names = st.sampled_from(["a", "b"])


def _trip(side: Side, entry: datetime, exit_: datetime, seq: int) -> RoundTripRecord:
    return RoundTripRecord(
        RoundTrip(
            seq,
            side,
            1,
            entry,
            Decimal(1),
            exit_,
            Decimal(1),
            ExitReason.SIGNAL,
            0,
            Decimal(0),
            Decimal(seq),
        )
    )


_records: st.SearchStrategy[JournalRecord] = st.one_of(
    st.builds(
        lambda ts, bar, action, z: SignalRecord(ts, bar, 1.0, z, action, None, ""),
        _times,
        _times,
        st.sampled_from(list(SignalAction)),
        st.sampled_from([None, 1.5]),
    ),
    st.builds(
        lambda key, ts, role: OrderIntentRecord(key, role, Action.BUY, 1, "MKT", None, ts, ""),
        _names,
        _times,
        _names,
    ),
    st.builds(
        OrderEventRecord,
        _names,
        _names,
        _times,
        _names,
    ),
    st.builds(
        lambda exec_id, ts, role: FillRecord(
            Fill(exec_id, "k", Action.SELL, 1, Decimal(1), ts, Decimal(0)), role
        ),
        _names,
        _times,
        _names,
    ),
    st.builds(_trip, st.sampled_from(list(Side)), _times, _times, st.integers(1, 3)),
    st.builds(
        lambda tripped, ts, what: BreakerRecord(
            BreakerTripped(BreakerRule.DAILY_LOSS, ts, what) if tripped else BreakerReset(ts, what)
        ),
        st.booleans(),
        _times,
        _names,
    ),
)


def _natural_key(rec: JournalRecord) -> tuple[object, ...]:
    """The key as application.queries documents it, written out plainly."""
    if isinstance(rec, FillRecord):
        return ("fill", rec.fill.exec_id)
    if isinstance(rec, OrderIntentRecord):
        return ("intent", rec.key)
    if isinstance(rec, SignalRecord):
        return ("signal", rec.ts, rec.bar_start, rec.action)
    if isinstance(rec, OrderEventRecord):
        return ("order_event", rec.key, rec.status, rec.ts, rec.detail)
    if isinstance(rec, RoundTripRecord):
        return ("round_trip", rec.trip.side, rec.trip.entry_ts, rec.trip.exit_ts)
    if isinstance(rec, BreakerRecord):
        e = rec.event
        if isinstance(e, BreakerTripped):
            return ("breaker", "tripped", e.rule, e.ts)
        return ("breaker", "reset", e.reason, e.ts)
    assert isinstance(rec, OperatorRecord)
    raise AssertionError("operator commands are numbered: not in this test")


@settings(max_examples=300, deadline=None)
@given(st.lists(_records, max_size=40), st.integers(0, 40))
def test_kept_records_are_the_first_of_each_natural_key(
    records: list[JournalRecord], read_at: int
) -> None:
    journal = InMemoryJournal()
    for i, rec in enumerate(records):
        if i == read_at:
            assert journal.records is not None  # a read in between settles the queue
        journal.append(rec)
    seen: set[tuple[object, ...]] = set()
    expected = []
    for rec in records:
        key = _natural_key(rec)
        if key not in seen:
            seen.add(key)
            expected.append(rec)
    assert journal.records == expected
    assert journal.signals() == [r for r in expected if isinstance(r, SignalRecord)]
    assert journal.intents() == [r for r in expected if isinstance(r, OrderIntentRecord)]
    assert journal.round_trips() == [r.trip for r in expected if isinstance(r, RoundTripRecord)]
