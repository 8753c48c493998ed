"""What the running daemon tells its console unasked: why entries are refused, once when a reason
starts and once when it ends, and a heartbeat line.

A refusal that lasts (an entry gate, the operator's pause, the circuit breaker, a reconcile, a
date the session calendar does not cover: :attr:`EntryBlock.persistent`) is a fact an operator
must see where they look; a market that is merely closed is not. :class:`DaemonWatch` compares the
engine's persistent blocks with the last ones it reported on every :meth:`DaemonWatch.check`, so
each start and each end is said exactly once, however often it is asked. The heartbeat follows
the daemon's own clock (market time for the simulated feed), at most one line per check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from application.ports import Clock
from application.services import TradingService
from domain.engine import EntryBlock

Say = Callable[[int, str], None]
"""Writes one console line at a logging level."""

CHECK_INTERVAL_S = 1.0


class DaemonWatch:
    """Reports the engine's lasting entry blocks as they start and end, and a heartbeat."""

    def __init__(
        self,
        service: TradingService,
        clock: Clock,
        say: Say,
        *,
        heartbeat: timedelta | None,
    ) -> None:
        if heartbeat is not None and heartbeat <= timedelta(0):
            raise ValueError(f"heartbeat must be positive (or None), got {heartbeat}")
        self._service = service
        self._clock = clock
        self._say = say
        self._heartbeat = heartbeat
        self._blocked: dict[str, EntryBlock] = {}
        self._next_beat: datetime | None = None

    @property
    def blocked(self) -> tuple[EntryBlock, ...]:
        """The lasting blocks reported and not yet over."""
        return tuple(self._blocked.values())

    def check(self) -> None:
        """Say what started or ended since the last check, and the heartbeat when it is due."""
        now = self._clock.now()
        blocks = {
            block.reason: block
            for block in self._service.engine.entry_blocks(now)
            if block.persistent
        }
        for reason, block in blocks.items():
            if reason not in self._blocked:
                self._say(logging.WARNING, f"entries blocked: {block}")
        for reason in self._blocked.keys() - blocks.keys():
            still = f"; still blocked: {', '.join(blocks)}" if blocks else "; entries open"
            self._say(logging.INFO, f"entries no longer blocked by {reason}{still}")
        self._blocked = blocks
        self._beat(now)

    async def run(self, interval_s: float = CHECK_INTERVAL_S) -> None:
        """Check every ``interval_s`` (wall time) until cancelled."""
        while True:
            self.check()
            await asyncio.sleep(interval_s)

    def _beat(self, now: datetime) -> None:
        every = self._heartbeat
        if every is None:
            return
        if self._next_beat is None:
            self._next_beat = _next_multiple(now, every)
            return
        if now < self._next_beat:
            return
        self._next_beat = _next_multiple(now, every)
        self._say(logging.INFO, self.heartbeat_line(now))

    def heartbeat_line(self, now: datetime) -> str:
        """``alive at ...: bars, state, position, the session's P&L and trades, entries``."""
        service = self._service
        engine = service.engine
        counters = service.counters
        position = engine.position.snapshot()
        held = (
            "flat"
            if position is None
            else f"{position.side.name} {position.qty} @ {position.avg_price}"
        )
        breaker = engine.breaker
        blocked = [str(b) for b in engine.entry_blocks(now)]
        trades = breaker.trades_today
        return (
            f"alive at {now.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC: {counters.bars_in:,} bars "
            f"({counters.strategy_bars:,} strategy bars), {engine.state.value}, {held}, "
            f"session {breaker.trade_date or '-'} P&L {breaker.realized_pnl:+.2f} USD in "
            f"{trades} trade{'s' if trades != 1 else ''}, entries "
            + (f"blocked ({'; '.join(blocked)})" if blocked else "open")
        )


def _next_multiple(now: datetime, every: timedelta) -> datetime:
    """The first multiple of ``every`` (counted from the epoch) after ``now``."""
    step = int(every.total_seconds())
    epoch = int(now.timestamp())
    return datetime.fromtimestamp((epoch // step + 1) * step, UTC)
