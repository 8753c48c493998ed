"""What both daemons share (``daemon.broker`` simulated or ibkr): options and results, the
start-up error, the stop request, the store check, the Telegram side, bar recording, the session
summary, and the alerting exception handler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.clock import SystemClock
from adapters.fanout import FanoutNotifier
from adapters.log_notifier import LogNotifier
from adapters.sql.journal import UNREACHABLE, SqlJournal
from adapters.sql.ownership import JournalInUseError, JournalOwnership
from adapters.sql.queries import SqlJournalReader
from adapters.sql.spool import Spool, SpoolInUseError
from adapters.telegram.notifier import TelegramNotifier
from application.operator import OperatorConsole
from application.ports import Clock, Notifier
from application.queries import SessionPnl
from application.services import EventInbox, TradingService
from application.watch import DaemonWatch
from domain.bar import Bar
from domain.calendar import cme_trade_date
from domain.commands import Alert, AlertKind, Severity
from domain.events import EntryGateChanged
from entrypoints.settings import Settings, TelegramSettings
from entrypoints.store import (
    require_current_schema,
    sqlite_file,
    store_url,
    unavailable_on_database_errors,
    upgrade_schema,
)
from entrypoints.telegram.dispatcher import (
    build_bot,
    build_dispatcher,
    check_single_poller,
    mask_token_in_logs,
)

log = logging.getLogger("quant_scalper.daemon")

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 4
EXIT_IN_USE = 5
"""Another daemon owns the journal (or the spool in ``data_dir``)."""
SHUTDOWN_GATE = "shutdown"

SPOOL_FILE = "journal.spool"
SNAPSHOT_FALLBACK_FILE = "snapshot.fallback.json"
JOURNAL_GATE = "journal"
OWNER_GATE = "journal owner"
OWNER_CHECK_S = 5.0
"""How often a running daemon checks that it still owns the journal."""
JOURNAL_FLUSH_S = 5.0
"""A checkpoint waits this long for the journal; a snapshot is saved only over a durable journal."""
JOURNAL_CLOSE_S = 5.0
"""The journal's last write at a stop gives up after this long (a full disk, a hung database)."""


class StartupError(Exception):
    """The daemon cannot start: one line for the user and the exit code that goes with it."""

    def __init__(self, line: str, exit_code: int) -> None:
        super().__init__(line)
        self.exit_code = exit_code


@dataclass(frozen=True)
class RunOptions:
    speed: float | None
    """Times faster than real time; None: as fast as possible."""
    exit_at_end: bool = False
    config_path: Path | None = None
    dry_run: bool = False
    """IB Gateway: signals, journal and alerts, but no orders."""


def run_config(settings: Settings, options: RunOptions) -> dict[str, Any]:
    """The settings the daemon actually runs with, for /config: the file's (secrets masked) with
    the command line's overrides applied (``--speed``), and how it was started."""
    config = settings.redacted()
    config["daemon"] = {
        **config["daemon"],
        "speed": "max" if options.speed is None else options.speed,
    }
    config["run"] = {
        "config_file": None if options.config_path is None else str(options.config_path),
        "exit_at_end": options.exit_at_end,
        "dry_run": options.dry_run,
    }
    return config


@dataclass
class RunResult:
    bars: int = 0
    resumed_from: int | None = None
    strategy_bars: int = 0
    round_trips: int = 0
    position: int = 0
    stopped_by: str = "end of feed"
    notes: list[str] = field(default_factory=list)
    shutdown: dict[str, float] = field(default_factory=dict)
    """Shutdown steps done, in order, with the seconds since the stop request (IB Gateway)."""


@dataclass(frozen=True)
class DaemonHandle:
    """The running daemon, for whoever started it (tests, the Telegram bot)."""

    service: TradingService
    console: OperatorConsole
    stop: asyncio.Event
    session: Any = None
    """The IB session supervisor (daemon.broker: ibkr), else None."""


class TelegramSide:
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
    async def open(cls, settings: Settings) -> TelegramSide:
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
        listen, port = self._settings.webhook_listen, self._settings.webhook_port
        try:
            await web.TCPSite(self._webhook, listen, port).start()
        except OSError as exc:  # never let it pass for a database error (issue 12 item 7)
            runner, self._webhook = self._webhook, None  # no webhook was set: none to delete
            await runner.cleanup()
            raise StartupError(
                f"telegram.webhook_port {port}: cannot listen on {listen}:{port}: "
                f"{exc.strerror or exc}",
                EXIT_UNAVAILABLE,
            ) from None
        await self._bot.set_webhook(url, secret_token=token)

    async def close(self, timeout: float = 5.0) -> None:
        """Stop taking commands, send the alerts still queued (``timeout`` at most), disconnect."""
        if self._webhook is not None:
            with contextlib.suppress(TelegramAPIError):
                await self._bot.delete_webhook()
            await self._webhook.cleanup()
        if self._polling is not None:
            self._polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._polling
        if self._telegram is not None:
            await self._telegram.close(timeout=timeout)
        await self._bot.session.close()


def alerting_handler(
    notifier: Notifier, clock: Clock
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


class SessionSummaries:
    """The daily summary alert: when the CME trade date of the bars changes, the results of the
    session that just closed (round trips by exit time, from the journal).

    The journal's database may be away just then: the summary then waits (a log line says so) and
    is tried again at the next trade-date check, no sooner than ``retry_after_s`` later, until the
    database answers. Trading never waits on it for more than ``read_timeout_s``.
    """

    def __init__(
        self,
        reader: SqlJournalReader,
        notifier: Notifier,
        clock: Clock,
        journal: SqlJournal,
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
        self._retry_after = retry_after_s
        self._read_timeout = read_timeout_s
        self._next_try = 0.0

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
        for the database: owed until it answers."""
        if previous not in self._pending:
            self._pending.append(previous)
        await self._send_owed()

    async def _send_owed(self) -> None:
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


@dataclass
class StopRequest:
    """A stop asked for, and whether to flatten first (None: ``shutdown.flatten`` decides)."""

    event: asyncio.Event
    flatten: bool | None = None
    by: str = "signal"

    async def request(self, flatten: bool) -> None:
        """An operator's /stop, with its choice."""
        self.flatten = flatten
        self.by = "operator"
        self.event.set()

    def flattens(self, settings: Settings) -> bool:
        return self.flatten if self.flatten is not None else settings.shutdown.flatten


def daemon_watch(settings: Settings, service: TradingService, clock: Clock) -> DaemonWatch:
    """The console's lasting-block lines and heartbeat (``logging.heartbeat_minutes``)."""
    minutes = settings.logging.heartbeat_minutes
    if minutes is None:
        minutes = settings.strategy.bar_minutes
    return DaemonWatch(
        service,
        clock,
        lambda level, text: log.log(level, "%s", text),
        heartbeat=timedelta(minutes=minutes) if minutes else None,
    )


def daemon_version() -> str:
    try:
        return version("quant-scalper")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree not installed
        return "unknown"


class BarRecorder:
    """Records every market bar in the journal, so any session can be replayed exactly."""

    def __init__(self, journal: SqlJournal, contract: str | Callable[[], str]) -> None:
        self._journal = journal
        self._contract = contract if callable(contract) else lambda: contract

    def on_bar(self, bar: Bar) -> None:
        self._journal.append_bar(self._contract(), bar)


class LateNotifier:
    """Alerts raised before the daemon's notifier exists go to the log; once it is attached, to it."""

    def __init__(self) -> None:
        self._log = LogNotifier()
        self._next: Notifier | None = None

    def attach(self, notifier: Notifier) -> None:
        self._next = notifier

    def notify(self, alert: Alert) -> None:
        (self._next if self._next is not None else self._log).notify(alert)


@contextlib.asynccontextmanager
async def gated_journal(
    engine: AsyncEngine,
    data_dir: Path,
    inbox: EventInbox,
    clock: Clock,
    alerts: Notifier | None = None,
) -> AsyncIterator[SqlJournal]:
    """The SQL journal with its outage spool in ``data_dir``, started; while the database cannot
    be written (unreachable, or its disk or the spool's full) it keeps the ``journal`` entry gate
    closed with the reason, and says so in an alert (the open position keeps its broker-held
    bracket). Closed on the way out, within :data:`JOURNAL_CLOSE_S`."""

    def on_problem(problem: str | None) -> None:
        gate = problem
        if problem is not None and problem.startswith(UNREACHABLE):
            gate = "the journal database is unreachable"
        inbox.put(EntryGateChanged(JOURNAL_GATE, gate, clock.now()))
        if alerts is None:
            return
        if problem is None:
            text, severity = "journal: written again; entries may open", Severity.INFO
        else:
            text = f"journal: {problem}; no new entries, the position keeps its bracket"
            severity = Severity.CRITICAL
        alerts.notify(Alert(AlertKind.ERROR, severity, text, clock.now()))

    journal = SqlJournal(engine, Spool(data_dir / SPOOL_FILE), on_problem=on_problem)
    try:
        await journal.start()
    except SpoolInUseError as exc:
        raise StartupError(str(exc), EXIT_IN_USE) from None
    try:
        yield journal
    finally:
        await journal.close(timeout=JOURNAL_CLOSE_S)


def _require_writable_sqlite(path: Path) -> None:
    """The embedded journal must be writable, and its directory too (SQLite writes its journal
    files beside it): else one line naming the file, exit 2 (a person must fix the permissions)."""
    try:
        with path.open("r+b"):  # opened for writing, nothing written
            pass
    except IsADirectoryError:
        raise StartupError(
            f"database file {path} is a directory, not an SQLite file", EXIT_USAGE
        ) from None
    except OSError as exc:
        raise StartupError(
            f"database file {path} is not writable by this user ({exc.strerror or exc}): the "
            "daemon journals every bar and order; fix its permissions or database.data_dir",
            EXIT_USAGE,
        ) from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise StartupError(
            f"database directory {path.parent} is not writable by this user: SQLite keeps its "
            "journal files there; fix its permissions or database.data_dir",
            EXIT_USAGE,
        )


async def prepare_store(settings: Settings, config_path: Path | None) -> None:
    """Start-up step 2: the embedded SQLite default is created on a fresh machine; any other store
    must be at the current schema (``quant-scalper db upgrade``, never behind the operator's back)."""
    url = store_url(settings)
    path = sqlite_file(url)
    if path is not None and path.exists():
        _require_writable_sqlite(path)
    if path is not None and not path.exists():
        revision = await asyncio.to_thread(upgrade_schema, url)
        log.info("created the embedded journal %s at schema %s", path, revision)
    else:
        await asyncio.to_thread(require_current_schema, url, config_path)


@contextlib.asynccontextmanager
async def journal_owner(
    settings: Settings, inbox: EventInbox, clock: Clock, alerts: Notifier
) -> AsyncIterator[JournalOwnership]:
    """This daemon's claim on the journal database (one daemon per journal, enforced by the
    database: see ``adapters.sql.ownership``), held for the run and checked every
    :data:`OWNER_CHECK_S`; a claim lost to another daemon closes the ``journal owner`` entry gate
    with an alert. Another daemon owning it at start is :class:`StartupError` with exit code
    :data:`EXIT_IN_USE`. Logs the data directory, as an absolute path."""
    url = store_url(settings)
    owner = JournalOwnership(url)
    try:
        with unavailable_on_database_errors(url):
            await owner.acquire()
    except JournalInUseError as exc:
        raise StartupError(str(exc), EXIT_IN_USE) from None
    log.info(
        "journal %s owned by this daemon (pid %d); data_dir %s",
        owner.where,
        os.getpid(),
        settings.database.data_dir.resolve(),
    )

    async def watch() -> None:
        lost: str | None = None
        while True:
            await asyncio.sleep(OWNER_CHECK_S)
            problem = await owner.check()
            if problem == lost:
                continue
            lost = problem
            inbox.put(EntryGateChanged(OWNER_GATE, problem, clock.now()))
            if problem is not None:
                text, severity = f"{problem}: no new entries", Severity.CRITICAL
            else:
                text, severity = "this daemon owns the journal again", Severity.INFO
            alerts.notify(Alert(AlertKind.ERROR, severity, text, clock.now()))

    task = asyncio.get_running_loop().create_task(watch(), name="journal owner")
    try:
        yield owner
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await owner.release()
