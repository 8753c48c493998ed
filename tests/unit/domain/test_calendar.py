"""The CME Globex equity calendar, the continuous calendar and the 18:00 ET trade-date rule."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

import domain.calendar as calendar_module
from domain.calendar import (
    CME_EQUITY_EXCEPTIONS,
    CME_EQUITY_REGIMES,
    CME_EQUITY_REVIEWED,
    CmeGlobexEquityCalendar,
    ContinuousCalendar,
    DailyRegime,
    ExceptionKind,
    Session,
    SessionCalendar,
    SessionException,
    build_calendar,
    cme_trade_date,
    make_session,
)
from domain.errors import CalendarCoverageError, DomainError

ET = ZoneInfo("America/New_York")


def et(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    """Epoch seconds of an America/New_York wall time."""
    return int(datetime(y, mo, d, h, mi, s, tzinfo=ET).timestamp())


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


@pytest.fixture
def cal() -> CmeGlobexEquityCalendar:
    return CmeGlobexEquityCalendar()


# mes-facts §2, "is the market open at this ET time?": all 30 rows with the *expected* column, plus
# the trade date of the session that is open (None when closed). A holiday morning clears under the
# next business day's trade date, as CME does.
OPEN_PROBES = [
    ("normal day", et(2026, 11, 17, 10), date(2026, 11, 17)),
    ("old 16:15-16:30 halt gone", et(2026, 11, 17, 16, 45), date(2026, 11, 17)),
    ("daily maintenance", et(2026, 11, 17, 17, 30), None),
    ("evening session", et(2026, 11, 17, 18, 30), date(2026, 11, 18)),
    ("overnight", et(2026, 11, 18, 3), date(2026, 11, 18)),
    ("weekend", et(2026, 11, 21, 12), None),
    ("before Sunday open", et(2026, 11, 22, 17, 30), None),
    ("after Sunday open", et(2026, 11, 22, 18, 30), date(2026, 11, 23)),
    ("Thanksgiving 2025 10:00", et(2025, 11, 27, 10), date(2025, 11, 28)),
    ("Thanksgiving 2025 after 13:00 halt", et(2025, 11, 27, 13, 30), None),
    ("Thanksgiving 2025 reopen for Friday", et(2025, 11, 27, 18, 30), date(2025, 11, 28)),
    ("Black Friday 2025 before 13:15", et(2025, 11, 28, 13, 10), date(2025, 11, 28)),
    ("Black Friday 2025 after 13:15", et(2025, 11, 28, 13, 30), None),
    ("Christmas Eve 2025 10:00", et(2025, 12, 24, 10), date(2025, 12, 24)),
    ("Christmas Eve 2025 before 13:15", et(2025, 12, 24, 13, 10), date(2025, 12, 24)),
    ("Christmas Eve 2025 after 13:15", et(2025, 12, 24, 13, 30), None),
    ("Christmas Eve 2025 evening", et(2025, 12, 24, 18, 30), None),
    ("Christmas Day 2025 reopen", et(2025, 12, 25, 18, 30), date(2025, 12, 26)),
    ("July 4 observed 2026 10:00", et(2026, 7, 3, 10), date(2026, 7, 6)),
    ("July 4 observed 2026 after 13:00", et(2026, 7, 3, 13, 30), None),
    ("July 4 observed 2026 evening (weekend)", et(2026, 7, 3, 18, 30), None),
    ("Thanksgiving 2026 10:00", et(2026, 11, 26, 10), date(2026, 11, 27)),
    ("Thanksgiving 2026 after 13:00", et(2026, 11, 26, 13, 30), None),
    ("Thanksgiving 2026 reopen", et(2026, 11, 26, 18, 30), date(2026, 11, 27)),
    ("Black Friday 2026 after 13:15", et(2026, 11, 27, 13, 30), None),
    ("pre-July 4 2025 before 13:15", et(2025, 7, 3, 13, 10), date(2025, 7, 3)),
    ("pre-July 4 2025 after 13:15", et(2025, 7, 3, 13, 30), None),
    ("Juneteenth 2026 after 13:00", et(2026, 6, 19, 13, 30), None),
    ("Day of Mourning 2025 before 09:30", et(2025, 1, 9, 9), date(2025, 1, 9)),
    ("Day of Mourning 2025 after 09:30", et(2025, 1, 9, 10), None),
]


def test_the_probe_table_has_all_thirty_rows_of_mes_facts() -> None:
    assert len(OPEN_PROBES) == 30
    assert len({t for _, t, _ in OPEN_PROBES}) == 30


@pytest.mark.parametrize(("label", "t", "expected"), OPEN_PROBES, ids=[p[0] for p in OPEN_PROBES])
def test_market_is_open_exactly_when_cme_publishes_it(
    cal: CmeGlobexEquityCalendar, label: str, t: int, expected: date | None
) -> None:
    session = cal.session_at(t)
    assert (session.trade_date if session else None) == expected, label
    if session is not None:
        assert session.contains(t)


@pytest.mark.parametrize(
    ("trade_date", "open_utc", "close_utc"),
    [
        # EST: 18:00 ET = 23:00Z, 17:00 ET = 22:00Z.
        (date(2026, 11, 17), utc(2026, 11, 16, 23), utc(2026, 11, 17, 22)),
        # EDT: 18:00 ET = 22:00Z, 17:00 ET = 21:00Z.
        (date(2025, 7, 15), utc(2025, 7, 14, 22), utc(2025, 7, 15, 21)),
    ],
)
def test_ordinary_session_runs_from_18_00_the_evening_before_to_17_00(
    cal: CmeGlobexEquityCalendar, trade_date: date, open_utc: datetime, close_utc: datetime
) -> None:
    session = cal.session_at(int(open_utc.timestamp()))
    assert session == make_session(trade_date, open_utc, close_utc)
    assert session.open.tzinfo is UTC
    assert session.close.tzinfo is UTC
    assert cal.session_at(session.close_epoch - 1) == session
    assert cal.session_at(session.open_epoch - 1) is None
    assert cal.session_at(session.close_epoch) is None


def test_monday_session_opens_on_sunday_at_18_00(cal: CmeGlobexEquityCalendar) -> None:
    assert cal.session_at(et(2026, 11, 22, 17, 59, 59)) is None
    session = cal.session_at(et(2026, 11, 22, 18))
    assert session is not None
    assert session.trade_date == date(2026, 11, 23)
    assert session.open_epoch == et(2026, 11, 22, 18)


def test_week_ends_at_friday_17_00(cal: CmeGlobexEquityCalendar) -> None:
    friday = cal.session_at(et(2026, 11, 20, 16, 59, 59))
    assert friday is not None
    assert friday.trade_date == date(2026, 11, 20)
    assert friday.close_epoch == et(2026, 11, 20, 17)
    for t in (et(2026, 11, 20, 17), et(2026, 11, 20, 18, 30), et(2026, 11, 21, 12)):
        assert cal.session_at(t) is None


@pytest.mark.parametrize(
    "t", [et(2026, 11, 17, 17), et(2026, 11, 17, 17, 30), et(2026, 11, 17, 17, 59, 59)]
)
def test_daily_halt_from_17_00_to_18_00_is_closed(cal: CmeGlobexEquityCalendar, t: int) -> None:
    assert cal.session_at(t) is None
    assert cal.next_session(t).open_epoch == et(2026, 11, 17, 18)


@pytest.mark.parametrize(
    ("kind", "trade_date", "close_et"),
    [
        (ExceptionKind.HOLIDAY_HALT, date(2025, 1, 20), time(13, 0)),
        (ExceptionKind.HOLIDAY_HALT, date(2026, 7, 3), time(13, 0)),
        (ExceptionKind.EARLY_CLOSE, date(2025, 11, 28), time(13, 15)),
        (ExceptionKind.EARLY_CLOSE, date(2026, 12, 24), time(13, 15)),
        (ExceptionKind.ABBREVIATED, date(2026, 4, 3), time(9, 15)),
        (ExceptionKind.AD_HOC, date(2025, 1, 9), time(9, 30)),
        (ExceptionKind.REGULAR, date(2027, 12, 31), time(17, 0)),
    ],
)
def test_exception_days_close_at_their_listed_time(
    cal: CmeGlobexEquityCalendar, kind: ExceptionKind, trade_date: date, close_et: time
) -> None:
    entry = next(e for e in CME_EQUITY_EXCEPTIONS if e.trade_date == trade_date)
    assert entry.kind is kind
    open_instant = datetime.combine(trade_date - timedelta(days=1), time(18), tzinfo=ET)
    session = cal.session_at(int(open_instant.timestamp()))
    assert session is not None
    if kind is ExceptionKind.HOLIDAY_HALT:
        # The holiday morning clears with the next session: the same trade date, after the halt.
        following = cal.next_session(session.close_epoch)
        assert following.open_epoch > session.close_epoch
        assert session.trade_date == following.trade_date > trade_date
    else:
        assert session.trade_date == trade_date
    close_instant = datetime.combine(trade_date, close_et, tzinfo=ET)
    assert session.close_epoch == int(close_instant.timestamp())
    assert cal.session_at(session.close_epoch) is None


@pytest.mark.parametrize(
    ("closed_day", "last_before", "next_trade_date"),
    [
        (date(2025, 12, 25), date(2025, 12, 24), date(2025, 12, 26)),
        (date(2026, 1, 1), date(2025, 12, 31), date(2026, 1, 2)),
        (date(2025, 4, 18), date(2025, 4, 17), date(2025, 4, 21)),
        (date(2027, 12, 24), date(2027, 12, 23), date(2027, 12, 27)),
    ],
)
def test_closed_day_has_no_session(
    cal: CmeGlobexEquityCalendar, closed_day: date, last_before: date, next_trade_date: date
) -> None:
    noon = int(datetime.combine(closed_day, time(12), tzinfo=ET).timestamp())
    assert cal.session_at(noon) is None
    after = cal.next_session(noon)
    assert after.trade_date == next_trade_date
    assert cal.trade_date(noon) == next_trade_date
    assert all(s.trade_date != closed_day for s in cal.sessions)
    before = [s for s in cal.sessions if s.close_epoch <= noon][-1]
    assert before.trade_date == last_before


def test_next_session_across_a_weekend_is_mondays_sunday_open(
    cal: CmeGlobexEquityCalendar,
) -> None:
    for t in (et(2026, 11, 20, 17), et(2026, 11, 21, 12), et(2026, 11, 22, 17, 59, 59)):
        nxt = cal.next_session(t)
        assert nxt.trade_date == date(2026, 11, 23)
        assert nxt.open_epoch == et(2026, 11, 22, 18)


def test_next_session_across_christmas_reopens_on_the_holiday_evening(
    cal: CmeGlobexEquityCalendar,
) -> None:
    nxt = cal.next_session(et(2025, 12, 24, 13, 15))
    assert nxt.trade_date == date(2025, 12, 26)
    assert nxt.open_epoch == et(2025, 12, 25, 18)


def test_next_session_across_good_friday_2026_is_monday(cal: CmeGlobexEquityCalendar) -> None:
    nxt = cal.next_session(et(2026, 4, 3, 9, 15))
    assert nxt.trade_date == date(2026, 4, 6)
    assert nxt.open_epoch == et(2026, 4, 5, 18)


def test_next_session_while_open_is_the_current_session(cal: CmeGlobexEquityCalendar) -> None:
    t = et(2026, 11, 18, 3)
    cold = cal.next_session(t)  # bisect path
    assert cal.session_at(t) == cold
    assert cal.next_session(t) == cold  # cached path
    assert cold.trade_date == date(2026, 11, 18)


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (et(2026, 11, 17, 16, 59, 59), date(2026, 11, 17)),
        # The halt belongs to no session: its trade date is that of the next session.
        (et(2026, 11, 17, 17), date(2026, 11, 18)),
        (et(2026, 11, 17, 17, 59), date(2026, 11, 18)),
        (et(2026, 11, 17, 18), date(2026, 11, 18)),
        (et(2026, 11, 20, 17, 59), date(2026, 11, 23)),
        (et(2026, 11, 22, 18), date(2026, 11, 23)),
    ],
)
def test_trade_date_switches_at_the_close_and_18_00(
    cal: CmeGlobexEquityCalendar, t: int, expected: date
) -> None:
    assert cal.trade_date(t) == expected


@pytest.mark.parametrize(
    ("friday", "monday", "friday_close_utc", "monday_open_utc"),
    [
        # Spring forward on Sunday 2025-03-09: closes in EST, reopens in EDT.
        (date(2025, 3, 7), date(2025, 3, 10), utc(2025, 3, 7, 22), utc(2025, 3, 9, 22)),
        # Fall back on Sunday 2025-11-02: closes in EDT, reopens in EST.
        (date(2025, 10, 31), date(2025, 11, 3), utc(2025, 10, 31, 21), utc(2025, 11, 2, 23)),
    ],
)
def test_sessions_follow_new_york_time_across_dst(
    cal: CmeGlobexEquityCalendar,
    friday: date,
    monday: date,
    friday_close_utc: datetime,
    monday_open_utc: datetime,
) -> None:
    fri = next(s for s in cal.sessions if s.trade_date == friday)
    mon = next(s for s in cal.sessions if s.trade_date == monday)
    assert fri.close == friday_close_utc
    assert mon.open == monday_open_utc
    assert cal.next_session(fri.close_epoch) == mon


def test_monday_after_spring_forward_is_a_23_hour_session(cal: CmeGlobexEquityCalendar) -> None:
    mon = cal.session_at(et(2025, 3, 10, 10))
    assert mon is not None
    assert (mon.open, mon.close) == (utc(2025, 3, 9, 22), utc(2025, 3, 10, 21))


@pytest.mark.parametrize(
    "t",
    [
        et(2009, 12, 31, 17, 59, 59),  # just before the covered window
        et(2008, 6, 2, 12),
        et(2027, 12, 31, 18),  # first instant after the window
        et(2028, 1, 3, 10),
    ],
)
def test_session_at_outside_coverage_fails_closed(cal: CmeGlobexEquityCalendar, t: int) -> None:
    with pytest.raises(CalendarCoverageError, match=r"cme_globex_equity covers .* New York, not "):
        cal.session_at(t)
    with pytest.raises(CalendarCoverageError):
        cal.next_session(t)
    with pytest.raises(CalendarCoverageError):
        cal.trade_date(t)


def test_coverage_bounds_are_documented_instants(cal: CmeGlobexEquityCalendar) -> None:
    assert cal.coverage == (
        int(utc(2009, 12, 31, 23).timestamp()),
        int(utc(2027, 12, 31, 23).timestamp()),
    )
    assert (cal.sessions[0].trade_date, cal.sessions[-1].trade_date) == (
        date(2010, 1, 4),
        date(2027, 12, 31),
    )
    assert cal.sessions[0].open == utc(2010, 1, 3, 23)
    assert cal.sessions[-1].close == utc(2027, 12, 31, 22)


def test_first_covered_instant_is_new_years_day_closure(cal: CmeGlobexEquityCalendar) -> None:
    start = cal.coverage[0]
    assert cal.session_at(start) is None
    assert cal.trade_date(start) == date(2010, 1, 4)


def test_after_the_last_close_only_the_halt_is_answered(cal: CmeGlobexEquityCalendar) -> None:
    t = et(2027, 12, 31, 17, 30)
    assert cal.session_at(t) is None
    with pytest.raises(CalendarCoverageError, match="no session after"):
        cal.next_session(t)
    with pytest.raises(CalendarCoverageError):
        cal.trade_date(t)


def test_cached_session_does_not_hide_a_coverage_error(cal: CmeGlobexEquityCalendar) -> None:
    assert cal.session_at(et(2027, 12, 31, 10)) is not None
    with pytest.raises(CalendarCoverageError):
        cal.session_at(et(2028, 1, 3, 10))


def test_sessions_are_ordered_disjoint_and_follow_the_template(
    cal: CmeGlobexEquityCalendar,
) -> None:
    """From 2021-06-28 (the reviewed table and the years before it): one segment per trade date,
    18:00 the evening before to its close, a holiday morning sharing the next one's trade date."""
    allowed_closes = {time(17), time(13), time(13, 15), time(9, 15), time(9, 30)}
    recent = [s for s in cal.sessions if s.open >= utc(2021, 6, 27)]
    for prev, cur in itertools.pairwise(recent):
        assert prev.close_epoch < cur.open_epoch
        # Trade dates increase, except that a holiday morning shares the next session's.
        assert prev.trade_date < cur.trade_date or (
            prev.trade_date == cur.trade_date and prev.close.astimezone(ET).time() == time(13)
        )
    for s in recent:
        assert s.trade_date.weekday() < 5
        # Segments are named by the day they close on (the holiday itself for a holiday morning).
        day = s.close.astimezone(ET).date()
        open_et = s.open.astimezone(ET)
        assert (open_et.date(), open_et.time()) == (day - timedelta(days=1), time(18))
        close_et = s.close.astimezone(ET)
        assert close_et.time() in allowed_closes
        assert s.trade_date == day or close_et.time() == time(13)


def test_all_sessions_are_ordered_and_disjoint_with_trade_dates_never_going_back(
    cal: CmeGlobexEquityCalendar,
) -> None:
    for prev, cur in itertools.pairwise(cal.sessions):
        assert prev.close_epoch < cur.open_epoch
        assert prev.trade_date <= cur.trade_date
        assert cur.trade_date.weekday() < 5


def test_session_count_is_weekdays_minus_full_closures_since_the_halt_ended(
    cal: CmeGlobexEquityCalendar,
) -> None:
    day, weekdays = date(2025, 1, 1), 0
    while day <= date(2027, 12, 31):
        weekdays += day.weekday() < 5
        day += timedelta(days=1)
    closed = sum(e.kind is ExceptionKind.CLOSED for e in CME_EQUITY_REVIEWED)
    assert closed == 8
    assert len([s for s in cal.sessions if s.trade_date.year >= 2025]) == weekdays - closed


def test_exception_table_is_sorted_and_each_doubtful_entry_is_listed_in_the_docstring() -> None:
    dates = [e.trade_date for e in CME_EQUITY_EXCEPTIONS]
    assert dates == sorted(set(dates))
    assert dates[0].year == 2010
    assert {d.year for d in dates} == set(range(2010, 2028))
    doc = calendar_module.__doc__ or ""
    doubtful = [e.trade_date for e in CME_EQUITY_EXCEPTIONS if "verify" in e.note]
    assert len(doubtful) == 9
    assert [d for d in doubtful if d.isoformat() not in doc] == []


# Regimes of the daily template (module docstring): the probe, its trade date (None: closed).
REGIME_PROBES = [
    # up to 2012-11-16: 16:15 close, an evening segment 16:30-17:30 booked to the next trade date
    ("2011-03-15 15:00", et(2011, 3, 15, 15), date(2011, 3, 15)),
    ("2011-03-15 16:15 close", et(2011, 3, 15, 16, 15), None),
    ("2011-03-15 16:45 evening", et(2011, 3, 15, 16, 45), date(2011, 3, 16)),
    ("2011-03-15 17:30 maintenance", et(2011, 3, 15, 17, 30), None),
    ("2011-03-15 18:00 reopen", et(2011, 3, 15, 18), date(2011, 3, 16)),
    ("2011-03-18 Friday 16:30", et(2011, 3, 18, 16, 30), None),
    ("2012-11-16 last old Friday 16:14", et(2012, 11, 16, 16, 14), date(2012, 11, 16)),
    ("2012-11-16 last old Friday 16:20", et(2012, 11, 16, 16, 20), None),
    # 2012-11-19 to 2015-09-18: 17:15 close, halt 16:15-16:30
    ("2012-11-19 first new Monday 16:20 halt", et(2012, 11, 19, 16, 20), None),
    ("2012-11-19 16:45", et(2012, 11, 19, 16, 45), date(2012, 11, 19)),
    ("2012-11-19 17:14", et(2012, 11, 19, 17, 14), date(2012, 11, 19)),
    ("2012-11-19 17:15 close", et(2012, 11, 19, 17, 15), None),
    ("2013-10-11 Friday 17:10", et(2013, 10, 11, 17, 10), date(2013, 10, 11)),
    ("2015-09-18 Friday 17:10", et(2015, 9, 18, 17, 10), date(2015, 9, 18)),
    # 2015-09-21 to 2021-06-25: 17:00 close, the halt kept
    ("2015-09-21 17:05 closed", et(2015, 9, 21, 17, 5), None),
    ("2018-06-12 16:20 halt", et(2018, 6, 12, 16, 20), None),
    ("2018-06-12 16:40", et(2018, 6, 12, 16, 40), date(2018, 6, 12)),
    ("2021-06-25 last halt", et(2021, 6, 25, 16, 20), None),
    # from 2021-06-28: no halt
    ("2021-06-28 16:20", et(2021, 6, 28, 16, 20), date(2021, 6, 28)),
    # historical exceptions
    ("Thanksgiving 2013 11:00", et(2013, 11, 28, 11), date(2013, 11, 29)),
    ("Thanksgiving 2013 after 11:30 halt", et(2013, 11, 28, 11, 45), None),
    ("Thanksgiving 2014 12:45 (halt 13:00 now)", et(2014, 11, 27, 12, 45), date(2014, 11, 28)),
    ("Black Friday 2013 13:10", et(2013, 11, 29, 13, 10), date(2013, 11, 29)),
    ("Black Friday 2013 13:20", et(2013, 11, 29, 13, 20), None),
    ("Good Friday 2012 payrolls 09:00", et(2012, 4, 6, 9), date(2012, 4, 6)),
    ("Good Friday 2012 payrolls 09:20", et(2012, 4, 6, 9, 20), None),
    ("Good Friday 2024 closed", et(2024, 3, 29, 9), None),
    ("Sandy 2012-10-29 10:00", et(2012, 10, 29, 10), None),
    ("Sandy 2012-10-29 evening", et(2012, 10, 29, 20), date(2012, 10, 30)),
    ("Bush mourning 2018-12-05 09:00", et(2018, 12, 5, 9), date(2018, 12, 5)),
    ("Bush mourning 2018-12-05 10:00", et(2018, 12, 5, 10), None),
    (
        "New Year 2011 on a Saturday: Friday 2010-12-31 regular",
        et(2010, 12, 31, 12),
        date(2010, 12, 31),
    ),
    ("Christmas 2010 observed Friday 12-24", et(2010, 12, 24, 12), None),
]


@pytest.mark.parametrize(
    ("label", "t", "expected"), REGIME_PROBES, ids=[p[0] for p in REGIME_PROBES]
)
def test_historical_regimes_and_exceptions(
    cal: CmeGlobexEquityCalendar, label: str, t: int, expected: date | None
) -> None:
    session = cal.session_at(t)
    assert (session.trade_date if session else None) == expected, label


def test_the_old_evening_segment_and_the_holiday_morning_share_the_next_trade_date(
    cal: CmeGlobexEquityCalendar,
) -> None:
    # Wednesday 2010-11-24: 16:30-17:30 and 18:00-Thursday 11:30 (Thanksgiving) both belong to Friday.
    evening = cal.session_at(et(2010, 11, 24, 17))
    morning = cal.session_at(et(2010, 11, 25, 9))
    friday = cal.session_at(et(2010, 11, 26, 9))
    assert evening is not None
    assert morning is not None
    assert friday is not None
    assert evening.trade_date == morning.trade_date == friday.trade_date == date(2010, 11, 26)
    assert friday.close_epoch == et(2010, 11, 26, 13, 15)
    # After Friday's early close no evening segment; the week reopens Sunday 18:00.
    assert cal.next_session(friday.close_epoch).open_epoch == et(2010, 11, 28, 18)


def test_a_regime_must_be_well_formed() -> None:
    with pytest.raises(DomainError, match="pause must end before close"):
        DailyRegime(date(2020, 1, 1), time(16), (time(16, 15), time(16, 30)), None, "x")
    with pytest.raises(DomainError, match="evening segment"):
        DailyRegime(date(2020, 1, 1), time(17), None, (time(16, 30), time(17, 30)), "x")
    with pytest.raises(DomainError, match="cover the table"):
        CmeGlobexEquityCalendar((), date(2010, 1, 1), date(2010, 12, 31), CME_EQUITY_REGIMES[1:])


@pytest.mark.parametrize(
    ("entry_args", "message"),
    [
        ((date(2026, 11, 21), ExceptionKind.CLOSED, None, "x"), "Monday to Friday"),
        ((date(2026, 11, 20), ExceptionKind.CLOSED, time(13), "x"), "close time"),
        ((date(2026, 11, 20), ExceptionKind.HOLIDAY_HALT, None, "x"), "close time"),
        ((date(2026, 11, 20), ExceptionKind.EARLY_CLOSE, time(17, 30), "x"), r"\(00:00, 17:00\]"),
        ((date(2026, 11, 20), ExceptionKind.EARLY_CLOSE, time(13, 15), ""), "note"),
    ],
)
def test_malformed_exception_entry_is_refused(
    entry_args: tuple[date, ExceptionKind, time | None, str], message: str
) -> None:
    with pytest.raises(DomainError, match=message):
        SessionException(*entry_args)


def test_calendar_refuses_a_malformed_table() -> None:
    entry = SessionException(date(2026, 11, 20), ExceptionKind.CLOSED, None, "test")
    with pytest.raises(DomainError, match="listed twice"):
        CmeGlobexEquityCalendar((entry, entry))
    with pytest.raises(DomainError, match="outside the table"):
        CmeGlobexEquityCalendar((entry,), date(2027, 1, 1), date(2027, 12, 31))
    with pytest.raises(DomainError, match="after last day"):
        CmeGlobexEquityCalendar((), date(2027, 1, 2), date(2027, 1, 1))
    with pytest.raises(DomainError, match="has no session"):
        CmeGlobexEquityCalendar((), date(2026, 11, 21), date(2026, 11, 22))


def test_session_refuses_naive_reversed_or_inconsistent_bounds() -> None:
    good = make_session(date(2026, 11, 17), utc(2026, 11, 16, 23), utc(2026, 11, 17, 22))
    with pytest.raises(DomainError, match="aware UTC"):
        Session(good.trade_date, good.open.replace(tzinfo=None), good.close, 0, 0)
    with pytest.raises(DomainError, match="must precede"):
        make_session(good.trade_date, good.close, good.open)
    with pytest.raises(DomainError, match="epoch bounds"):
        Session(good.trade_date, good.open, good.close, good.open_epoch + 1, good.close_epoch)


@pytest.mark.parametrize(
    ("t", "trade_date", "open_utc", "close_utc"),
    [
        # Saturday noon (EST): the Saturday "session" [Fri 18:00, Sat 18:00).
        (et(2026, 11, 21, 12), date(2026, 11, 21), utc(2026, 11, 20, 23), utc(2026, 11, 21, 23)),
        # No 17:00 halt.
        (
            et(2026, 11, 17, 17, 30),
            date(2026, 11, 17),
            utc(2026, 11, 16, 23),
            utc(2026, 11, 17, 23),
        ),
        (et(2026, 11, 17, 18), date(2026, 11, 18), utc(2026, 11, 17, 23), utc(2026, 11, 18, 23)),
        # Christmas is a session too.
        (et(2025, 12, 25, 12), date(2025, 12, 25), utc(2025, 12, 24, 23), utc(2025, 12, 25, 23)),
        # DST days last 23 h and 25 h.
        (et(2025, 3, 9, 12), date(2025, 3, 9), utc(2025, 3, 8, 23), utc(2025, 3, 9, 22)),
        (et(2025, 11, 2, 12), date(2025, 11, 2), utc(2025, 11, 1, 22), utc(2025, 11, 2, 23)),
        # Far outside the CME table.
        (et(2031, 7, 4, 3), date(2031, 7, 4), utc(2031, 7, 3, 22), utc(2031, 7, 4, 22)),
    ],
)
def test_continuous_calendar_has_one_session_per_day_from_18_00_et(
    t: int, trade_date: date, open_utc: datetime, close_utc: datetime
) -> None:
    cont = ContinuousCalendar()
    session = cont.session_at(t)
    assert session == make_session(trade_date, open_utc, close_utc)
    assert cont.next_session(t) == session
    assert cont.trade_date(t) == trade_date


def test_continuous_calendar_sessions_tile_time_without_gaps() -> None:
    cont = ContinuousCalendar()
    t = et(2025, 2, 27, 18)
    for _ in range(20):
        session = cont.session_at(t)
        assert session.open_epoch == t
        assert cont.session_at(session.close_epoch - 1) == session
        t = session.close_epoch


@pytest.mark.parametrize(
    ("name", "cls"),
    [("cme_globex_equity", CmeGlobexEquityCalendar), ("none", ContinuousCalendar)],
)
def test_build_calendar_by_name(name: str, cls: type) -> None:
    built: SessionCalendar = build_calendar(name)
    assert isinstance(built, cls)
    assert built.name == name


@pytest.mark.parametrize("name", ["", "CME", "cme_globex", "None"])
def test_build_calendar_refuses_unknown_names(name: str) -> None:
    with pytest.raises(ValueError, match="unknown session calendar"):
        build_calendar(name)


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (datetime(2026, 11, 17, 17, 59, tzinfo=ET), date(2026, 11, 17)),
        (datetime(2026, 11, 17, 18, 0, tzinfo=ET), date(2026, 11, 18)),
        (datetime(2026, 11, 20, 17, 30, tzinfo=ET), date(2026, 11, 20)),
        (datetime(2026, 11, 20, 18, 0, tzinfo=ET), date(2026, 11, 23)),
        (datetime(2026, 11, 21, 12, 0, tzinfo=ET), date(2026, 11, 23)),
        (datetime(2026, 11, 22, 17, 59, tzinfo=ET), date(2026, 11, 23)),
        (datetime(2026, 11, 22, 18, 0, tzinfo=ET), date(2026, 11, 23)),
        # UTC input: 22:59Z is 17:59 EST, 23:00Z is 18:00 EST.
        (utc(2026, 11, 17, 22, 59), date(2026, 11, 17)),
        (utc(2026, 11, 17, 23, 0), date(2026, 11, 18)),
        # Summer: 18:00 EDT is 22:00Z.
        (utc(2025, 7, 15, 21, 59), date(2025, 7, 15)),
        (utc(2025, 7, 15, 22, 0), date(2025, 7, 16)),
        # The rule ignores holidays.
        (datetime(2025, 12, 25, 10, 0, tzinfo=ET), date(2025, 12, 25)),
    ],
)
def test_cme_trade_date_by_the_18_00_rule(t: datetime, expected: date) -> None:
    assert cme_trade_date(t) == expected


def test_cme_trade_date_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cme_trade_date(datetime(2026, 11, 17, 12))


@pytest.mark.parametrize(
    ("first", "count"),
    [
        (date(2009, 12, 31), (date(2027, 12, 31) - date(2010, 1, 1)).days + 2),  # the table
        (date(2020, 3, 8), 1),  # a spring-forward day alone
        (date(2020, 3, 7), 2),  # ... and the day before it
        (date(2020, 11, 1), 8),  # a fall-back day first
        (date(1990, 1, 1), 20_000),  # other rules (the 2007 change)
    ],
)
def test_the_day_bases_of_a_table_are_each_day_s_own(first: date, count: int) -> None:
    """The table is built from noon offsets looked up once a week; each day's base is the one
    ``_day_base`` computes for it alone."""
    expected = [calendar_module._day_base(first + timedelta(days=k)) for k in range(count)]
    assert calendar_module._day_bases(first, count) == expected


def test_calendars_of_one_table_share_its_layout_and_answer_alike() -> None:
    # A sweep builds a calendar per trial: the 18-year layout is computed once per process.
    first, second = CmeGlobexEquityCalendar(), CmeGlobexEquityCalendar()
    assert first._opens is second._opens
    assert first._dates is second._dates
    t = int(datetime(2024, 3, 11, 14, 0, tzinfo=UTC).timestamp())
    assert first.session_at(t) == second.session_at(t)
    # A table of its own is laid out afresh, and validated.
    other = CmeGlobexEquityCalendar((), date(2024, 1, 1), date(2024, 12, 31))
    assert other._opens is not first._opens
    with pytest.raises(DomainError, match="after last day"):
        CmeGlobexEquityCalendar((), date(2024, 1, 2), date(2024, 1, 1))
