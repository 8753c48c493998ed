"""The live stack (IBKR adapters, session supervisor, trading service) against the TWS test gateway.

Everything is the real composition root in live mode; the test overrides only the journal and the
notifier (recording, in memory) and the clock (a manual one that the pushed bars move, so bar times,
fill times and the stale-feed watchdog agree with the script).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from adapters.ibkr.session import IbkrSession
from adapters.simulated.clock import ManualClock
from adapters.simulated.notifier import RecordingNotifier
from adapters.simulated.repositories import InMemoryJournal
from application.services import TradingService
from domain.bar import Bar
from domain.commands import AlertKind, OrderEventRecord
from domain.engine import Engine, EngineSnapshot
from entrypoints.container import Application, build_container
from entrypoints.settings import Settings, load_settings
from tests.support.polling import eventually
from tests.support.tws import GatewayBar, TwsGateway

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 New York
STEP = timedelta(seconds=5)

# 1-minute strategy bars over a 10-bar lookback: these closes put z at -2.99 on the eleventh bar.
QUIET_CLOSES = ("5000", "5000.5") * 5
SIGNAL_CLOSE = "4990"
SIGNAL_END = timedelta(minutes=11)
"""When the signal bar ends: the first 5-second bar after it closes it."""


def bot_settings(port: int, **overrides: str) -> Settings:
    env = {
        "QS_IBKR__PORT": str(port),
        "QS_IBKR__CLIENT_ID": "17",
        "QS_IBKR__CONNECT_TIMEOUT_S": "5",
        "QS_IBKR__REQUEST_TIMEOUT_S": "5",
        "QS_IBKR__COMMISSION_WAIT_S": "0.3",
        "QS_IBKR__WATCHDOG_INTERVAL_S": "3600",  # tests call check_feed themselves
        "QS_IBKR__RECONNECT_MAX_S": "0.05",
        "QS_IBKR__CLIENT_ID_WAIT_S": "0.05",
        "QS_IBKR__MAX_CLOCK_SKEW_S": "null",  # the script's clock is not the gateway's
        "QS_STRATEGY__BAR_MINUTES": "1",
        "QS_STRATEGY__LOOKBACK_PERIOD": "10",
        "QS_SESSION__CALENDAR": "none",
        "QS_RISK__MAX_POSITION_DURATION_HOURS": "null",
        "QS_ZSCORE__ENGINE": "python",
    }
    env.update(overrides)
    return load_settings(None, env)


class ScriptedClock(ManualClock):
    """The time of day is the script's (the pushed bars move it); a wait is a real one.

    The session's timers (the feed watchdog, IB's pacing) sleep on the daemon's clock. Here that
    sleep waits as long in wall time, then moves the script's time on by as much: a watchdog
    interval of an hour means "not during this test", and a request held back by pacing goes.
    """

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))
        self.advance(timedelta(seconds=max(0.0, seconds)))


class RecordingBars:
    """A bar listener that keeps every market bar the service saw, in order."""

    def __init__(self) -> None:
        self.bars: list[Bar] = []

    def on_bar(self, bar: Bar) -> None:
        self.bars.append(bar)


@dataclass
class LiveBot:
    app: Application
    gateway: TwsGateway
    clock: ScriptedClock
    journal: InMemoryJournal
    notifier: RecordingNotifier
    seen: RecordingBars
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def session(self) -> IbkrSession:
        session: IbkrSession = self.app.adapters.session()
        return session

    @property
    def service(self) -> TradingService:
        service: TradingService = self.app.services.trading()
        return service

    @property
    def engine(self) -> Engine:
        return self.service.engine

    @property
    def con_id(self) -> int:
        contract = self.session.contract
        assert contract is not None
        assert contract.con_id is not None
        return contract.con_id

    async def push(
        self,
        closes: Iterable[str | tuple[str, str, str, str]],
        *,
        at: datetime,
        streamed: bool = True,
    ) -> datetime:
        """Push one 5-second bar per item from ``at``; a string is a flat bar, a tuple is OHLC.

        Returns the start of the next bar. With ``streamed`` (the feed is live), waits until the
        service has seen every bar pushed and applied every event they caused.
        """
        t = at
        for item in closes:
            o, h, lo, c = (item,) * 4 if isinstance(item, str) else item
            await self.push_bar(GatewayBar(t, Decimal(o), Decimal(h), Decimal(lo), Decimal(c)))
            t += STEP
        if streamed:
            self._expect_end = int(t.timestamp())
            await self.settled()
        return t

    async def push_bar(self, bar: GatewayBar) -> None:
        self.clock.set(bar.start + STEP)
        await self.gateway.push_bar(self.con_id, bar)

    async def push_minutes(self, closes: Sequence[str], *, at: datetime) -> datetime:
        """Flat 1-minute stretches (12 bars each) at these closes."""
        t = at
        for close in closes:
            t = await self.push([close] * 12, at=t)
        return t

    async def settled(self, timeout: float = 30.0) -> None:
        """Wait until the service has seen the last bar pushed and applied every event since."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        inbox = self.app.adapters.inbox()

        def done() -> bool:
            last = self.seen.bars[-1].end_epoch if self.seen.bars else 0
            return last >= self._expect_end and not len(inbox)

        while loop.time() < deadline:
            if done():
                await asyncio.sleep(0.05)  # let callbacks already in flight land
                if done():
                    return
            await asyncio.sleep(0.01)
        last = self.seen.bars[-1].ts.isoformat() if self.seen.bars else "none"
        raise AssertionError(f"the service's last bar is {last}; waited for {self._expect_end}")

    _expect_end: int = 0

    async def wait_for(
        self, predicate: Callable[..., object], what: str, timeout: float = 30.0
    ) -> None:
        """Return as soon as ``predicate()`` holds (a poll: no settling time after it).

        ``predicate`` is called without arguments (``lambda n=n: ...`` pins a loop variable)."""
        await eventually(lambda: bool(predicate()), what, timeout_s=timeout)

    def alerts(self, kind: AlertKind) -> list[str]:
        return [a.text for a in self.notifier.alerts if a.kind is kind]

    def order_events(self, status: str) -> list[OrderEventRecord]:
        return [
            r
            for r in self.journal.records
            if isinstance(r, OrderEventRecord) and r.status == status
        ]


@asynccontextmanager
async def live_bot(
    gateway: TwsGateway,
    *,
    settings: Settings | None = None,
    start: datetime = START,
    restore: EngineSnapshot | None = None,
) -> AsyncIterator[LiveBot]:
    """Start the live stack on ``gateway``; on exit stop it without flattening (like a crash)."""
    settings = settings or bot_settings(gateway.port)
    clock = ScriptedClock(start)
    journal = InMemoryJournal()
    notifier = RecordingNotifier()
    seen = RecordingBars()
    app = build_container(
        settings,
        "live",
        adapter_overrides={
            "clock": clock,
            "journal": journal,
            "notifier": notifier,
            "bar_listeners": [seen],
        },
    )
    if restore is not None:
        config = app.services.engine_config()
        app.services.engine.override(Engine.restore(config, restore))
    bot = LiveBot(app, gateway, clock, journal, notifier, seen)
    market_data = app.adapters.market_data()
    await bot.session.start()
    service = bot.service
    loop = asyncio.get_running_loop()
    bot.tasks = [
        loop.create_task(service.run(market_data)),
        loop.create_task(service.run_events()),
    ]
    try:
        yield bot
    finally:
        await bot.session.close()
        for task in bot.tasks:
            task.cancel()
        await asyncio.gather(*bot.tasks, return_exceptions=True)
