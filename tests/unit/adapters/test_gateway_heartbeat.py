"""The heartbeat's reminders while IB Gateway stays silent: at once, then with doubling gaps up to
an hour; one alert and one gate however many beats go unanswered in between."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from adapters.ibkr.client import IbClient
from adapters.ibkr.heartbeat import READY_GATE, GatewayHeartbeat
from adapters.simulated.clock import ManualClock
from adapters.simulated.notifier import RecordingNotifier
from application.services import EventInbox
from domain.commands import AlertKind, Severity
from domain.events import EntryGateChanged


class _Gateway:
    """Stands in for our IbClient: a socket that is open and a time request that may hang."""

    connected = True

    def __init__(self) -> None:
        self.answers = False

    async def current_time(self) -> datetime:
        if not self.answers:
            raise TimeoutError("no answer in 10 s")
        return datetime(2026, 12, 3, tzinfo=UTC)


def _drain(inbox: EventInbox) -> list[object]:
    return [inbox.pop() for _ in range(len(inbox))]


async def test_reminders_double_up_to_an_hour_and_an_answer_reopens_once() -> None:
    gateway, inbox, alerts = _Gateway(), EventInbox(), RecordingNotifier()
    wall = [0.0]
    held: list[str | None] = []
    heartbeat = GatewayHeartbeat(
        cast(IbClient, gateway),
        inbox,
        alerts,
        ManualClock(datetime(2026, 12, 3, tzinfo=UTC)),
        interval_s=30.0,
        hold=held.append,
        monotonic=lambda: wall[0],
    )
    critical_at: list[float] = []
    for _ in range(int(3 * 3600 / 30)):  # three hours of unanswered beats
        before = len(alerts.alerts)
        assert not await heartbeat.beat()
        if len(alerts.alerts) > before:
            critical_at.append(wall[0])
        wall[0] += 30.0
    assert critical_at == [0.0, 300.0, 900.0, 2100.0, 4500.0, 8100.0]  # 5, 10, 20, 40, 60 min
    assert all(a.severity is Severity.CRITICAL for a in alerts.alerts)
    gates = [e for e in _drain(inbox) if isinstance(e, EntryGateChanged)]
    assert [(g.gate, g.reason is not None) for g in gates] == [(READY_GATE, True)]
    assert held == ["IB Gateway does not answer requests (its socket is open)"]
    assert heartbeat.misses == 360

    gateway.answers = True
    assert await heartbeat.beat()
    assert heartbeat.ready
    assert held[-1] is None
    [reopened] = [e for e in _drain(inbox) if isinstance(e, EntryGateChanged)]
    assert (reopened.gate, reopened.reason) == (READY_GATE, None)
    last = alerts.alerts[-1]
    assert (last.kind, last.severity) == (AlertKind.CONNECTION, Severity.INFO)
    assert last.text == "IB Gateway answers again after 3 h 00 min: entries resume"
