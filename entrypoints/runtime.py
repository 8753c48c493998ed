"""What both daemons share (``daemon.broker`` simulated or ibkr): options and results, the
start-up error, the stop request, the store check, the Telegram side, bar recording, the session
summary, and the alerting exception handler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
from adapters.sql.journal import SqlJournal
from adapters.sql.queries import SqlJournalReader
from adapters.sql.spool import Spool
from adapters.telegram.notifier import TelegramNotifier
from application.operator import OperatorConsole
from application.ports import Clock, Notifier
from application.services import EventInbox, TradingService
from application.watch import DaemonWatch
from domain.bar import Bar
from domain.calendar import cme_trade_date
from domain.commands import Alert, AlertKind, Severity
from domain.events import EntryGateChanged
from entrypoints.settings import Settings, TelegramSettings
from entrypoints.store import require_current_schema, sqlite_file, store_url, upgrade_schema
from entrypoints.telegram.dispatcher import (
    build_bot,
    build_dispatcher,
    check_single_poller,
    mask_token_in_logs,
)

log = logging.getLogger("quant_scalper.daemon")

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 4
SHUTDOWN_GATE = "shutdown"

SPOOL_FILE = "journal.spool"
SNAPSHOT_FALLBACK_FILE = "snapshot.fallback.json"
JOURNAL_GATE = "journal"


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
        await web.TCPSite(
            self._webhook, self._settings.webhook_listen, self._settings.webhook_port
        ).start()
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
    session that just closed (round trips by exit time, from the journal)."""

    def __init__(self, reader: SqlJournalReader, notifier: Notifier, clock: Clock) -> None:
        self._reader = reader
        self._notifier = notifier
        self._clock = clock
        self._current: date | None = None

    async def at(self, epoch: int) -> None:
        """Market time has reached ``epoch``: a summary if the trade date changed since the last."""
        trade_date = cme_trade_date(datetime.fromtimestamp(epoch, UTC))
        previous, self._current = self._current, trade_date
        if previous is None or previous == trade_date:
            return
        await self.send(previous)

    async def send(self, previous: date) -> None:
        """The summary of the session of trade date ``previous``, which has closed."""
        pnl = await self._reader.session_pnl(previous)
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


@contextlib.asynccontextmanager
async def gated_journal(
    engine: AsyncEngine, data_dir: Path, inbox: EventInbox, clock: Clock
) -> AsyncIterator[SqlJournal]:
    """The SQL journal with its outage spool in ``data_dir``, started; while the database is
    unreachable it keeps the ``journal`` entry gate closed. Closed (flushed) on the way out."""
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
        yield journal
    finally:
        await journal.close()


async def prepare_store(settings: Settings, config_path: Path | None) -> None:
    """Start-up step 2: the embedded SQLite default is created on a fresh machine; any other store
    must be at the current schema (``quant-scalper db upgrade``, never behind the operator's back)."""
    url = store_url(settings)
    path = sqlite_file(url)
    if path is not None and not path.exists():
        revision = await asyncio.to_thread(upgrade_schema, url)
        log.info("created the embedded journal %s at schema %s", path, revision)
    else:
        await asyncio.to_thread(require_current_schema, url, config_path)
