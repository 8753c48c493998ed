"""The live schedule: session boundaries, IB Gateway's restart window and roll week."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.calendar import CmeGlobexEquityCalendar, ContinuousCalendar, SessionCalendar
from domain.contract import FutureContract
from domain.errors import CalendarCoverageError, DomainError
from domain.events import BoundaryKind, SessionBoundary
from domain.schedule import (
    Boundary,
    GateEdge,
    collapse_missed,
    next_boundary,
    next_restart_edge,
    next_roll_edge,
    restart_reason,
    restart_window,
    roll_block,
    roll_reason,
)

ET = ZoneInfo("America/New_York")
FLATTEN, CLOSE, OPEN = BoundaryKind.FLATTEN, BoundaryKind.CLOSE, BoundaryKind.OPEN
FIVE_MIN = timedelta(minutes=5)
CME = CmeGlobexEquityCalendar()
MESZ6 = FutureContract("MES", date(2026, 12, 18), "MESZ6")


def et(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=ET)


def epoch(t: datetime) -> int:
    return int(t.timestamp())


def chain(
    calendar: SessionCalendar, flatten: timedelta | None, start: datetime, count: int
) -> list[tuple[BoundaryKind, datetime, date]]:
    """``count`` boundaries after ``start``, each found from the previous one."""
    found: list[tuple[BoundaryKind, datetime, date]] = []
    after: int | Boundary = epoch(start)
    for _ in range(count):
        after = next_boundary(calendar, flatten, after)
        found.append((after.kind, after.ts, after.trade_date))
    return found


BOUNDARY_CASES = [
    (
        "Tuesday",
        CME,
        FIVE_MIN,
        et(2026, 11, 17, 10),
        [
            (FLATTEN, et(2026, 11, 17, 16, 55), date(2026, 11, 17)),
            (CLOSE, et(2026, 11, 17, 17), date(2026, 11, 17)),
            (OPEN, et(2026, 11, 17, 18), date(2026, 11, 18)),
            (FLATTEN, et(2026, 11, 18, 16, 55), date(2026, 11, 18)),
        ],
    ),
    (
        "Friday into the weekend",
        CME,
        FIVE_MIN,
        et(2026, 11, 20, 12),
        [
            (FLATTEN, et(2026, 11, 20, 16, 55), date(2026, 11, 20)),
            (CLOSE, et(2026, 11, 20, 17), date(2026, 11, 20)),
            (OPEN, et(2026, 11, 22, 18), date(2026, 11, 23)),
        ],
    ),
    (
        "Thanksgiving halt, then the early close of the day after",
        CME,
        FIVE_MIN,
        et(2026, 11, 26, 10),
        [
            (FLATTEN, et(2026, 11, 26, 12, 55), date(2026, 11, 27)),
            (CLOSE, et(2026, 11, 26, 13), date(2026, 11, 27)),
            (OPEN, et(2026, 11, 26, 18), date(2026, 11, 27)),
            (FLATTEN, et(2026, 11, 27, 13, 10), date(2026, 11, 27)),
            (CLOSE, et(2026, 11, 27, 13, 15), date(2026, 11, 27)),
            (OPEN, et(2026, 11, 29, 18), date(2026, 11, 30)),
        ],
    ),
    (
        "Christmas Eve early close, Christmas closed",
        CME,
        FIVE_MIN,
        et(2026, 12, 24, 10),
        [
            (FLATTEN, et(2026, 12, 24, 13, 10), date(2026, 12, 24)),
            (CLOSE, et(2026, 12, 24, 13, 15), date(2026, 12, 24)),
            (OPEN, et(2026, 12, 27, 18), date(2026, 12, 28)),
        ],
    ),
    (
        "DST ends 2026-11-01: Friday 17:00 EDT, Sunday 18:00 EST",
        CME,
        FIVE_MIN,
        et(2026, 10, 30, 17, 30),
        [
            (OPEN, datetime(2026, 11, 1, 23, tzinfo=UTC), date(2026, 11, 2)),
            (FLATTEN, datetime(2026, 11, 2, 21, 55, tzinfo=UTC), date(2026, 11, 2)),
            (CLOSE, datetime(2026, 11, 2, 22, tzinfo=UTC), date(2026, 11, 2)),
        ],
    ),
    (
        "flatten None",
        CME,
        None,
        et(2026, 11, 17, 10),
        [
            (CLOSE, et(2026, 11, 17, 17), date(2026, 11, 17)),
            (OPEN, et(2026, 11, 17, 18), date(2026, 11, 18)),
            (CLOSE, et(2026, 11, 18, 17), date(2026, 11, 18)),
        ],
    ),
    (
        "flatten zero adds nothing to the close",
        CME,
        timedelta(0),
        et(2026, 11, 17, 10),
        [
            (CLOSE, et(2026, 11, 17, 17), date(2026, 11, 17)),
            (OPEN, et(2026, 11, 17, 18), date(2026, 11, 18)),
        ],
    ),
    (
        "flatten longer than the session: no FLATTEN",
        CME,
        timedelta(hours=24),
        et(2026, 11, 17, 10),
        [
            (CLOSE, et(2026, 11, 17, 17), date(2026, 11, 17)),
            (OPEN, et(2026, 11, 17, 18), date(2026, 11, 18)),
            (CLOSE, et(2026, 11, 18, 17), date(2026, 11, 18)),
        ],
    ),
    (
        "calendar none: CLOSE then OPEN at the same 18:00 ET",
        ContinuousCalendar(),
        FIVE_MIN,
        et(2026, 11, 21, 10),  # a Saturday: the continuous calendar has no weekend
        [
            (FLATTEN, et(2026, 11, 21, 17, 55), date(2026, 11, 21)),
            (CLOSE, et(2026, 11, 21, 18), date(2026, 11, 21)),
            (OPEN, et(2026, 11, 21, 18), date(2026, 11, 22)),
            (FLATTEN, et(2026, 11, 22, 17, 55), date(2026, 11, 22)),
        ],
    ),
]


@pytest.mark.parametrize(
    ("calendar", "flatten", "start", "expected"),
    [case[1:] for case in BOUNDARY_CASES],
    ids=[case[0] for case in BOUNDARY_CASES],
)
def test_boundaries_follow_the_calendar(
    calendar: SessionCalendar,
    flatten: timedelta | None,
    start: datetime,
    expected: list[tuple[BoundaryKind, datetime, date]],
) -> None:
    assert chain(calendar, flatten, start, len(expected)) == expected


@pytest.mark.parametrize(
    ("calendar", "after", "expected"),
    [
        (CME, et(2026, 11, 17, 16, 55), (CLOSE, et(2026, 11, 17, 17))),
        (CME, et(2026, 11, 17, 17), (OPEN, et(2026, 11, 17, 18))),
        (CME, et(2026, 11, 17, 18), (FLATTEN, et(2026, 11, 18, 16, 55))),
        (ContinuousCalendar(), et(2026, 11, 17, 18), (FLATTEN, et(2026, 11, 18, 17, 55))),
    ],
)
def test_an_epoch_excludes_the_boundaries_at_that_second(
    calendar: SessionCalendar, after: datetime, expected: tuple[BoundaryKind, datetime]
) -> None:
    found = next_boundary(calendar, FIVE_MIN, epoch(after))
    assert (found.kind, found.ts) == expected


def test_a_close_is_followed_by_the_open_at_the_same_second_on_the_continuous_calendar() -> None:
    close = next_boundary(ContinuousCalendar(), None, epoch(et(2026, 11, 17, 12)))
    following = next_boundary(ContinuousCalendar(), None, close)
    assert (close.kind, following.kind) == (CLOSE, OPEN)
    assert close.epoch == following.epoch
    assert close.order < following.order


@pytest.mark.parametrize(
    ("after", "ends"),
    [
        (et(2026, 11, 17, 16, 59), True),  # a regular close
        (et(2026, 11, 26, 12, 59), False),  # Thanksgiving halt: the morning is Friday's trade date
        (et(2026, 11, 27, 13, 14), True),  # the early close on the Friday after
        (et(2027, 12, 31, 16, 59), True),  # the table's last session
    ],
)
def test_a_close_says_whether_it_ends_its_trade_date(after: datetime, ends: bool) -> None:
    close = next_boundary(CME, None, epoch(after))
    assert close.kind is CLOSE
    assert close.ends_trade_date is ends


def test_the_boundary_becomes_the_engines_event() -> None:
    close = next_boundary(CME, None, epoch(et(2026, 11, 17, 10)))
    assert close.event() == SessionBoundary(CLOSE, et(2026, 11, 17, 17), date(2026, 11, 17))
    assert close.ts.tzinfo is UTC


def test_the_end_of_the_calendar_table_raises_a_coverage_error() -> None:
    close = next_boundary(CME, FIVE_MIN, next_boundary(CME, FIVE_MIN, epoch(et(2027, 12, 31, 10))))
    assert (close.kind, close.ts) == (CLOSE, et(2027, 12, 31, 17))
    with pytest.raises(CalendarCoverageError, match="extend the exception table"):
        next_boundary(CME, FIVE_MIN, close)
    with pytest.raises(CalendarCoverageError, match=r"cme_globex_equity covers .* New York, not "):
        next_boundary(CME, FIVE_MIN, epoch(et(2030, 1, 2, 10)))


def test_a_negative_flatten_is_refused() -> None:
    with pytest.raises(DomainError, match="flatten_before_close must not be negative"):
        next_boundary(CME, timedelta(minutes=-5), epoch(et(2026, 11, 17, 10)))


def _b(kind: BoundaryKind, at: datetime) -> Boundary:
    return Boundary(kind, epoch(at), at.date())


F17, C17, O17 = (
    _b(FLATTEN, et(2026, 11, 17, 16, 55)),
    _b(CLOSE, et(2026, 11, 17, 17)),
    _b(OPEN, et(2026, 11, 17, 18)),
)
F18, C18, O18 = (
    _b(FLATTEN, et(2026, 11, 18, 16, 55)),
    _b(CLOSE, et(2026, 11, 18, 17)),
    _b(OPEN, et(2026, 11, 18, 18)),
)


@pytest.mark.parametrize(
    ("missed", "kept"),
    [
        ((), ()),
        ((C17,), (C17,)),
        ((F17, C17, O17), (F17, C17, O17)),
        ((F17, C17, O17, F18, C18, O18), (F18, C18, O18)),
        ((F17, C17, O17, F18), (C17, O17, F18)),
        ((C17, O17, F18, C18), (O17, F18, C18)),
        ((O17, C17, F17), (F17, C17, O17)),  # input order does not matter
    ],
)
def test_missed_boundaries_collapse_to_the_last_of_each_kind(
    missed: tuple[Boundary, ...], kept: tuple[Boundary, ...]
) -> None:
    assert collapse_missed(missed) == kept


# ------------------------------------------------------------------ restart window

T2355, T2345, BLOCK = time(23, 55), time(23, 45), timedelta(minutes=10)


@pytest.mark.parametrize(
    ("at", "restart", "window"),
    [
        # across midnight: 23:55 +- 10 min is 23:45-00:05
        (et(2026, 11, 17, 12), T2355, (et(2026, 11, 17, 23, 45), et(2026, 11, 18, 0, 5))),
        (et(2026, 11, 17, 23, 45), T2355, (et(2026, 11, 17, 23, 45), et(2026, 11, 18, 0, 5))),
        (et(2026, 11, 18, 0, 4), T2355, (et(2026, 11, 17, 23, 45), et(2026, 11, 18, 0, 5))),
        (et(2026, 11, 18, 0, 5), T2355, (et(2026, 11, 18, 23, 45), et(2026, 11, 19, 0, 5))),
        # an early restart seen late in the day is tomorrow's
        (et(2026, 11, 17, 23), time(0, 30), (et(2026, 11, 18, 0, 20), et(2026, 11, 18, 0, 40))),
    ],
)
def test_the_restart_window_contains_the_instant_or_is_the_next(
    at: datetime, restart: time, window: tuple[datetime, datetime]
) -> None:
    assert restart_window(at, restart, BLOCK) == window


@pytest.mark.parametrize(
    ("at", "restart", "start_utc"),
    [
        (et(2026, 3, 7, 12), T2345, datetime(2026, 3, 8, 4, 35, tzinfo=UTC)),  # EST
        (et(2026, 3, 8, 12), T2345, datetime(2026, 3, 9, 3, 35, tzinfo=UTC)),  # EDT
        (et(2026, 10, 31, 12), T2345, datetime(2026, 11, 1, 3, 35, tzinfo=UTC)),  # EDT
        (et(2026, 11, 1, 12), T2345, datetime(2026, 11, 2, 4, 35, tzinfo=UTC)),  # EST
        # 02:30 does not exist on 2026-03-08: read with the EST offset, i.e. 03:30 EDT
        (et(2026, 3, 8, 0), time(2, 30), datetime(2026, 3, 8, 7, 20, tzinfo=UTC)),
    ],
)
def test_the_restart_window_follows_new_york_daylight_saving_time(
    at: datetime, restart: time, start_utc: datetime
) -> None:
    start, end = restart_window(at, restart, BLOCK)
    assert (start, end) == (start_utc, start_utc + 2 * BLOCK)


@pytest.mark.parametrize(
    ("at", "edge"),
    [
        (et(2026, 11, 17, 12), GateEdge(et(2026, 11, 17, 23, 45), blocked=True)),
        (et(2026, 11, 17, 23, 45), GateEdge(et(2026, 11, 18, 0, 5), blocked=False)),
        (et(2026, 11, 18, 0, 4), GateEdge(et(2026, 11, 18, 0, 5), blocked=False)),
        (et(2026, 11, 18, 0, 5), GateEdge(et(2026, 11, 18, 23, 45), blocked=True)),
    ],
)
def test_the_next_restart_edge_is_strictly_later(at: datetime, edge: GateEdge) -> None:
    assert next_restart_edge(at, T2355, BLOCK) == edge


def test_the_restart_reason_names_the_restart_and_the_window() -> None:
    window = restart_window(et(2026, 11, 17, 12), T2345, BLOCK)
    assert restart_reason(T2345, window) == (
        "IB Gateway restarts at 23:45 New York time: no entries 23:35-23:55"
    )


@pytest.mark.parametrize(
    ("at", "restart", "block", "message"),
    [
        (datetime(2026, 11, 17, 12), T2345, BLOCK, "needs a timezone-aware instant"),
        (et(2026, 11, 17, 12), time(23, 45, tzinfo=UTC), BLOCK, "naive New York wall time"),
        (et(2026, 11, 17, 12), T2345, timedelta(0), "must be positive"),
        (et(2026, 11, 17, 12), T2345, timedelta(hours=12), "daily windows do not overlap"),
    ],
)
def test_bad_restart_input_is_refused(
    at: datetime, restart: time, block: timedelta, message: str
) -> None:
    with pytest.raises(DomainError, match=message):
        restart_window(at, restart, block)


# ------------------------------------------------------------------ roll week


@pytest.mark.parametrize(
    ("at", "contract"),
    [
        (et(2026, 12, 13, 17, 59), None),
        (et(2026, 12, 13, 18), MESZ6),  # roll starts Sunday 18:00 ET
        (et(2026, 12, 18, 9, 29), MESZ6),
        (et(2026, 12, 18, 9, 30), None),  # MESZ6 stops trading
        (et(2026, 11, 17, 12), None),
    ],
)
def test_roll_week_blocks_from_the_roll_start_until_trading_stops(
    at: datetime, contract: FutureContract | None
) -> None:
    assert roll_block("MES", at) == contract


@pytest.mark.parametrize(
    ("at", "edge"),
    [
        (et(2026, 12, 1, 12), GateEdge(et(2026, 12, 13, 18), blocked=True)),
        (et(2026, 12, 13, 18), GateEdge(et(2026, 12, 18, 9, 30), blocked=False)),
        (et(2026, 12, 18, 9, 30), GateEdge(et(2027, 3, 14, 18), blocked=True)),  # MESH7
    ],
)
def test_the_next_roll_edge_is_strictly_later(at: datetime, edge: GateEdge) -> None:
    assert next_roll_edge("MES", at) == edge


def test_the_roll_reason_names_the_contract_and_when_it_stops() -> None:
    assert roll_reason(MESZ6) == (
        "roll week of MESZ6: no entries until it stops trading 2026-12-18 09:30 ET"
    )


def test_a_naive_instant_is_refused_for_roll_week() -> None:
    with pytest.raises(DomainError, match="roll_block: needs a timezone-aware instant"):
        roll_block("MES", datetime(2026, 12, 14, 12))
    with pytest.raises(DomainError, match="next_roll_edge: needs a timezone-aware instant"):
        next_roll_edge("MES", datetime(2026, 12, 14, 12))
