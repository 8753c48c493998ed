"""``quant-scalper run``: the daemon.

With ``daemon.broker: simulated`` (the default) it trades the simulated broker on a recorded feed,
paced like a live one, with the real journal and state store: a newcomer sees it trade without an IB
Gateway, and a ``kill -9`` at any moment loses nothing. How a restart resumes exactly:

* at every strategy-bar boundary, once the bar's decisions are carried out, the journal is flushed
  and a checkpoint is saved: the engine snapshot, the z-score window, the simulated exchange's state
  and the first market bar not processed yet;
* a restart restores all of them and plays the feed from that bar. Whatever happened after the
  checkpoint happens again, identically (the engine and the simulated exchange are deterministic,
  order keys and execution ids included), and the journal keeps one copy of each record.

With ``daemon.broker: ibkr`` it trades on IB Gateway: :mod:`entrypoints.live`.

A stop (SIGTERM, SIGINT, /stop) closes entries and, with ``shutdown.flatten`` (or the /stop
choice), flattens first; the simulated daemon then stops at the next strategy-bar checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from adapters.log_notifier import LogNotifier
from adapters.simulated.broker import SimulatedBroker
from adapters.simulated.clock import ManualClock
from adapters.simulated.market_data import PacedMarketData
from adapters.sql.journal import SqlJournal
from adapters.sql.queries import SqlJournalReader
from adapters.sql.state_store import SqlStateStore
from adapters.zscore.window import RememberingZScoreEngine
from application.operator import OperatorConsole
from application.ports import BarListener, Clock, ResumePoint
from application.services import EventInbox, TradingService
from application.watch import DaemonWatch
from domain.calendar import cme_trade_date
from domain.commands import Alert, AlertKind, OperatorRecord, Severity
from domain.engine import Engine, EngineState
from domain.events import (
    EntryGateChanged,
    FlattenRequested,
    PauseRequested,
    ResumeRequested,
)
from entrypoints import logs, observability
from entrypoints.container import build_container
from entrypoints.live import run_live
from entrypoints.replay import load_series
from entrypoints.runtime import (
    EXIT_USAGE,
    JOURNAL_CLOSE_S,
    JOURNAL_FLUSH_S,
    SHUTDOWN_GATE,
    SNAPSHOT_FALLBACK_FILE,
    BarRecorder,
    DaemonHandle,
    LateNotifier,
    RunOptions,
    RunResult,
    SessionSummaries,
    StartupError,
    StopRequest,
    TelegramSide,
    alerting_handler,
    daemon_version,
    daemon_watch,
    gated_journal,
    journal_owner,
    prepare_store,
    run_config,
)
from entrypoints.settings import Settings
from entrypoints.store import open_engine

__all__ = [
    "DaemonHandle",
    "RunOptions",
    "RunResult",
    "StartupError",
    "install_stop_signals",
    "run_daemon",
]

log = logging.getLogger("quant_scalper.daemon")

BOUNDARY_WAIT_S = 10.0
"""A graceful stop waits this long for the next strategy-bar checkpoint, then stops anyway."""


class StopAtBoundary(Exception):
    """Raised out of the checkpoint that follows a stop request: the trading loop ends there."""


class _SimulatedHealth:
    """Health facts of the simulated daemon: the exchange is in-process, so always connected."""

    def __init__(
        self, clock: ManualClock, journal: SqlJournal, notifier_backlog: Callable[[], int]
    ) -> None:
        self._clock = clock
        self._journal = journal
        self._notifier_backlog = notifier_backlog

    def connected(self) -> bool:
        return True

    def last_bar_end(self) -> datetime | None:
        return self._clock.now()

    def journal_backlog(self) -> int:
        return self._journal.backlog

    def journal_problem(self) -> str | None:
        return self._journal.problem

    def alert_backlog(self) -> int:
        return self._notifier_backlog()


async def _flatten_for_stop(
    service: TradingService, clock: ManualClock, trading: asyncio.Task[Any], timeout_s: float
) -> None:
    """Entries closed for good, the position (or a working entry) flattened; the feed plays on
    until it fills, for ``timeout_s`` at most, and no longer than the feed does."""
    await service.handle(EntryGateChanged(SHUTDOWN_GATE, "the daemon is stopping", clock.now()))
    engine = service.engine

    def done() -> bool:
        return engine.position.is_flat and engine.state is EngineState.IDLE

    if done():
        return
    await service.handle(FlattenRequested(clock.now(), "shutdown"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not done() and not trading.done() and loop.time() < deadline:
        await asyncio.sleep(0.01)


async def run_daemon(
    settings: Settings,
    options: RunOptions,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[DaemonHandle], None] | None = None,
    clock: Clock | None = None,
) -> RunResult:
    """Run until the feed ends (simulated, with ``exit_at_end``) or ``stop`` is set.

    ``clock`` replaces the system clock of the IB Gateway daemon (a soak run's accelerated one).
    """
    if settings.daemon.broker == "ibkr":
        return await run_live(settings, options, stop=stop, on_ready=on_ready, clock=clock)
    if options.dry_run:
        raise StartupError(
            "--dry-run applies to daemon.broker: ibkr (the simulated broker sends no orders "
            "anywhere); drop it or set daemon.broker: ibkr",
            EXIT_USAGE,
        )
    await prepare_store(settings, options.config_path)
    series = load_series(settings, settings.daemon.feed)
    data_dir = settings.database.data_dir.resolve()  # one place, whatever the cwd does later
    inbox = EventInbox()
    clock = ManualClock()
    alerts = LateNotifier()
    async with (
        journal_owner(settings, inbox, clock, alerts),
        open_engine(settings) as engine,
        gated_journal(engine, data_dir, inbox, clock, alerts) as journal,
    ):
        return await _run(
            settings,
            options,
            series,
            SqlStateStore(engine, fallback=data_dir / SNAPSHOT_FALLBACK_FILE),
            journal,
            SqlJournalReader(engine),
            inbox,
            clock,
            stop,
            on_ready,
            alerts,
        )


async def _run(
    settings: Settings,
    options: RunOptions,
    series: Any,
    store: SqlStateStore,
    journal: SqlJournal,
    reader: SqlJournalReader,
    inbox: EventInbox,
    clock: ManualClock,
    stop: asyncio.Event | None,
    on_ready: Callable[[DaemonHandle], None] | None,
    alerts: LateNotifier,
) -> RunResult:
    result = RunResult()
    loaded = await store.load_resume()
    resume = loaded[1] if loaded is not None else None
    start_epoch = resume.next_bar_epoch if resume is not None else None
    result.resumed_from = start_epoch
    feed = PacedMarketData(series, speed=options.speed, start_epoch=start_epoch)
    listeners: list[BarListener] = []  # filled below, once the broker exists
    telegram = await TelegramSide.open(settings) if settings.telegram.enabled else None
    notifier = telegram.notifier if telegram is not None else LogNotifier()
    alerts.attach(notifier)
    app = build_container(
        settings,
        "simulated",
        bar_source=series,
        adapter_overrides={
            "journal": journal,
            "notifier": notifier,
            "clock": clock,
            "inbox": inbox,
            "market_data": feed,
            "bar_listeners": listeners,
        },
    )
    lookback = settings.strategy.lookback_period
    zscore = RememberingZScoreEngine(app.services.zscore(), lookback)
    app.services.zscore.override(zscore)
    if loaded is not None:
        app.services.engine.override(Engine.restore(app.services.engine_config(), loaded[0]))
    broker: SimulatedBroker = app.adapters.broker()
    if resume is not None:
        zscore.refill(resume.closes)
        if resume.exchange is not None:
            broker.restore_state(resume.exchange)
    contract = f"SIM:{settings.instrument.symbol}"
    listeners.extend([clock, broker, BarRecorder(journal, contract)])

    service_box: list[TradingService] = []
    sessions = SessionSummaries(reader, notifier, clock, journal)
    stopper = StopRequest(stop if stop is not None else asyncio.Event())
    halt = asyncio.Event()  # set once a stop has flattened (or need not): end at the next boundary

    watch_box: list[DaemonWatch] = []

    async def checkpoint(next_epoch: int) -> None:
        service = service_box[0]
        for watch in watch_box:  # what each strategy bar changed, said in market time
            watch.check()
        # A snapshot only over a durable journal: else a restart would resume past records that
        # were never written. Without one, a restart replays from the last one saved.
        if await journal.flush_within(JOURNAL_FLUSH_S):
            try:
                await store.save(
                    service.engine.snapshot(),
                    ResumePoint(next_epoch, zscore.closes, broker.export_state()),
                )
            except OSError as exc:  # the fallback file on a full disk: trading goes on
                log.error("checkpoint: the engine snapshot was not saved: %s", exc)
        await sessions.at(next_epoch)
        if halt.is_set():
            raise StopAtBoundary

    app.services.checkpoint.override(checkpoint)
    service: TradingService = app.services.trading()
    service_box.append(service)
    watch = daemon_watch(settings, service, clock)
    watch_box.append(watch)
    if start_epoch is None and len(series):
        clock.set(datetime.fromtimestamp(int(series.epochs[0]), UTC))  # market time starts here
    if start_epoch is not None:
        resumed_at = datetime.fromtimestamp(start_epoch, UTC)
        log.info("resuming from the checkpoint: market bars from %s", resumed_at.isoformat())
        clock.set(resumed_at)
        await _reapply_operator_state(service, reader, clock.now())
        # Restart = resume, then reconcile: the exchange's word on the position and its orders.
        await service.handle((await broker.snapshot(None)).report(clock.now()))
    console = OperatorConsole(
        service=service,
        journal=journal,
        reader=reader,
        broker_view=lambda: broker.snapshot(None),
        clock=clock,
        health=_SimulatedHealth(
            clock, journal, notifier_backlog=telegram.backlog if telegram is not None else lambda: 0
        ),
        config=run_config(settings, options),
        version=daemon_version(),
        request_stop=stopper.request,
        stale_after_s=float("inf"),  # market time stands still between bars of a paced feed
    )
    where = (
        f"from the checkpoint at {clock.now().isoformat()}"
        if start_epoch is not None
        else "from the start"
    )
    notifier.notify(
        Alert(
            AlertKind.LIFECYCLE,
            Severity.INFO,
            f"started: simulated broker on {settings.daemon.feed.name}, {where}",
            clock.now(),
        )
    )
    logs.set_context(
        lambda: {
            "session": cme_trade_date(clock.now()).isoformat(),
            "state": service.engine.state.value,
        }
    )
    loop = asyncio.get_running_loop()
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(alerting_handler(notifier, clock))
    endpoints: web.AppRunner | None = None
    try:
        if settings.observability.port is not None:
            endpoints = await observability.serve(
                console, service, port=settings.observability.port
            )
        if telegram is not None:
            await telegram.serve(console)
        if on_ready is not None:
            on_ready(DaemonHandle(service, console, stopper.event))
        result = await _trade(settings, service, clock, watch, feed, options, stopper, halt, result)
    except Exception as exc:
        notifier.notify(
            Alert(
                AlertKind.ERROR,
                Severity.CRITICAL,
                f"the daemon stopped on an error: {type(exc).__name__}: {exc}",
                clock.now(),
            )
        )
        raise
    finally:
        loop.set_exception_handler(previous_handler)
        position = service.engine.position.signed_qty
        notifier.notify(
            Alert(
                AlertKind.LIFECYCLE,
                Severity.INFO,
                f"stopped ({result.stopped_by}), position {position:+d}",
                clock.now(),
            )
        )
        if telegram is not None:
            await telegram.close()
        if endpoints is not None:
            await endpoints.cleanup()
        logs.set_context(None)
    await service.settle()
    await journal.flush_within(JOURNAL_FLUSH_S)
    result.bars = feed.sent
    result.strategy_bars = service.counters.strategy_bars
    result.position = service.engine.position.signed_qty
    return result


async def _reapply_operator_state(
    service: TradingService, reader: SqlJournalReader, since: datetime
) -> None:
    """An operator's pause or resume after the last checkpoint is in the journal, not in the
    checkpoint: apply the last one again, so the pause state survives any restart."""
    records = await reader.records_of(OperatorRecord, since, None)
    last = None
    for rec in records:
        if rec.command in ("pause", "resume") and not rec.outcome.startswith("refused"):
            last = rec
    if last is None:
        return
    event = (
        PauseRequested(last.ts, last.by)
        if last.command == "pause"
        else ResumeRequested(last.ts, last.by)
    )
    await service.handle(event)


async def _trade(
    settings: Settings,
    service: TradingService,
    clock: ManualClock,
    watch: DaemonWatch,
    feed: PacedMarketData,
    options: RunOptions,
    stopper: StopRequest,
    halt: asyncio.Event,
    result: RunResult,
) -> RunResult:
    loop = asyncio.get_running_loop()
    trading = loop.create_task(service.run(feed, recording=True), name="trading")
    events = loop.create_task(service.run_events(), name="broker events")
    stopping = loop.create_task(stopper.event.wait(), name="stop signal")
    watching = loop.create_task(watch.run(), name="watch")
    try:
        done, _ = await asyncio.wait({trading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if trading in done and not _stopped_at_boundary(trading):
            trading.result()  # a failure in the trading loop is a bug: let it out
            log.info("the feed has ended (%d bars)", feed.sent)
            if not options.exit_at_end:
                await stopping
                result.stopped_by = stopper.by
        else:
            result.stopped_by = stopper.by
            # The flatten and the last checkpoint share the budget, less what the journal's last
            # flush and close may take (a full disk, a hung database): the stop ends within it.
            budget = settings.shutdown.timeout_s
            until = loop.time() + budget - min(JOURNAL_FLUSH_S + JOURNAL_CLOSE_S, budget / 2)
            if stopper.flattens(settings) and not trading.done():
                await _flatten_for_stop(service, clock, trading, max(0.5, until - loop.time()))
            halt.set()
            # Stop at the next strategy-bar boundary, once its checkpoint is saved: whatever the
            # operator did since the last one (a flatten, a pause) is then in the store too.
            if not trading.done():
                await asyncio.wait(
                    {trading}, timeout=max(0.5, min(BOUNDARY_WAIT_S, until - loop.time()))
                )
            if trading.done() and not _stopped_at_boundary(trading):
                trading.result()
    finally:
        for task in (trading, events, stopping, watching):
            if not task.done():
                task.cancel()
        for task in (trading, events, stopping, watching):
            with contextlib.suppress(asyncio.CancelledError, StopAtBoundary):
                await task
        watch.check()  # what ended with the feed is said too
    return result


def _stopped_at_boundary(task: asyncio.Task[Any]) -> bool:
    return not task.cancelled() and isinstance(task.exception(), StopAtBoundary)


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
