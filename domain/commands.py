"""Commands the engine returns for the application to carry out, and the records it journals."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum

from domain.circuit_breaker import BreakerReset, BreakerTripped
from domain.events import ProtectiveKind
from domain.position import Fill, RoundTrip
from domain.record import record
from domain.values import Action, Side

# -- orders ------------------------------------------------------------------------------------


@record
class PlaceBracket:
    """A market entry with its broker-held stop and target (children GTC, outside RTH, one OCA group).

    Keys are idempotency keys: journaled as an intent before sending, carried in IB's ``orderRef``.
    """

    entry_key: str
    stop_key: str | None
    target_key: str | None
    side: Side
    qty: int
    reference_price: Decimal
    """The signal bar's close: what the bracket prices were computed from."""
    stop_price: Decimal | None
    target_price: Decimal | None
    oca_group: str
    ts: datetime

    @property
    def action(self) -> Action:
        return self.side.entry_action


@record
class PlaceExit:
    """A market order closing ``qty`` of the position, in the bracket's OCA group when there is one."""

    key: str
    action: Action
    qty: int
    reason: str
    oca_group: str | None
    reference_price: Decimal | None
    ts: datetime


@record
class PlaceProtective:
    """A stop or target placed again for an open position whose broker-held leg went missing
    (``risk.lost_leg: replace``): GTC, outside regular hours, in the bracket's OCA group."""

    key: str
    kind: ProtectiveKind
    action: Action
    qty: int
    price: Decimal
    oca_group: str | None
    ts: datetime


@record
class CancelOrders:
    keys: tuple[str, ...]
    reason: str
    ts: datetime


@record
class Reconcile:
    """Ask the broker what our position really is; the answer comes back as BrokerPositionReported."""

    reason: str
    ts: datetime


# -- alerts ------------------------------------------------------------------------------------


class AlertKind(Enum):
    ENTRY_FILLED = "entry_filled"
    EXIT_FILLED = "exit_filled"
    PROTECTIVE_EXIT = "protective_exit"
    ORDER_REJECTED = "order_rejected"
    BREAKER_TRIPPED = "breaker_tripped"
    BREAKER_RESET = "breaker_reset"
    RECONCILE_MISMATCH = "reconcile_mismatch"
    OPERATOR = "operator"
    ANOMALY = "anomaly"
    CONNECTION = "connection"
    """The broker link was lost or restored, or a connect attempt failed."""
    STALE_DATA = "stale_data"
    """No market bar arrived while the market was open."""
    BRACKET_LIVE = "bracket_live"
    """An entry filled and the broker holds its stop and target."""
    LIFECYCLE = "lifecycle"
    """The daemon started or stopped."""
    DAILY_SUMMARY = "daily_summary"
    """The session's results at the close."""
    ERROR = "error"
    """An unhandled error in the daemon."""


class Severity(Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@record
class Alert:
    kind: AlertKind
    severity: Severity
    text: str
    ts: datetime


@record
class Notify:
    alert: Alert


# -- journal records ---------------------------------------------------------------------------


class SignalAction(Enum):
    ENTER = "enter"
    EXIT = "exit"
    SKIPPED = "skipped"


@record
class SignalRecord:
    """A strategy decision on a bar: an entry or exit signal, or an entry signal the gates refused."""

    ts: datetime
    bar_start: datetime
    close: float
    z: float | None
    action: SignalAction
    side: Side | None
    detail: str


@record
class OrderIntentRecord:
    """Written before an order is sent (intent before action)."""

    key: str
    role: str
    action: Action
    qty: int
    order_type: str
    price: Decimal | None
    ts: datetime
    detail: str


@record
class OrderEventRecord:
    key: str
    status: str
    ts: datetime
    detail: str


@record
class FillRecord:
    fill: Fill
    role: str


@record
class RoundTripRecord:
    trip: RoundTrip


@record
class BreakerRecord:
    event: BreakerTripped | BreakerReset


@record
class OperatorRecord:
    command: str
    by: str
    ts: datetime
    outcome: str


JournalRecord = (
    SignalRecord
    | OrderIntentRecord
    | OrderEventRecord
    | FillRecord
    | RoundTripRecord
    | BreakerRecord
    | OperatorRecord
)


@record
class Journal:
    record: JournalRecord


EngineCommand = (
    PlaceBracket | PlaceExit | PlaceProtective | CancelOrders | Reconcile | Notify | Journal
)
