"""The whole IB Gateway daemon (``run_daemon`` with ``daemon.broker: ibkr``) in the test's event loop,
against the TWS test gateway, with the real SQL journal and state store (SQLite in a temp dir unless
the settings name another store).

Time is a :class:`~adapters.simulated.clock.ManualClock`: the test moves it with the bars it pushes,
and the daemon's timers (the session timer) sleep until the test has moved it far enough, so nothing
races ahead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from adapters.ibkr.session import IbkrSession
from adapters.ibkr.venue import IbkrVenue
from adapters.simulated.clock import ManualClock
from domain.engine import Engine
from entrypoints.daemon import DaemonHandle, RunOptions, RunResult, run_daemon
from entrypoints.settings import Settings
from tests.support.live_bot import STEP, bot_settings
from tests.support.polling import DEADLINE_S, eventually
from tests.support.tws import GatewayBar, TwsGateway


def daemon_settings(port: int, data_dir: Path, **overrides: str) -> Settings:
    """The live bot's test settings (1-minute bars, lookback 10), run as the ibkr daemon."""
    env = {
        "QS_DAEMON__BROKER": "ibkr",
        "QS_DATABASE__DATA_DIR": str(data_dir),
        "QS_IBKR__STARTUP_ATTEMPTS": "1",
        "QS_IBKR__RESTART_TIME": "null",
        "QS_SESSION__NO_ENTRY_IN_ROLL_WEEK": "false",
        "QS_SHUTDOWN__TIMEOUT_S": "10",
    }
    env.update(overrides)
    return bot_settings(port, **env)


@dataclass
class LiveDaemon:
    gateway: TwsGateway
    clock: ManualClock
    handle: DaemonHandle
    task: asyncio.Task[RunResult]
    pushed: int = 0
    results: list[RunResult] = field(default_factory=list)

    @property
    def session(self) -> IbkrSession:
        return _ibkr_session(self.handle)

    @property
    def engine(self) -> Engine:
        return self.handle.service.engine

    @property
    def con_id(self) -> int:
        contract = self.session.contract
        assert contract is not None
        assert contract.con_id is not None
        return contract.con_id

    async def push(
        self, closes: Iterable[str | tuple[str, str, str, str]], *, at: datetime
    ) -> datetime:
        """One 5-second bar per item from ``at`` (a string: a flat bar; a tuple: OHLC); waits until
        the daemon has taken each in. Returns the start of the next bar."""
        t = at
        for item in closes:
            o, h, lo, c = (item,) * 4 if isinstance(item, str) else item
            self.clock.set(t + STEP)
            bar = GatewayBar(t, Decimal(o), Decimal(h), Decimal(lo), Decimal(c))
            await self.gateway.push_bar(self.con_id, bar)
            self.pushed += 1
            t += STEP
        await self.wait_for(lambda: self.handle.service.counters.bars_in >= self.pushed, "bars")
        return t

    async def push_minutes(self, closes: Iterable[str], *, at: datetime) -> datetime:
        t = at
        for close in closes:
            t = await self.push([close] * 12, at=t)
        return t

    async def wait_for(
        self, predicate: Callable[[], object], what: str, timeout: float = DEADLINE_S
    ) -> None:
        """Return as soon as ``predicate()`` holds; fails at once if the daemon ends first."""
        await eventually(lambda: bool(predicate()), what, timeout_s=timeout, unless_done=self.task)

    async def stop(self, timeout: float = 30.0) -> RunResult:
        self.handle.stop.set()
        return await asyncio.wait_for(self.task, timeout)


@asynccontextmanager
async def live_daemon(
    gateway: TwsGateway,
    settings: Settings,
    *,
    start: datetime,
    dry_run: bool = False,
) -> AsyncIterator[LiveDaemon]:
    """Start the daemon; on exit, make sure it has ended (cancelled like a crash if it still runs)."""
    clock = ManualClock(start)
    handles: list[DaemonHandle] = []
    task = asyncio.get_running_loop().create_task(
        run_daemon(
            settings, RunOptions(speed=None, dry_run=dry_run), on_ready=handles.append, clock=clock
        )
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while not handles:
        if task.done():
            task.result()
            raise AssertionError("the daemon ended before it was ready")
        if loop.time() > deadline:
            task.cancel()
            raise AssertionError(f"the daemon did not become ready in {DEADLINE_S:.0f} s")
        await asyncio.sleep(0.005)
    daemon = LiveDaemon(gateway, clock, handles[0], task)
    try:
        yield daemon
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _ibkr_session(handle: DaemonHandle) -> IbkrSession:
    """The IB session supervisor of a daemon running on IB Gateway."""
    venue = handle.venue
    assert isinstance(venue, IbkrVenue), f"not an IB Gateway daemon: {type(venue).__name__}"
    return venue.session
