"""A Gateway supervisor that does not trust the socket: it asks IB Gateway the time on an interval.

IB Gateway can keep its API socket open while it answers nothing: stuck, or back from its daily or
weekly restart and waiting for a login or a two-factor confirmation (``reference/operations.md``
§6 #1: a deployment "kept running for three days rejecting every order"). No socket event says so.
Here a request that goes unanswered makes the Gateway *not ready*: entries are gated, the broker sends
no order, and the operator is told what to do, again with backoff while it lasts. The first answer
makes it ready again; the session then resyncs the orders and reconciles before entries reopen.

At connect, IB's clock is compared with ours: bars, fills and the session calendar all rest on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from adapters.ibkr.client import IbClient
from application.backoff import REMINDERS, BackoffPolicy, Reminders
from application.ports import Clock, Notifier, OrderEventSink
from domain.commands import Alert, AlertKind, Severity
from domain.events import EntryGateChanged

log = logging.getLogger(__name__)

READY_GATE = "gateway_ready"


def duration(seconds: float) -> str:
    """A fault's length for an operator: "45 s", "12 min", "3 h 05 min"."""
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class GatewayHeartbeat:
    """Asks IB Gateway the time every ``interval_s`` (wall time) while the socket is open."""

    def __init__(
        self,
        client: IbClient,
        sink: OrderEventSink,
        notifier: Notifier,
        clock: Clock,
        *,
        interval_s: float,
        max_skew_s: float | None = None,
        on_ready: Callable[[], Awaitable[None]] | None = None,
        hold: Callable[[str | None], None] = lambda reason: None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        reminders: BackoffPolicy = REMINDERS,
    ) -> None:
        self._client = client
        self._sink = sink
        self._notifier = notifier
        self._clock = clock
        self._interval = interval_s
        self._max_skew = max_skew_s
        self._on_ready = on_ready
        self._hold = hold
        self._sleep = sleep
        self._monotonic = monotonic
        self.ready = True
        self.beats = 0
        self.misses = 0
        self._silence = Reminders(reminders)

    async def run(self) -> None:
        """Beat until cancelled. A closed socket is the session's to reconnect: no beat then."""
        while True:
            await self._sleep(self._interval)
            if not self._client.connected:
                continue
            try:
                await self.beat()
            except Exception:  # the supervisor must outlive any one failed beat
                log.exception("IB Gateway heartbeat failed; beating on")

    async def beat(self) -> bool:
        """One request; True when IB Gateway answered it."""
        try:
            await self._client.current_time()
        except (TimeoutError, ConnectionError) as exc:
            if self._client.connected:  # a socket that closed meanwhile is a disconnect, not this
                self._missed(str(exc) or type(exc).__name__)
            return False
        self.beats += 1
        if not self.ready:
            await self._answered()
        return True

    def connected(self) -> None:
        """A fresh connection answered the start-up requests: whatever was silent is over."""
        if not self.ready:
            self._reopen("IB Gateway answers again (reconnected)")

    async def check_clock(self) -> None:
        """Compare IB's clock with ours once; past ``max_skew_s`` the operator hears of it."""
        if self._max_skew is None:
            return
        try:
            theirs = await self._client.current_time()
        except (TimeoutError, ConnectionError) as exc:
            log.warning("IB's clock could not be read at connect: %s", exc)
            return
        ours = self._clock.now()
        skew = (ours - theirs).total_seconds()
        # IB answers in whole seconds: a second of rounding is not skew.
        if abs(skew) > self._max_skew + 1.0:
            self._alert(
                AlertKind.ANOMALY,
                Severity.WARNING,
                f"our clock is {skew:+.0f} s from IB Gateway's ({_iso(ours)} vs {_iso(theirs)}), "
                f"over ibkr.max_clock_skew_s {self._max_skew:g}: check the machine's time "
                "synchronisation (NTP); bar times and the session calendar depend on it",
            )

    # -- internals ----------------------------------------------------------------------------

    def _missed(self, why: str) -> None:
        self.misses += 1
        now = self._monotonic()
        if self.ready:
            self.ready = False
            self._silence.start(now)
            reason = "IB Gateway does not answer requests (its socket is open)"
            self._hold(reason)
            self._sink.put(EntryGateChanged(READY_GATE, reason, self._clock.now()))
            log.warning("IB Gateway did not answer a time request (%s): not ready", why)
        if not self._silence.due(now):
            return
        self._alert(
            AlertKind.CONNECTION,
            Severity.CRITICAL,
            f"IB Gateway has answered nothing for {duration(self._silence.elapsed(now) + self._interval)} "
            "though its socket is open: entries stopped and no order is sent (the broker's stop "
            "and target stay at IB). If it restarted, it is probably waiting for a login or a "
            "two-factor confirmation: log in on the Gateway or approve the IBKR Mobile "
            "notification; otherwise restart IB Gateway.",
        )

    async def _answered(self) -> None:
        if self._on_ready is not None:
            try:
                await self._on_ready()
            except Exception as exc:  # the next beat tries again; entries stay gated meanwhile
                log.warning("IB Gateway answers again but the resync failed: %s", exc)
                return
        silent = self._silence.elapsed(self._monotonic())
        self._reopen(f"IB Gateway answers again after {duration(silent)}: entries resume")

    def _reopen(self, text: str) -> None:
        self.ready = True
        self._silence.clear()
        self._hold(None)
        self._sink.put(EntryGateChanged(READY_GATE, None, self._clock.now()))
        self._alert(AlertKind.CONNECTION, Severity.INFO, text)

    def _alert(self, kind: AlertKind, severity: Severity, text: str) -> None:
        self._notifier.notify(Alert(kind, severity, text, self._clock.now()))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
