"""The two starts of a CME trade date: its accounting window (what ``cme_trade_date`` maps to it,
Friday 18:00 New York for a Monday) and its Globex open (Sunday 18:00 for a Monday)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.calendar import cme_trade_date, globex_open, trade_date_window
from domain.errors import DomainError

ET = ZoneInfo("America/New_York")
TICK = timedelta(microseconds=1)


def utc(year: int, month: int, day: int, hour: int) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("trade_date", "start", "end"),
    [
        # An ordinary Tuesday in winter and in summer: a 24-hour window.
        (date(2025, 3, 4), utc(2025, 3, 3, 23), utc(2025, 3, 4, 23)),
        (date(2025, 7, 1), utc(2025, 6, 30, 22), utc(2025, 7, 1, 22)),
        # The Mondays after the March switches: Friday 18:00 EST to Monday 18:00 EDT (71 h).
        (date(2025, 3, 10), utc(2025, 3, 7, 23), utc(2025, 3, 10, 22)),
        (date(2026, 3, 9), utc(2026, 3, 6, 23), utc(2026, 3, 9, 22)),
        # The Mondays after the November switches: Friday 18:00 EDT to Monday 18:00 EST (73 h).
        (date(2025, 11, 3), utc(2025, 10, 31, 22), utc(2025, 11, 3, 23)),
        (date(2026, 11, 2), utc(2026, 10, 30, 22), utc(2026, 11, 2, 23)),
        # The Tuesdays after: both ends on the new offset.
        (date(2025, 3, 11), utc(2025, 3, 10, 22), utc(2025, 3, 11, 22)),
        (date(2025, 11, 4), utc(2025, 11, 3, 23), utc(2025, 11, 4, 23)),
    ],
)
def test_the_accounting_window_runs_from_18_00_on_the_trading_day_before(
    trade_date: date, start: datetime, end: datetime
) -> None:
    assert trade_date_window(trade_date) == (start, end)


@pytest.mark.parametrize(
    ("trade_date", "opens"),
    [
        (date(2025, 3, 4), utc(2025, 3, 3, 23)),  # Tuesday: Monday 18:00 EST
        (date(2025, 7, 1), utc(2025, 6, 30, 22)),  # Tuesday: Monday 18:00 EDT
        # Mondays whose previous evening is the switch day: Sunday 18:00 on the new offset.
        (date(2025, 3, 10), utc(2025, 3, 9, 22)),
        (date(2026, 3, 9), utc(2026, 3, 8, 22)),
        (date(2025, 11, 3), utc(2025, 11, 2, 23)),
        (date(2026, 11, 2), utc(2026, 11, 1, 23)),
        # The Mondays before the switches: Sunday 18:00 on the old offset.
        (date(2025, 3, 3), utc(2025, 3, 2, 23)),
        (date(2025, 10, 27), utc(2025, 10, 26, 22)),
    ],
)
def test_the_globex_open_is_18_00_new_york_on_the_calendar_day_before(
    trade_date: date, opens: datetime
) -> None:
    assert globex_open(trade_date) == opens
    local = opens.astimezone(ET)
    assert (local.date(), local.hour, local.minute) == (trade_date - timedelta(days=1), 18, 0)


def _weekdays(first: date, last: date) -> list[date]:
    days = (first + timedelta(days=i) for i in range((last - first).days + 1))
    return [d for d in days if d.weekday() < 5]


# Three years, so six DST switches and every weekday shape; the calendar table's whole span is
# 2010-2027, and the rule itself is the same everywhere.
TRADE_DATES = _weekdays(date(2024, 12, 30), date(2027, 12, 31))


def test_accounting_windows_of_consecutive_trade_dates_tile_time() -> None:
    for before, after in itertools.pairwise(TRADE_DATES):
        assert trade_date_window(before)[1] == trade_date_window(after)[0], after


def test_each_window_is_exactly_what_cme_trade_date_maps_to_its_date() -> None:
    for day in TRADE_DATES:
        start, end = trade_date_window(day)
        assert cme_trade_date(start) == day
        assert cme_trade_date(end - TICK) == day
        assert cme_trade_date(start - TICK) != day
        assert cme_trade_date(end) != day


@given(st.datetimes(min_value=datetime(2010, 1, 1), max_value=datetime(2027, 12, 24)))
def test_every_instant_lies_in_the_window_of_its_trade_date(naive: datetime) -> None:
    t = naive.replace(tzinfo=UTC)
    start, end = trade_date_window(cme_trade_date(t))
    assert start <= t < end


def test_the_globex_open_lies_in_the_window_and_starts_it_except_on_mondays() -> None:
    for day in TRADE_DATES:
        start, end = trade_date_window(day)
        opens = globex_open(day)
        assert start <= opens < end
        if day.weekday() == 0:
            # The weekend: Friday 18:00 to Sunday 18:00, give or take a DST hour.
            assert opens - start in {timedelta(hours=h) for h in (47, 48, 49)}
        else:
            assert opens == start


def test_a_friday_evening_trade_belongs_to_monday_before_mondays_session_opens() -> None:
    friday_evening = datetime(2025, 3, 7, 19, 0, tzinfo=ET)  # the weekend of the March switch
    monday = cme_trade_date(friday_evening)
    assert monday == date(2025, 3, 10)
    start, end = trade_date_window(monday)
    assert start <= friday_evening < end
    assert friday_evening < globex_open(monday)


@pytest.mark.parametrize("weekend", [date(2025, 3, 8), date(2025, 3, 9)])
def test_a_weekend_day_is_no_trade_date(weekend: date) -> None:
    with pytest.raises(DomainError, match="not a CME trade date"):
        trade_date_window(weekend)
    with pytest.raises(DomainError, match="not a CME trade date"):
        globex_open(weekend)
