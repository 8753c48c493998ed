"""The daemon's object graph (``quant-scalper run``): one graph for both venues, part of the
composition root. ``daemon.broker`` selects the venue's adapters by a Selector; the store is a
Resource. Imported only by the daemon command: a replay never loads the SQL, aiogram or aiohttp
stacks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Any

from dependency_injector import containers, providers

from adapters.clock import SystemClock
from adapters.log_notifier import HeldNotifier
from adapters.simulated.clock import ManualClock
from adapters.simulated.market_data import BarSeries, PacedMarketData
from adapters.simulated.venue import SimulatedVenue
from adapters.sql.journal import SqlJournal
from adapters.sql.queries import SqlJournalReader
from adapters.sql.state_store import SqlStateStore
from adapters.zscore.window import RememberingZScoreEngine
from application.daemon import (
    ChangeNotingJournal,
    Channel,
    Daemon,
    DaemonHealth,
    DaemonOptions,
    SessionSummaries,
    StopRequest,
)
from application.operator import OperatorConsole
from application.ports import Clock, Notifier, ResumePoint
from application.services import EventInbox, TradingService
from application.session_timer import SessionTimer
from application.watch import DaemonWatch
from application.weekly_login import WEEKDAYS, WeeklyLoginReminder
from domain.aggregation import BarAggregator
from domain.commands import Alert, AlertKind, Severity
from domain.engine import Engine, EngineConfig, EngineSnapshot
from entrypoints.container import (
    Core,
    LiveAdapters,
    SimulatedAdapters,
    _ibkr,
    _make_zscore,
    _minutes_to_seconds,
    aggregation_calendar,
    engine_config,
)
from entrypoints.container.runtime import (
    SNAPSHOT_FALLBACK_FILE,
    BarRecorder,
    gated_journal,
    journal_owner,
    prepare_store,
)
from entrypoints.container.store import open_engine
from entrypoints.observability import EndpointsChannel
from entrypoints.replay import load_series
from entrypoints.settings import Settings, TelegramSettings
from entrypoints.startup import RunOptions, daemon_version, run_config

log = logging.getLogger("quant_scalper.daemon")


@dataclass(frozen=True)
class DaemonStore:
    """The daemon's store, open: the journal, the state store and what was saved last."""

    journal: SqlJournal
    state: SqlStateStore
    reader: SqlJournalReader
    loaded: tuple[EngineSnapshot, ResumePoint | None] | None

    @property
    def resume(self) -> ResumePoint | None:
        return self.loaded[1] if self.loaded is not None else None


async def open_daemon_store(
    settings: Settings,
    options: RunOptions,
    inbox: EventInbox,
    clock: Clock,
    alerts: Notifier,
) -> AsyncIterator[DaemonStore]:
    """Start-up step 2 as a Resource: the schema checked (or the embedded store created), this
    daemon's claim on the journal, the database engine, the journal with its outage spool, the
    last snapshot. Closed in the reverse order."""
    await prepare_store(settings, options.config_path)
    data_dir = settings.database.data_dir.resolve()  # one place, whatever the cwd does later
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(journal_owner(settings, inbox, clock, alerts))
        db = await stack.enter_async_context(open_engine(settings))
        journal = await stack.enter_async_context(gated_journal(db, data_dir, inbox, clock, alerts))
        state = SqlStateStore(db, fallback=data_dir / SNAPSHOT_FALLBACK_FILE)
        # A dry run neither resumes nor leaves a snapshot: its orders were never sent, so its
        # engine state must not become the next real run's.
        loaded = None if options.dry_run else await state.load_resume()
        if loaded is not None:
            log.info("restored the engine from the store: %s", loaded[0].state)
        yield DaemonStore(journal, state, SqlJournalReader(db), loaded)


async def _telegram_bot(settings: TelegramSettings) -> AsyncIterator[Any]:
    """The Telegram bot Resource; aiogram (seconds to import) only when Telegram is on, so a
    restart after a crash is not slower for it."""
    if not settings.enabled:
        yield None
        return
    from entrypoints.container.telegram import open_telegram_bot  # noqa: PLC0415

    async with contextlib.asynccontextmanager(open_telegram_bot)(settings) as bot:
        yield bot


class _LogOnlyChannel:
    """Telegram off: the held alerts are released to the log once the daemon serves."""

    def __init__(self, alerts: HeldNotifier) -> None:
        self._alerts = alerts

    async def check(self) -> None:
        return None

    async def serve(self, console: OperatorConsole) -> None:
        self._alerts.attach(None)

    def backlog(self) -> int:
        return 0

    async def close(self, timeout: float = 5.0) -> None:
        return None


def _telegram_channel(settings: TelegramSettings, alerts: HeldNotifier, bot: Any) -> Channel:
    if bot is None:
        return _LogOnlyChannel(alerts)
    from entrypoints.container.telegram import TelegramChannel  # noqa: PLC0415

    return TelegramChannel(settings, alerts, bot)


def _restored_engine(config: EngineConfig, store: DaemonStore) -> Engine:
    if store.loaded is None:
        return Engine(config)
    return Engine.restore(config, store.loaded[0])


def _clock_or_system(clock: Clock | None) -> Clock:
    return clock if clock is not None else SystemClock()


def _anomaly_alerts(notifier: Notifier, clock: Clock) -> Callable[[str], None]:
    return lambda text: notifier.notify(
        Alert(AlertKind.ANOMALY, Severity.WARNING, text, clock.now())
    )


def _flatten_before_close(settings: Settings) -> timedelta | None:
    minutes = settings.session.flatten_minutes_before_close
    if minutes is None or settings.session.calendar == "none":
        return None
    return timedelta(minutes=minutes)


def _restart_time(text: str | None) -> time | None:
    if text is None:
        return None
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _weekly_login(
    settings: Settings, clock: Clock, notifier: Notifier
) -> WeeklyLoginReminder | None:
    when = settings.ibkr.weekly_login
    if when is None:
        return None
    day, at = when.split(" ")
    return WeeklyLoginReminder(
        clock,
        notifier,
        weekday=WEEKDAYS.index(day),
        at=_restart_time(at) or time(0, 0),
        lead=timedelta(hours=settings.ibkr.weekly_login_reminder_hours),
    )


def _roll_symbol(settings: Settings) -> str | None:
    return settings.instrument.symbol if settings.session.no_entry_in_roll_week else None


def _stale_after(settings: Settings) -> float:
    return max(60.0, settings.ibkr.stale_grace_s * 2)


def _daemon_options(settings: Settings, options: RunOptions) -> DaemonOptions:
    return DaemonOptions(
        exit_at_end=options.exit_at_end,
        dry_run=options.dry_run,
        shutdown_timeout_s=settings.shutdown.timeout_s,
    )


def _minutes(minutes: int) -> timedelta:
    return timedelta(minutes=minutes)


def _load_feed(settings: Settings) -> BarSeries:
    return load_series(settings, settings.daemon.feed)


def _daemon_watch(settings: Settings, service: TradingService, clock: Clock) -> DaemonWatch:
    """The console's lasting-block lines and heartbeat (``logging.heartbeat_minutes``)."""
    minutes = settings.logging.heartbeat_minutes
    if minutes is None:
        minutes = settings.strategy.bar_minutes
    daemon_log = logging.getLogger("quant_scalper.daemon")
    return DaemonWatch(
        service,
        clock,
        lambda level, text: daemon_log.log(level, "%s", text),
        heartbeat=timedelta(minutes=minutes) if minutes else None,
    )


class DaemonContainer(containers.DeclarativeContainer):
    """``quant-scalper run``: one object graph for both venues; ``daemon.broker`` selects the
    venue's adapters (simulated exchange on a recorded feed, or IB Gateway). The store is a
    Resource: ``init_resources()`` opens it (and loads the last snapshot), ``shutdown_resources()``
    closes it."""

    settings = providers.Dependency(instance_of=Settings)
    options = providers.Dependency(instance_of=RunOptions)
    stop_event = providers.Dependency(instance_of=asyncio.Event)
    ib_clock: providers.Object[Clock | None] = providers.Object(None)
    """The IB daemon's clock (a soak run's accelerated one); None: the system clock."""
    alert_tap: providers.Object[Notifier | None] = providers.Object(None)
    """Where every alert goes too, as the daemon raises it (a test's recorder); None: nowhere."""

    core = providers.Container(Core, settings=settings)
    venue_kind = settings.provided.daemon.broker
    strategy = settings.provided.strategy

    inbox = providers.Singleton(EventInbox)
    notifier = providers.Singleton(HeldNotifier, also=alert_tap)
    clock = providers.Selector(
        venue_kind,
        simulated=providers.Singleton(ManualClock),
        ibkr=providers.Singleton(_clock_or_system, ib_clock),
    )
    store = providers.Resource(open_daemon_store, settings, options, inbox, clock, notifier)
    telegram_bot = providers.Resource(_telegram_bot, settings.provided.telegram)
    journal = store.provided.journal
    changes = providers.Singleton(ChangeNotingJournal, journal)

    # -- the simulated venue: the replay's adapters, on a feed paced like a live one
    series = providers.Singleton(_load_feed, settings)
    sim_feed = providers.Singleton(PacedMarketData, series, speed=options.provided.speed)
    sim = providers.Container(
        SimulatedAdapters,
        core=core,
        bar_source=series,
        inbox=inbox,
        clock=clock,
        notifier=notifier,
        journal=journal,
        market_data=sim_feed,
    )
    sim_venue = providers.Singleton(
        SimulatedVenue,
        series=series,
        feed=sim_feed,
        broker=sim.broker,
        clock=clock,
        symbol=settings.provided.instrument.symbol,
    )

    # -- IB Gateway: the live adapters
    ibkr = providers.Container(
        LiveAdapters,
        core=core,
        inbox=inbox,
        clock=clock,
        notifier=notifier,
        journal=journal,
        dry_run=options.provided.dry_run,
    )
    summaries = providers.Singleton(
        SessionSummaries, store.provided.reader, notifier, clock, journal
    )
    timer = providers.Singleton(
        SessionTimer,
        calendar=core.calendar,
        flatten_before_close=providers.Callable(_flatten_before_close, settings),
        clock=clock,
        sink=inbox.provided.put,
        restart_time=providers.Callable(_restart_time, settings.provided.ibkr.restart_time),
        restart_block=providers.Callable(_minutes, settings.provided.ibkr.restart_block_minutes),
        roll_symbol=providers.Callable(_roll_symbol, settings),
        on_close=summaries.provided.send,
        on_problem=providers.Callable(_anomaly_alerts, notifier, clock),
    )
    ibkr_venue = providers.Singleton(
        _ibkr("venue", "IbkrVenue"),
        session=ibkr.session,
        broker=ibkr.broker,
        market_data=ibkr.market_data,
        timer=timer,
        clock=clock,
        calendar=core.calendar,
        warm_up_calendar=providers.Callable(aggregation_calendar, settings, core.calendar),
        bar_seconds=providers.Callable(_minutes_to_seconds, strategy.provided.bar_minutes),
        host=settings.provided.ibkr.host,
        port=settings.provided.ibkr.port,
        client_id=settings.provided.ibkr.client_id,
        startup_attempts=settings.provided.ibkr.startup_attempts,
        stale_after_s=providers.Callable(_stale_after, settings),
        weekly_login=providers.Singleton(_weekly_login, settings, clock, notifier),
    )

    # -- the venue selected
    venue = providers.Selector(venue_kind, simulated=sim_venue, ibkr=ibkr_venue)
    broker = providers.Selector(venue_kind, simulated=sim.broker, ibkr=ibkr.broker)
    market_data = providers.Selector(venue_kind, simulated=sim_feed, ibkr=ibkr.market_data)
    recorder = providers.Singleton(BarRecorder, journal, venue.provided.contract_name)
    bar_listeners = providers.Selector(
        venue_kind,
        simulated=providers.List(clock, sim.broker, recorder),
        ibkr=providers.List(recorder),
    )

    # -- the trading service and the daemon
    engine_config = providers.Callable(engine_config, settings, core.calendar)
    engine = providers.Singleton(_restored_engine, engine_config, store)
    aggregator = providers.Singleton(
        BarAggregator,
        bar_seconds=providers.Callable(_minutes_to_seconds, strategy.provided.bar_minutes),
        calendar=providers.Callable(aggregation_calendar, settings, core.calendar),
    )
    zscore = providers.Singleton(
        RememberingZScoreEngine,
        providers.Singleton(_make_zscore, core.zscore_factory, strategy.provided.lookback_period),
        strategy.provided.lookback_period,
    )
    service = providers.Singleton(
        TradingService,
        engine=engine,
        aggregator=aggregator,
        zscore=zscore,
        broker=broker,
        journal=changes,
        notifier=notifier,
        inbox=inbox,
        bar_listeners=bar_listeners,
    )
    stop = providers.Singleton(
        StopRequest, stop_event, default_flatten=settings.provided.shutdown.flatten
    )
    watch = providers.Singleton(_daemon_watch, settings, service, clock)
    channels = providers.List(
        providers.Singleton(
            EndpointsChannel,
            settings.provided.observability.port,
            service,
            venue.provided.health.reconnects,
            venue.provided.health.notices,
        ),
        providers.Singleton(_telegram_channel, settings.provided.telegram, notifier, telegram_bot),
    )
    health = providers.Singleton(DaemonHealth, venue.provided.health, journal, channels)
    console = providers.Singleton(
        OperatorConsole,
        service=service,
        journal=changes,
        reader=store.provided.reader,
        broker=broker,
        clock=clock,
        health=health,
        config=providers.Callable(run_config, settings, options),
        version=providers.Callable(daemon_version),
        request_stop=stop.provided.request,
        stale_after_s=venue.provided.health.stale_after_s,
        expect_bars=venue.provided.health.expect_bars,
    )
    daemon = providers.Singleton(
        Daemon,
        service=service,
        venue=venue,
        broker=broker,
        market_data=market_data,
        journal=journal,
        changes=changes,
        reader=store.provided.reader,
        store=store.provided.state,
        resume=store.provided.resume,
        zscore=zscore,
        window=strategy.provided.lookback_period,
        summaries=summaries,
        watch=watch,
        console=console,
        channels=channels,
        notifier=notifier,
        clock=clock,
        stop=stop,
        options=providers.Callable(_daemon_options, settings, options),
    )


def build_daemon_container(
    settings: Settings,
    options: RunOptions,
    stop: asyncio.Event,
    *,
    clock: Clock | None = None,
    alerts: Notifier | None = None,
) -> DaemonContainer:
    """The daemon's container; ``clock`` replaces the IB daemon's system clock (a soak's), and
    ``alerts`` receives every alert besides the daemon's own channels (a test's recorder)."""
    return DaemonContainer(
        settings=settings,
        options=options,
        stop_event=stop,
        ib_clock=providers.Object(clock),
        alert_tap=providers.Object(alerts),
    )
