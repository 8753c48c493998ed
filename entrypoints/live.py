"""``quant-scalper run`` against IB Gateway (``daemon.broker: ibkr``).

Start-up, in this order, each failure one line and a documented exit code (``cli.py``):

1. settings (validated before this module runs; exit 2);
2. the store: its schema must be current (exit 2), the database reachable (exit 4);
3. the broker: connect (``ibkr.startup_attempts`` tries; an unreachable Gateway or a client id that
   stays in use is exit 4), resync our orders by key, reconcile the position and its legs;
4. the contract: the front month by the roll rule, or ``instrument.expiry`` (exit 4 if IB lists
   none);
5. bars: the real-time stream, and the z-score window warmed up from IB's history;
6. Telegram (a second poller on the token is exit 4);
7. trading: the bar loop, broker events, the session timer, the health endpoints.

Shutdown (SIGTERM, SIGINT, or an operator's /stop), within ``shutdown.timeout_s``: entries stop,
the position is flattened (``shutdown.flatten``, or the /stop choice) or left with its broker-held
bracket, our loose orders are cancelled, the journal and a last checkpoint are written, the alerts
are sent, and the link to IB is closed. A second signal exits at once.

Restart = resume: the engine snapshot comes back from the store (breaker, pause, position and legs);
the session's resync and reconcile then bring IB's word on everything that happened meanwhile. The
snapshot is saved at every strategy-bar boundary and after every change the engine journals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

from adapters.clock import SystemClock
from adapters.ibkr.broker import IbkrBroker
from adapters.ibkr.client import IbConnectError
from adapters.ibkr.contracts import ContractError
from adapters.ibkr.history import recent_closes
from adapters.ibkr.mapping import protective_kind
from adapters.ibkr.market_data import IbkrMarketData
from adapters.ibkr.session import IbkrSession
from adapters.log_notifier import LogNotifier
from adapters.sql.journal import SqlJournal
from adapters.sql.queries import SqlJournalReader
from adapters.sql.state_store import SqlStateStore
from adapters.zscore.window import RememberingZScoreEngine
from application.operator import OperatorConsole
from application.ports import Clock, Notifier, ResumePoint
from application.ports import BrokerError
from application.services import EventInbox, TradingService
from application.session_timer import SessionTimer
from application.watch import DaemonWatch
from domain.calendar import cme_trade_date
from domain.commands import Alert, AlertKind, CancelOrders, FillRecord, JournalRecord, Severity
from domain.engine import Engine, EngineState, OrderRole
from domain.errors import CalendarCoverageError
from domain.events import EntryGateChanged, FlattenRequested
from entrypoints import logs, observability
from entrypoints.container import aggregation_calendar, build_container
from entrypoints.runtime import (
    EXIT_UNAVAILABLE,
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

log = logging.getLogger("quant_scalper.daemon")

FILL_LOOKBACK = timedelta(days=7)
"""How far back the journal is asked for our last fill (IB reports at most a day of executions)."""
CANCEL_WAIT_S = 2.0


class _StoppedDuringStartUp(Exception):
    """A stop came while the daemon was still connecting."""


class _HeldNotifier:
    """Alerts before Telegram is up (it starts after the broker, by the start-up order) go to the
    log at once and, once Telegram is attached, to Telegram too: nothing said at start-up is lost."""

    def __init__(self, limit: int = 100) -> None:
        self._log = LogNotifier()
        self._held: list[Alert] = []
        self._limit = limit
        self._next: Notifier | None = None

    def notify(self, alert: Alert) -> None:
        if self._next is not None:
            self._next.notify(alert)
            return
        self._log.notify(alert)
        if len(self._held) < self._limit:
            self._held.append(alert)

    def attach(self, notifier: Notifier, *, logs_them_again: bool = False) -> None:
        """From now on alerts go to ``notifier`` (which must log them too); the held ones first,
        unless ``notifier`` is only the log, which has them already."""
        held, self._held = self._held, []
        self._next = notifier
        if logs_them_again:
            return  # already in the log
        for alert in held:
            notifier.notify(alert)


class _ChangeJournal:
    """The engine's journal, noting that the engine changed: the daemon saves a snapshot then."""

    def __init__(self, journal: SqlJournal, changed: asyncio.Event) -> None:
        self._journal = journal
        self._changed = changed

    def append(self, record: JournalRecord) -> None:
        self._journal.append(record)
        self._changed.set()

    async def flush(self) -> None:
        await self._journal.flush_within(JOURNAL_FLUSH_S)


class _LiveHealth:
    def __init__(
        self,
        session: IbkrSession,
        market_data: IbkrMarketData,
        journal: SqlJournal,
        alert_backlog: Callable[[], int],
    ) -> None:
        self._session = session
        self._market_data = market_data
        self._journal = journal
        self._alert_backlog = alert_backlog

    def connected(self) -> bool:
        return self._session.link_up

    def last_bar_end(self) -> datetime | None:
        end = self._market_data.last_bar_end
        return None if end is None else datetime.fromtimestamp(end, UTC)

    def journal_backlog(self) -> int:
        return self._journal.backlog

    def journal_problem(self) -> str | None:
        return self._journal.problem

    def alert_backlog(self) -> int:
        return self._alert_backlog()


async def run_live(
    settings: Settings,
    options: RunOptions,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[DaemonHandle], None] | None = None,
    clock: Clock | None = None,
) -> RunResult:
    """Trade on IB Gateway until ``stop`` is set (a signal) or an operator stops the daemon."""
    await prepare_store(settings, options.config_path)
    clock = clock if clock is not None else SystemClock()
    data_dir = settings.database.data_dir.resolve()  # one place, whatever the cwd does later
    inbox = EventInbox()
    alerts = LateNotifier()
    async with (
        journal_owner(settings, inbox, clock, alerts),
        open_engine(settings) as db,
        gated_journal(db, data_dir, inbox, clock, alerts) as journal,
    ):
        daemon = _LiveDaemon(
            settings,
            options,
            clock,
            inbox,
            journal,
            SqlStateStore(db, fallback=data_dir / SNAPSHOT_FALLBACK_FILE),
            SqlJournalReader(db),
            StopRequest(stop if stop is not None else asyncio.Event()),
        )
        alerts.attach(daemon.notifier)
        return await daemon.run(on_ready)


class _LiveDaemon:
    def __init__(
        self,
        settings: Settings,
        options: RunOptions,
        clock: Clock,
        inbox: EventInbox,
        journal: SqlJournal,
        store: SqlStateStore,
        reader: SqlJournalReader,
        stop: StopRequest,
    ) -> None:
        self.settings = settings
        self.options = options
        self.clock = clock
        self.inbox = inbox
        self.journal = journal
        self.store = store
        self.reader = reader
        self.stop = stop
        self.result = RunResult(stopped_by="signal")
        self.notifier = _HeldNotifier()
        self.changed = asyncio.Event()
        self.saving = asyncio.Lock()
        self.next_epoch = 0
        self.app = build_container(
            settings,
            "live",
            adapter_overrides={
                "journal": _ChangeJournal(journal, self.changed),
                "notifier": self.notifier,
                "clock": clock,
                "inbox": inbox,
                # The contract IB streams: the session resolves it at start and on a roll.
                "bar_listeners": [BarRecorder(journal, self._contract_name)],
                "dry_run": options.dry_run,
            },
        )
        self.zscore = RememberingZScoreEngine(
            self.app.services.zscore(), settings.strategy.lookback_period
        )
        self.app.services.zscore.override(self.zscore)
        self.session: IbkrSession = self.app.adapters.session()
        self.broker: IbkrBroker = self.app.adapters.broker()
        self.market_data: IbkrMarketData = self.app.adapters.market_data()
        self.telegram: TelegramSide | None = None
        self.watch: DaemonWatch | None = None

    def _contract_name(self) -> str:
        contract = self.session.contract
        return contract.local_symbol if contract is not None else "IBKR:unresolved"

    # -- start-up -----------------------------------------------------------------------------

    async def run(self, on_ready: Callable[[DaemonHandle], None] | None) -> RunResult:
        settings = self.settings
        # A dry run neither resumes nor leaves a snapshot: its orders were never sent, so its
        # engine state must not become the next real run's.
        loaded = None if self.options.dry_run else await self.store.load_resume()
        if loaded is not None:
            config = self.app.services.engine_config()
            self.app.services.engine.override(Engine.restore(config, loaded[0]))
            log.info("restored the engine from the store: %s", loaded[0].state)
        self.app.services.checkpoint.override(self._checkpoint)
        service: TradingService = self.app.services.trading()
        self.service = service
        self.broker.last_execution = await self._last_fill_time()

        try:
            await self._connect()
        except _StoppedDuringStartUp:
            self.result.stopped_by = "signal during start-up"
            log.info("stopped while connecting to IB Gateway")
            return self.result
        contract = self.session.contract
        assert contract is not None  # the session resolved it, or start() raised
        self.contract_name = contract.local_symbol
        try:
            await self._warm_up(loaded[1] if loaded is not None else None)
            self.telegram = await TelegramSide.open(settings) if settings.telegram.enabled else None
        except BaseException:
            await self.session.close()  # a start-up that fails after connecting leaves no link
            raise
        if self.telegram is not None:
            self.notifier.attach(self.telegram.notifier)
        else:
            self.notifier.attach(LogNotifier(), logs_them_again=True)
        console = self._console(service)
        return await self._trade(service, console, on_ready)

    async def _connect(self) -> None:
        ibkr = self.settings.ibkr
        where = f"IB Gateway at {ibkr.host}:{ibkr.port} (client id {ibkr.client_id})"
        loop = asyncio.get_running_loop()
        starting = loop.create_task(self.session.start(), name="connect")
        stopping = loop.create_task(self.stop.event.wait(), name="stop signal")
        try:
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not starting.done():  # a stop during the start-up: nothing is trading yet
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            await self.session.close()
            raise _StoppedDuringStartUp
        try:
            starting.result()
        except IbConnectError as exc:
            raise StartupError(
                f"cannot connect to {where} after {ibkr.startup_attempts} attempt(s): {exc}",
                EXIT_UNAVAILABLE,
            ) from exc
        except ContractError as exc:
            raise StartupError(f"no contract to trade at {where}: {exc}", EXIT_UNAVAILABLE) from exc
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            what = str(exc) or type(exc).__name__
            raise StartupError(
                f"{where} connected but did not answer the start-up requests: {what}",
                EXIT_UNAVAILABLE,
            ) from exc

    async def _warm_up(self, resume: ResumePoint | None) -> None:
        """Fill the z-score window: from IB's history; else the checkpoint's closes."""
        settings = self.settings
        ib_contract = self.market_data.contract
        assert ib_contract is not None
        window = settings.strategy.lookback_period
        calendar = aggregation_calendar(settings, self.app.core.calendar())
        closes = await recent_closes(
            self.session.client,
            ib_contract,
            now=self.clock.now(),
            bar_seconds=settings.strategy.bar_minutes * 60,
            count=window,
            calendar=calendar,
            gate=self.market_data.gate,
        )
        source = "IB's history"
        if len(closes) < window and resume is not None and len(resume.closes) > len(closes):
            closes, source = list(resume.closes), "the last checkpoint"
        # No history: the price band's reference comes from the checkpoint's closes, so the first
        # live bar is checked too rather than taken as the reference whatever its price.
        self.market_data.gate.seed(closes)
        self.zscore.refill(closes)
        log.info("z-score warm-up: %d of %d closes from %s", len(closes), window, source)

    async def _last_fill_time(self) -> datetime | None:
        """When our last fill the journal knows happened: IB is asked for executions since then."""
        now = self.clock.now()
        fills = await self.reader.records_of(FillRecord, now - FILL_LOOKBACK, None)
        return max((f.fill.ts for f in fills), default=None)

    def _console(self, service: TradingService) -> OperatorConsole:
        telegram = self.telegram
        calendar = self.app.core.calendar()

        def market_open() -> bool:
            try:
                return calendar.session_at(int(self.clock.now().timestamp())) is not None
            except CalendarCoverageError:
                return True

        return OperatorConsole(
            service=service,
            journal=self.app.adapters.journal(),
            reader=self.reader,
            broker_view=lambda: self.broker.snapshot(None),
            clock=self.clock,
            health=_LiveHealth(
                self.session,
                self.market_data,
                self.journal,
                telegram.backlog if telegram is not None else lambda: 0,
            ),
            config=run_config(self.settings, self.options),
            version=daemon_version(),
            request_stop=self.stop.request,
            stale_after_s=max(60.0, self.settings.ibkr.stale_grace_s * 2),
            expect_bars=market_open,
        )

    # -- running ------------------------------------------------------------------------------

    async def _checkpoint(self, next_epoch: int) -> None:
        self.next_epoch = next_epoch
        if self.watch is not None:
            self.watch.check()
        await self._save()

    async def _save(self) -> None:
        # One save at a time, each taking the snapshot once it holds the lock: a newer snapshot
        # is never overwritten by an older one that finished later.
        async with self.saving:
            # A snapshot only over a durable journal (a full disk, a hung database: not now).
            if not await self.journal.flush_within(JOURNAL_FLUSH_S):
                log.warning(
                    "snapshot not saved: the journal is not durable (%s)", self.journal.problem
                )
                return
            if self.options.dry_run:
                return
            try:
                await self.store.save(
                    self.service.engine.snapshot(),
                    ResumePoint(self.next_epoch, self.zscore.closes, None),
                )
            except OSError as exc:  # the fallback file on a full disk: trading goes on
                log.error("snapshot not saved: %s", exc)

    async def _save_on_change(self) -> None:
        """Save a snapshot after every change the engine journals (fills, orders, operator)."""
        while True:
            await self.changed.wait()
            self.changed.clear()
            try:
                await self._save()
            except Exception as exc:  # an outage goes to the fallback file: this is worse
                self.notifier.notify(
                    Alert(
                        AlertKind.ERROR,
                        Severity.CRITICAL,
                        f"engine snapshot not saved: {exc!r}",
                        self.clock.now(),
                    )
                )

    async def _trade(
        self,
        service: TradingService,
        console: OperatorConsole,
        on_ready: Callable[[DaemonHandle], None] | None,
    ) -> RunResult:
        settings, clock, notifier = self.settings, self.clock, self.notifier
        summaries = SessionSummaries(self.reader, notifier, clock, self.journal)
        session_rules = settings.session
        timer = SessionTimer(
            calendar=self.app.core.calendar(),
            flatten_before_close=(
                timedelta(minutes=session_rules.flatten_minutes_before_close)
                if session_rules.flatten_minutes_before_close is not None
                and session_rules.calendar != "none"
                else None
            ),
            clock=clock,
            sink=self.inbox.put,
            restart_time=_restart_time(settings.ibkr.restart_time),
            restart_block=timedelta(minutes=settings.ibkr.restart_block_minutes),
            roll_symbol=settings.instrument.symbol if session_rules.no_entry_in_roll_week else None,
            on_close=summaries.send,
            on_problem=lambda text: notifier.notify(
                Alert(AlertKind.ANOMALY, Severity.WARNING, text, clock.now())
            ),
        )
        loop = asyncio.get_running_loop()
        previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(alerting_handler(notifier, clock))
        logs.set_context(
            lambda: {
                "session": cme_trade_date(clock.now()).isoformat(),
                "state": service.engine.state.value,
            }
        )
        self.watch = daemon_watch(settings, service, clock)
        mode = "DRY RUN (no orders)" if self.options.dry_run else "trading"
        notifier.notify(
            Alert(
                AlertKind.LIFECYCLE,
                Severity.INFO,
                f"started: {mode} {self.contract_name} on IB Gateway "
                f"{settings.ibkr.host}:{settings.ibkr.port}, position "
                f"{service.engine.position.signed_qty:+d}",
                clock.now(),
            )
        )
        tasks = {
            "trading": loop.create_task(service.run(self.market_data), name="trading"),
            "broker events": loop.create_task(service.run_events(), name="broker events"),
            "session timer": loop.create_task(timer.run(), name="session timer"),
            "snapshots": loop.create_task(self._save_on_change(), name="snapshots"),
            "watch": loop.create_task(self.watch.run(), name="watch"),
        }

        def helper_ended(task: asyncio.Task[Any]) -> None:
            # The helpers run until cancelled: an end is a bug worth a page.
            if task.cancelled():
                return
            notifier.notify(
                Alert(
                    AlertKind.ERROR,
                    Severity.CRITICAL,
                    f"the {task.get_name()} task ended: {task.exception()!r}; trading goes on "
                    "without it",
                    clock.now(),
                )
            )

        for helper in ("session timer", "snapshots", "watch"):
            tasks[helper].add_done_callback(helper_ended)
        endpoints = None
        try:
            if settings.observability.port is not None:
                endpoints = await observability.serve(
                    console,
                    service,
                    port=settings.observability.port,
                    extra=observability.Extra(reconnects=lambda: self.session.reconnects),
                )
            if self.telegram is not None:
                await self.telegram.serve(console)
            if on_ready is not None:
                on_ready(DaemonHandle(service, console, self.stop.event, self.session))
            stopping = loop.create_task(self.stop.event.wait(), name="stop signal")
            try:
                done, _ = await asyncio.wait(
                    {stopping, tasks["trading"], tasks["broker events"]},
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                stopping.cancel()
            for name in ("trading", "broker events"):
                task = tasks[name]
                if task in done:
                    exc = task.exception()
                    raise RuntimeError(f"the {name} loop ended: {exc!r}") from exc
            await self._shut_down(service, tasks)
        except Exception as exc:
            notifier.notify(
                Alert(
                    AlertKind.ERROR,
                    Severity.CRITICAL,
                    f"the daemon stopped on an error: {type(exc).__name__}: {exc}; the position "
                    "keeps its broker-held bracket",
                    clock.now(),
                )
            )
            raise
        finally:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            loop.set_exception_handler(previous_handler)
            if self.telegram is not None:
                await self.telegram.close()
            if endpoints is not None:
                await endpoints.cleanup()
            await self.session.close()
            logs.set_context(None)
        self.result.bars = self.market_data.bars_received + self.market_data.backfilled
        self.result.strategy_bars = service.counters.strategy_bars
        self.result.position = service.engine.position.signed_qty
        return self.result

    # -- shutdown -----------------------------------------------------------------------------

    async def _shut_down(
        self, service: TradingService, tasks: dict[str, asyncio.Task[Any]]
    ) -> None:
        """Stop entries, flatten or keep the bracket, cancel loose orders, write everything down.

        The steps' times (seconds after the stop request) go to ``RunResult.shutdown``.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        budget = self.settings.shutdown.timeout_s
        deadline = started + budget
        timings = self.result.shutdown

        def mark(step: str) -> None:
            timings[step] = round(loop.time() - started, 4)
            log.info("shutdown: %s after %.3f s", step, timings[step])

        engine = service.engine
        clock = self.clock
        await service.handle(
            EntryGateChanged(SHUTDOWN_GATE, "the daemon is shutting down", clock.now())
        )
        mark("entries stopped")
        self.result.stopped_by = self.stop.by
        flatten = self.stop.flattens(self.settings)
        if flatten and not (engine.position.is_flat and engine.state is EngineState.IDLE):
            await service.handle(FlattenRequested(clock.now(), "shutdown"))
            # Leave a few seconds of the budget for writing everything down and disconnecting.
            flat_by = deadline - min(5.0, budget / 3)
            while not (engine.position.is_flat and engine.state is EngineState.IDLE):
                if loop.time() >= flat_by:
                    break
                await asyncio.sleep(0.02)
            mark("flattened" if engine.position.is_flat else "flatten unfinished")
        await self._cancel_loose_orders(engine, min(deadline, loop.time() + CANCEL_WAIT_S))
        mark("loose orders cancelled")
        await service.settle()
        for task in tasks.values():
            task.cancel()
        ended = await asyncio.gather(*tasks.values(), return_exceptions=True)
        for name, outcome in zip(tasks, ended, strict=True):
            if isinstance(outcome, Exception):  # it failed during the shutdown: say so
                self.notifier.notify(
                    Alert(
                        AlertKind.ERROR,
                        Severity.CRITICAL,
                        f"the {name} task failed during the shutdown: {outcome!r}",
                        clock.now(),
                    )
                )
        position = engine.position.signed_qty
        kept = ""
        if position != 0:
            legs = sorted(
                o.key for o in engine.working_orders.values() if o.role in _PROTECTIVE_ROLES
            )
            kept = f", left with its bracket at IB ({', '.join(legs) or 'NO LEGS'})"
        self.notifier.notify(
            Alert(
                AlertKind.LIFECYCLE,
                Severity.INFO if position == 0 or flatten is False else Severity.CRITICAL,
                f"stopped ({self.result.stopped_by}), position {position:+d}{kept}",
                clock.now(),
            )
        )
        try:
            # Whatever is left of the budget, a second at least: a hung database must not keep
            # the process past its supervisor's grace period.
            await asyncio.wait_for(self._save(), max(1.0, deadline - loop.time() - 1.0))
        except Exception as exc:
            log.error("shutdown: the last snapshot was not written: %r", exc)
        mark("journal flushed")
        if self.telegram is not None:
            await self.telegram.close(timeout=max(0.5, deadline - loop.time() - 1.0))
            self.telegram = None
        mark("alerts flushed")
        await self.session.close()
        mark("disconnected")

    async def _cancel_loose_orders(self, engine: Engine, until: float) -> None:
        """Cancel our working orders that protect nothing. A stop or target is kept while IB holds
        a position: the engine may not know yet of an entry that has just filled (its fill waits
        for the commission report), and cancelling those legs would leave IB's position bare."""
        try:
            held = await self.broker.position()
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            log.warning("shutdown: IB's position unknown (%s): keeping every stop and target", exc)
            held = None
        loose = tuple(
            o.key
            for o in self.broker.working_orders()
            if held == 0 or protective_kind(o.key) is None
        )
        if not loose:
            return
        try:
            await self.broker.cancel(CancelOrders(loose, "shutdown", self.clock.now()))
        except BrokerError as exc:
            log.warning("shutdown: loose orders %s not cancelled: %s", ", ".join(loose), exc)
            return
        loop = asyncio.get_running_loop()
        while loop.time() < until and any(o.key in loose for o in self.broker.working_orders()):
            await asyncio.sleep(0.02)


_PROTECTIVE_ROLES = frozenset({OrderRole.STOP, OrderRole.TARGET})


def _restart_time(text: str | None) -> time | None:
    if text is None:
        return None
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))
