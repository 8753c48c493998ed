"""The soak harness: the whole IB Gateway daemon for days of market time, at high speed.

``run_soak`` starts the TWS test gateway (bounded memory) and ``run_daemon`` (``daemon.broker:
ibkr``) in this event loop, both on one :class:`AcceleratedClock`, with the journal and state store
on a PostgreSQL cluster of its own (so it can be restarted mid-run). A driver then plays real ES
1-minute bars (``data/sample``, Oct 2013, shifted by whole weeks into Oct 2026 so the CME calendar
applies) as the 5-second bars IB would send: one for every 5 s the calendar says is open, each pushed
once the clock has passed its end (in a batch when behind, never ahead of the clock). Along the way
it injects the faults of the plan at fixed market times, samples the process's RSS, and at the end
stops the daemon gracefully and collects what the soak test asserts and the benchmark prints.

The default window is Thursday 2026-10-08 12:00 New York to Saturday 12:00: the Thursday 16:55
flatten and 17:00 halt, the 18:00 reopen (breaker reset), Gateway's 23:45 restart window, a whole
Friday session, and the Friday close into a quiet weekend.

Two faults leave the socket question open for a while: ``silent`` (the Gateway answers no request
for 20 market minutes, its socket open, bars streaming on) and ``login_wait`` (a restart that comes
back wanting its login: every connection closed before the handshake until the operator logs in).
Each one's window is measured (:class:`OutageWindow`): the orders that reached the Gateway, the
entries the engine intended, the operator's reminders, and how the daemon came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gc
import os
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import text

from adapters.clock import AcceleratedClock
from adapters.ibkr.heartbeat import READY_GATE
from adapters.ibkr.session import GATE as LINK_GATE
from adapters.ibkr.session import IbkrSession
from adapters.ibkr.venue import IbkrVenue
from adapters.simulated.notifier import RecordingNotifier
from adapters.sql import migrate
from adapters.sql.database import create_engine
from adapters.sql.queries import SqlJournalReader
from domain.calendar import SessionCalendar, build_calendar
from domain.commands import (
    Alert,
    AlertKind,
    FillRecord,
    OrderEventRecord,
    OrderIntentRecord,
    RoundTripRecord,
    Severity,
    SignalRecord,
)
from domain.contract import FutureContract, front_month
from domain.engine import EngineState
from entrypoints.daemon import DaemonHandle, RunOptions, RunResult, run_daemon
from entrypoints.settings import Settings
from tests.support.live_daemon import daemon_settings
from tests.support.postgres import LocalCluster, create_database
from tests.support.tws import GatewayBar, TwsGateway

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample" / "es_1min_20131006_20131014.csv"
SHIFT = timedelta(weeks=678)
"""2013-10-10 (Thursday) + 678 weeks = 2026-10-08 (Thursday); both Octobers are on EDT."""
SOAK_START = datetime(2026, 10, 8, 16, 0, tzinfo=UTC)
"""Thursday 12:00 New York."""
HISTORY = timedelta(hours=6)
"""Bars IB already has at the start (the daemon warms its z-score window up from them)."""
TICK = Decimal("0.25")

FaultKind = Literal[
    "disconnect",
    "gateway_restart",
    "data_lost",
    "reject",
    "postgres_restart",
    "silent",
    "login_wait",
]
PLACE_ORDER, REQ_CURRENT_TIME = 3, 49
"""TWS message ids of requests a silent Gateway drops (see ``ignored_while_silent``)."""


@dataclass(frozen=True)
class Fault:
    """``kind`` at ``at`` (market time after the start)."""

    at: timedelta
    kind: FaultKind


DEFAULT_FAULTS = (
    Fault(timedelta(hours=3), "disconnect"),  # Thu 15:00 NY, market open
    Fault(timedelta(hours=5), "reject"),  # armed at the 17:00 halt: the next entry is refused
    Fault(timedelta(hours=8), "data_lost"),  # Thu 20:00 NY: 1100, a 2-minute gap, 1101
    # Gateway's 23:45 NY restart comes back wanting its login. IB's weekly full login (two-factor)
    # falls on the weekend, outside this window and with nothing to trade; the same wait after a
    # weeknight restart (a session IB expired early, IBC's restart failing over to a login) is the
    # harder case, so it is played here: the Globex night session is open, entries would fire, and
    # the 35 minutes of bars missed are filled from IB's history once it is back.
    Fault(timedelta(hours=11, minutes=45), "login_wait"),
    Fault(timedelta(hours=20), "postgres_restart"),  # Fri 08:00 NY
    Fault(timedelta(hours=23, minutes=1), "silent"),  # Fri 11:01 NY, the cash session
    Fault(timedelta(hours=30), "disconnect"),  # Fri 18:00 NY, the weekend
    Fault(timedelta(hours=35, minutes=45), "gateway_restart"),  # Fri 23:45 NY, a plain restart
)


@dataclass(frozen=True)
class SoakPlan:
    start: datetime = SOAK_START
    hours: float = 48.0
    speed: float = 1920.0
    """Market seconds per wall second."""
    warmup_hours: float = 4.0
    sample_every: timedelta = timedelta(minutes=15)
    faults: tuple[Fault, ...] = DEFAULT_FAULTS
    data_gap: timedelta = timedelta(minutes=2)
    """How long IB streams nothing between its 1100 and 1101 (the ``data_lost`` fault)."""
    gateway_downtime_s: float = 0.3
    """Wall seconds the Gateway listens to nobody in ``gateway_restart`` and ``login_wait``."""
    silent_for: timedelta = timedelta(minutes=20)
    """Market time the Gateway answers no request in ``silent``."""
    login_after: timedelta = timedelta(minutes=35)
    """Market time from the restart of ``login_wait`` to the operator's login."""
    postgres_downtime_s: float = 1.5
    """Wall seconds PostgreSQL stays stopped in ``postgres_restart`` (after ``pg_ctl stop``)."""
    history_window: timedelta = timedelta(hours=3)
    """The gateway keeps this much bar history (IB serves an hour of 5-second bars per request)."""

    def __post_init__(self) -> None:
        if self.start.utcoffset() is None:
            raise ValueError(f"SoakPlan.start must be timezone-aware, got {self.start!r}")
        if not self.speed > 0:
            raise ValueError(f"SoakPlan.speed must be positive, got {self.speed}")
        if not 0 <= self.warmup_hours < self.hours:
            raise ValueError(
                f"SoakPlan.warmup_hours must be in [0, hours={self.hours}), got {self.warmup_hours}"
            )
        for fault in self.faults:
            if not timedelta(0) < fault.at < timedelta(hours=self.hours):
                raise ValueError(f"fault {fault.kind} at +{fault.at} is outside the soak window")
            if fault.at + self.lasts(fault) >= timedelta(hours=self.hours):
                raise ValueError(f"fault {fault.kind} at +{fault.at} outlasts the soak window")

    def lasts(self, fault: Fault) -> timedelta:
        """Market time from the fault to its planned end (0 for the instant ones)."""
        if fault.kind == "data_lost":
            return self.data_gap
        if fault.kind == "silent":
            return self.silent_for
        if fault.kind == "login_wait":
            return self.login_after
        return timedelta(0)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=self.hours)


# -- the bars ------------------------------------------------------------------------------------


def _on_tick(value: Decimal) -> Decimal:
    return (value / TICK).to_integral_value(ROUND_HALF_EVEN) * TICK


def _minute_path(o: Decimal, h: Decimal, lo: Decimal, c: Decimal) -> list[Decimal]:
    """13 prices on the tick from ``o`` to ``c`` through both extremes (the nearer one first),
    linear in between: the ends of twelve 5-second bars that add up to this minute's OHLC."""
    first, second = (lo, h) if o - lo <= h - o else (h, lo)
    anchors = (o, first, second, c)
    path = [o]
    for a, b in pairwise(anchors):
        path += [_on_tick(a + (b - a) * k / 4) for k in range(1, 5)]
    return path


def _read_minutes(since: datetime, until: datetime) -> dict[int, tuple[Decimal, ...]]:
    """Rows of the sample file in ``[since, until)`` (market time, already shifted), by epoch."""
    rows: dict[int, tuple[Decimal, ...]] = {}
    with SAMPLE.open(newline="") as f:
        for row in csv.DictReader(f):
            ts = datetime.fromisoformat(row["ts"].replace("Z", "+00:00")) + SHIFT
            if since <= ts < until:
                rows[int(ts.timestamp())] = (
                    Decimal(row["open"]),
                    Decimal(row["high"]),
                    Decimal(row["low"]),
                    Decimal(row["close"]),
                    Decimal(row["volume"]),
                )
    if not rows:
        raise ValueError(f"{SAMPLE.name} has no rows between {since - SHIFT} and {until - SHIFT}")
    return rows


def five_second_bars(
    since: datetime, until: datetime, calendar: SessionCalendar
) -> list[GatewayBar]:
    """The 5-second bars IB would stream in ``[since, until)``: one per 5 s the market is open.

    A minute of the sample becomes twelve bars along :func:`_minute_path` (its volume split evenly);
    a minute it lacks (thin trading, its 2013 afternoon halt) is flat at the last close, volume 0.
    """
    minutes = _read_minutes(since - timedelta(hours=1), until)
    last_close: Decimal | None = None
    bars: list[GatewayBar] = []
    epoch, end = int(since.timestamp()), int(until.timestamp())
    epoch -= epoch % 5
    path: list[Decimal] = []
    volumes: list[int] = []
    for minute in sorted(m for m in minutes if m < epoch):
        last_close = minutes[minute][3]  # carried into the window's first flat bars
    while epoch < end:
        if calendar.session_at(epoch) is None:
            epoch += 5
            continue
        minute, i = epoch - epoch % 60, (epoch % 60) // 5
        row = minutes.get(minute)
        if row is not None:
            if i == 0 or not path:
                o, h, lo, c, v = row
                path = _minute_path(o, h, lo, c)
                base, extra = divmod(int(v), 12)
                volumes = [base + (1 if k < extra else 0) for k in range(12)]
            a, b = path[i], path[i + 1]
            bar = GatewayBar(
                datetime.fromtimestamp(epoch, UTC), a, max(a, b), min(a, b), b, volumes[i]
            )
            last_close = b
        else:
            path = []
            if last_close is None:
                raise ValueError(f"no price before the first open 5 s at epoch {epoch}")
            bar = GatewayBar(datetime.fromtimestamp(epoch, UTC), *(last_close,) * 4, 0)
        bars.append(bar)
        epoch += 5
    return bars


# -- the database --------------------------------------------------------------------------------


@dataclass
class SoakDatabase:
    """A migrated database on a PostgreSQL server the harness may stop and start."""

    url: str
    stop: Callable[[], None]
    start: Callable[[], None]


@contextlib.contextmanager
def dedicated_postgres(*, durable: bool = False) -> Iterator[SoakDatabase]:
    """A throwaway PostgreSQL cluster for one soak (restarting it disturbs nobody else)."""
    cluster = LocalCluster(durable=durable).up()
    try:
        url = create_database(cluster.url, "qs_soak")
        migrate.upgrade(url)
        yield SoakDatabase(url, cluster.stop, cluster.start)
    finally:
        cluster.destroy()


# -- what the run reports ------------------------------------------------------------------------


@dataclass
class FaultRecord:
    kind: str
    step: str
    planned_h: float
    market: str
    """When it happened, in market time (ISO, UTC)."""
    wall_s: float
    """Wall seconds after the daemon was ready."""
    detail: str = ""


@dataclass
class OutageWindow:
    """A ``silent`` or ``login_wait`` fault, from its start to its end (market time, ISO)."""

    kind: str
    start: str
    end: str = ""
    wall_s: float = 0.0
    """How long it lasted in wall time."""
    gated_at: str = ""
    """When the daemon gated entries for it (``gateway_ready`` / ``broker_link``), "" if never."""
    reopened_at: str = ""
    """When that gate opened again after the end, "" if never."""
    orders_reached: int = 0
    """Orders that reached the Gateway in the window (placed, or sent to a silent Gateway)."""
    orders_after_gate: int = 0
    """Of those, the ones sent after the daemon had gated entries."""
    entry_intents: int = 0
    """Entry intents the engine journaled between ``gated_at`` and the end."""
    critical_reminders: list[str] = field(default_factory=list)
    """CRITICAL connection alerts raised in the window: ``ts text``."""
    recovered: str = ""
    """The alert that said the Gateway was back: ``ts text``, "" if none came."""
    recovered_after_s: float | None = None
    """Market seconds from the end to that alert."""
    heartbeats_unanswered: int = 0
    refused_logins: int = 0
    """Connections the Gateway closed while it waited for the login."""


@dataclass
class RssSample:
    market_h: float
    rss_mb: float


@dataclass
class SoakReport:
    speed: float
    market_hours: float
    wall_s: float = 0.0
    startup_wall_s: float = 0.0
    crashed: str | None = None
    """Why the daemon ended before it was asked to, if it did."""
    stopped_by: str = ""
    shutdown: dict[str, float] = field(default_factory=dict)
    bars_pushed: int = 0
    bars_unique: int = 0
    bars_in: int = 0
    """5-second bars the trading service took in (live and backfilled)."""
    bars_backfilled: int = 0
    duplicates_dropped: int = 0
    journal_bars: int = 0
    journal_bars_distinct: int = 0
    missing_from_journal: list[str] = field(default_factory=list)
    """Up to 20 pushed bar starts the journal lacks (ISO)."""
    missing_count: int = 0
    extra_in_journal: int = 0
    strategy_bars: int = 0
    signals: int = 0
    entries: int = 0
    round_trips: int = 0
    journal_fills: int = 0
    gateway_executions: int = 0
    fills_match: bool = False
    """The journal's exec ids are exactly the gateway's."""
    rejections: int = 0
    rejected_orders: list[str] = field(default_factory=list)
    """``ts key detail`` of each order the journal records as rejected."""
    engine_position: int | None = None
    engine_state: str = ""
    gateway_position: int | None = None
    reconcile_required: str | None = None
    reconnects: int = 0
    stale_alerts: int = 0
    stale_alerts_open: list[str] = field(default_factory=list)
    """Stale-data alerts while the market was open (a driver or daemon that fell behind)."""
    stale_alerts_closed: list[str] = field(default_factory=list)
    """Stale-data alerts raised while the calendar said the market was closed (must be none)."""
    alerts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """Every alert at WARNING or above: ``ts kind severity text`` (text cut at 160 characters)."""
    gates: list[str] = field(default_factory=list)
    """Entry-gate changes the journal recorded: ``ts gate: reason``."""
    faults: list[FaultRecord] = field(default_factory=list)
    outages: list[OutageWindow] = field(default_factory=list)
    gateway_ready_gates: list[str] = field(default_factory=list)
    """Every ``gateway_ready`` gate change (a silence the heartbeat saw), in or out of a window."""
    rss: list[RssSample] = field(default_factory=list)
    rss_warmup_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_growth_mb: float = 0.0
    rss_max_mb: float = 0.0
    max_lag_s: float = 0.0
    """The most market seconds a bar was pushed after its end (the driver falling behind)."""
    max_lag_at: str = ""
    """The end of the bar pushed that late."""
    p50_lag_s: float = 0.0
    p99_lag_s: float = 0.0
    leaked_tasks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rss_mb() -> float:
    """This process's resident set (VmRSS), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


# -- the run --------------------------------------------------------------------------------------


def soak_settings(port: int, data_dir: Path, database_url: str) -> Settings:
    """Production strategy and session rules (5-minute bars, lookback 20, the CME calendar), the
    IB Gateway daemon on the test gateway. Its timers run on the soak's clock: the watchdog checks
    every 5 market seconds (under 3 ms of wall time); reconnects back off up to 50 ms of wall time.

    The stale grace is 5 market minutes, not the default 30 s: at 1920 times real time 30 s is
    16 ms of wall time, less than a busy machine's scheduling delay, and the harness (in the
    daemon's process) then pushes bars late enough to look stale again and again. Lost bars are
    found by the stream's gap check either way; the watchdog's own tests use the default.

    The heartbeat, its request timeout and the outage reminders run on wall time (``asyncio.sleep``
    and ``time.monotonic``), not on the soak's clock, so they are scaled here by hand: at 1920
    times real time the 20 market minutes of ``silent`` are 0.63 s of wall time. A beat every
    0.04 s (77 market s) that waits 0.15 s (4.8 market min) for IB's answer sees the silence
    within about 6 market minutes and misses again every ~6; the reminders (at once, after 0.1 s,
    then doubling up to 0.4 s: 3.2, 6.4 and 12.8 market minutes) reach the operator at least twice
    in the silence. A connect waits 0.2 s (6.4 market min) for the API session, as long as
    ib_async waits on a Gateway that closes the socket for want of a login: three or four refused
    attempts in the 35 minutes of ``login_wait``, reminded of as they fail. Shorter timeouts time
    out on a loaded machine, and a backfill that times out is not waited for (``HOLD_LIMIT_S`` is
    two market minutes, 60 ms of wall time here): its bars would be lost."""
    return daemon_settings(
        port,
        data_dir,
        QS_DATABASE__URL=database_url,
        QS_STRATEGY__BAR_MINUTES="5",
        QS_STRATEGY__LOOKBACK_PERIOD="20",
        QS_SESSION__CALENDAR="cme_globex_equity",
        QS_RISK__MAX_POSITION_DURATION_HOURS="4",
        QS_ZSCORE__ENGINE="rust",
        QS_IBKR__WATCHDOG_INTERVAL_S="5",
        QS_IBKR__STALE_GRACE_S="300",
        QS_IBKR__RECONNECT_MAX_S="0.05",
        QS_IBKR__RESTART_TIME="23:45",
        QS_IBKR__HEARTBEAT_S="0.04",
        QS_IBKR__REQUEST_TIMEOUT_S="0.15",
        QS_IBKR__CONNECT_TIMEOUT_S="0.2",
        QS_IBKR__OUTAGE_REMINDER_S="0.1",
        QS_IBKR__OUTAGE_REMINDER_MAX_S="0.4",
    )


class _SlowStart:
    """The wall time an :class:`AcceleratedClock` reads: real time (market time at 1x) until
    :meth:`release`, then wall time again, continuously. The daemon's start-up (connect, warm-up,
    margin check: ~0.5 s of wall time) then costs half a market second, not 16 market minutes of
    bars to catch up with a feed that looks stale meanwhile."""

    def __init__(self, speed: float) -> None:
        self._speed = speed
        self._t0 = time.monotonic()
        self._released: tuple[float, float] | None = None
        """(wall time of the release, what this clock read then)."""

    def __call__(self) -> float:
        now = time.monotonic()
        if self._released is None:
            return self._t0 + (now - self._t0) / self._speed
        wall, read = self._released
        return read + (now - wall)

    def release(self) -> None:
        if self._released is None:
            self._released = (time.monotonic(), self())


@dataclass
class _Window:
    """An outage fault while it lasts: what the harness saw at its start and end."""

    fault: Fault
    start: datetime
    wall: float
    orders: int
    refused_logins: int
    end: datetime | None = None
    wall_s: float = 0.0
    orders_end: int = 0
    refused_logins_end: int = 0


@dataclass(order=True)
class _Step:
    due: datetime
    seq: int
    kind: str = field(compare=False)
    payload: Any = field(compare=False, default=None)


class _Soak:
    def __init__(
        self,
        plan: SoakPlan,
        database: SoakDatabase,
        data_dir: Path,
        on_progress: Callable[[str], None] | None,
    ) -> None:
        self.plan = plan
        self.database = database
        self.data_dir = data_dir
        self.on_progress = on_progress
        self.report = SoakReport(speed=plan.speed, market_hours=plan.hours)
        self.calendar = build_calendar("cme_globex_equity")
        self.bars: Sequence[GatewayBar] = ()
        self.lags = array("d")
        """Per bar pushed, market seconds after its end (allocated up front: the harness must not
        grow while it measures the daemon's memory)."""
        self.side_tasks: list[asyncio.Task[None]] = []
        self.reject_pending: Fault | None = None
        self.windows: dict[Fault, _Window] = {}
        self.restarting: asyncio.Task[None] | None = None
        self.wall0 = 0.0

    # -- helpers --------------------------------------------------------------------------------

    def _note(self, kind: str, step: str, planned: timedelta, detail: str = "") -> None:
        now = self.clock.now()
        record = FaultRecord(
            kind,
            step,
            round(planned / timedelta(hours=1), 3),
            now.isoformat(timespec="seconds"),
            round(time.monotonic() - self.wall0, 3),
            detail,
        )
        self.report.faults.append(record)
        if self.on_progress is not None:
            self.on_progress(f"{record.market} {kind}: {step} {detail}".rstrip())

    def _sample(self) -> float:
        # No gc.collect() first: a full collection of this heap stops the loop for ~0.2 s of wall
        # time, several market minutes at soak speed, long enough to make the feed look stale.
        value = rss_mb()
        hours = (self.clock.now() - self.plan.start) / timedelta(hours=1)
        self.report.rss.append(RssSample(round(hours, 3), round(value, 2)))
        return value

    def _timeline(self, bars: Sequence[GatewayBar]) -> list[_Step]:
        plan = self.plan
        steps: list[_Step] = []
        seq = 0

        def add(due: datetime, kind: str, payload: Any = None) -> None:
            nonlocal seq
            seq += 1
            steps.append(_Step(due, seq, kind, payload))

        for bar in bars:
            add(bar.end, "bar", bar)
        t = plan.start + plan.sample_every
        while t < plan.end:
            add(t, "sample")
            t += plan.sample_every
        add(plan.start + timedelta(hours=plan.warmup_hours), "warmup_end")
        for fault in plan.faults:
            add(plan.start + fault.at, fault.kind, fault)
            if fault.kind == "data_lost":
                add(plan.start + fault.at + plan.data_gap, "data_restored", fault)
            elif fault.kind == "silent":
                add(plan.start + fault.at + plan.silent_for, "silent_end", fault)
            elif fault.kind == "login_wait":
                add(plan.start + fault.at + plan.login_after, "log_in", fault)
        add(plan.end, "end")
        steps.sort()
        return steps

    # -- faults ---------------------------------------------------------------------------------

    async def _gateway_restart(self, fault: Fault) -> None:
        await self.gateway.restart(self.plan.gateway_downtime_s)
        self._note(fault.kind, "listening again", fault.at)

    async def _login_restart(self, fault: Fault) -> None:
        await self.gateway.restart(self.plan.gateway_downtime_s, login_required=True)
        self._note(fault.kind, "listening again", fault.at, "every connection refused")

    def _open_window(self, fault: Fault) -> None:
        gateway = self.gateway
        self.windows[fault] = _Window(
            fault, self.clock.now(), time.monotonic(), len(gateway.orders), gateway.refused_logins
        )

    def _close_window(self, fault: Fault) -> _Window:
        window = self.windows[fault]
        window.end = self.clock.now()
        window.wall_s = round(time.monotonic() - window.wall, 3)
        window.orders_end = len(self.gateway.orders)
        window.refused_logins_end = self.gateway.refused_logins
        return window

    async def _postgres_restart(self, fault: Fault) -> None:
        self._note(fault.kind, "stopping", fault.at)
        await asyncio.to_thread(self.database.stop)
        self._note(fault.kind, "stopped", fault.at, "pg_ctl stop -m fast")
        await asyncio.sleep(self.plan.postgres_downtime_s)
        await asyncio.to_thread(self.database.start)
        self._note(fault.kind, "started", fault.at)

    async def _fault(self, step: _Step) -> None:
        fault: Fault = step.payload
        gateway = self.gateway
        if step.kind == "disconnect":
            await gateway.disconnect_clients()
            self._note(fault.kind, "clients dropped", fault.at)
        elif step.kind == "gateway_restart":
            self._note(fault.kind, "going down", fault.at, f"{self.plan.gateway_downtime_s} s wall")
            self._spawn(self._gateway_restart(fault))
        elif step.kind == "data_lost":
            await gateway.send_error(1100, "Connectivity between IB and Trader Workstation lost.")
            gateway.drop_realtime_subscriptions()
            self._note(fault.kind, "1100, subscriptions dropped", fault.at)
        elif step.kind == "data_restored":
            await gateway.send_error(
                1101, "Connectivity between IB and TWS has been restored- data lost."
            )
            self._note(fault.kind, "1101", fault.at)
        elif step.kind == "reject":
            self.reject_pending = fault
            self._arm_rejection()
        elif step.kind == "postgres_restart":
            self._spawn(self._postgres_restart(fault))
        elif step.kind == "silent":
            self._open_window(fault)
            gateway.faults.silent = True
            self._note(fault.kind, "silent", fault.at, f"for {self.plan.silent_for} market time")
        elif step.kind == "silent_end":
            gateway.faults.silent = False
            self._close_window(fault)
            self._note(fault.kind, "answering again", fault.at)
        elif step.kind == "login_wait":
            self._open_window(fault)
            self._note(fault.kind, "going down", fault.at, "back waiting for the login")
            self.restarting = asyncio.get_running_loop().create_task(self._login_restart(fault))
            self.side_tasks.append(self.restarting)
        elif step.kind == "log_in":
            if self.restarting is not None:
                await self.restarting  # not before it is back up (a driver far behind)
            gateway.log_in()
            window = self._close_window(fault)
            refused = window.refused_logins_end - window.refused_logins
            self._note(fault.kind, "logged in", fault.at, f"{refused} connections refused")
        else:  # pragma: no cover - the timeline holds only the kinds above
            raise ValueError(f"unknown fault step {step.kind!r}")

    def _arm_rejection(self) -> None:
        """Arm the gateway's next rejection once the engine is flat with nothing working, so it
        hits an entry (a refused exit is another test's business)."""
        fault = self.reject_pending
        engine = self.handle.service.engine
        if fault is None or engine.state is not EngineState.IDLE or engine.working_orders:
            return
        self.gateway.faults.reject_next(201, "Order rejected - reason: soak test")
        self.reject_pending = None
        self._note(fault.kind, "armed", fault.at, "the next order sent is refused")

    def _spawn(self, work: Any) -> None:
        self.side_tasks.append(asyncio.get_running_loop().create_task(work))

    # -- driving --------------------------------------------------------------------------------

    async def _drive(self, steps: Sequence[_Step], daemon: asyncio.Task[RunResult]) -> None:
        clock, gateway = self.clock, self.gateway
        session = _ibkr_session(self.handle)
        contract = session.contract
        assert contract is not None
        assert contract.con_id is not None
        con_id = contract.con_id
        speed = self.plan.speed
        for step in steps:
            if daemon.done():
                return
            wait = (step.due - clock.now()).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait / speed)
            if step.kind == "bar":
                bar: GatewayBar = step.payload
                self.lags[self.report.bars_pushed] = (clock.now() - step.due).total_seconds()
                await gateway.push_bar(con_id, bar)
                self.report.bars_pushed += 1
                if self.reject_pending is not None:
                    self._arm_rejection()
                await asyncio.sleep(0)  # let the daemon read it, even when catching up
            elif step.kind == "sample":
                self._sample()
            elif step.kind == "warmup_end":
                self.report.rss_warmup_mb = round(self._sample(), 2)
            elif step.kind == "end":
                self.report.rss_end_mb = round(self._sample(), 2)
            else:
                await self._fault(step)

    async def run(self) -> SoakReport:
        plan = self.plan
        history = five_second_bars(plan.start - HISTORY, plan.start, self.calendar)
        self.bars = bars = five_second_bars(plan.start, plan.end, self.calendar)
        self.lags = array("d", bytes(8 * len(bars)))
        steps = self._timeline(bars)
        # The bars and the timeline are tens of thousands of long-lived objects that a full
        # collection would scan again and again (~0.2 s of wall time each, minutes of market time
        # at soak speed): keep them, and whatever was there before, out of the collector's way.
        gc.collect()
        gc.freeze()
        try:
            return await self._run(steps, history)
        finally:
            gc.unfreeze()

    async def _run(self, steps: Sequence[_Step], history: Sequence[GatewayBar]) -> SoakReport:
        plan, report = self.plan, self.report
        tasks_before = asyncio.all_tasks()
        self.start_gate = _SlowStart(plan.speed)
        self.clock = AcceleratedClock(plan.start, plan.speed, monotonic=self.start_gate)
        self.gateway = gateway = TwsGateway(
            now=self.clock.now, record_traffic=False, history_window=plan.history_window
        )
        listed = [
            FutureContract(c.symbol, c.last_trade_date, c.local_symbol, c.con_id)
            for c in gateway.contracts
        ]
        front = front_month(listed, plan.start)
        assert front.con_id is not None
        gateway.add_history(front.con_id, history)
        alerts = RecordingNotifier()
        await gateway.start()
        settings = soak_settings(gateway.port, self.data_dir, self.database.url)
        try:
            await self._run_daemon(settings, steps, alerts)
        finally:
            for task in self.side_tasks:
                with contextlib.suppress(Exception):
                    await task
            await gateway.stop()
        self._alerts(alerts.alerts)
        report.gateway_executions = len(gateway.executions)
        report.gateway_position = gateway.position(front.con_id)
        events, intents = await self._read_journal(
            front.local_symbol, {e.exec_id for e in gateway.executions}
        )
        self._measure_outages(alerts.alerts, events, intents)
        report.bars_unique = len(self._pushed())
        if report.bars_pushed:
            pushed = self.lags[: report.bars_pushed]
            worst = max(range(len(pushed)), key=pushed.__getitem__)
            report.max_lag_at = self.bars[worst].end.isoformat()
            lags = sorted(pushed)
            report.max_lag_s = round(lags[-1], 1)
            report.p50_lag_s = round(lags[len(lags) // 2], 1)
            report.p99_lag_s = round(lags[int(0.99 * (len(lags) - 1))], 1)
        rss = [s.rss_mb for s in report.rss]
        report.rss_max_mb = max(rss, default=0.0)
        report.rss_growth_mb = round(report.rss_end_mb - report.rss_warmup_mb, 2)
        await asyncio.sleep(0)
        current = asyncio.current_task()
        report.leaked_tasks = sorted(
            repr(t) for t in asyncio.all_tasks() - tasks_before if t is not current
        )
        return report

    async def _run_daemon(
        self, settings: Settings, steps: Sequence[_Step], alerts: RecordingNotifier
    ) -> None:
        report = self.report
        handles: list[DaemonHandle] = []
        began = time.monotonic()
        daemon = asyncio.get_running_loop().create_task(
            run_daemon(
                settings,
                RunOptions(speed=None),
                on_ready=handles.append,
                clock=self.clock,
                alerts=alerts,
            )
        )
        try:
            while not handles:
                if daemon.done():
                    daemon.result()
                    raise AssertionError("the daemon ended before it was ready")
                if time.monotonic() - began > 120:  # generous: a busy machine starts slowly
                    raise AssertionError("the daemon was not ready 120 s after its start")
                await asyncio.sleep(0.005)
            self.handle = handles[0]
            self.start_gate.release()
            self.wall0 = time.monotonic()
            report.startup_wall_s = round(self.wall0 - began, 3)
            await self._drive(steps, daemon)
            report.wall_s = round(time.monotonic() - self.wall0, 3)
            await self._settle(daemon)
            self._take_counters()
            if daemon.done():
                exc = daemon.exception() if not daemon.cancelled() else None
                report.crashed = repr(exc) if exc is not None else "it returned"
                if exc is None and not daemon.cancelled():
                    result = daemon.result()
                    report.stopped_by = result.stopped_by
                return
            self.handle.stop.set()
            result = await asyncio.wait_for(daemon, settings.shutdown.timeout_s + 20)
            report.stopped_by = result.stopped_by
            report.shutdown = dict(result.shutdown)
            report.engine_position = result.position
            engine = self.handle.service.engine
            report.engine_state = engine.state.value
            report.reconcile_required = engine.status().reconcile_required
        finally:
            if not daemon.done():
                daemon.cancel()
            await asyncio.gather(daemon, return_exceptions=True)

    def _pushed(self) -> set[int]:
        """Start epochs of the bars pushed (they are pushed in order)."""
        return {int(b.start.timestamp()) for b in self.bars[: self.report.bars_pushed]}

    async def _settle(self, daemon: asyncio.Task[RunResult], timeout_s: float = 180.0) -> None:
        """Wait until the daemon has taken in the last bar pushed, or has ended (a generous wall-time
        deadline: a loaded machine may still be filling a gap from history when the driver ends)."""
        if not self.report.bars_pushed:
            return
        last_end = int(self.bars[self.report.bars_pushed - 1].end.timestamp())
        feed = _ibkr_session(self.handle).market_data
        counters = self.handle.service.counters
        deadline = time.monotonic() + timeout_s
        while not daemon.done() and time.monotonic() < deadline:
            sent = feed.bars_received + feed.backfilled - feed.duplicates_dropped
            end = feed.last_bar_end
            if end is not None and end >= last_end and counters.bars_in >= sent:
                return
            await asyncio.sleep(0.01)

    def _take_counters(self) -> None:
        report, handle = self.report, self.handle
        counters = handle.service.counters
        session = _ibkr_session(handle)
        report.bars_in = counters.bars_in
        report.strategy_bars = counters.strategy_bars
        report.rejections = counters.rejections
        report.reconnects = session.reconnects
        report.stale_alerts = session.stale_alerts
        report.bars_backfilled = session.market_data.backfilled
        report.duplicates_dropped = session.market_data.duplicates_dropped

    def _alerts(self, alerts: Sequence[Alert]) -> None:
        report = self.report
        report.alerts = dict(sorted(Counter(a.kind.value for a in alerts).items()))
        report.warnings = [
            f"{_iso(a.ts)} {a.kind.value} {a.severity.value} {a.text[:160]}"
            for a in alerts
            if a.severity is not Severity.INFO
        ]
        for alert in alerts:
            if alert.kind is AlertKind.STALE_DATA:
                closed = self.calendar.session_at(int(alert.ts.timestamp())) is None
                where = report.stale_alerts_closed if closed else report.stale_alerts_open
                where.append(f"{alert.ts.isoformat(timespec='seconds')} {alert.text}")

    async def _read_journal(
        self, contract: str, exec_ids: set[str]
    ) -> tuple[list[OrderEventRecord], list[OrderIntentRecord]]:
        """Fill the report from the journal; returns its order events and intents."""
        report = self.report
        engine = create_engine(self.database.url)
        try:
            reader = SqlJournalReader(engine)
            async with engine.connect() as conn:
                report.journal_bars = int(await conn.scalar(text("SELECT count(*) FROM bars")) or 0)
                report.journal_bars_distinct = int(
                    await conn.scalar(text("SELECT count(DISTINCT (contract, ts)) FROM bars")) or 0
                )
            journaled = {b.epoch for b in await reader.bars(contract)}
            pushed = self._pushed()
            missing = sorted(pushed - journaled)
            report.missing_count = len(missing)
            report.missing_from_journal = [
                datetime.fromtimestamp(m, UTC).isoformat() for m in missing[:20]
            ]
            report.extra_in_journal = len(journaled - pushed)
            report.signals = len(await reader.records_of(SignalRecord))
            intents = await reader.records_of(OrderIntentRecord)
            report.entries = sum(1 for i in intents if i.role == "entry")
            report.round_trips = len(await reader.records_of(RoundTripRecord))
            fills = await reader.records_of(FillRecord)
            report.journal_fills = len(fills)
            report.fills_match = {f.fill.exec_id for f in fills} == exec_ids and len(fills) == len(
                exec_ids
            )
            events = await reader.records_of(OrderEventRecord)
            report.rejected_orders = [
                f"{e.ts.isoformat()} {e.key} {e.detail}" for e in events if e.status == "rejected"
            ]
            report.gates = [
                f"{e.ts.isoformat()} {e.detail}" for e in events if e.status == "entry_gate"
            ]
            report.gateway_ready_gates = [g for g in report.gates if f" {READY_GATE}: " in g]
            return events, intents
        finally:
            await engine.dispose()

    def _measure_outages(
        self,
        alerts: Sequence[Alert],
        events: Sequence[OrderEventRecord],
        intents: Sequence[OrderIntentRecord],
    ) -> None:
        """One :class:`OutageWindow` per ``silent`` and ``login_wait`` fault that began."""
        ignored = self.gateway.ignored_while_silent
        for window in self.windows.values():
            kind = window.fault.kind
            gate = READY_GATE if kind == "silent" else LINK_GATE
            back = "IB Gateway answers again" if kind == "silent" else "reconnected to IB Gateway"
            start = window.start
            end = window.end if window.end is not None else self.clock.now()
            out = OutageWindow(kind, _iso(start), _iso(end) if window.end else "", window.wall_s)
            changes = [
                (e.ts, e.detail.removeprefix(f"{gate}: "))
                for e in events
                if e.status == "entry_gate" and e.detail.startswith(f"{gate}: ")
            ]
            gated = next((ts for ts, why in changes if start <= ts <= end and why != "open"), None)
            if gated is not None:
                out.gated_at = _iso(gated)
                reopened = next((ts for ts, why in changes if ts > gated and why == "open"), None)
                out.reopened_at = _iso(reopened) if reopened is not None else ""
                out.entry_intents = sum(
                    1 for i in intents if i.role == "entry" and gated <= i.ts <= end
                )
            sent = [ts for ts, msg_id in ignored if msg_id == PLACE_ORDER and start <= ts <= end]
            placed = window.orders_end - window.orders
            out.orders_reached = len(sent) + placed
            # An order placed with the Gateway listening counts as after the gate: no way to tell.
            out.orders_after_gate = placed + sum(1 for ts in sent if gated is None or ts >= gated)
            out.heartbeats_unanswered = sum(
                1 for ts, msg_id in ignored if msg_id == REQ_CURRENT_TIME and start <= ts <= end
            )
            out.refused_logins = window.refused_logins_end - window.refused_logins
            for alert in alerts:
                if alert.kind is not AlertKind.CONNECTION:
                    continue
                if alert.severity is Severity.CRITICAL and start <= alert.ts <= end:
                    out.critical_reminders.append(f"{_iso(alert.ts)} {alert.text}")
                elif (
                    not out.recovered
                    and alert.severity is Severity.INFO
                    and alert.ts >= (gated or start)
                    and alert.text.startswith(back)
                ):
                    out.recovered = f"{_iso(alert.ts)} {alert.text}"
                    out.recovered_after_s = round((alert.ts - end).total_seconds(), 1)
            self.report.outages.append(out)


async def run_soak(
    plan: SoakPlan,
    database: SoakDatabase,
    data_dir: Path,
    *,
    on_progress: Callable[[str], None] | None = None,
) -> SoakReport:
    """One soak run (see the module docstring); ``data_dir`` takes the daemon's spool files."""
    os.makedirs(data_dir, exist_ok=True)
    return await _Soak(plan, database, data_dir, on_progress).run()


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _ibkr_session(handle: DaemonHandle) -> IbkrSession:
    """The IB session supervisor of a daemon running on IB Gateway."""
    venue = handle.venue
    assert isinstance(venue, IbkrVenue), f"not an IB Gateway daemon: {type(venue).__name__}"
    return venue.session
