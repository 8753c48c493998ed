"""``quant-scalper run``: the daemon, on the venue ``daemon.broker`` names.

One program for both venues (:class:`application.daemon.Daemon`); the composition root
(:mod:`entrypoints.container.daemon`) selects the simulated exchange on a recorded feed or IB Gateway.
The sequence, as every command's: settings (validated before this module runs; exit 2) → container →
``check_dependencies`` → ``init_resources`` (the store: its schema must be current, exit 2; the
database reachable, exit 4; one daemon per journal, exit 5) → run (the venue connects: exit 4 when it
cannot; Telegram and the health endpoints: exit 4) → ``shutdown_resources``.

A stop (SIGTERM, SIGINT, /stop) closes entries and, with ``shutdown.flatten`` (or the /stop choice),
flattens first; a second signal exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from application.daemon import DaemonHandle, RunResult, VenueUnavailable
from application.ports import Clock, Notifier
from domain.calendar import cme_trade_date
from entrypoints import logs
from entrypoints.container import init_resources, shutdown_resources
from entrypoints.container.daemon import build_daemon_container
from entrypoints.container.store import store_url, unavailable_on_database_errors
from entrypoints.settings import Settings
from entrypoints.startup import EXIT_UNAVAILABLE, EXIT_USAGE, RunOptions, StartupError

__all__ = [
    "DaemonHandle",
    "RunOptions",
    "RunResult",
    "StartupError",
    "install_stop_signals",
    "run_daemon",
]

log = logging.getLogger("quant_scalper.daemon")


async def run_daemon(
    settings: Settings,
    options: RunOptions,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[DaemonHandle], None] | None = None,
    clock: Clock | None = None,
    alerts: Notifier | None = None,
) -> RunResult:
    """Run until a stop (``stop`` set, a signal, /stop) or, simulated with ``exit_at_end``, the end
    of the feed. ``clock`` replaces the IB daemon's system clock (a soak run's accelerated one);
    ``alerts`` receives every alert too, as it is raised (a test's recorder)."""
    if options.dry_run and settings.daemon.broker != "ibkr":
        raise StartupError(
            "--dry-run applies to daemon.broker: ibkr (the simulated broker sends no orders "
            "anywhere); drop it or set daemon.broker: ibkr",
            EXIT_USAGE,
        )
    container = build_daemon_container(
        settings, options, stop if stop is not None else asyncio.Event(), clock=clock, alerts=alerts
    )
    container.check_dependencies()
    try:
        await init_resources(container)
        daemon = await container.daemon.async_()
        clock_now = container.clock()
        logs.set_context(
            lambda: {
                "session": cme_trade_date(clock_now.now()).isoformat(),
                "state": daemon.engine.state.value,
            }
        )
        try:
            with unavailable_on_database_errors(store_url(settings)):
                return await daemon.run(on_ready)
        except VenueUnavailable as exc:
            raise StartupError(str(exc), EXIT_UNAVAILABLE) from exc
        finally:
            logs.set_context(None)
    finally:
        await shutdown_resources(container)


REPEAT_WINDOW_S = 1.0
"""A SIGTERM again within this long is one SIGTERM sent twice (GNU ``timeout`` and some supervisors
signal the process and then its group), not an operator insisting."""


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT ask for a graceful stop; a second one exits at once (exit code 130).

    A SIGTERM that repeats the first within :data:`REPEAT_WINDOW_S` is the same request and is
    ignored; a second Ctrl-C (SIGINT) always forces the exit.
    """
    loop = asyncio.get_running_loop()
    first: tuple[int, float] | None = None

    def on_signal(signum: int) -> None:
        nonlocal first
        name = signal.Signals(signum).name
        now = loop.time()
        # Counted, not read off ``stop``: a /stop already under way is not the first signal.
        if first is None:
            first = (signum, now)
            log.info("signal %s: stopping", name)
            stop.set()
            return
        if signum == first[0] == signal.SIGTERM and now - first[1] < REPEAT_WINDOW_S:
            log.info("signal %s repeated within %.1f s: the same stop", name, REPEAT_WINDOW_S)
            return
        log.warning("second signal %s: exiting now", name)
        raise SystemExit(130)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
