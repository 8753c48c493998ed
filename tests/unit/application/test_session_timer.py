"""The session timer: boundaries and entry gates on the wall clock, whatever the bars do."""

from __future__ import annotations

import asyncio
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from adapters.simulated.clock import ManualClock
from application.session_timer import SessionTimer
from domain.calendar import CmeGlobexEquityCalendar, ContinuousCalendar, SessionCalendar
from domain.events import BoundaryKind, EngineEvent, EntryGateChanged, SessionBoundary

ET = ZoneInfo("America/New_York")
FLATTEN, CLOSE, OPEN = BoundaryKind.FLATTEN, BoundaryKind.CLOSE, BoundaryKind.OPEN
FIVE_MIN = timedelta(minutes=5)
TEN_MIN = timedelta(minutes=10)
ONE_DAY = timedelta(days=1)


def et(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=ET)


DEADLINE_S = 10.0  # generous: the timer sleeps again as soon as it has handled a wake


async def drive(
    clock: ManualClock,
    timer: Awaitable[None],
    end: datetime,
    off_time: dict[datetime, datetime] | None = None,
    sleeps: list[float] | None = None,
) -> None:
    """Run ``timer`` on ``clock``, moving time to the end of each sleep, until a sleep would end
    after ``end``; then cancel it (its CancelledError comes out). ``sleeps`` gets how long each
    sleep that ended asked for.

    ``off_time`` maps the instant a sleep should end at to the instant it wakes at instead (once):
    earlier is a clock that wakes early, later one that jumps (a suspended machine).
    """
    task = asyncio.ensure_future(timer)
    off = dict(off_time or {})
    sleeps = sleeps if sleeps is not None else []
    try:
        while True:
            watch = asyncio.ensure_future(clock.sleepers(1))
            try:
                await asyncio.wait({task, watch}, timeout=DEADLINE_S, return_when=FIRST_COMPLETED)
            finally:
                watch.cancel()
            if task.done():
                task.result()
                raise AssertionError("the timer ended by itself")
            deadline = clock.next_deadline
            if deadline is None:
                raise AssertionError(f"the timer did not sleep again within {DEADLINE_S} s")
            if deadline > end:
                break
            sleeps.append(clock.sleeping[0])
            wake = off.pop(deadline, deadline)
            clock.set(wake)
            if wake < deadline:
                clock.wake_next()
    finally:
        task.cancel()
    await task


class Run:
    """What a timer run produced."""

    def __init__(self) -> None:
        self.events: list[EngineEvent] = []
        self.closes: list[date] = []
        self.problems: list[str] = []
        self.sleeps: list[float] = []

    async def on_close(self, trade_date: date) -> None:
        self.closes.append(trade_date)

    @property
    def boundaries(self) -> list[tuple[BoundaryKind, datetime, date]]:
        return [(e.kind, e.ts, e.trade_date) for e in self.events if isinstance(e, SessionBoundary)]

    @property
    def gates(self) -> list[tuple[str, str | None, datetime]]:
        return [(e.gate, e.reason, e.ts) for e in self.events if isinstance(e, EntryGateChanged)]


async def run_timer(
    start: datetime,
    end: datetime,
    *,
    off_time: dict[datetime, datetime] | None = None,
    calendar: SessionCalendar | None = None,
    flatten: timedelta | None = FIVE_MIN,
    restart_time: time | None = None,
    restart_block: timedelta = TEN_MIN,
    roll_symbol: str | None = None,
    max_sleep: timedelta = timedelta(minutes=1),
    run: Run | None = None,
) -> Run:
    run = run if run is not None else Run()
    clock = ManualClock(start)
    timer = SessionTimer(
        calendar=calendar if calendar is not None else CmeGlobexEquityCalendar(),
        flatten_before_close=flatten,
        clock=clock,
        sink=run.events.append,
        restart_time=restart_time,
        restart_block=restart_block,
        roll_symbol=roll_symbol,
        on_close=run.on_close,
        on_problem=run.problems.append,
        max_sleep=max_sleep,
    )
    with pytest.raises(asyncio.CancelledError):
        await drive(clock, timer.run(), end, off_time, run.sleeps)
    return run


SESSION_CASES = [
    (
        "Tuesday",
        CmeGlobexEquityCalendar(),
        FIVE_MIN,
        et(2026, 11, 17, 10),
        et(2026, 11, 18, 10),
        [
            (FLATTEN, et(2026, 11, 17, 16, 55), date(2026, 11, 17)),
            (CLOSE, et(2026, 11, 17, 17), date(2026, 11, 17)),
            (OPEN, et(2026, 11, 17, 18), date(2026, 11, 18)),
        ],
        [date(2026, 11, 17)],
    ),
    (
        "Friday into the weekend",
        CmeGlobexEquityCalendar(),
        FIVE_MIN,
        et(2026, 11, 20, 12),
        et(2026, 11, 23, 0),
        [
            (FLATTEN, et(2026, 11, 20, 16, 55), date(2026, 11, 20)),
            (CLOSE, et(2026, 11, 20, 17), date(2026, 11, 20)),
            (OPEN, et(2026, 11, 22, 18), date(2026, 11, 23)),
        ],
        [date(2026, 11, 20)],
    ),
    (
        "Thanksgiving halt: no summary until the trade date ends at Friday's early close",
        CmeGlobexEquityCalendar(),
        FIVE_MIN,
        et(2026, 11, 26, 10),
        et(2026, 11, 27, 14),
        [
            (FLATTEN, et(2026, 11, 26, 12, 55), date(2026, 11, 27)),
            (CLOSE, et(2026, 11, 26, 13), date(2026, 11, 27)),
            (OPEN, et(2026, 11, 26, 18), date(2026, 11, 27)),
            (FLATTEN, et(2026, 11, 27, 13, 10), date(2026, 11, 27)),
            (CLOSE, et(2026, 11, 27, 13, 15), date(2026, 11, 27)),
        ],
        [date(2026, 11, 27)],
    ),
    (
        "DST ends 2026-11-01",
        CmeGlobexEquityCalendar(),
        FIVE_MIN,
        et(2026, 10, 30, 16),
        et(2026, 11, 1, 19),
        [
            (FLATTEN, datetime(2026, 10, 30, 20, 55, tzinfo=UTC), date(2026, 10, 30)),
            (CLOSE, datetime(2026, 10, 30, 21, tzinfo=UTC), date(2026, 10, 30)),
            (OPEN, datetime(2026, 11, 1, 23, tzinfo=UTC), date(2026, 11, 2)),
        ],
        [date(2026, 10, 30)],
    ),
    (
        "calendar none: CLOSE then OPEN at the same instant",
        ContinuousCalendar(),
        FIVE_MIN,
        et(2026, 11, 17, 10),
        et(2026, 11, 18, 10),
        [
            (FLATTEN, et(2026, 11, 17, 17, 55), date(2026, 11, 17)),
            (CLOSE, et(2026, 11, 17, 18), date(2026, 11, 17)),
            (OPEN, et(2026, 11, 17, 18), date(2026, 11, 18)),
        ],
        [date(2026, 11, 17)],
    ),
    (
        "flatten None",
        CmeGlobexEquityCalendar(),
        None,
        et(2026, 11, 17, 10),
        et(2026, 11, 18, 10),
        [
            (CLOSE, et(2026, 11, 17, 17), date(2026, 11, 17)),
            (OPEN, et(2026, 11, 17, 18), date(2026, 11, 18)),
        ],
        [date(2026, 11, 17)],
    ),
]


@pytest.mark.parametrize(
    ("calendar", "flatten", "start", "end", "boundaries", "closes"),
    [case[1:] for case in SESSION_CASES],
    ids=[case[0] for case in SESSION_CASES],
)
async def test_boundaries_are_sent_on_time_once_each(
    calendar: SessionCalendar,
    flatten: timedelta | None,
    start: datetime,
    end: datetime,
    boundaries: list[tuple[BoundaryKind, datetime, date]],
    closes: list[date],
) -> None:
    run = await run_timer(start, end, calendar=calendar, flatten=flatten)
    assert run.boundaries == boundaries
    assert run.closes == closes
    assert run.gates == []  # no gate enabled
    assert run.problems == []


async def test_the_timer_sleeps_exactly_to_the_next_boundary() -> None:
    run = await run_timer(et(2026, 11, 17, 10), et(2026, 11, 17, 18), max_sleep=ONE_DAY)
    assert run.sleeps == [6 * 3600 + 55 * 60, 5 * 60, 3600]


async def test_no_sleep_is_longer_than_max_sleep() -> None:
    run = await run_timer(
        et(2026, 11, 17, 10), et(2026, 11, 17, 18), max_sleep=timedelta(minutes=1)
    )
    assert max(run.sleeps) == 60
    assert [kind for kind, _, _ in run.boundaries] == [FLATTEN, CLOSE, OPEN]


@pytest.mark.parametrize(
    "start",
    [et(2026, 11, 17, 17), et(2026, 11, 17, 17, 30)],
    ids=["exactly at the close", "during the halt"],
)
async def test_start_sends_no_past_boundary_but_the_gates_current_state(start: datetime) -> None:
    run = await run_timer(
        start,
        et(2026, 11, 17, 18, 30),
        restart_time=time(23, 45),
        roll_symbol="MES",
    )
    assert run.gates[:2] == [("ib_restart", None, start), ("roll", None, start)]
    assert run.boundaries == [(OPEN, et(2026, 11, 17, 18), date(2026, 11, 18))]
    assert run.closes == []


async def test_an_early_wake_sends_no_boundary_twice() -> None:
    run = await run_timer(
        et(2026, 11, 17, 10),
        et(2026, 11, 17, 18, 30),
        off_time={
            et(2026, 11, 17, 16, 55): et(2026, 11, 17, 16, 54, 30),  # wakes 30 s early
            et(2026, 11, 17, 18): et(2026, 11, 17, 17),  # returns at once after the close
        },
        max_sleep=ONE_DAY,
    )
    assert run.boundaries == [
        (FLATTEN, et(2026, 11, 17, 16, 55), date(2026, 11, 17)),
        (CLOSE, et(2026, 11, 17, 17), date(2026, 11, 17)),
        (OPEN, et(2026, 11, 17, 18), date(2026, 11, 18)),
    ]
    assert run.closes == [date(2026, 11, 17)]
    assert run.sleeps == [6 * 3600 + 55 * 60, 30, 5 * 60, 3600, 3600]


LATE_WAKES = [
    (
        "over one close: nothing to collapse",
        et(2026, 11, 18, 10),
        et(2026, 11, 18, 17, 30),
        [
            (FLATTEN, et(2026, 11, 17, 16, 55), date(2026, 11, 17)),
            (CLOSE, et(2026, 11, 17, 17), date(2026, 11, 17)),
            (OPEN, et(2026, 11, 17, 18), date(2026, 11, 18)),
            (FLATTEN, et(2026, 11, 18, 16, 55), date(2026, 11, 18)),
            (CLOSE, et(2026, 11, 18, 17), date(2026, 11, 18)),
        ],
        [date(2026, 11, 17), date(2026, 11, 18)],
    ),
    (
        "over two days: the last of each kind",
        et(2026, 11, 19, 17, 30),
        et(2026, 11, 19, 18, 30),
        [
            (OPEN, et(2026, 11, 18, 18), date(2026, 11, 19)),
            (FLATTEN, et(2026, 11, 19, 16, 55), date(2026, 11, 19)),
            (CLOSE, et(2026, 11, 19, 17), date(2026, 11, 19)),
            (OPEN, et(2026, 11, 19, 18), date(2026, 11, 20)),
        ],
        [date(2026, 11, 19)],
    ),
]


@pytest.mark.parametrize(
    ("wake", "end", "boundaries", "closes"),
    [case[1:] for case in LATE_WAKES],
    ids=[case[0] for case in LATE_WAKES],
)
async def test_a_late_wake_sends_the_missed_boundaries_in_order(
    wake: datetime,
    end: datetime,
    boundaries: list[tuple[BoundaryKind, datetime, date]],
    closes: list[date],
) -> None:
    run = await run_timer(
        et(2026, 11, 17, 10), end, off_time={et(2026, 11, 17, 16, 55): wake}, max_sleep=ONE_DAY
    )
    assert run.boundaries == boundaries
    assert run.closes == closes


async def test_a_failing_on_close_does_not_stop_the_timer() -> None:
    calls: list[date] = []

    async def failing(trade_date: date) -> None:
        calls.append(trade_date)
        raise RuntimeError("telegram is down")

    events: list[EngineEvent] = []
    clock = ManualClock(et(2026, 11, 17, 10))
    timer = SessionTimer(
        calendar=CmeGlobexEquityCalendar(),
        flatten_before_close=None,
        clock=clock,
        sink=events.append,
        restart_time=None,
        restart_block=TEN_MIN,
        roll_symbol=None,
        on_close=failing,
    )
    with pytest.raises(asyncio.CancelledError):
        await drive(clock, timer.run(), et(2026, 11, 18, 18, 30))
    assert calls == [date(2026, 11, 17), date(2026, 11, 18)]
    assert [e.ts for e in events if isinstance(e, SessionBoundary)] == [
        et(2026, 11, 17, 17),
        et(2026, 11, 17, 18),
        et(2026, 11, 18, 17),
        et(2026, 11, 18, 18),
    ]


RESTART_REASON_2345 = "IB Gateway restarts at 23:45 New York time: no entries 23:35-23:55"


@pytest.mark.parametrize(
    ("start", "end", "boundaries", "gates"),
    [
        (  # the table's last close, then nothing
            et(2027, 12, 31, 10),
            et(2028, 1, 2, 12),
            [
                (FLATTEN, et(2027, 12, 31, 16, 55), date(2027, 12, 31)),
                (CLOSE, et(2027, 12, 31, 17), date(2027, 12, 31)),
            ],
            [
                ("ib_restart", None, et(2027, 12, 31, 10)),
                ("ib_restart", RESTART_REASON_2345, et(2027, 12, 31, 23, 35)),
                ("ib_restart", None, et(2027, 12, 31, 23, 55)),
                ("ib_restart", RESTART_REASON_2345, et(2028, 1, 1, 23, 35)),
                ("ib_restart", None, et(2028, 1, 1, 23, 55)),
            ],
        ),
        (  # started outside the table
            et(2030, 1, 2, 10),
            et(2030, 1, 3, 10),
            [],
            [
                ("ib_restart", None, et(2030, 1, 2, 10)),
                ("ib_restart", RESTART_REASON_2345, et(2030, 1, 2, 23, 35)),
                ("ib_restart", None, et(2030, 1, 2, 23, 55)),
            ],
        ),
    ],
    ids=["end of the table", "outside the table"],
)
async def test_a_coverage_error_is_reported_once_and_gates_keep_working(
    start: datetime,
    end: datetime,
    boundaries: list[tuple[BoundaryKind, datetime, date]],
    gates: list[tuple[str, str | None, datetime]],
) -> None:
    run = await run_timer(start, end, restart_time=time(23, 45))
    assert run.boundaries == boundaries
    assert run.gates == gates
    assert len(run.problems) == 1
    assert "session timer stopped" in run.problems[0]
    assert "cme_globex_equity" in run.problems[0]


RESTART_REASON_2355 = "IB Gateway restarts at 23:55 New York time: no entries 23:45-00:05"

RESTART_CASES = [
    (
        "across midnight",
        time(23, 55),
        TEN_MIN,
        et(2026, 11, 17, 12),
        et(2026, 11, 18, 12),
        [
            ("ib_restart", None, et(2026, 11, 17, 12)),
            ("ib_restart", RESTART_REASON_2355, et(2026, 11, 17, 23, 45)),
            ("ib_restart", None, et(2026, 11, 18, 0, 5)),
        ],
    ),
    (
        "started inside the window",
        time(23, 55),
        TEN_MIN,
        et(2026, 11, 17, 23, 50),
        et(2026, 11, 18, 12),
        [
            ("ib_restart", RESTART_REASON_2355, et(2026, 11, 17, 23, 50)),
            ("ib_restart", None, et(2026, 11, 18, 0, 5)),
        ],
    ),
    (
        "DST ends 2026-11-01: 23:35 EDT, then 23:35 EST",
        time(23, 45),
        TEN_MIN,
        et(2026, 10, 31, 12),
        et(2026, 11, 2, 12),
        [
            ("ib_restart", None, et(2026, 10, 31, 12)),
            ("ib_restart", RESTART_REASON_2345, datetime(2026, 11, 1, 3, 35, tzinfo=UTC)),
            ("ib_restart", None, datetime(2026, 11, 1, 3, 55, tzinfo=UTC)),
            ("ib_restart", RESTART_REASON_2345, datetime(2026, 11, 2, 4, 35, tzinfo=UTC)),
            ("ib_restart", None, datetime(2026, 11, 2, 4, 55, tzinfo=UTC)),
        ],
    ),
    (
        "a zero block disables the gate",
        time(23, 55),
        timedelta(0),
        et(2026, 11, 17, 12),
        et(2026, 11, 18, 12),
        [],
    ),
]


@pytest.mark.parametrize(
    ("restart_time", "block", "start", "end", "gates"),
    [case[1:] for case in RESTART_CASES],
    ids=[case[0] for case in RESTART_CASES],
)
async def test_the_restart_gate_closes_around_ib_gateways_restart(
    restart_time: time,
    block: timedelta,
    start: datetime,
    end: datetime,
    gates: list[tuple[str, str | None, datetime]],
) -> None:
    run = await run_timer(start, end, restart_time=restart_time, restart_block=block)
    assert run.gates == gates


async def test_the_roll_gate_closes_for_the_roll_week_of_mesz6() -> None:
    start, end = et(2026, 12, 13, 12), et(2026, 12, 18, 12)
    run = await run_timer(start, end, roll_symbol="MES")
    assert run.gates == [
        ("roll", None, start),
        (
            "roll",
            "roll week of MESZ6: no entries until it stops trading 2026-12-18 09:30 ET",
            et(2026, 12, 13, 18),
        ),
        ("roll", None, et(2026, 12, 18, 9, 30)),
    ]
    assert [kind for kind, _, _ in run.boundaries] == [OPEN] + [FLATTEN, CLOSE, OPEN] * 4


MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("flatten", "restart_block", "roll_symbol", "max_sleep", "message"),
    [
        (-FIVE_MIN, TEN_MIN, None, MINUTE, "flatten_before_close must not be negative"),
        (None, -MINUTE, None, MINUTE, "restart_block must not be negative"),
        (None, TEN_MIN, "", MINUTE, "roll_symbol must be a symbol"),
        (None, TEN_MIN, None, timedelta(0), "max_sleep must be positive"),
        (None, timedelta(hours=12), None, MINUTE, "daily windows do not overlap"),
    ],
)
def test_bad_timer_arguments_are_refused(
    flatten: timedelta | None,
    restart_block: timedelta,
    roll_symbol: str | None,
    max_sleep: timedelta,
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        SessionTimer(
            calendar=ContinuousCalendar(),
            flatten_before_close=flatten,
            clock=ManualClock(et(2026, 11, 17, 12)),
            sink=lambda event: None,
            restart_time=time(23, 45),
            restart_block=restart_block,
            roll_symbol=roll_symbol,
            max_sleep=max_sleep,
        )
