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

The live IB Gateway path (``daemon.broker: ibkr``) is issue 6's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from adapters.clock import SystemClock
from adapters.fanout import FanoutNotifier
from adapters.log_notifier import LogNotifier
from adapters.simulated.broker import SimulatedBroker
from adapters.simulated.clock import ManualClock
from adapters.simulated.market_data import PacedMarketData
from adapters.sql.journal import SqlJournal
from adapters.sql.queries import SqlJournalReader
from adapters.sql.spool import Spool
from adapters.sql.state_store import SqlStateStore
from adapters.telegram.notifier import TelegramNotifier
from adapters.zscore.window import RememberingZScoreEngine
from application.operator import OperatorConsole
from application.ports import BarListener, Notifier, ResumePoint
from application.services import EventInbox, TradingService
from domain.bar import Bar
from domain.calendar import cme_trade_date
from domain.commands import Alert, AlertKind, OperatorRecord, Severity
from domain.engine import Engine
from domain.events import (
    EntryGateChanged,
    FlattenRequested,
    PauseRequested,
    ResumeRequested,
)
from entrypoints import logs, observability
from entrypoints.container import Application, build_container
from entrypoints.replay import load_series
from entrypoints.settings import Settings, TelegramSettings
from entrypoints.store import (
    open_engine,
    require_current_schema,
    sqlite_file,
    store_url,
    upgrade_schema,
)
from entrypoints.telegram.dispatcher import (
    build_bot,
    build_dispatcher,
    check_single_poller,
    mask_token_in_logs,
)

log = logging.getLogger("quant_scalper.daemon")

SPOOL_FILE = "journal.spool"
SNAPSHOT_FALLBACK_FILE = "snapshot.fallback.json"
JOURNAL_GATE = "journal"
BOUNDARY_WAIT_S = 10.0
"""A graceful stop waits this long for the next strategy-bar checkpoint, then stops anyway."""


class UnsupportedBroker(Exception):
    """The configured broker mode is not available in this version (one line for the user)."""


class StopAtBoundary(Exception):
    """Raised out of the checkpoint that follows a stop request: the trading loop ends there."""


@dataclass(frozen=True)
class RunOptions:
    speed: float | None
    """Times faster than real time; None: as fast as possible."""
    exit_at_end: bool = False
    config_path: Path | None = None


@dataclass
class RunResult:
    bars: int = 0
    resumed_from: int | None = None
    strategy_bars: int = 0
    round_trips: int = 0
    position: int = 0
    stopped_by: str = "end of feed"
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DaemonHandle:
    """The running daemon, for whoever started it (tests, the Telegram bot)."""

    service: TradingService
    console: OperatorConsole
    stop: asyncio.Event


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

    def alert_backlog(self) -> int:
        return self._notifier_backlog()


class _TelegramSide:
    """The bot inside the daemon: alerts to the configured chats, commands by long polling."""

    def __init__(self, settings: TelegramSettings, bot: Bot, notifier: TelegramNotifier | None):
        self._settings = settings
        self._bot = bot
        self._telegram = notifier
        self.notifier: Notifier = (
            FanoutNotifier(LogNotifier(), notifier) if notifier is not None else LogNotifier()
        )
        self._polling: asyncio.Task[None] | None = None
        self._webhook: web.AppRunner | None = None

    @classmethod
    async def open(cls, settings: Settings) -> _TelegramSide:
        config = settings.telegram
        bot = build_bot(config)
        if config.token is not None:
            mask_token_in_logs(config.token.get_secret_value())
        if config.webhook_url is None:  # a webhook replaces any poller when it is set
            try:
                await check_single_poller(bot)
            except BaseException:
                await bot.session.close()
                raise
        notifier = None
        if config.chat_ids:
            notifier = TelegramNotifier(
                bot,
                config.chat_ids,
                clock=SystemClock(),
                modes=config.alerts,
                rate_limit_per_minute=config.rate_limit_per_minute,
                queue_size=config.queue_size,
                dedup_window_s=config.dedup_window_s,
            )
            notifier.start()
        return cls(config, bot, notifier)

    def backlog(self) -> int:
        return self._telegram.backlog if self._telegram is not None else 0

    async def serve(self, console: OperatorConsole) -> None:
        """Answer commands in the daemon's event loop: by long polling, or on a webhook."""
        dispatcher = build_dispatcher(console, self._settings, clock=SystemClock())
        url = self._settings.webhook_url
        if url is None:
            self._polling = asyncio.get_running_loop().create_task(
                dispatcher.start_polling(self._bot, handle_signals=False, close_bot_session=False),
                name="telegram polling",
            )
            return
        secret = self._settings.webhook_secret
        token = secret.get_secret_value() if secret is not None else None
        app = web.Application()
        SimpleRequestHandler(dispatcher=dispatcher, bot=self._bot, secret_token=token).register(
            app, path=urlsplit(url).path or "/"
        )
        setup_application(app, dispatcher, bot=self._bot)
        self._webhook = web.AppRunner(app, access_log=None)
        await self._webhook.setup()
        await web.TCPSite(
            self._webhook, self._settings.webhook_listen, self._settings.webhook_port
        ).start()
        await self._bot.set_webhook(url, secret_token=token)

    async def close(self) -> None:
        if self._webhook is not None:
            with contextlib.suppress(TelegramAPIError):
                await self._bot.delete_webhook()
            await self._webhook.cleanup()
        if self._polling is not None:
            self._polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._polling
        if self._telegram is not None:
            await self._telegram.close(timeout=5.0)
        await self._bot.session.close()


def _alerting_handler(
    notifier: Notifier, clock: ManualClock
) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """An event-loop exception handler: an error nobody awaited becomes an ``error`` alert."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        what = f"{type(exc).__name__}: {exc}" if exc is not None else context.get("message", "")
        notifier.notify(
            Alert(AlertKind.ERROR, Severity.CRITICAL, f"unhandled: {what}", clock.now())
        )
        loop.default_exception_handler(context)

    return handle


class _SessionSummaries:
    """The daily summary alert: when the CME trade date of the bars changes, the results of the
    session that just closed (round trips by exit time, from the journal)."""

    def __init__(self, reader: SqlJournalReader, notifier: Notifier, clock: ManualClock) -> None:
        self._reader = reader
        self._notifier = notifier
        self._clock = clock
        self._current: date | None = None

    async def at(self, epoch: int) -> None:
        trade_date = cme_trade_date(datetime.fromtimestamp(epoch, UTC))
        previous, self._current = self._current, trade_date
        if previous is None or previous == trade_date:
            return
        pnl = await self._reader.session_pnl(previous)
        win_rate = f", {pnl.wins * 100 // pnl.trades}% won" if pnl.trades else ""
        self._notifier.notify(
            Alert(
                AlertKind.DAILY_SUMMARY,
                Severity.INFO,
                f"session {previous.isoformat()} closed: {pnl.trades} trades ({pnl.wins} won, "
                f"{pnl.losses} lost{win_rate}), net {pnl.net_pnl:+.2f} USD after "
                f"{pnl.commissions:.2f} commissions",
                self._clock.now(),
            )
        )


async def _stop_after(
    service: TradingService, clock: ManualClock, stop: asyncio.Event, *, flatten: bool
) -> None:
    """Stop the daemon; with ``flatten``, close the position first (and pause, so nothing reopens)."""
    if flatten and not service.engine.position.is_flat:
        await service.handle(FlattenRequested(clock.now(), "stop", pause=True))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30.0
        while not service.engine.position.is_flat and loop.time() < deadline:
            await asyncio.sleep(0.05)
    stop.set()


def _version() -> str:
    try:
        return version("quant-scalper")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree not installed
        return "unknown"


class BarRecorder:
    """Records every market bar in the journal, so any session can be replayed exactly."""

    def __init__(self, journal: SqlJournal, contract: str) -> None:
        self._journal = journal
        self._contract = contract

    def on_bar(self, bar: Bar) -> None:
        self._journal.append_bar(self._contract, bar)


async def run_daemon(
    settings: Settings,
    options: RunOptions,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[DaemonHandle], None] | None = None,
) -> RunResult:
    """Run until the feed ends (with ``exit_at_end``) or ``stop`` is set."""
    if settings.daemon.broker != "simulated":
        raise UnsupportedBroker(
            "daemon.broker: ibkr is not available in this version yet (use `quant-scalper "
            "ibkr-check` to test a Gateway); the simulated daemon runs with daemon.broker: simulated"
        )
    url = store_url(settings)
    path = sqlite_file(url)
    if path is not None and not path.exists():
        # The embedded default on a fresh machine: create it. Any other store is migrated by
        # `quant-scalper db upgrade`, never behind the operator's back.
        revision = await asyncio.to_thread(upgrade_schema, url)
        log.info("created the embedded journal %s at schema %s", path, revision)
    else:
        await asyncio.to_thread(require_current_schema, url, options.config_path)
    series = load_series(settings, settings.daemon.feed)
    data_dir = settings.database.data_dir
    async with open_engine(settings) as engine:
        store = SqlStateStore(engine, fallback=data_dir / SNAPSHOT_FALLBACK_FILE)
        inbox = EventInbox()
        clock = ManualClock()
        journal = SqlJournal(
            engine,
            Spool(data_dir / SPOOL_FILE),
            on_availability=lambda up: inbox.put(
                EntryGateChanged(
                    JOURNAL_GATE, None if up else "the journal database is unreachable", clock.now()
                )
            ),
        )
        await journal.start()
        try:
            return await _run(
                settings,
                options,
                series,
                store,
                journal,
                SqlJournalReader(engine),
                inbox,
                clock,
                stop,
                on_ready,
            )
        finally:
            await journal.close()


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
) -> RunResult:
    result = RunResult()
    loaded = await store.load_resume()
    resume = loaded[1] if loaded is not None else None
    start_epoch = resume.next_bar_epoch if resume is not None else None
    result.resumed_from = start_epoch
    feed = PacedMarketData(series, speed=options.speed, start_epoch=start_epoch)
    listeners: list[BarListener] = []  # filled below, once the broker exists
    telegram = await _TelegramSide.open(settings) if settings.telegram.enabled else None
    notifier = telegram.notifier if telegram is not None else LogNotifier()
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
    sessions = _SessionSummaries(reader, notifier, clock)
    stop = stop if stop is not None else asyncio.Event()

    async def checkpoint(next_epoch: int) -> None:
        service = service_box[0]
        await journal.flush()
        await store.save(
            service.engine.snapshot(),
            ResumePoint(next_epoch, zscore.closes, broker.export_state()),
        )
        await sessions.at(next_epoch)
        if stop.is_set():
            raise StopAtBoundary

    app.services.checkpoint.override(checkpoint)
    service: TradingService = app.services.trading()
    service_box.append(service)
    if start_epoch is None and len(series):
        clock.set(datetime.fromtimestamp(int(series.epochs[0]), UTC))  # market time starts here
    if start_epoch is not None:
        log.info("resuming from the checkpoint: market bars from epoch %d", start_epoch)
        clock.set(datetime.fromtimestamp(start_epoch, UTC))
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
        config=settings.redacted(),
        version=_version(),
        request_stop=lambda flatten: _stop_after(service, clock, stop, flatten=flatten),
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
    loop.set_exception_handler(_alerting_handler(notifier, clock))
    endpoints: web.AppRunner | None = None
    try:
        if settings.observability.port is not None:
            endpoints = await observability.serve(
                console, service, port=settings.observability.port
            )
        if telegram is not None:
            await telegram.serve(console)
        if on_ready is not None:
            on_ready(DaemonHandle(service, console, stop))
        result = await _trade(app, service, feed, options, stop, result)
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
    await journal.flush()
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
    app: Application,
    service: TradingService,
    feed: PacedMarketData,
    options: RunOptions,
    stop: asyncio.Event | None,
    result: RunResult,
) -> RunResult:
    loop = asyncio.get_running_loop()
    trading = loop.create_task(service.run(feed), name="trading")
    events = loop.create_task(service.run_events(), name="broker events")
    waiters: set[asyncio.Future[Any]] = {trading}
    stopping: asyncio.Task[Any] | None = None
    if stop is not None:
        stopping = loop.create_task(stop.wait(), name="stop signal")
        waiters.add(stopping)
    try:
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if trading in done and not _stopped_at_boundary(trading):
            trading.result()  # a failure in the trading loop is a bug: let it out
            log.info("the feed has ended (%d bars)", feed.sent)
            if not options.exit_at_end and stopping is not None:
                await stopping
                result.stopped_by = "signal"
        else:
            result.stopped_by = "signal"
            # Stop at the next strategy-bar boundary, once its checkpoint is saved: whatever the
            # operator did since the last one (a flatten, a pause) is then in the store too.
            if not trading.done():
                await asyncio.wait({trading}, timeout=BOUNDARY_WAIT_S)
            if trading.done() and not _stopped_at_boundary(trading):
                trading.result()
    finally:
        for task in (trading, events, stopping):
            if task is not None and not task.done():
                task.cancel()
        for task in (trading, events, stopping):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, StopAtBoundary):
                    await task
    return result


def _stopped_at_boundary(task: asyncio.Task[Any]) -> bool:
    return not task.cancelled() and isinstance(task.exception(), StopAtBoundary)


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT ask for a graceful stop; a second one exits at once."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second signal %s: exiting now", signal.Signals(signum).name)
            raise SystemExit(130)
        log.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
