"""The operator console over a real trading service with the simulated adapters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.simulated.broker import SimulatedBroker
from adapters.simulated.clock import ManualClock
from adapters.simulated.notifier import RecordingNotifier
from adapters.simulated.repositories import InMemoryJournal
from adapters.zscore.reference import PythonZScoreEngine
from application.operator import OperatorConsole, Period
from application.services import EventInbox, TradingService
from domain.aggregation import BarAggregator
from domain.calendar import ContinuousCalendar
from domain.commands import OperatorRecord, PlaceBracket, RoundTripRecord
from domain.engine import EngineState
from domain.events import EntryGateChanged, OrderFilled
from domain.position import ExitReason, RoundTrip
from domain.values import MES, Action, Side
from tests.support.builders import T0, bar, engine, fill, z


class _Health:
    def __init__(self) -> None:
        self.up = True
        self.last: datetime | None = T0
        self.backlog = 0
        self.journal: str | None = None
        self.alerts = 3

    def connected(self) -> bool:
        return self.up

    def last_bar_end(self) -> datetime | None:
        return self.last

    def journal_backlog(self) -> int:
        return self.backlog

    def journal_problem(self) -> str | None:
        return self.journal

    def alert_backlog(self) -> int:
        return self.alerts


def _console(
    now: datetime = T0,
) -> tuple[OperatorConsole, TradingService, InMemoryJournal, _Health, list[bool]]:
    eng = engine(calendar=ContinuousCalendar())
    inbox = EventInbox()
    broker = SimulatedBroker(instrument=MES, sink=inbox, fill_model="signal_close")
    journal = InMemoryJournal()
    service = TradingService(
        engine=eng,
        aggregator=BarAggregator(300),
        zscore=PythonZScoreEngine(20),
        broker=broker,
        journal=journal,
        notifier=RecordingNotifier(),
        inbox=inbox,
        bar_listeners=[broker],
    )
    health = _Health()
    stops: list[bool] = []

    async def request_stop(flatten: bool) -> None:
        stops.append(flatten)

    console = OperatorConsole(
        service=service,
        journal=journal,
        reader=journal,
        broker=broker,
        clock=ManualClock(now),
        health=health,
        config={"telegram": {"token": "**********"}},
        version="9.9.9",
        request_stop=request_stop,
        stale_after_s=60,
    )
    return console, service, journal, health, stops


def _trip(exit_ts: datetime, net: str) -> RoundTrip:
    return RoundTrip(
        seq=1,
        side=Side.LONG,
        qty=1,
        entry_ts=exit_ts - timedelta(minutes=5),
        entry_price=Decimal("5000"),
        exit_ts=exit_ts,
        exit_price=Decimal("5001"),
        exit_reason=ExitReason.SIGNAL,
        pnl_ticks=4,
        gross_pnl=Decimal(net),
        commissions=Decimal(0),
    )


@pytest.mark.parametrize(
    ("period", "opens"),
    [
        # Tuesday 2025-03-04 10:00 ET: today's session opened Monday 18:00 ET (23:00 UTC).
        ("today", datetime(2025, 3, 3, 23, 0, tzinfo=UTC)),
        # The week's first session (Monday's) opened Sunday 18:00 ET.
        ("week", datetime(2025, 3, 2, 23, 0, tzinfo=UTC)),
        # March's first trade date is Monday the 3rd (the 1st is a Saturday): its session opened
        # Sunday 18:00 ET, like the week's (CME is closed from Friday 17:00, so nothing is lost).
        ("month", datetime(2025, 3, 2, 23, 0, tzinfo=UTC)),
    ],
)
def test_periods_start_at_a_cme_session_open(period: Period, opens: datetime) -> None:
    console, *_ = _console()
    assert console.period_start(period) == opens


def test_trades_of_a_period_and_the_last_n() -> None:
    console, _service, journal, *_ = _console()
    monday_evening = datetime(2025, 3, 3, 23, 30, tzinfo=UTC)  # Tuesday's session
    monday_noon = datetime(2025, 3, 3, 17, 0, tzinfo=UTC)  # Monday's session
    for ts, net in ((monday_noon, "1"), (monday_evening, "2"), (T0, "3")):
        journal.append(RoundTripRecord(_trip(ts, net)))

    async def scenario() -> None:
        today = await console.round_trips("today")
        assert [t.gross_pnl for t in today] == [Decimal(2), Decimal(3)]
        assert [t.gross_pnl for t in await console.round_trips("week")] == [1, 2, 3]
        assert [t.gross_pnl for t in await console.round_trips(last=1)] == [Decimal(3)]

    asyncio.run(scenario())


def test_requests_reach_the_engine_and_commands_are_journaled() -> None:
    console, service, journal, _health, stops = _console()

    async def scenario() -> None:
        await console.pause("telegram:1")
        assert console.status().paused
        await console.resume("telegram:1")
        assert not console.status().paused
        placed = [c for c in service.engine.on_bar(bar(T0), z(-2.5)) if isinstance(c, PlaceBracket)]
        await service.execute(placed)
        assert service.engine.state is EngineState.LONG
        assert await console.reconcile("telegram:1") == "broker reports 1"
        await console.flatten("telegram:1")
        assert console.status().state is EngineState.EXITING_LONG
        await console.stop("telegram:1", flatten=True)
        assert stops == [True]
        console.record_command("flatten", "telegram:2", allowed=False, outcome="viewer")

    asyncio.run(scenario())
    operator = [r for r in journal.records if isinstance(r, OperatorRecord)]
    assert ("flatten", "telegram:2", "refused: viewer") in [
        (r.command, r.by, r.outcome) for r in operator
    ]
    assert ("stop", "telegram:1", "allowed: flatten first") in [
        (r.command, r.by, r.outcome) for r in operator
    ]


def test_health_says_what_needs_attention() -> None:
    console, service, _journal, health, _ = _console()
    ok = console.health()
    assert (ok.status, ok.state, ok.position, ok.connected, ok.alert_backlog) == (
        "ok",
        "IDLE",
        0,
        True,
        3,
    )
    assert ok.last_bar_age_s == 0.0
    health.last = T0 - timedelta(minutes=5)
    health.backlog = 5000
    degraded = console.health()
    assert degraded.status == "degraded"
    assert degraded.problems == ("last bar 300 s ago", "journal backlog 5000")
    health.up = False
    assert console.health().status == "down"
    service.engine.handle(OrderFilled(fill("FOREIGN", Action.BUY, "5000")))
    assert console.health().position == 1


def test_health_lists_every_lasting_reason_entries_are_refused() -> None:
    console, service, _journal, _health, _ = _console()
    asyncio.run(console.pause("operator 1"))
    asyncio.run(
        service.handle(EntryGateChanged("journal", "the journal database is unreachable", T0))
    )
    service.engine.handle(OrderFilled(fill("FOREIGN", Action.BUY, "5000")))  # reconcile required
    blocked = console.health()
    assert blocked.status == "degraded"
    assert blocked.problems == (
        "entries blocked: journal: the journal database is unreachable",
        f"entries blocked: reconcile required: {service.engine.reconcile_required}",
        "entries blocked: paused by operator",
    )


def test_health_lists_every_degraded_component_and_every_blocker_however_small_the_backlog() -> (
    None
):
    console, service, _journal, health, _ = _console()
    health.backlog = 5  # far under the backlog alarm: the journal still cannot write
    health.journal = "disk full: the spool var/journal.spool: No space left on device"
    health.alerts = 250
    asyncio.run(
        service.handle(
            EntryGateChanged("journal", "disk full: the spool var/journal.spool: No space", T0)
        )
    )
    degraded = console.health()
    assert degraded.status == "degraded"
    assert degraded.problems == (
        "entries blocked: journal: disk full: the spool var/journal.spool: No space",
        "journal degraded: disk full: the spool var/journal.spool: No space left on device",
        "alert backlog 250",
    )
    health.journal = None
    health.alerts = 0
    asyncio.run(service.handle(EntryGateChanged("journal", None, T0)))
    assert console.health().status == "ok"


@pytest.mark.parametrize(
    "now",
    [datetime(2026, 1, 31, 15, 0, tzinfo=UTC), datetime(2026, 1, 30, 23, 30, tzinfo=UTC)],
    ids=["saturday", "friday 18:30 New York"],
)
def test_periods_on_a_weekend_or_a_friday_evening_look_back_not_forward(now: datetime) -> None:
    # Monday's session has not opened yet: "today" is Friday's, the week and month those so far.
    console, *_ = _console(now)
    assert console.period_start("today") == datetime(2026, 1, 29, 23, 0, tzinfo=UTC)
    assert console.period_start("week") == datetime(2026, 1, 25, 23, 0, tzinfo=UTC)
    assert console.period_start("month") == datetime(2025, 12, 31, 23, 0, tzinfo=UTC)


def test_health_shows_a_last_bar_from_the_future_instead_of_clamping_its_age() -> None:
    console, _service, _journal, health, _ = _console()
    health.last = T0 + timedelta(seconds=3)  # within the clock skew allowed: no problem
    assert console.health().last_bar_age_s == -3.0
    assert console.health().status == "ok"
    health.last = T0 + timedelta(minutes=10)
    future = console.health()
    assert future.last_bar_age_s == -600.0
    assert future.status == "degraded"
    assert future.problems == ("last bar ends 600 s in the future (clock skew or a bad stamp)",)
