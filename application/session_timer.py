"""The live daemon's wall-clock schedule: session boundaries and entry gates, with or without bars.

The engine applies session rules when bars arrive; a quiet or stale feed must still not hold a
position through a close, the breaker must still reset at the open, and entries must be blocked
around IB Gateway's daily restart and in roll week. :class:`SessionTimer` sleeps on the Clock port
until the next of those instants and puts the engine's events into a sink (the daemon's inbox).

Choices:

- At start it emits no boundary for the past (a boundary exactly at the start second counts as
  past), but it emits the current state of each enabled entry gate once.
- Each boundary is emitted once: the timer keeps the last one emitted as its cursor, so an early
  wake just sleeps again.
- After a late wake (clock jump, suspended machine) it emits, of the boundaries it missed, only the
  last one of each kind, in their order and with their scheduled timestamps
  (:func:`domain.schedule.collapse_missed`): the last FLATTEN/CLOSE closes any position, the last
  OPEN starts the current trade date. ``on_close`` runs for that last CLOSE only, so no daily summary
  is sent for skipped sessions.
- ``on_close`` runs after a CLOSE that ends its trade date (not at a holiday's 13:00 halt, whose
  morning belongs to the next trade date), awaited inline: a slow summary delays, never drops, what
  follows. Its exceptions are logged and the timer goes on.
- Gates are re-evaluated at each wake from the clock's current time and emitted only on a change,
  stamped with that time; a window slept through entirely is never reported.
- A calendar coverage error is logged and reported to ``on_problem`` once; session boundaries then
  stop for good, entry gates keep working.
- Sleeps are capped at ``max_sleep`` so a wall-clock jump is noticed within that time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta

from application.ports import Clock
from domain.calendar import SessionCalendar
from domain.errors import CalendarCoverageError
from domain.events import BoundaryKind, EngineEvent, EntryGateChanged
from domain.schedule import (
    Boundary,
    check_restart_window,
    collapse_missed,
    next_boundary,
    next_restart_edge,
    next_roll_edge,
    restart_reason,
    restart_window,
    roll_block,
    roll_reason,
)

log = logging.getLogger(__name__)

RESTART_GATE = "ib_restart"
ROLL_GATE = "roll"


class SessionTimer:
    """Puts :class:`SessionBoundary` and :class:`EntryGateChanged` events into ``sink`` on time.

    ``restart_time`` None or ``restart_block`` zero disables the restart gate; ``roll_symbol`` None
    disables the roll gate; ``flatten_before_close`` None emits no FLATTEN.
    """

    def __init__(
        self,
        calendar: SessionCalendar,
        flatten_before_close: timedelta | None,
        clock: Clock,
        sink: Callable[[EngineEvent], None],
        restart_time: time | None,
        restart_block: timedelta,
        roll_symbol: str | None,
        on_close: Callable[[date], Awaitable[None]] | None = None,
        on_problem: Callable[[str], None] | None = None,
        max_sleep: timedelta = timedelta(minutes=1),
    ) -> None:
        if restart_block < timedelta(0):
            raise ValueError(f"restart_block must not be negative, got {restart_block}")
        if flatten_before_close is not None and flatten_before_close < timedelta(0):
            raise ValueError(
                f"flatten_before_close must not be negative, got {flatten_before_close}"
            )
        if max_sleep <= timedelta(0):
            raise ValueError(f"max_sleep must be positive, got {max_sleep}")
        if roll_symbol is not None and not roll_symbol:
            raise ValueError("roll_symbol must be a symbol such as 'MES', or None")
        if restart_time is not None and restart_block > timedelta(0):
            check_restart_window(restart_time, restart_block)
        self._calendar = calendar
        self._flatten = flatten_before_close
        self._clock = clock
        self._sink = sink
        self._restart = restart_time if restart_block > timedelta(0) else None
        self._restart_block = restart_block
        self._roll_symbol = roll_symbol
        self._on_close = on_close
        self._on_problem = on_problem
        self._max_sleep = max_sleep
        self._next: Boundary | None = None
        self._gates: dict[str, str | None] = {}

    async def run(self) -> None:
        """Emit events on time until cancelled."""
        now = self._now()
        self._next = self._schedule(int(now.timestamp()))
        self._update_gates(now)
        while True:
            await self._clock.sleep((self._wake_time(now) - now).total_seconds())
            now = self._now()
            closed = self._emit_due(now)
            self._update_gates(now)
            for trade_date in closed:
                await self._closed(trade_date)

    # -- session boundaries ------------------------------------------------------------------

    def _schedule(self, after: int | Boundary) -> Boundary | None:
        try:
            return next_boundary(self._calendar, self._flatten, after)
        except CalendarCoverageError as exc:
            text = f"session timer stopped: {exc}; no session boundary will be sent any more"
            log.error("%s", text)
            if self._on_problem is not None:
                try:
                    self._on_problem(text)
                except Exception:
                    log.exception("session timer: on_problem failed")
            return None

    def _emit_due(self, now: datetime) -> list[date]:
        """Emit the boundaries due at ``now``; the trade dates whose session ended."""
        due: list[Boundary] = []
        while self._next is not None and self._next.ts <= now:
            due.append(self._next)
            self._next = self._schedule(self._next)
        emitted = collapse_missed(due)
        for boundary in emitted:
            self._sink(boundary.event())
        return [b.trade_date for b in emitted if b.kind is BoundaryKind.CLOSE and b.ends_trade_date]

    async def _closed(self, trade_date: date) -> None:
        if self._on_close is None:
            return
        try:
            await self._on_close(trade_date)
        except Exception:
            log.exception("session timer: on_close for trade date %s failed", trade_date)

    # -- entry gates -------------------------------------------------------------------------

    def _update_gates(self, now: datetime) -> None:
        states: dict[str, str | None] = {}
        if self._restart is not None:
            window = restart_window(now, self._restart, self._restart_block)
            inside = window[0] <= now < window[1]
            states[RESTART_GATE] = restart_reason(self._restart, window) if inside else None
        if self._roll_symbol is not None:
            contract = roll_block(self._roll_symbol, now)
            states[ROLL_GATE] = roll_reason(contract) if contract is not None else None
        for gate, reason in states.items():
            if gate not in self._gates or self._gates[gate] != reason:
                self._gates[gate] = reason
                self._sink(EntryGateChanged(gate, reason, now))

    # -- time --------------------------------------------------------------------------------

    def _wake_time(self, now: datetime) -> datetime:
        wake = now + self._max_sleep
        if self._next is not None:
            wake = min(wake, self._next.ts)
        if self._restart is not None:
            wake = min(wake, next_restart_edge(now, self._restart, self._restart_block).ts)
        if self._roll_symbol is not None:
            wake = min(wake, next_roll_edge(self._roll_symbol, now).ts)
        return wake

    def _now(self) -> datetime:
        now = self._clock.now()
        if now.utcoffset() is None:
            raise ValueError(f"session timer: the clock returned a naive datetime {now!r}")
        return now
