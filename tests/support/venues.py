"""The whole daemon (``run_daemon``) on either venue, for the daemon-level tests that must hold on
both (issue 13): the simulated exchange replaying ``config/sample.yaml``'s recorded feed, and IB
Gateway (the TWS test gateway, real ib_async; :mod:`tests.support.live_daemon`).

A test takes the ``venue`` fixture (see ``tests/integration/conftest.py``), parametrized over
:data:`VENUES`, and drives the daemon through the same few verbs on both: run it, get it to trade, to
hold a position, to have an entry working at the broker, stop it, kill it, restart it. What only one
venue can show (the gateway's own book, a link that goes down) the test asserts on
``venue.gateway`` when it is there.

The simulated daemon runs on its own at the speed asked; the IB daemon moves only with the bars the
test pushes (1-minute strategy bars over a lookback of 10: :mod:`tests.support.live_bot`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

from domain.engine import EngineState
from entrypoints.daemon import DaemonHandle, RunOptions, RunResult, run_daemon
from entrypoints.replay import load_series
from entrypoints.settings import Settings, load_settings
from tests.support.live_bot import QUIET_CLOSES, SIGNAL_CLOSE, START
from tests.support.live_daemon import LiveDaemon, daemon_settings, live_daemon
from tests.support.polling import eventually
from tests.support.tws import TwsGateway

VenueName = Literal["simulated", "ibkr"]
VENUES: tuple[VenueName, ...] = ("simulated", "ibkr")

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_CONFIG = ROOT / "config" / "sample.yaml"
STOP_WAIT_S = 60.0
"""A graceful stop is bounded by ``shutdown.timeout_s``; this leaves room on a loaded machine."""
FEED_WAIT_S = 300.0
"""The simulated daemon playing its whole recorded feed: ~10 s on an idle 2-core machine, over
60 s on one shared with the suite's other worker and two CPU-bound processes. A daemon that ends
early fails the wait at once."""


class RunningDaemon(Protocol):
    """A daemon running in the test's event loop, on either venue."""

    @property
    def handle(self) -> DaemonHandle: ...

    @property
    def task(self) -> asyncio.Task[RunResult]: ...

    async def trade(self) -> int:
        """Return once the daemon has handed orders to the broker: at least how many."""
        ...

    async def strategy_bars(self, count: int) -> None:
        """Return once ``count`` strategy bars (each a checkpoint) have passed, nothing traded on
        IB Gateway (the simulated feed trades as it goes)."""
        ...

    async def open_position(self) -> None:
        """Return once the engine holds a position."""
        ...

    async def entry_working(self) -> None:
        """Return while an entry order works at the broker, not filled yet."""
        ...

    async def hold_position(self) -> int:
        """Return once a position is open that only the test will change now (the simulated feed
        played to its end; on IB no bar comes unless pushed): its signed size."""
        ...

    async def stop(self) -> RunResult:
        """A graceful stop (what SIGTERM does)."""
        ...

    async def kill(self) -> None:
        """The daemon's task cancelled: a crash, nothing shut down gracefully."""
        ...


class DaemonVenue(Protocol):
    name: VenueName
    gateway: TwsGateway | None
    """The TWS test gateway the IB daemon talks to (None: the simulated venue)."""

    def settings(self, data_dir: Path, **env: str) -> Settings:
        """The venue's test settings with the journal in ``data_dir`` and ``env`` applied."""
        ...

    def command_env(self) -> dict[str, str]:
        """The settings (environment variables) that run ``quant-scalper run --config
        config/sample.yaml`` on this venue."""
        ...

    def run(
        self, settings: Settings, *, speed: float | None = None, exit_at_end: bool = False
    ) -> contextlib.AbstractAsyncContextManager[RunningDaemon]:
        """The daemon, ready (``on_ready`` called); on exit it has ended (cancelled if need be).
        ``speed``, ``exit_at_end``: the simulated feed's (IB's bars come as the test pushes them,
        and its feed never ends)."""
        ...

    async def restart(self, settings: Settings) -> tuple[RunResult, DaemonHandle]:
        """A second run on the same store, from start to a stop: the simulated feed played to its
        end at full speed; the IB daemon stopped once ready (nothing pushed)."""
        ...


# -- the simulated venue ------------------------------------------------------------------------


class SimulatedDaemon:
    def __init__(
        self, handle: DaemonHandle, task: asyncio.Task[RunResult], settings: Settings
    ) -> None:
        self.handle = handle
        self.task = task
        self._settings = settings

    async def trade(self) -> int:
        counters = self.handle.service.counters
        await eventually(lambda: counters.orders_sent >= 3, "three orders", unless_done=self.task)
        return 3

    async def strategy_bars(self, count: int) -> None:
        counters = self.handle.service.counters
        await eventually(
            lambda: counters.strategy_bars >= count, "strategy bars", unless_done=self.task
        )

    async def open_position(self) -> None:
        engine = self.handle.service.engine
        await eventually(
            lambda: not engine.position.is_flat, "a position", every_s=0.005, unless_done=self.task
        )

    async def entry_working(self) -> None:
        # At this speed an entry works for a moment only: look at every turn of the loop.
        engine = self.handle.service.engine
        entering = (EngineState.ENTERING_LONG, EngineState.ENTERING_SHORT)
        await eventually(
            lambda: engine.state in entering, "an entry working", every_s=0, unless_done=self.task
        )

    async def hold_position(self) -> int:
        feed = len(load_series(self._settings, self._settings.daemon.feed))
        service = self.handle.service
        await eventually(
            lambda: service.counters.bars_in == feed and not service.engine.position.is_flat,
            "the feed's end, a position held",
            timeout_s=FEED_WAIT_S,
            unless_done=self.task,
        )
        return service.engine.position.signed_qty

    async def stop(self) -> RunResult:
        self.handle.stop.set()
        return await asyncio.wait_for(self.task, STOP_WAIT_S)

    async def kill(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class SimulatedDaemonVenue:
    name: VenueName = "simulated"
    gateway: TwsGateway | None = None

    def settings(self, data_dir: Path, **env: str) -> Settings:
        return load_settings(SAMPLE_CONFIG, {"QS_DATABASE__DATA_DIR": str(data_dir), **env})

    def command_env(self) -> dict[str, str]:
        return {"QS_DAEMON__BROKER": "simulated"}

    @asynccontextmanager
    async def run(
        self, settings: Settings, *, speed: float | None = None, exit_at_end: bool = False
    ) -> AsyncIterator[SimulatedDaemon]:
        handles: list[DaemonHandle] = []
        options = RunOptions(speed=speed, exit_at_end=exit_at_end)
        task = asyncio.get_running_loop().create_task(
            run_daemon(settings, options, on_ready=handles.append)
        )
        try:
            await eventually(lambda: bool(handles), "the daemon ready", unless_done=task)
            yield SimulatedDaemon(handles[0], task, settings)
        finally:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def restart(self, settings: Settings) -> tuple[RunResult, DaemonHandle]:
        handles: list[DaemonHandle] = []
        result = await run_daemon(
            settings, RunOptions(speed=None, exit_at_end=True), on_ready=handles.append
        )
        return result, handles[0]


# -- IB Gateway -----------------------------------------------------------------------------------


class IbkrDaemon:
    def __init__(self, live: LiveDaemon, at: datetime) -> None:
        self.live = live
        self.at = at
        """Where the next pushed bar starts."""

    @property
    def handle(self) -> DaemonHandle:
        return self.live.handle

    @property
    def task(self) -> asyncio.Task[RunResult]:
        return self.live.task

    async def trade(self) -> int:
        await self.open_position()
        return 1  # the bracket

    async def open_position(self) -> None:
        await self._signal()
        engine = self.live.engine
        await self.live.wait_for(lambda: engine.state is EngineState.LONG, "the entry fill")

    async def entry_working(self) -> None:
        gateway = self.live.gateway
        gateway.faults.hold_fills = True  # IB acknowledges the market order, nothing fills
        await self._signal()
        engine = self.live.engine
        await self.live.wait_for(
            lambda: (
                engine.state is EngineState.ENTERING_LONG
                and any(o.held and o.is_working for o in gateway.orders)
            ),
            "the entry working at IB",
        )

    async def hold_position(self) -> int:
        await self.open_position()
        return 1

    async def _signal(self) -> None:
        self.at = await self.live.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=self.at)

    async def strategy_bars(self, count: int) -> None:
        # Quiet minutes, alternating as QUIET_CLOSES do: the z-score stays inside the thresholds.
        counters = self.live.handle.service.counters
        missing = count - counters.strategy_bars
        closes = [QUIET_CLOSES[(counters.strategy_bars + i) % 2] for i in range(missing)]
        self.at = await self.live.push_minutes(closes, at=self.at)
        await self.live.wait_for(lambda: counters.strategy_bars >= count, "the strategy bars")

    async def stop(self) -> RunResult:
        return await self.live.stop()

    async def kill(self) -> None:
        self.live.task.cancel()
        await asyncio.gather(self.live.task, return_exceptions=True)


class IbkrDaemonVenue:
    name: VenueName = "ibkr"

    def __init__(self, gateway: TwsGateway) -> None:
        self.gateway: TwsGateway | None = gateway
        self._gateway = gateway
        self._next_start = START

    def settings(self, data_dir: Path, **env: str) -> Settings:
        return daemon_settings(self._gateway.port, data_dir, **env)

    def command_env(self) -> dict[str, str]:
        return {
            "QS_DAEMON__BROKER": "ibkr",
            "QS_IBKR__PORT": str(self._gateway.port),
            "QS_IBKR__CONNECT_TIMEOUT_S": "5",
            "QS_IBKR__REQUEST_TIMEOUT_S": "5",
            "QS_IBKR__STARTUP_ATTEMPTS": "1",
            "QS_IBKR__RESTART_TIME": "null",
            "QS_IBKR__WATCHDOG_INTERVAL_S": "3600",
            "QS_SESSION__NO_ENTRY_IN_ROLL_WEEK": "false",
        }

    @asynccontextmanager
    async def run(
        self, settings: Settings, *, speed: float | None = None, exit_at_end: bool = False
    ) -> AsyncIterator[IbkrDaemon]:
        async with live_daemon(self._gateway, settings, start=self._next_start) as live:
            daemon = IbkrDaemon(live, self._next_start)
            try:
                yield daemon
            finally:
                # A later run starts after whatever this one saw: market time never runs back.
                self._next_start = max(daemon.at, live.clock.now()) + timedelta(minutes=1)

    async def restart(self, settings: Settings) -> tuple[RunResult, DaemonHandle]:
        async with self.run(settings) as daemon:
            return await daemon.stop(), daemon.handle


@asynccontextmanager
async def venue_for(name: VenueName) -> AsyncIterator[DaemonVenue]:
    """The venue ``name``, with its TWS test gateway listening for as long as it is used."""
    if name == "simulated":
        yield SimulatedDaemonVenue()
        return
    async with TwsGateway() as gateway:
        yield IbkrDaemonVenue(gateway)
