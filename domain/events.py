"""Events the engine consumes (DESIGN section 2). Every event carries the time it happened."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum

from domain.bar import Bar
from domain.position import Fill
from domain.record import record
from domain.zscore import ZScore


@record
class BarClosed:
    """A strategy bar closed; ``z`` is the z-score of its close (None while undefined)."""

    bar: Bar
    z: ZScore | None

    @property
    def ts(self) -> datetime:
        return self.bar.end


@record
class OrderAccepted:
    key: str
    ts: datetime


@record
class OrderFilled:
    """An execution on an entry or exit order (partial or full: the engine knows the order size)."""

    fill: Fill

    @property
    def ts(self) -> datetime:
        return self.fill.ts


class ProtectiveKind(Enum):
    STOP = "stop"
    TARGET = "target"


STOP_KEY_SUFFIX = "-S"
TARGET_KEY_SUFFIX = "-T"
"""The engine's key of a bracket's stop (target) leg is the entry's base key with this suffix."""
_PROTECTIVE_SUFFIX = {
    STOP_KEY_SUFFIX: ProtectiveKind.STOP,
    TARGET_KEY_SUFFIX: ProtectiveKind.TARGET,
}


def protective_kind(key: str) -> ProtectiveKind | None:
    """Whether an order key names a bracket leg, and which."""
    return _PROTECTIVE_SUFFIX.get(key[-2:])


@record
class ProtectiveExitFilled:
    """An execution on a bracket's stop or target leg."""

    fill: Fill
    kind: ProtectiveKind

    @property
    def ts(self) -> datetime:
        return self.fill.ts


@record
class OrderRejected:
    key: str
    ts: datetime
    reason: str
    code: int | None = None


@record
class OrderCancelled:
    key: str
    ts: datetime
    reason: str = ""


@record
class CancelFailed:
    """A cancel could not be sent (the broker link was down): the orders may still be working."""

    keys: tuple[str, ...]
    ts: datetime
    reason: str


@record
class FlattenRequested:
    ts: datetime
    by: str
    pause: bool = False
    """Also pause entries, so the next signal does not reopen what was just closed."""


@record
class PauseRequested:
    ts: datetime
    by: str


@record
class ResumeRequested:
    ts: datetime
    by: str


@record
class BreakerResetRequested:
    ts: datetime
    by: str


class BoundaryKind(Enum):
    OPEN = "open"
    """A new CME session (trade date) has opened: the breaker's session counters reset."""
    FLATTEN = "flatten"
    """The flatten window before a close or halt has begun: close any position, no new entries."""
    CLOSE = "close"
    """The session closed (halt, close or holiday): nothing may be open; no new entries."""


@record
class SessionBoundary:
    kind: BoundaryKind
    ts: datetime
    trade_date: date


@record
class BrokerPositionReported:
    """What the broker says our position is (signed contracts), e.g. after a reconnect.

    ``open_orders`` are the keys of our orders the broker holds working, when the report lists them:
    with a position open, the engine then checks that its protective legs are among them.
    """

    signed_qty: int
    ts: datetime
    avg_price: Decimal | None = None
    open_orders: tuple[str, ...] | None = None


@record
class EntryGateChanged:
    """Something outside the engine opened or closed a gate on new entries.

    ``gate`` names the source (``broker_link``, ``journal``, ``market_data``...); ``reason`` None
    opens it. While any gate is closed the engine opens nothing new, but still manages (and closes)
    an open position.
    """

    gate: str
    reason: str | None
    ts: datetime


@record
class ReconcileFailed:
    """The broker could not be asked for our position (disconnected, timed out)."""

    ts: datetime
    reason: str


EngineEvent = (
    BarClosed
    | OrderAccepted
    | OrderFilled
    | ProtectiveExitFilled
    | OrderRejected
    | OrderCancelled
    | CancelFailed
    | FlattenRequested
    | PauseRequested
    | ResumeRequested
    | BreakerResetRequested
    | SessionBoundary
    | BrokerPositionReported
    | ReconcileFailed
    | EntryGateChanged
)
