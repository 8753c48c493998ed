"""What an operator (the Telegram bot, the health endpoint) can ask of the running daemon.

:class:`OperatorConsole` is the use-case facade: read-only views (status, P&L, trades, the broker's
view, health) and the operator's requests (pause, resume, flatten, breaker reset, reconcile, stop).
Requests become engine events, so they take effect exactly as the engine's rules say, and every
command is journaled with who asked and whether it was allowed. No aiogram type crosses it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from application.bar_gate import DEFAULT_MAX_SKEW_S
from application.ports import Broker, BrokerSnapshot, Clock, Journal
from application.queries import JournalReader
from application.reconcile import broker_report
from application.services import TradingService
from domain.bar import Bar
from domain.calendar import cme_trade_date, globex_open
from domain.commands import OperatorRecord, RoundTripRecord
from domain.engine import EngineStatus
from domain.events import (
    BreakerResetRequested,
    EngineEvent,
    FlattenRequested,
    PauseRequested,
    ReconcileFailed,
    ResumeRequested,
)
from domain.position import RoundTrip
from domain.record import record

Period = Literal["today", "week", "month"]

ALERT_BACKLOG_DEGRADED = 100
"""Alerts waiting beyond this many: the notifier cannot keep up (Telegram away), said in health."""


@record
class Health:
    """How the daemon is doing, for /health and ``GET /healthz``."""

    status: str
    """``ok``; ``degraded`` (running, but something needs attention); ``down`` (cannot trade)."""
    state: str
    position: int
    connected: bool
    last_bar_age_s: float | None
    journal_backlog: int
    alert_backlog: int
    problems: tuple[str, ...]


class HealthSource(Protocol):
    """Facts only the adapters know: the broker link, the last bar, the backlogs."""

    def connected(self) -> bool: ...

    def last_bar_end(self) -> datetime | None: ...

    def journal_backlog(self) -> int: ...

    def journal_problem(self) -> str | None:
        """Why the journal cannot write now (unreachable, disk full, schema drift); None if it can."""
        ...

    def alert_backlog(self) -> int: ...


class OperatorConsole:
    """The daemon as an operator sees it."""

    def __init__(
        self,
        *,
        service: TradingService,
        journal: Journal,
        reader: JournalReader,
        broker: Broker,
        clock: Clock,
        health: HealthSource,
        config: Mapping[str, Any],
        version: str,
        request_stop: Callable[[bool], Awaitable[None]],
        stale_after_s: float = 60.0,
        expect_bars: Callable[[], bool] = lambda: True,
    ) -> None:
        self._service = service
        self._journal = journal
        self._reader = reader
        self._broker = broker
        self._clock = clock
        self._health = health
        self._config = dict(config)
        self.version = version
        self._request_stop = request_stop
        self._stale_after = stale_after_s
        self._expect_bars = expect_bars

    # -- views --------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock.now()

    def status(self) -> EngineStatus:
        return self._service.status()

    def config(self) -> dict[str, Any]:
        """The settings with every secret masked."""
        return dict(self._config)

    async def round_trips(
        self, period: Period | None = None, last: int | None = None
    ) -> list[RoundTrip]:
        """Closed trades, oldest first: those of ``period`` (by CME trade date), or the ``last`` n."""
        start = None if period is None else self.period_start(period)
        trips = [r.trip for r in await self._reader.records_of(RoundTripRecord, start, None)]
        if period is not None:
            first = cme_trade_date(start) if start is not None else None
            trips = [t for t in trips if first is None or cme_trade_date(t.exit_ts) >= first]
        return trips[-last:] if last is not None else trips

    async def bars_since(self, start: datetime) -> list[Bar]:
        """The bars recorded from ``start`` on (every contract), oldest first: for /chart."""
        return await self._reader.bars(None, start, None)

    def period_start(self, period: Period) -> datetime:
        """When ``period`` began: the current CME session's open, or that of the week's or month's
        first session (:func:`domain.calendar.globex_open`: 18:00 New York the day before)."""
        now = self._clock.now()
        today = cme_trade_date(now)
        if globex_open(today) > now:
            # A weekend or a Friday evening: the coming Monday's session has not opened yet.
            today -= timedelta(days=1)
            while today.weekday() >= 5:
                today -= timedelta(days=1)
        if period == "today":
            first = today
        elif period == "week":
            first = today - timedelta(days=today.weekday())
        else:
            first = today.replace(day=1)
            while first.weekday() >= 5:  # the month's first trade date
                first += timedelta(days=1)
        # Since the Globex open (Sunday evening for a Monday), not the accounting window's start.
        return globex_open(first)

    def position_subject(self) -> str:
        """What a /flatten or /stop question describes: the engine's state, its position and its
        working orders. A confirmation acts only while this is still what it was when asked."""
        status = self._service.status()
        position = status.position
        held = (
            "flat"
            if position is None
            else f"{position.side.name} {position.qty} @ {position.avg_price} "
            f"since {position.opened_at.isoformat()}"
        )
        orders = ",".join(sorted(status.working_orders)) or "none"
        return f"{status.state.value}; {held}; orders {orders}"

    def breaker_subject(self) -> str:
        """What a /breaker reset question describes: the rules holding entries back."""
        breaker = self._service.status().breaker
        return (
            f"daily loss halt {breaker.daily_loss_halt}; trade cap {breaker.max_trades_reached}; "
            f"paused until {breaker.paused_until}"
        )

    async def broker(self) -> BrokerSnapshot:
        """What the broker reports now (position, working orders, every execution it still has)."""
        return await self._broker.snapshot(None)

    def health(self) -> Health:
        status = self._service.status()
        connected = self._health.connected()
        last = self._health.last_bar_end()
        # Not clamped: a last bar that ends in the future (a bad stamp, a skewed clock) is shown
        # as the negative age it is, and named as a problem.
        age = None if last is None else (self._clock.now() - last).total_seconds()
        problems: list[str] = []
        if not connected:
            problems.append("broker link down")
        if age is not None and age < -DEFAULT_MAX_SKEW_S:
            problems.append(f"last bar ends {-age:.0f} s in the future (clock skew or a bad stamp)")
        if age is not None and age > self._stale_after and self._expect_bars():
            problems.append(f"last bar {age:.0f} s ago")
        # Every lasting reason entries are refused (a gate, the pause, the breaker, a reconcile,
        # a date the calendar does not cover): a daemon that will not trade says why.
        problems.extend(
            f"entries blocked: {block}"
            for block in self._service.engine.entry_blocks(self._clock.now())
            if block.persistent
        )
        # Every component that is not well, whatever its backlog: a journal that cannot write is
        # news at its first record, not its thousandth.
        journal = self._health.journal_problem()
        if journal is not None:
            problems.append(f"journal degraded: {journal}")
        if self._health.journal_backlog() > 1000:
            problems.append(f"journal backlog {self._health.journal_backlog()}")
        if self._health.alert_backlog() > ALERT_BACKLOG_DEGRADED:
            problems.append(f"alert backlog {self._health.alert_backlog()}")
        position = status.position
        signed = 0 if position is None else position.side.sign * position.qty
        return Health(
            status="down" if not connected else "degraded" if problems else "ok",
            state=status.state.value,
            position=signed,
            connected=connected,
            last_bar_age_s=age,
            journal_backlog=self._health.journal_backlog(),
            alert_backlog=self._health.alert_backlog(),
            problems=tuple(problems),
        )

    # -- requests -----------------------------------------------------------------------------

    async def pause(self, by: str) -> None:
        await self._apply(PauseRequested(self.now(), by))

    async def resume(self, by: str) -> None:
        await self._apply(ResumeRequested(self.now(), by))

    async def flatten(self, by: str, *, pause: bool = False) -> None:
        await self._apply(FlattenRequested(self.now(), by, pause=pause))

    async def reset_breaker(self, by: str) -> None:
        await self._apply(BreakerResetRequested(self.now(), by))

    async def reconcile(self, by: str) -> str:
        """Ask the broker for the position now; the engine compares it with its own."""
        report = await broker_report(self._broker, self.now(), "")
        if isinstance(report, ReconcileFailed):
            return f"the broker did not answer: {report.reason}"
        await self._apply(report)
        self.record_command("reconcile", by, allowed=True, outcome=f"broker {report.signed_qty}")
        return f"broker reports {report.signed_qty}"

    async def stop(self, by: str, *, flatten: bool) -> None:
        """Stop the daemon (flattening first when asked)."""
        self.record_command("stop", by, allowed=True, outcome="flatten first" if flatten else "")
        await self._request_stop(flatten)

    def record_command(self, command: str, by: str, *, allowed: bool, outcome: str = "") -> None:
        """Journal an operator command, allowed or refused."""
        verdict = "allowed" if allowed else "refused"
        detail = f"{verdict}: {outcome}" if outcome else verdict
        self._journal.append(OperatorRecord(command, by, self.now(), detail))

    async def _apply(self, event: EngineEvent) -> None:
        await self._service.handle(event)
