"""Events the engine consumes (DESIGN section 2). Every event carries the time it happened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum

from domain.bar import Bar
from domain.position import Fill
from domain.zscore import ZScore


@dataclass(frozen=True, slots=True)
class BarClosed:
    """A strategy bar closed; ``z`` is the z-score of its close (None while undefined)."""

    bar: Bar
    z: ZScore | None

    @property
    def ts(self) -> datetime:
        return self.bar.end


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    key: str
    ts: datetime


@dataclass(frozen=True, slots=True)
class OrderFilled:
    """An execution on an entry or exit order (partial or full: the engine knows the order size)."""

    fill: Fill

    @property
    def ts(self) -> datetime:
        return self.fill.ts


class ProtectiveKind(Enum):
    STOP = "stop"
    TARGET = "target"


@dataclass(frozen=True, slots=True)
class ProtectiveExitFilled:
    """An execution on a bracket's stop or target leg."""

    fill: Fill
    kind: ProtectiveKind

    @property
    def ts(self) -> datetime:
        return self.fill.ts


@dataclass(frozen=True, slots=True)
class OrderRejected:
    key: str
    ts: datetime
    reason: str
    code: int | None = None


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    key: str
    ts: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class FlattenRequested:
    ts: datetime
    by: str
    pause: bool = False
    """Also pause entries, so the next signal does not reopen what was just closed."""


@dataclass(frozen=True, slots=True)
class PauseRequested:
    ts: datetime
    by: str


@dataclass(frozen=True, slots=True)
class ResumeRequested:
    ts: datetime
    by: str


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class SessionBoundary:
    kind: BoundaryKind
    ts: datetime
    trade_date: date


@dataclass(frozen=True, slots=True)
class BrokerPositionReported:
    """What the broker says our position is (signed contracts), e.g. after a reconnect."""

    signed_qty: int
    ts: datetime
    avg_price: Decimal | None = None


EngineEvent = (
    BarClosed
    | OrderAccepted
    | OrderFilled
    | ProtectiveExitFilled
    | OrderRejected
    | OrderCancelled
    | FlattenRequested
    | PauseRequested
    | ResumeRequested
    | BreakerResetRequested
    | SessionBoundary
    | BrokerPositionReported
)
