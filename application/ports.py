"""Ports: what the application needs from the world, as small Protocols that speak domain types.

No library type (ib_async Contract, psycopg row, aiogram Message) crosses a port. Each adapter lives in
``adapters/`` and its conformance is checked statically where the container wires it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol

import numpy as np
import numpy.typing as npt

from domain.bar import Bar
from domain.commands import (
    Alert,
    CancelOrders,
    JournalRecord,
    PlaceBracket,
    PlaceExit,
    PlaceProtective,
)
from domain.contract import FutureContract
from domain.engine import EngineSnapshot
from domain.events import EngineEvent
from domain.position import Fill
from domain.record import record
from domain.zscore import ZScore


class BrokerError(Exception):
    """A broker adapter could not send an order (not connected, refused before sending, ...)."""


Checkpoint = Callable[[int], Awaitable[None]]
"""Called at each strategy-bar boundary, once the bar's decisions are carried out, with the start
(epoch) from which market bars are not processed yet: a restart that resumes there, with the engine
as it is now, continues exactly as if nothing had happened."""


class MarketData(Protocol):
    """Bars for the traded contract, oldest first, in batches (live feeds send batches of one)."""

    def batches(self) -> AsyncIterator[Sequence[Bar]]: ...


@record
class BrokerOrder:
    """An order the broker still holds open."""

    key: str
    action: str
    qty: int
    order_type: str
    price: str | None


@record
class BrokerSnapshot:
    """What the broker says: our position (signed contracts), open orders, executions since T."""

    position: int
    open_orders: tuple[BrokerOrder, ...]
    executions: tuple[Fill, ...]


class Broker(Protocol):
    """Places and cancels orders; reports order events to the :class:`OrderEventSink` it was given."""

    async def place_bracket(self, order: PlaceBracket) -> None: ...

    async def place_exit(self, order: PlaceExit) -> None: ...

    async def place_protective(self, order: PlaceProtective) -> None:
        """A stop or target on its own (a lost bracket leg placed again), GTC, outside regular
        hours, in ``order.oca_group`` with what is left of the bracket."""
        ...

    async def cancel(self, order: CancelOrders) -> None: ...

    async def snapshot(self, executions_since: datetime | None) -> BrokerSnapshot: ...

    async def position(self) -> int:
        """Our position in the traded contract (signed contracts), asked of the broker now."""
        ...

    def working_orders(self) -> tuple[BrokerOrder, ...]:
        """Our orders the broker holds working, as its last word on them says (no request)."""
        ...


class OrderEventSink(Protocol):
    """Where broker adapters deliver order events (accepted, filled, rejected, cancelled)."""

    def put(self, event: EngineEvent) -> None: ...


class BarListener(Protocol):
    """Sees every market bar after bars that closed before it were decided, before it is aggregated.

    The simulated broker is one: it fills resting orders against the bar, which is what makes a market
    order decided on one bar fill at the next bar's open.
    """

    def on_bar(self, bar: Bar) -> None: ...


class ContractResolver(Protocol):
    async def front_month(self, at: datetime) -> FutureContract: ...


class Journal(Protocol):
    """Append-only record of what happened. ``append`` never blocks trading; ``flush`` waits for it."""

    def append(self, record: JournalRecord) -> None: ...

    async def flush(self) -> None: ...


@record
class ResumePoint:
    """What a restarted daemon needs beside the engine snapshot to carry on exactly."""

    next_bar_epoch: int | None
    """The first market bar not yet processed (its start, epoch seconds); None: from the start."""
    closes: tuple[float, ...]
    """The last strategy closes, oldest first: they refill the z-score window."""
    exchange: str | None = None
    """The simulated exchange's state (JSON); None when the broker is a real one."""


class StateStore(Protocol):
    """The engine's last snapshot, for a restart that resumes instead of starting over."""

    async def save(self, snapshot: EngineSnapshot, resume: ResumePoint | None = None) -> None: ...

    async def load_resume(self) -> tuple[EngineSnapshot, ResumePoint | None] | None:
        """The newest snapshot with the resume point saved with it (None: nothing saved yet)."""
        ...


class Notifier(Protocol):
    """Alerts. ``notify`` never blocks and never raises into trading."""

    def notify(self, alert: Alert) -> None: ...


class ZScoreBatch(Protocol):
    """The z-scores of a batch of closes: every value at once, the exact terms on demand."""

    values: npt.NDArray[np.float64]
    """One value per close, NaN where the z-score is undefined."""

    def at(self, i: int) -> ZScore | None: ...


class ZScoreEngine(Protocol):
    """A rolling z-score over closes, with the exact terms the domain decides ties on."""

    def update(self, close: float) -> ZScore | None: ...

    def update_many(self, closes: npt.NDArray[np.float64]) -> ZScoreBatch:
        """Advance over many closes at once; the same results as ``update`` on each."""
        ...

    def reset(self) -> None: ...


ZScoreEngineFactory = Callable[[int], ZScoreEngine]
"""Builds a z-score engine for a lookback window."""


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...
