"""The daemon use case: resume → warm-up → serve → stop, the same program on every venue.

The simulated exchange and IB Gateway differ only behind :class:`Venue` (connect and close, the
warm-up closes, health facts, the venue's own tasks, the state a checkpoint keeps). Everything else
is here, once: how a restart resumes, when the state is saved, how the daemon serves the operator,
and the steps of a stop.

Resume: the engine comes back from the store (the composition root restores it); the venue is
connected from the checkpoint's resume point; the z-score window is warmed up; an operator's pause
or resume journaled after the checkpoint is applied again; then the broker's word on the position and
its orders is taken (one reconcile path, :func:`application.reconcile.broker_report`).

Saving: at every strategy-bar boundary, once the bar's decisions are carried out, over a durable
journal. A venue whose state lives outside this process (IB) is also saved after every change the
engine journals (:attr:`Venue.mid_bar_snapshots`); the simulated exchange is replayed from the last
boundary, so its snapshot is taken only there.

Stop (a signal, ``/stop``, the end of a recorded feed with ``exit_at_end``), within
``shutdown_timeout_s``: entries close for good; the position is flattened (the setting, or the
operator's choice) or left with its broker-held bracket; our loose orders are cancelled; the last
state is saved (at the next boundary on a venue that needs one); the alerts are flushed; the venue is
closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from application.operator import OperatorConsole
from application.ports import Broker, Journal, MarketData, Notifier, ResumePoint, StateStore
from application.queries import JournalReader, SessionPnl
from application.reconcile import broker_report
from application.services import TradingService
from application.watch import DaemonWatch
from domain.calendar import cme_trade_date
from domain.commands import (
    Alert,
    AlertKind,
    CancelOrders,
    FillRecord,
    JournalRecord,
    OperatorRecord,
    Severity,
)
from domain.engine import Engine, EngineState, OrderRole
from domain.events import (
    EntryGateChanged,
    FlattenRequested,
    PauseRequested,
    ResumeRequested,
    protective_kind,
)

log = logging.getLogger("quant_scalper.daemon")

SHUTDOWN_GATE = "shutdown"
JOURNAL_FLUSH_S = 5.0
"""A checkpoint waits this long for the journal; a snapshot is saved only over a durable journal."""
JOURNAL_CLOSE_S = 5.0
"""The journal's last write at a stop gives up after this long (a full disk, a hung database)."""
BOUNDARY_WAIT_S = 10.0
"""A stop on a venue saved only at boundaries waits this long for the next one, then stops anyway."""
CANCEL_WAIT_S = 2.0
ORDER_SAVE_WAIT_S = 2.0
"""The longest an order waits for the snapshot that knows it (a slow store); then it goes anyway."""
FILL_LOOKBACK = timedelta(days=7)
"""How far back the journal is asked for our last fill (IB reports at most a day of executions)."""

_PROTECTIVE_ROLES = frozenset({OrderRole.STOP, OrderRole.TARGET})


class VenueUnavailable(Exception):
    """The venue cannot be reached, or did not answer at start-up: one line for the operator."""


class VenueHealth(Protocol):
    """Facts about the link to the market only the venue knows."""

    stale_after_s: float
    """A last bar older than this (while bars are expected) is a problem."""

    def connected(self) -> bool: ...

    def last_bar_end(self) -> datetime | None: ...

    def expect_bars(self) -> bool: ...

    def reconnects(self) -> int: ...

    def notices(self) -> Mapping[str, int]:
        """The broker's notices and errors seen so far, by class (none on a simulated venue)."""
        ...


class Venue(Protocol):
    """What differs between the simulated exchange and IB Gateway, for the daemon."""

    mid_bar_snapshots: bool
    """True: a snapshot may be saved at any moment (the venue keeps the market's state and a
    restart reconciles with it). False: the venue is replayed from the last boundary's checkpoint,
    which must then be consistent with it (the simulated exchange)."""

    health: VenueHealth

    def describe(self) -> str:
        """Where the daemon trades, for the start alert."""
        ...

    async def connect(self, resume: ResumePoint | None, executions_since: datetime | None) -> None:
        """Connect and bring the venue to where ``resume`` left it (raises VenueUnavailable)."""
        ...

    async def warm_up(self, resume: ResumePoint | None, window: int) -> tuple[Sequence[float], str]:
        """Closes for the z-score window, oldest first, and where they came from."""
        ...

    def tasks(self) -> Mapping[str, Coroutine[Any, Any, None]]:
        """The venue's own long-running tasks (run until cancelled)."""
        ...

    def state(self) -> str | None:
        """What a checkpoint must keep of the venue (the simulated exchange's book), else None."""
        ...

    async def close(self) -> None: ...


class Channel(Protocol):
    """A way the operator reaches the daemon (Telegram, the HTTP health endpoints)."""

    async def check(self) -> None:
        """What would make :meth:`serve` fail (a port in use, a bot token another process
        polls), found before the venue is connected: the daemon then fails without having
        touched the broker. Raises as :meth:`serve` would."""
        ...

    async def serve(self, console: OperatorConsole) -> None: ...

    def backlog(self) -> int:
        """Alerts waiting to be sent."""
        ...

    async def close(self, timeout: float) -> None: ...


class DurableJournal(Journal, Protocol):
    """The daemon's journal: records become durable in the background; a checkpoint waits."""

    @property
    def backlog(self) -> int: ...

    @property
    def problem(self) -> str | None: ...

    async def flush_within(self, timeout_s: float) -> bool: ...


class ZScoreWindow(Protocol):
    """The z-score engine's window as a checkpoint keeps it."""

    @property
    def closes(self) -> tuple[float, ...]: ...

    def refill(self, closes: Sequence[float]) -> None: ...


@dataclass(frozen=True)
class DaemonOptions:
    exit_at_end: bool = False
    """Stop when a recorded feed ends (else wait for a stop)."""
    dry_run: bool = False
    """Orders are not sent: nothing is resumed from or saved to the store."""
    shutdown_timeout_s: float = 30.0


@dataclass
class RunResult:
    bars: int = 0
    resumed_from: int | None = None
    strategy_bars: int = 0
    round_trips: int = 0
    """Round trips booked in this run (not those of the runs before a resume)."""
    position: int = 0
    stopped_by: str = "end of feed"
    notes: list[str] = field(default_factory=list)
    shutdown: dict[str, float] = field(default_factory=dict)
    """Shutdown steps done, in order, with the seconds since the stop request."""


@dataclass
class StopRequest:
    """A stop asked for, and whether to flatten first (None: the ``shutdown.flatten`` setting)."""

    event: asyncio.Event
    default_flatten: bool = True
    flatten: bool | None = None
    by: str = "signal"

    async def request(self, flatten: bool) -> None:
        """An operator's /stop, with its choice."""
        self.flatten = flatten
        self.by = "operator"
        self.event.set()

    def flattens(self) -> bool:
        return self.flatten if self.flatten is not None else self.default_flatten


@dataclass(frozen=True)
class DaemonHandle:
    """The running daemon, for whoever started it (tests, the Telegram bot)."""

    service: TradingService
    console: OperatorConsole
    stop: asyncio.Event
    venue: Venue


class DaemonHealth:
    """The one health model behind ``/health``, ``GET /healthz`` and ``/metrics``: the venue's
    link facts, the journal's backlog and problem, the alert channels' backlog."""

    def __init__(
        self, venue: VenueHealth, journal: DurableJournal, channels: Sequence[Channel]
    ) -> None:
        self._venue = venue
        self._journal = journal
        self._channels = tuple(channels)

    def connected(self) -> bool:
        return self._venue.connected()

    def last_bar_end(self) -> datetime | None:
        return self._venue.last_bar_end()

    def journal_backlog(self) -> int:
        return self._journal.backlog

    def journal_problem(self) -> str | None:
        return self._journal.problem

    def alert_backlog(self) -> int:
        return sum(channel.backlog() for channel in self._channels)


class ChangeNotingJournal:
    """The engine's journal, noting that the engine changed: the daemon may save a snapshot then."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self.changed = asyncio.Event()

    def append(self, record: JournalRecord) -> None:
        self._journal.append(record)
        self.changed.set()

    async def flush(self) -> None:
        await self._journal.flush()


class SessionSummaries:
    """The daily summary alert: when the CME trade date of the bars changes (or the session timer
    says a session closed), the results of the session that just closed, from the journal; each
    session once.

    The journal's database may be away just then: the summary then waits (a log line says so) and
    is tried again at the next trade-date check, no sooner than ``retry_after_s`` later, until the
    database answers. Trading never waits on it for more than ``read_timeout_s``.
    """

    def __init__(
        self,
        reader: JournalReader,
        notifier: Notifier,
        clock: Any,
        journal: DurableJournal,
        *,
        retry_after_s: float = 30.0,
        read_timeout_s: float = 10.0,
    ) -> None:
        self._reader = reader
        self._notifier = notifier
        self._clock = clock
        self._journal = journal
        self._current: date | None = None
        self._pending: list[date] = []
        self._sent: set[date] = set()
        self._retry_after = retry_after_s
        self._read_timeout = read_timeout_s
        self._next_try = 0.0
        self._sending = asyncio.Lock()

    async def at(self, epoch: int) -> None:
        """Market time has reached ``epoch``: a summary if the trade date changed since the last
        (and any summary still owed, when its retry is due)."""
        trade_date = cme_trade_date(datetime.fromtimestamp(epoch, UTC))
        previous, self._current = self._current, trade_date
        if previous is not None and previous != trade_date:
            await self.send(previous)
        elif self._pending and time.monotonic() >= self._next_try:
            await self._send_owed()

    async def send(self, previous: date) -> None:
        """The summary of the session of trade date ``previous``, which has closed; never raises
        for the database: owed until it answers. A session already summarized is not again."""
        if previous in self._sent:
            return
        if previous not in self._pending:
            self._pending.append(previous)
        await self._send_owed()

    async def _send_owed(self) -> None:
        # The session timer and the trading loop's checkpoint both send: one at a time. A second
        # caller returns at once; the one sending goes on until nothing is owed (or the database
        # fails it, and the retry is due later).
        if self._sending.locked():
            return
        async with self._sending:
            await self._send_pending()

    async def _send_pending(self) -> None:
        while self._pending:
            trade_date = self._pending[0]
            try:
                # Its last round trip may still be on its way to the database (a flatten at the
                # close).
                await self._journal.flush_within(JOURNAL_FLUSH_S)
                async with asyncio.timeout(self._read_timeout):
                    pnl = await self._reader.session_pnl(trade_date)
            except Exception as exc:  # the database is away: the summary is owed, not lost
                self._next_try = time.monotonic() + self._retry_after
                log.warning(
                    "daily summary of session %s not sent yet (the journal cannot be read: %s); "
                    "trying again in %.0f s",
                    trade_date.isoformat(),
                    _first_line(exc),
                    self._retry_after,
                )
                return
            self._pending.pop(0)
            self._sent.add(trade_date)
            self._notify(trade_date, pnl)

    def _notify(self, previous: date, pnl: SessionPnl) -> None:
        win_rate = f", {pnl.wins * 100 // pnl.trades}% won" if pnl.trades else ""
        self._notifier.notify(
            Alert(
                AlertKind.DAILY_SUMMARY,
                Severity.WARNING if pnl.net_pnl < 0 else Severity.INFO,  # a losing day is news
                f"session {previous.isoformat()} closed: {pnl.trades} trades ({pnl.wins} won, "
                f"{pnl.losses} lost{win_rate}), net {pnl.net_pnl:+,.2f} USD after "
                f"{pnl.commissions:,.2f} commissions",
                self._clock.now(),
            )
        )


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


def alerting_handler(
    notifier: Notifier, clock: Any
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


class _StopAtBoundary(Exception):
    """Raised out of the checkpoint that follows a stop: the trading loop ends there."""


class Daemon:
    """One daemon, any venue."""

    def __init__(
        self,
        *,
        service: TradingService,
        venue: Venue,
        broker: Broker,
        market_data: MarketData,
        journal: DurableJournal,
        changes: ChangeNotingJournal,
        reader: JournalReader,
        store: StateStore,
        resume: ResumePoint | None,
        zscore: ZScoreWindow,
        window: int,
        summaries: SessionSummaries,
        watch: DaemonWatch,
        console: OperatorConsole,
        channels: Sequence[Channel],
        notifier: Notifier,
        clock: Any,
        stop: StopRequest,
        options: DaemonOptions,
    ) -> None:
        self._service = service
        self._venue = venue
        self._broker = broker
        self._market_data = market_data
        self._journal = journal
        self._changes = changes
        self._reader = reader
        self._store = store
        self._resume = resume
        self._zscore = zscore
        self._window = window
        self._summaries = summaries
        self._watch = watch
        self._console = console
        self._channels = tuple(channels)
        self._notifier = notifier
        self._clock = clock
        self._stop = stop
        self._options = options
        self._halt = asyncio.Event()  # a stop is under way: end at the next boundary
        self._saving = asyncio.Lock()
        self._saves: set[asyncio.Future[None]] = set()
        self._next_epoch = resume.next_bar_epoch if resume is not None else 0
        self.result = RunResult(resumed_from=resume.next_bar_epoch if resume else None)
        self._trips_before = service.engine.position.state().trips_booked

    @property
    def service(self) -> TradingService:
        return self._service

    @property
    def engine(self) -> Engine:
        return self._service.engine

    # -- resume and warm-up -------------------------------------------------------------------

    async def start(self) -> bool:
        """Connect the venue and bring the engine to where it was; False if a stop came first
        (nothing is trading yet then, and the venue is closed)."""
        resume = self._resume
        since = await self._last_fill_time()
        loop = asyncio.get_running_loop()
        # Connecting and the warm-up only ask the venue (IB: retries, history requests that may
        # each wait request_timeout_s): a stop meanwhile ends the start-up at once.
        connecting = loop.create_task(self._connect_and_warm_up(resume, since), name="connect")
        stopping = loop.create_task(self._stop.event.wait(), name="stop signal")
        try:
            await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not connecting.done():  # a stop during the start-up: nothing is trading yet
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
            await self._venue.close()
            self.result.stopped_by = "signal during start-up"
            log.info("stopped while connecting to the venue or warming up")
            return False
        try:
            closes, source = connecting.result()
            self._zscore.refill(closes)
            log.info("z-score warm-up: %d of %d closes from %s", len(closes), self._window, source)
            if resume is not None and resume.next_bar_epoch is not None:
                at = datetime.fromtimestamp(resume.next_bar_epoch, UTC)
                log.info("resuming from the checkpoint of %s", at.isoformat())
                await self._reapply_operator_state(at)
            # Restart = resume, then the broker's word on the position and its orders.
            await self._service.handle(
                await broker_report(self._broker, self._clock.now(), "start-up")
            )
        except BaseException:
            await self._venue.close()  # a start-up that fails after connecting leaves no link
            raise
        return True

    async def _connect_and_warm_up(
        self, resume: ResumePoint | None, since: datetime | None
    ) -> tuple[Sequence[float], str]:
        await self._venue.connect(resume, since)
        return await self._venue.warm_up(resume, self._window)

    async def _last_fill_time(self) -> datetime | None:
        """When our last fill the journal knows happened: the venue is asked for executions since."""
        now = self._clock.now()
        fills = await self._reader.records_of(FillRecord, now - FILL_LOOKBACK, None)
        return max((f.fill.ts for f in fills), default=None)

    async def _reapply_operator_state(self, since: datetime) -> None:
        """An operator's pause or resume after the last checkpoint is in the journal, maybe not in
        the snapshot: the last one is applied again if the engine does not show it."""
        records = await self._reader.records_of(OperatorRecord, since, None)
        last = None
        for rec in records:
            if rec.command in ("pause", "resume") and not rec.outcome.startswith("refused"):
                last = rec
        if last is None:
            return
        engine = self._service.engine
        if last.command == "pause" and not engine.paused:
            await self._service.handle(PauseRequested(last.ts, last.by))
        elif last.command == "resume" and engine.paused:
            await self._service.handle(ResumeRequested(last.ts, last.by))

    # -- saving -------------------------------------------------------------------------------

    async def _at_boundary(self, next_epoch: int) -> None:
        self._next_epoch = next_epoch
        self._watch.check()  # what each strategy bar changed, said in market time
        await self._save()
        await self._summaries.at(next_epoch)
        if self._halt.is_set() and not self._venue.mid_bar_snapshots:
            raise _StopAtBoundary

    async def _save(self) -> None:
        # One save at a time, each taking the snapshot once it holds the lock: a newer snapshot
        # is never overwritten by an older one that finished later.
        async with self._saving:
            # A snapshot only over a durable journal: else a restart would resume past records
            # that were never written (a full disk, a hung database: not now).
            if not await self._journal.flush_within(JOURNAL_FLUSH_S):
                log.warning(
                    "snapshot not saved: the journal is not durable (%s)", self._journal.problem
                )
                return
            if self._options.dry_run:
                return
            try:
                await self._store.save(
                    self._service.engine.snapshot(),
                    ResumePoint(self._next_epoch, self._zscore.closes, self._venue.state()),
                )
            except OSError as exc:  # the fallback file on a full disk: trading goes on
                log.error("snapshot not saved: %s", exc)

    async def _save_before_order(self) -> None:
        """Intent before action, durably: the engine state that knows an order (its key, the key
        sequence) is saved before the order goes to a venue that outlives this process. Saved after
        the send instead, a ``kill -9`` in between would leave IB with a filled entry and a bracket
        the restarted daemon never heard of: a reconcile mismatch, entries halted for an operator.
        A store slower than :data:`ORDER_SAVE_WAIT_S` (or failing) does not hold the order back."""
        # The save goes on after the wait gives up (shielded); it reports its own failure.
        saving = asyncio.ensure_future(self._save_or_alert("before an order"))
        self._saves.add(saving)  # a task nobody holds may be collected mid-way
        saving.add_done_callback(self._saves.discard)
        try:
            await asyncio.wait_for(asyncio.shield(saving), ORDER_SAVE_WAIT_S)
        except TimeoutError:
            log.warning(
                "an order went out before the snapshot that knows it was saved (over %.0f s)",
                ORDER_SAVE_WAIT_S,
            )

    async def _save_or_alert(self, when: str) -> None:
        try:
            await self._save()
        except Exception as exc:  # an outage goes to the fallback file: this is worse
            self._alert(Severity.CRITICAL, f"engine snapshot not saved {when}: {exc!r}")

    async def _save_on_change(self) -> None:
        """Save after every change the engine journals (fills, orders, operator commands)."""
        changed = self._changes.changed
        while True:
            await changed.wait()
            changed.clear()
            try:
                await self._save()
            except Exception as exc:  # an outage goes to the fallback file: this is worse
                self._alert(Severity.CRITICAL, f"engine snapshot not saved: {exc!r}")

    # -- serving ------------------------------------------------------------------------------

    async def run(self, on_ready: Callable[[DaemonHandle], None] | None = None) -> RunResult:
        """Check the channels, start, serve until a stop (or the end of a recorded feed), stop."""
        for channel in self._channels:
            await channel.check()
        if not await self.start():
            return self.result
        loop = asyncio.get_running_loop()
        previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(alerting_handler(self._notifier, self._clock))
        try:
            return await self._serve(on_ready)
        finally:
            loop.set_exception_handler(previous_handler)

    async def _serve(self, on_ready: Callable[[DaemonHandle], None] | None) -> RunResult:
        service, venue = self._service, self._venue
        loop = asyncio.get_running_loop()
        where = (
            f"from the checkpoint at {self._clock.now().isoformat()}"
            if self._resume is not None
            else "from the start"
        )
        mode = "DRY RUN (no orders)" if self._options.dry_run else "trading"
        self._alert(
            Severity.INFO,
            f"started: {mode} {venue.describe()}, {where}, position "
            f"{service.engine.position.signed_qty:+d}",
            kind=AlertKind.LIFECYCLE,
        )
        trading = loop.create_task(
            service.run(
                self._market_data,
                recording=not venue.mid_bar_snapshots,
                checkpoint=self._at_boundary,
                before_order=self._save_before_order if venue.mid_bar_snapshots else None,
            ),
            name="trading",
        )
        events = loop.create_task(service.run_events(), name="broker events")
        helpers: dict[str, asyncio.Task[None]] = {
            "watch": loop.create_task(self._watch.run(), name="watch"),
        }
        if venue.mid_bar_snapshots:
            helpers["snapshots"] = loop.create_task(self._save_on_change(), name="snapshots")
        for name, work in venue.tasks().items():
            helpers[name] = loop.create_task(work, name=name)
        for task in helpers.values():
            task.add_done_callback(self._helper_ended)
        served: list[Channel] = []
        try:
            for channel in self._channels:
                await channel.serve(self._console)
                served.append(channel)
            if on_ready is not None:
                on_ready(DaemonHandle(service, self._console, self._stop.event, venue))
            await self._until_stop(trading, events)
            await self._shut_down(trading, events, helpers)
        except Exception as exc:
            self._alert(
                Severity.CRITICAL,
                f"the daemon stopped on an error: {type(exc).__name__}: {exc}; the position "
                "keeps its broker-held bracket",
            )
            raise
        finally:
            everything = (trading, events, *helpers.values())
            for task in everything:
                task.cancel()
            await asyncio.gather(*everything, return_exceptions=True)
            for channel in reversed(served):
                await channel.close(timeout=1.0)  # a no-op after the stop's own flush
            await venue.close()
        self.result.strategy_bars = service.counters.strategy_bars
        self.result.round_trips = service.engine.position.state().trips_booked - self._trips_before
        self.result.position = service.engine.position.signed_qty
        return self.result

    async def _until_stop(self, trading: asyncio.Task[None], events: asyncio.Task[None]) -> None:
        """Wait for a stop; a recorded feed that ends is a stop with ``exit_at_end``."""
        loop = asyncio.get_running_loop()
        stopping = loop.create_task(self._stop.event.wait(), name="stop signal")
        try:
            done, _ = await asyncio.wait(
                {stopping, trading, events}, return_when=asyncio.FIRST_COMPLETED
            )
            if events in done:
                exc = events.exception()
                raise RuntimeError(f"the broker events loop ended: {exc!r}") from exc
            if trading in done:
                trading.result()  # a failure in the trading loop is a bug: let it out
                log.info("the feed has ended (%d bars)", self._service.counters.bars_in)
                if self._options.exit_at_end:
                    self.result.stopped_by = "end of feed"
                    return
                await stopping
        finally:
            stopping.cancel()
        self.result.stopped_by = self._stop.by

    def _helper_ended(self, task: asyncio.Task[None]) -> None:
        # The helpers run until cancelled: an end is a bug worth a page.
        if task.cancelled():
            return
        self._alert(
            Severity.CRITICAL,
            f"the {task.get_name()} task ended: {task.exception()!r}; trading goes on without it",
        )

    # -- stopping -----------------------------------------------------------------------------

    async def _shut_down(
        self,
        trading: asyncio.Task[None],
        events: asyncio.Task[None],
        helpers: Mapping[str, asyncio.Task[None]],
    ) -> None:
        """Stop entries, flatten or keep the bracket, cancel loose orders, write everything down.

        The steps' times (seconds after the stop began) go to ``RunResult.shutdown``.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        budget = self._options.shutdown_timeout_s
        deadline = started + budget
        timings = self.result.shutdown
        service, engine, clock = self._service, self._service.engine, self._clock

        def mark(step: str) -> None:
            timings[step] = round(loop.time() - started, 4)
            log.info("shutdown: %s after %.3f s", step, timings[step])

        def settled() -> bool:
            return engine.position.is_flat and engine.state is EngineState.IDLE

        await service.handle(
            EntryGateChanged(SHUTDOWN_GATE, "the daemon is shutting down", clock.now())
        )
        mark("entries stopped")
        flatten = self._stop.flattens() and self.result.stopped_by != "end of feed"
        if flatten and not settled():
            await service.handle(FlattenRequested(clock.now(), "shutdown"))
            # Leave a few seconds of the budget for writing everything down and disconnecting.
            flat_by = deadline - min(JOURNAL_FLUSH_S + JOURNAL_CLOSE_S, budget / 2)
            while not settled() and loop.time() < flat_by and not trading.done():
                await asyncio.sleep(0.02)
            mark("flattened" if engine.position.is_flat else "flatten unfinished")
        await self._cancel_loose_orders(min(deadline, loop.time() + CANCEL_WAIT_S))
        mark("loose orders cancelled")
        if not self._venue.mid_bar_snapshots and not trading.done():
            # Stop at the next strategy-bar boundary, once its checkpoint is saved: whatever the
            # operator did since the last one (a flatten, a pause) is then in the store too.
            self._halt.set()
            wait = max(0.5, min(BOUNDARY_WAIT_S, deadline - loop.time() - JOURNAL_CLOSE_S))
            await asyncio.wait({trading}, timeout=wait)
        if trading.done() and not trading.cancelled():
            exc = trading.exception()
            if exc is not None and not isinstance(exc, _StopAtBoundary):
                raise exc
        await service.settle()
        others = (trading, events, *helpers.values())
        for task in others:
            task.cancel()
        ended = await asyncio.gather(*others, return_exceptions=True)
        names = ("trading", "broker events", *helpers)
        for name, outcome in zip(names, ended, strict=True):
            if isinstance(outcome, Exception) and not isinstance(outcome, _StopAtBoundary):
                self._alert(
                    Severity.CRITICAL, f"the {name} task failed during the shutdown: {outcome!r}"
                )
        self._watch.check()  # what ended with the feed is said too
        position = engine.position.signed_qty
        kept = ""
        if position != 0:
            legs = sorted(
                o.key for o in engine.working_orders.values() if o.role in _PROTECTIVE_ROLES
            )
            kept = f", left with its bracket ({', '.join(legs) or 'NO LEGS'})"
        self._alert(
            Severity.INFO if position == 0 or flatten is False else Severity.CRITICAL,
            f"stopped ({self.result.stopped_by}), position {position:+d}{kept}",
            kind=AlertKind.LIFECYCLE,
        )
        if self._venue.mid_bar_snapshots:
            try:
                # Whatever is left of the budget, a second at least: a hung database must not
                # keep the process past its supervisor's grace period.
                await asyncio.wait_for(self._save(), max(1.0, deadline - loop.time() - 1.0))
            except Exception as exc:
                log.error("shutdown: the last snapshot was not written: %r", exc)
        else:
            await self._journal.flush_within(max(0.5, min(JOURNAL_FLUSH_S, deadline - loop.time())))
        mark("journal flushed")
        for channel in self._channels:
            await channel.close(timeout=max(0.5, deadline - loop.time() - 1.0))
        mark("alerts flushed")
        await self._venue.close()
        mark("disconnected")
        self.result.bars = self._service.counters.bars_in

    async def _cancel_loose_orders(self, until: float) -> None:
        """Cancel our working orders that protect nothing. A stop or target is kept while the
        broker holds a position: the engine may not know yet of an entry that has just filled,
        and cancelling its legs would leave the position bare."""
        try:
            position = await self._broker.position()
        except Exception as exc:
            log.warning("shutdown: the broker's position unknown (%s): keeping every order", exc)
            return
        protective = {
            o.key
            for o in self._service.engine.working_orders.values()
            if o.role in _PROTECTIVE_ROLES
        }
        loose = tuple(
            o.key
            for o in self._broker.working_orders()
            if position == 0 or (o.key not in protective and protective_kind(o.key) is None)
        )
        if not loose:
            return
        try:
            await self._broker.cancel(CancelOrders(loose, "shutdown", self._clock.now()))
        except Exception as exc:
            log.warning("shutdown: loose orders %s not cancelled: %s", ", ".join(loose), exc)
            return
        # The broker's word on its orders arrives as events: watch it, asking nothing.
        loop = asyncio.get_running_loop()
        while loop.time() < until:
            if not any(o.key in loose for o in self._broker.working_orders()):
                return
            await asyncio.sleep(0.02)

    # -- helpers ------------------------------------------------------------------------------

    def _alert(self, severity: Severity, text: str, *, kind: AlertKind = AlertKind.ERROR) -> None:
        self._notifier.notify(Alert(kind, severity, text, self._clock.now()))


__all__ = [
    "ChangeNotingJournal",
    "Channel",
    "Daemon",
    "DaemonHandle",
    "DaemonHealth",
    "DaemonOptions",
    "RunResult",
    "SessionSummaries",
    "StopRequest",
    "Venue",
    "VenueHealth",
    "VenueUnavailable",
    "alerting_handler",
]
