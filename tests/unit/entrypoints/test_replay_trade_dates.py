"""The replay's trade dates, found by bisection over the bars' distinct UTC hours, are exactly the
trade dates of every one of those hours (``cme_trade_date`` one hour at a time)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.calendar import cme_trade_date
from entrypoints.replay import trade_dates_of_hours

# 2012-10-01 .. 2014-05-01: weekends, both DST changes of each year, a year end.
FIRST_HOUR = int(datetime(2012, 10, 1, tzinfo=UTC).timestamp()) // 3600
LAST_HOUR = int(datetime(2014, 5, 1, tzinfo=UTC).timestamp()) // 3600


def _one_by_one(hours: list[int]) -> list[date]:
    return sorted({cme_trade_date(datetime.fromtimestamp(h * 3600, UTC)) for h in hours})


def _runs(starts_and_lengths: list[tuple[int, int]]) -> list[int]:
    """Sorted distinct hours made of runs (a run of bars, then a gap), as a replay's bars give."""
    return sorted({start + k for start, length in starts_and_lengths for k in range(length)})


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(FIRST_HOUR, LAST_HOUR), st.integers(1, 200)), min_size=0, max_size=12
    )
)
def test_trade_dates_by_bisection_are_those_of_every_hour(
    starts_and_lengths: list[tuple[int, int]],
) -> None:
    hours = _runs(starts_and_lengths)
    assert trade_dates_of_hours(hours) == _one_by_one(hours)


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(FIRST_HOUR, LAST_HOUR), max_size=60))
def test_trade_dates_of_scattered_hours(hours: set[int]) -> None:
    ordered = sorted(hours)
    assert trade_dates_of_hours(ordered) == _one_by_one(ordered)


def test_trade_dates_of_every_hour_of_a_year_and_a_half() -> None:
    hours = list(range(FIRST_HOUR, LAST_HOUR))
    assert trade_dates_of_hours(hours) == _one_by_one(hours)


def test_a_weekend_maps_to_monday() -> None:
    # Friday 2013-10-11 21:00 UTC (17:00 ET) is Friday's; from 22:00 UTC to Monday 21:00 UTC, Monday.
    friday = int(datetime(2013, 10, 11, 21, tzinfo=UTC).timestamp()) // 3600
    hours = list(range(friday, friday + 73))
    assert trade_dates_of_hours(hours) == [date(2013, 10, 11), date(2013, 10, 14)]
    assert trade_dates_of_hours([*hours, friday + 73]) == [
        date(2013, 10, 11),
        date(2013, 10, 14),
        date(2013, 10, 15),
    ]
