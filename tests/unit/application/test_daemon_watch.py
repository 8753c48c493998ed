"""What the daemon says on its console unasked: a lasting reason entries are refused, once when it
starts and once when it ends, and a heartbeat on the daemon's clock."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from application.watch import DaemonWatch
from domain.events import EntryGateChanged, PauseRequested, ResumeRequested
from tests.support.builders import T0, bar, z
from tests.support.trading_desk import Desk, build_desk, desk_settings


def _watch(heartbeat: timedelta | None = None) -> tuple[Desk, DaemonWatch, list[tuple[int, str]]]:
    desk = build_desk(desk_settings("1:secret"))
    said: list[tuple[int, str]] = []
    watch = DaemonWatch(
        desk.service,
        desk.clock,
        lambda level, text: said.append((level, text)),
        heartbeat=heartbeat,
    )
    return desk, watch, said


def test_a_pause_is_said_once_when_it_starts_and_once_when_it_ends() -> None:
    desk, watch, said = _watch()
    watch.check()
    assert said == []
    asyncio.run(desk.service.handle(PauseRequested(T0, "operator 1")))
    for _ in range(3):
        watch.check()
    assert said == [(logging.WARNING, "entries blocked: paused by operator")]
    asyncio.run(desk.service.handle(ResumeRequested(T0, "operator 1")))
    watch.check()
    watch.check()
    assert said[1:] == [
        (logging.INFO, "entries no longer blocked by paused by operator; entries open")
    ]


def test_each_lasting_reason_is_said_on_its_own_and_a_closed_market_is_not_one() -> None:
    desk, watch, said = _watch()
    service = desk.service
    asyncio.run(
        service.handle(EntryGateChanged("journal", "the journal database is unreachable", T0))
    )
    watch.check()
    asyncio.run(service.handle(PauseRequested(T0, "operator 1")))
    watch.check()
    asyncio.run(service.handle(EntryGateChanged("journal", None, T0)))
    watch.check()
    assert [text for _, text in said] == [
        "entries blocked: journal: the journal database is unreachable",
        "entries blocked: paused by operator",
        "entries no longer blocked by journal; still blocked: paused by operator",
    ]
    assert watch.blocked[0].reason == "paused by operator"


def test_the_heartbeat_follows_the_daemon_clock() -> None:
    desk, watch, said = _watch(heartbeat=timedelta(minutes=5))
    watch.check()  # the first check only sets the beat
    desk.clock.advance(timedelta(minutes=4))
    watch.check()
    assert said == []
    desk.clock.advance(timedelta(minutes=1))
    watch.check()
    watch.check()
    [(level, line)] = said
    assert level == logging.INFO
    assert line.startswith("alive at 2025-03-04 15:")
    for part in (
        "0 bars (0 strategy bars)",
        "IDLE",
        "flat",
        "P&L +0.00 USD in 0 trades",
        "entries open",
    ):
        assert part in line, line


def test_no_heartbeat_when_switched_off() -> None:
    desk, watch, said = _watch(heartbeat=None)
    for _ in range(3):
        desk.clock.advance(timedelta(hours=1))
        watch.check()
    assert said == []


def test_a_date_the_calendar_does_not_cover_is_said_and_is_a_health_problem() -> None:
    old = datetime(2008, 10, 7, 15, 0, tzinfo=UTC)
    desk = build_desk(
        desk_settings("1:secret", QS_SESSION__CALENDAR="cme_globex_equity"), start=old
    )
    said: list[tuple[int, str]] = []
    watch = DaemonWatch(
        desk.service, desk.clock, lambda lvl, text: said.append((lvl, text)), heartbeat=None
    )
    desk.engine.on_bar(bar(old, 1200.0), z(-2.5))
    watch.check()
    assert len(said) == 1
    assert said[0][1].startswith(
        "entries blocked: calendar does not cover the date: cme_globex_equity covers 2009-12-31"
    )
    [problem] = desk.console.health().problems
    assert problem.startswith("entries blocked: calendar does not cover the date")
    assert desk.console.health().status == "degraded"
