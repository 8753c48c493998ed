"""The reminder before IB Gateway's weekly two-factor login, on the manual clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

from adapters.simulated.clock import ManualClock
from adapters.simulated.notifier import RecordingNotifier
from application.weekly_login import WeeklyLoginReminder
from domain.commands import AlertKind, Severity
from domain.schedule import next_weekly


def test_next_weekly_keeps_new_york_wall_time_across_the_dst_change() -> None:
    # Sunday 2026-11-01 01:00 is EDT (the first of the two 01:00s); a week later it is EST.
    saturday = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)
    first = next_weekly(saturday, 6, time(1, 0))
    assert first == datetime(2026, 11, 1, 5, 0, tzinfo=UTC)
    assert next_weekly(first, 6, time(1, 0)) == datetime(2026, 11, 8, 6, 0, tzinfo=UTC)
    # Strictly after: at the instant itself, the next week's.
    assert next_weekly(first - timedelta(seconds=1), 6, time(1, 0)) == first


async def test_it_reminds_twelve_hours_before_and_once_a_week() -> None:
    clock = ManualClock(datetime(2026, 12, 5, 15, 0, tzinfo=UTC))  # Saturday 10:00 New York
    alerts = RecordingNotifier()
    reminder = WeeklyLoginReminder(
        clock, alerts, weekday=6, at=time(1, 0), lead=timedelta(hours=12)
    )
    task = asyncio.get_running_loop().create_task(reminder.run())
    try:
        await asyncio.wait_for(clock.sleepers(), 10)
        assert alerts.alerts == []
        clock.set(datetime(2026, 12, 5, 18, 0, tzinfo=UTC))  # Saturday 13:00 New York
        await asyncio.wait_for(clock.sleepers(), 10)
        [alert] = alerts.alerts
        assert (alert.kind, alert.severity) == (AlertKind.CONNECTION, Severity.WARNING)
        assert "Sun 01:00 New York time (in 12.0 h)" in alert.text
        assert "two-factor" in alert.text
        clock.set(datetime(2026, 12, 6, 6, 1, 1, tzinfo=UTC))  # past the login
        await asyncio.wait_for(clock.sleepers(), 10)
        assert len(alerts.alerts) == 1
        clock.set(datetime(2026, 12, 12, 18, 0, tzinfo=UTC))  # the next Saturday 13:00
        await asyncio.wait_for(clock.sleepers(), 10)
        assert len(alerts.alerts) == 2
    finally:
        task.cancel()


async def test_started_inside_the_span_it_reminds_at_once() -> None:
    clock = ManualClock(datetime(2026, 12, 6, 2, 0, tzinfo=UTC))  # Saturday 21:00 New York
    alerts = RecordingNotifier()
    reminder = WeeklyLoginReminder(
        clock, alerts, weekday=6, at=time(1, 0), lead=timedelta(hours=12)
    )
    task = asyncio.get_running_loop().create_task(reminder.run())
    try:
        await asyncio.wait_for(clock.sleepers(), 10)
        [alert] = alerts.alerts
        assert "(in 4.0 h)" in alert.text
    finally:
        task.cancel()
