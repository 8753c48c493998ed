"""A real OperatorConsole over a real TradingService on the simulated adapters, for the bot's tests.

Everything comes from the composition root in simulated mode (engine, trading service, simulated
broker, in-memory journal), with a manual clock. Only the daemon's own hooks are recording fakes:
``request_stop`` (what a /stop asked for) and the :class:`HealthSource`.

The engine is moved the way the contract tests do it: a bar with a forced z-score makes it decide,
the trading service carries the commands out at the simulated broker, and later bars fill them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from adapters.simulated.broker import SimulatedBroker
from adapters.simulated.clock import ManualClock
from adapters.simulated.repositories import InMemoryJournal
from application.operator import OperatorConsole
from application.services import TradingService
from domain.bar import Bar
from domain.commands import OperatorRecord
from domain.engine import Engine, EngineState
from entrypoints.container import build_container
from entrypoints.settings import Settings, load_settings
from tests.support.builders import T0, bar, z

VERSION = "9.8.7-test"
DB_PASSWORD = "hunter2-db-secret"


def desk_settings(token: str, **overrides: str) -> Settings:
    """Settings for the desk: no session calendar, the Python z-score, and secrets to mask."""
    env = {
        "QS_SESSION__CALENDAR": "none",
        "QS_ZSCORE__ENGINE": "python",
        "QS_TELEGRAM__ENABLED": "true",
        "QS_TELEGRAM__TOKEN": token,
        "QS_DATABASE__URL": f"postgresql://bot:{DB_PASSWORD}@db.example/qs",
    }
    env.update(overrides)
    return load_settings(None, env)


@dataclass
class FakeHealth:
    """The adapters' side of /health, set by the test."""

    link_up: bool = True
    last_bar: datetime | None = None
    journal_waiting: int = 0
    alerts_waiting: int = 0
    broken: bool = False
    """The probe itself fails (a bug or an outage in what it asks)."""

    def connected(self) -> bool:
        if self.broken:
            raise RuntimeError("health probe failed")
        return self.link_up

    def last_bar_end(self) -> datetime | None:
        return self.last_bar

    def journal_backlog(self) -> int:
        return self.journal_waiting

    def journal_problem(self) -> str | None:
        return None

    def alert_backlog(self) -> int:
        return self.alerts_waiting


@dataclass
class Desk:
    console: OperatorConsole
    service: TradingService
    engine: Engine
    broker: SimulatedBroker
    journal: InMemoryJournal
    clock: ManualClock
    health: FakeHealth
    stops: list[bool] = field(default_factory=list)
    """One entry per stop the console asked the daemon for: whether to flatten first."""

    async def open_long(self) -> None:
        """A z of -2.5 on the bar starting at T0; the entry fills at the next bar's open (5000)."""
        commands = self.engine.on_bar(bar(T0, 5000.0), z(-2.5))
        await self.service.execute(commands)
        self._market(bar(T0 + timedelta(minutes=5), 5000.0))
        await self.service.settle()
        assert self.engine.state is EngineState.LONG, self.engine.state

    async def stop_out(self) -> None:
        """The next bar trades through the stop (4990 for the default $50 on one MES)."""
        self._market(bar(T0 + timedelta(minutes=10), 4985.0, high=4995.0, open_=4995.0))
        await self.service.settle()
        assert self.engine.state is EngineState.IDLE, self.engine.state

    def _market(self, b: Bar) -> None:
        self.clock.set(b.end)
        self.broker.on_bar(b)

    def commands(self) -> list[OperatorRecord]:
        """The operator records journaled so far, in order."""
        return [r for r in self.journal.records if isinstance(r, OperatorRecord)]

    def telegram_commands(self) -> list[tuple[str, str, str]]:
        """(command, by, outcome) of the records the bot wrote (its commands start with '/')."""
        return [
            (r.command, r.by, r.outcome)
            for r in self.commands()
            if r.command.startswith("/") or r.command == "button"
        ]


def build_desk(settings: Settings, *, start: datetime = T0) -> Desk:
    clock = ManualClock(start)
    app = build_container(settings, "simulated", adapter_overrides={"clock": clock})
    service: TradingService = app.services.trading()
    broker: SimulatedBroker = app.adapters.broker()
    journal: InMemoryJournal = app.adapters.journal()
    health = FakeHealth()
    stops: list[bool] = []

    async def request_stop(flatten: bool) -> None:
        stops.append(flatten)

    console = OperatorConsole(
        service=service,
        journal=journal,
        reader=journal,
        broker=broker,
        clock=clock,
        health=health,
        config=settings.redacted(),
        version=VERSION,
        request_stop=request_stop,
    )
    return Desk(console, service, service.engine, broker, journal, clock, health, stops)
