"""The session-aware stale-bar watchdog on the real CME calendar and the continuous one."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from adapters.ibkr.staleness import Freshness, StaleBarWatchdog, Staleness
from domain.calendar import CmeGlobexEquityCalendar, ContinuousCalendar

ET = ZoneInfo("America/New_York")


def et(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    """Epoch seconds of an America/New_York wall time."""
    return int(datetime(y, mo, d, h, mi, s, tzinfo=ET).timestamp())


@pytest.fixture(scope="module")
def cme() -> CmeGlobexEquityCalendar:
    return CmeGlobexEquityCalendar()


def watchdog(
    cal: CmeGlobexEquityCalendar | ContinuousCalendar, last_bar_end: int
) -> StaleBarWatchdog:
    dog = StaleBarWatchdog(cal, bar_seconds=5, grace_s=30.0)
    dog.note_bar(last_bar_end)
    return dog


# (what, last bar end, first silent instant, last silent instant) — all closed by the calendar.
CLOSURES = [
    ("weekend", et(2026, 11, 20, 17), et(2026, 11, 20, 17), et(2026, 11, 22, 17, 59, 59)),
    ("daily halt", et(2026, 11, 17, 17), et(2026, 11, 17, 17), et(2026, 11, 17, 17, 59, 59)),
    (
        "Thanksgiving 2025 holiday halt 13:00",
        et(2025, 11, 27, 13),
        et(2025, 11, 27, 13),
        et(2025, 11, 27, 17, 59, 59),
    ),
    (
        "Christmas Eve early close 13:15 through Christmas Day 2025",
        et(2025, 12, 24, 13, 15),
        et(2025, 12, 24, 13, 15),
        et(2025, 12, 25, 17, 59, 59),
    ),
    (
        "Good Friday 2026 09:15 close through the weekend",
        et(2026, 4, 3, 9, 15),
        et(2026, 4, 3, 9, 15),
        et(2026, 4, 5, 17, 59, 59),
    ),
    (
        "New Year's Day 2026 (Thursday closed)",
        et(2025, 12, 31, 17),
        et(2025, 12, 31, 17),
        et(2026, 1, 1, 17, 59, 59),
    ),
]


@pytest.mark.parametrize(
    ("what", "last_bar", "first", "last"), CLOSURES, ids=[c[0] for c in CLOSURES]
)
def test_silence_while_the_calendar_is_closed_is_quiet(
    cme: CmeGlobexEquityCalendar, what: str, last_bar: int, first: int, last: int
) -> None:
    dog = watchdog(cme, last_bar)
    probes = [*range(first, last, 607), last]  # every ~10 min, plus the very last second
    verdicts = {dog.check(t).state for t in probes}
    assert verdicts == {Freshness.QUIET}, what
    assert dog.stale_checks == 0


@pytest.mark.parametrize(
    ("what", "last_bar", "reopen"),
    [
        ("Sunday open after the weekend", et(2026, 11, 20, 17), et(2026, 11, 22, 18)),
        ("after the daily halt", et(2026, 11, 17, 17), et(2026, 11, 17, 18)),
        ("after the Thanksgiving halt", et(2025, 11, 27, 13), et(2025, 11, 27, 18)),
        ("after Christmas", et(2025, 12, 24, 13, 15), et(2025, 12, 25, 18)),
    ],
)
def test_after_a_reopening_the_first_bar_gets_bar_plus_grace(
    cme: CmeGlobexEquityCalendar, what: str, last_bar: int, reopen: int
) -> None:
    dog = watchdog(cme, last_bar)
    for t in (reopen, reopen + 20, reopen + 35):
        assert dog.check(t).state is Freshness.FRESH, (what, t - reopen)
    late = dog.check(reopen + 36)
    assert late == Staleness(
        state=Freshness.STALE,
        checked_at=reopen + 36,
        last_bar_end=last_bar,
        age_s=reopen + 36 - last_bar,
        stale_checks=1,
    )
    assert late.alarm


@pytest.mark.parametrize(
    ("silence", "expected", "age"),
    [
        (0, Freshness.FRESH, 0),
        (5, Freshness.FRESH, 5),
        (35, Freshness.FRESH, 35),  # next bar due at +5, grace 30: not yet overdue
        (36, Freshness.STALE, 36),
        (40, Freshness.STALE, 40),
        (600, Freshness.STALE, 600),
    ],
)
def test_mid_session_silence_is_stale_after_bar_plus_grace(
    cme: CmeGlobexEquityCalendar, silence: int, expected: Freshness, age: int
) -> None:
    last_bar = et(2026, 11, 17, 10)
    verdict = watchdog(cme, last_bar).check(last_bar + silence)
    assert (verdict.state, verdict.age_s, verdict.last_bar_end) == (expected, age, last_bar)


def test_stale_checks_count_up_and_a_newer_bar_resets_them(cme: CmeGlobexEquityCalendar) -> None:
    last_bar = et(2026, 11, 17, 10)
    dog = watchdog(cme, last_bar)
    counts = [dog.check(last_bar + s).stale_checks for s in (30, 40, 50, 60)]
    assert counts == [0, 1, 2, 3]
    dog.note_bar(last_bar - 5)  # a late, older bar proves nothing about the stream
    assert dog.stale_checks == 3
    dog.note_bar(last_bar + 65)
    assert dog.stale_checks == 0
    assert dog.check(last_bar + 66).state is Freshness.FRESH


def test_a_closed_market_ends_a_stale_streak(cme: CmeGlobexEquityCalendar) -> None:
    last_bar = et(2026, 11, 17, 16, 58)
    dog = watchdog(cme, last_bar)
    assert dog.check(et(2026, 11, 17, 16, 59)).stale_checks == 1
    assert dog.check(et(2026, 11, 17, 17)).state is Freshness.QUIET
    assert dog.stale_checks == 0
    assert dog.check(et(2026, 11, 17, 18, 0, 36)).stale_checks == 1  # a new session, a new alert


@pytest.mark.parametrize(
    ("last_bar", "silence"),
    [
        (et(2026, 11, 17, 10), 36),
        (et(2026, 11, 17, 17, 59, 50), 36),  # across 18:00 ET: no reopening on this calendar
        (et(2026, 11, 21, 12), 36),  # Saturday
        (et(2025, 11, 27, 14), 36),  # Thanksgiving afternoon
    ],
)
def test_continuous_calendar_makes_any_silence_over_grace_stale(
    last_bar: int, silence: int
) -> None:
    dog = watchdog(ContinuousCalendar(), last_bar)
    assert dog.check(last_bar + silence - 1).state is Freshness.FRESH
    verdict = dog.check(last_bar + silence)
    assert (verdict.state, verdict.age_s) == (Freshness.STALE, silence)


@pytest.mark.parametrize(
    "now",
    [et(2009, 12, 31, 17, 59, 59), et(2027, 12, 31, 18), et(2028, 1, 5, 10)],
)
def test_outside_the_calendar_it_fails_closed_as_uncovered(
    cme: CmeGlobexEquityCalendar, now: int
) -> None:
    dog = watchdog(cme, now - 1)  # even with a bar a second ago
    verdict = dog.check(now)
    assert verdict.state is Freshness.UNCOVERED
    assert verdict.alarm
    assert verdict.age_s == 1
    assert dog.stale_checks == 0


def test_before_the_first_bar_watching_starts_at_the_first_check(
    cme: CmeGlobexEquityCalendar,
) -> None:
    start = et(2026, 11, 17, 10)
    dog = StaleBarWatchdog(cme)
    assert dog.check(start).state is Freshness.FRESH
    assert dog.check(start + 35).state is Freshness.FRESH
    verdict = dog.check(start + 36)
    assert (verdict.state, verdict.last_bar_end, verdict.age_s) == (Freshness.STALE, None, 36)


def test_five_minute_bars_get_a_five_minute_step(cme: CmeGlobexEquityCalendar) -> None:
    last_bar = et(2026, 11, 17, 10, 5)
    dog = StaleBarWatchdog(cme, bar_seconds=300, grace_s=30.0)
    dog.note_bar(last_bar)
    assert dog.check(last_bar + 330).state is Freshness.FRESH
    assert dog.check(last_bar + 331).state is Freshness.STALE


def test_quiet_and_fresh_are_not_alarms(cme: CmeGlobexEquityCalendar) -> None:
    last_bar = et(2026, 11, 17, 10)
    dog = watchdog(cme, last_bar)
    assert not dog.check(last_bar + 1).alarm
    assert not dog.check(et(2026, 11, 17, 17, 30)).alarm


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bar_seconds": 0}, "bar_seconds must be an int >= 1"),
        ({"bar_seconds": 5.0}, "bar_seconds"),
        ({"bar_seconds": True}, "bar_seconds"),
        ({"grace_s": -1.0}, "grace_s must be finite and >= 0"),
        ({"grace_s": math.nan}, "grace_s"),
    ],
)
def test_bad_watchdog_settings_are_named(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StaleBarWatchdog(ContinuousCalendar(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [1.5, "1700000000", True])
def test_epochs_must_be_int_seconds(bad: object) -> None:
    dog = StaleBarWatchdog(ContinuousCalendar())
    with pytest.raises(TypeError, match="bar_end_epoch must be int epoch seconds"):
        dog.note_bar(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="now_epoch must be int epoch seconds"):
        dog.check(bad)  # type: ignore[arg-type]
