"""The engine: a state machine that turns events into commands (DESIGN section 2).

States are ``IDLE, ENTERING_LONG, LONG, EXITING_LONG, ENTERING_SHORT, SHORT, EXITING_SHORT``; entry
gates (operator pause, circuit breaker, reconcile-required, session rules) are orthogonal to them.

Fills drive state, not the order in which the broker reports statuses: after every order event the
state is derived from the position (built only from fills) and the orders still working. So a
cancel that arrives before the fill it raced, a duplicate status or a partial fill all land in the
same, right place. Every (state, event) pair has a defined outcome; the unexpected ones (a fill on an
order we never placed, a broker position that disagrees with ours) halt entries, alert and ask for a
reconcile instead of being ignored.

Decisions on a bar use its close time as "now"; the engine never reads a clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import Enum
from typing import Any

from domain.bar import Bar
from domain.bracket import bracket_prices, stop_distance_ticks, target_distance_ticks
from domain.calendar import Session, SessionCalendar
from domain.circuit_breaker import (
    BreakerReset,
    BreakerRule,
    BreakerState,
    BreakerStatus,
    BreakerTripped,
    CircuitBreaker,
    RiskLimits,
)
from domain.commands import (
    Alert,
    AlertKind,
    BreakerRecord,
    CancelOrders,
    EngineCommand,
    FillRecord,
    Journal,
    Notify,
    OperatorRecord,
    OrderEventRecord,
    OrderIntentRecord,
    PlaceBracket,
    PlaceExit,
    PlaceProtective,
    Reconcile,
    RoundTripRecord,
    Severity,
    SignalAction,
    SignalRecord,
)
from domain.errors import CalendarCoverageError, DomainError
from domain.events import (
    STOP_KEY_SUFFIX,
    TARGET_KEY_SUFFIX,
    BarClosed,
    BoundaryKind,
    BreakerResetRequested,
    BrokerPositionReported,
    CancelFailed,
    EngineEvent,
    EntryGateChanged,
    FlattenRequested,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    PauseRequested,
    ProtectiveExitFilled,
    ProtectiveKind,
    ReconcileFailed,
    ResumeRequested,
    SessionBoundary,
)
from domain.position import ExitReason, Fill, OpenPosition, Position, PositionState, RoundTrip
from domain.record import record
from domain.values import Action, Instrument, OffTickError, Side, price_text
from domain.zscore import Threshold, ZScore


class EngineState(Enum):
    IDLE = "IDLE"
    ENTERING_LONG = "ENTERING_LONG"
    LONG = "LONG"
    EXITING_LONG = "EXITING_LONG"
    ENTERING_SHORT = "ENTERING_SHORT"
    SHORT = "SHORT"
    EXITING_SHORT = "EXITING_SHORT"


# Enum members bound once: in CPython 3.11 ``EngineState.IDLE`` is a descriptor call on every use.
_IDLE = EngineState.IDLE
_LONG = EngineState.LONG
_SHORT = EngineState.SHORT
_ENTERING_LONG = EngineState.ENTERING_LONG
_ENTERING_SHORT = EngineState.ENTERING_SHORT
_ENTERING = {Side.LONG: EngineState.ENTERING_LONG, Side.SHORT: EngineState.ENTERING_SHORT}
_HOLDING = {Side.LONG: EngineState.LONG, Side.SHORT: EngineState.SHORT}
_EXITING = {Side.LONG: EngineState.EXITING_LONG, Side.SHORT: EngineState.EXITING_SHORT}


class OrderRole(Enum):
    ENTRY = "entry"
    EXIT = "exit"
    STOP = "stop"
    TARGET = "target"


_PROTECTIVE = (OrderRole.STOP, OrderRole.TARGET)


class LostLeg(Enum):
    """What the engine does when an open position's stop or target is gone at the broker."""

    FLATTEN = "flatten"
    """Close the position at market."""
    REPLACE = "replace"
    """Place the lost leg again at its price, once per leg and position; a second loss, or a
    price this process does not know (after a restart), closes the position."""


@dataclass(slots=True)
class WorkingOrder:
    key: str
    role: OrderRole
    action: Action
    qty: int
    oca: str | None
    reason: ExitReason | None = None
    filled: int = 0
    accepted: bool = False


@record
class StrategyParams:
    entry: Threshold
    exit: Threshold
    min_volume: int = 0

    def __post_init__(self) -> None:
        if self.exit.exact >= self.entry.exact:
            raise DomainError("the exit threshold must be below the entry threshold")
        if self.min_volume < 0:
            raise DomainError("min_volume must be >= 0")


@record
class SessionRules:
    """Session-time rules. ``enabled=False`` (calendar "none") switches off the close-time rules."""

    calendar: SessionCalendar
    no_entry_before_close: timedelta = timedelta(minutes=15)
    flatten_before_close: timedelta | None = timedelta(minutes=5)
    enabled: bool = True


@record
class EngineConfig:
    instrument: Instrument
    strategy: StrategyParams
    qty: int
    stop_loss_dollars: Decimal | None
    take_profit_dollars: Decimal | None
    limits: RiskLimits
    sessions: SessionRules
    key_prefix: str = "QS"
    lost_leg: LostLeg = LostLeg.FLATTEN

    def __post_init__(self) -> None:
        if self.qty < 1:
            raise DomainError("max_position_size must be >= 1")
        # Fail at start, not at the first signal, when a bracket leg would be under one tick.
        if self.stop_loss_dollars is not None:
            stop_distance_ticks(self.instrument, self.stop_loss_dollars, self.qty)
        if self.take_profit_dollars is not None:
            target_distance_ticks(self.instrument, self.take_profit_dollars, self.qty)


@record
class EntryBlock:
    """Why a new entry is refused. ``reason`` names the rule in a few stable words (never ``": "``),
    so refusals can be counted by it; ``detail`` says more. ``persistent`` blocks last beyond the
    moment (an entry gate, the operator's pause, the breaker, a reconcile, a date the calendar does
    not cover): those are what an operator must be told about, unlike a market that is closed."""

    reason: str
    detail: str = ""
    persistent: bool = False

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason

    @staticmethod
    def reason_of(text: str) -> str:
        """The ``reason`` of a block from its text (a skipped signal's journaled detail)."""
        return text.split(": ", 1)[0]


CALENDAR_NOT_COVERED = "calendar does not cover the date"
MARKET_CLOSED = "market closed"
SESSION_CLOSED = "session closed for entries"
NEAR_CLOSE = "too close to the session close"
PAUSED = "paused by operator"
RECONCILE_REQUIRED = "reconcile required"
LOW_VOLUME = "min_volume"
OFF_TICK = "off tick"


def breaker_reason(rule: BreakerRule) -> str:
    """The block reason of a circuit-breaker rule."""
    return f"circuit breaker {rule.value}"


@record
class EngineStatus:
    """A read-only view for status queries."""

    state: EngineState
    position: OpenPosition | None
    paused: bool
    reconcile_required: str | None
    entry_blocker: str | None
    breaker: BreakerStatus
    working_orders: tuple[str, ...]
    last_bar_end: datetime | None
    last_close: float | None
    last_z: float | None
    stop_price: Decimal | None = None
    """The working stop leg's price (None: no stop known to this process)."""
    target_price: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    """The open position valued at the last close, USD before commissions (None: flat)."""


@record
class EngineSnapshot:
    """What a restart must bring back (DESIGN section 3): the position with its working orders, the
    breaker, the operator's pause, a pending reconcile, the order key sequence, the last bar."""

    state: EngineState
    position: PositionState
    breaker: BreakerState
    orders: tuple[WorkingOrder, ...]
    paused: bool
    reconcile_required: str | None
    key_seq: int
    oca: str | None
    flatten_after_entry: bool
    protection_uncertain: bool
    closed_at: int | None
    exit_required: ExitReason | None
    entry_cancel_sent: bool
    mismatch_only: bool
    last_bar_end: int | None
    recent_exec_ids: tuple[str, ...]
    retired_keys: tuple[str, ...]


_CONVERTED = frozenset(
    ("state", "position", "breaker", "orders", "last_bar_end", "recent_exec_ids", "retired_keys")
)
_KEPT_AS_IS = tuple(f.name for f in fields(EngineSnapshot) if f.name not in _CONVERTED)
"""Snapshot fields the engine holds as they are, each in its attribute ``_<name>``: the snapshot's
declaration drives :meth:`Engine.snapshot` and :meth:`Engine.restore` (the others are converted there)."""

_MAX_REMEMBERED = 4096


class _Recent:
    """A set that forgets its oldest members past a bound (for exec ids and retired keys)."""

    __slots__ = ("_order", "_set")

    def __init__(self) -> None:
        self._set: set[str] = set()
        self._order: deque[str] = deque()

    def add(self, item: str) -> None:
        if item in self._set:
            return
        self._set.add(item)
        self._order.append(item)
        if len(self._order) > _MAX_REMEMBERED:
            self._set.discard(self._order.popleft())

    def __contains__(self, item: object) -> bool:
        return item in self._set

    def items(self) -> tuple[str, ...]:
        return tuple(self._order)


class Engine:
    """The trading engine. Feed it events with :meth:`handle` (or :meth:`on_bar` on the hot path)."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.state = EngineState.IDLE
        self.position = Position(config.instrument)
        self.breaker = CircuitBreaker(config.limits)
        self._paused = False
        self._reconcile_required: str | None = None
        self._orders: dict[str, WorkingOrder] = {}
        self._retired = _Recent()
        self._seen_exec = _Recent()
        self._key_seq = 0
        self._oca: str | None = None
        self._flatten_after_entry = False
        self._protection_uncertain = False
        # An exit decided stays decided until the position is flat: if its order is rejected,
        # cancelled or never sent, it is placed again on the next bar (never in a tight loop).
        self._exit_required: ExitReason | None = None
        # An entry still working at a bar close has its remainder cancelled, once.
        self._entry_cancel_sent = False
        # reconcile_required holds only because a broker report disagreed with the position: a
        # later report that agrees lifts it (a race such as an OCA cancel before its sibling's fill).
        self._mismatch_only = False
        # Gates on new entries held by the world outside (broker link down, journal unreachable):
        # runtime facts, re-established after a restart, so not part of the snapshot.
        self._gates: dict[str, str] = {}
        # The stop and target prices of the working bracket legs, for the operator's eyes (alerts,
        # /status). Not in the snapshot: after a restart the broker's open orders tell them.
        self._leg_prices: dict[str, Decimal] = {}
        self._bracket_announced = False  # the bracket_live alert, once per position
        # Legs the open position lost (their prices, for risk.lost_leg: replace) and the roles
        # already placed again for it: runtime facts, like the leg prices.
        self._lost_prices: dict[OrderRole, Decimal] = {}
        self._replaced: set[OrderRole] = set()
        self._last_bar: Bar | None = None
        self._last_z: float | None = None
        self._resumed_after: int | None = None  # last bar end recorded by a restored snapshot
        self._session: Session | None = None
        self._session_uncovered: str | None = None  # why the calendar could not answer
        # When a FLATTEN/CLOSE boundary arrived: the session segment open at that time takes no entries.
        self._closed_at: int | None = None
        self._entry = config.strategy.entry
        self._exit = config.strategy.exit
        self._min_volume = config.strategy.min_volume
        self._handlers: dict[type[Any], Callable[[Any], list[EngineCommand]]] = {
            BarClosed: self._on_bar_closed,
            OrderAccepted: self._on_accepted,
            OrderFilled: self._on_filled,
            ProtectiveExitFilled: self._on_protective_filled,
            OrderRejected: self._on_rejected,
            OrderCancelled: self._on_cancelled,
            CancelFailed: self._on_cancel_failed,
            FlattenRequested: self._on_flatten,
            PauseRequested: self._on_pause,
            ResumeRequested: self._on_resume,
            BreakerResetRequested: self._on_breaker_reset,
            SessionBoundary: self._on_boundary,
            BrokerPositionReported: self._on_broker_position,
            ReconcileFailed: self._on_reconcile_failed,
            EntryGateChanged: self._on_gate,
        }

    # == public API ===========================================================================

    def handle(self, event: EngineEvent) -> list[EngineCommand]:
        """Apply one event; returns the commands to carry out, in order."""
        return self._handlers[type(event)](event)

    def on_bar(self, bar: Bar, z: ZScore | None) -> list[EngineCommand]:
        """Same as ``handle(BarClosed(bar, z))``, without building the event (the per-bar hot path)."""
        out: list[EngineCommand] = []
        self._last_bar = bar
        self._last_z = z.value if z is not None else None
        session = self._session
        if session is None or not (session.open_epoch <= bar.epoch < session.close_epoch):
            self._enter_session(bar, out)
        state = self.state
        if state is _IDLE:
            if z is None:
                return out
            if z.at_or_below_negative(self._entry):
                self._try_enter(Side.LONG, bar, z, out)
            elif z.at_or_above(self._entry):
                self._try_enter(Side.SHORT, bar, z, out)
            return out
        if state is _LONG or state is _SHORT:
            if self._exit_required is not None:
                self._retry_exit(bar, out)
            else:
                self._check_exit(bar, z, out)
        elif state is _ENTERING_LONG or state is _ENTERING_SHORT:
            self._entry_overdue(bar, out)
        return out

    def snapshot(self) -> EngineSnapshot:
        """The engine's persistent state (see :class:`EngineSnapshot`)."""
        return EngineSnapshot(
            state=self.state,
            position=self.position.state(),
            breaker=self.breaker.state(),
            orders=tuple(replace(o) for o in self._orders.values()),
            last_bar_end=self.last_bar_end,
            recent_exec_ids=self._seen_exec.items(),
            retired_keys=self._retired.items(),
            **{name: getattr(self, "_" + name) for name in _KEPT_AS_IS},
        )

    @classmethod
    def restore(cls, config: EngineConfig, snapshot: EngineSnapshot) -> Engine:
        """An engine in the state ``snapshot`` recorded (then reconcile it with the broker)."""
        engine = cls(config)
        engine.position.restore(snapshot.position)
        engine.breaker.restore(snapshot.breaker)
        engine._orders = {o.key: replace(o) for o in snapshot.orders}
        for name in _KEPT_AS_IS:
            setattr(engine, "_" + name, getattr(snapshot, name))
        engine._resumed_after = snapshot.last_bar_end
        for exec_id in snapshot.recent_exec_ids:
            engine._seen_exec.add(exec_id)
        for key in snapshot.retired_keys:
            engine._retired.add(key)
        engine._derive_state()
        if engine.state is not snapshot.state:
            raise DomainError(
                f"snapshot says {snapshot.state.value} but its position and orders give "
                f"{engine.state.value}"
            )
        return engine

    @property
    def paused(self) -> bool:
        """Entries paused by the operator."""
        return self._paused

    @property
    def reconcile_required(self) -> str | None:
        """Why entries wait for an operator's reconcile (None: they do not)."""
        return self._reconcile_required

    @property
    def last_bar_end(self) -> int | None:
        """End (epoch seconds) of the last bar processed; a restart resumes after it."""
        bar = self._last_bar
        return bar.end_epoch if bar is not None else self._resumed_after

    @property
    def session(self) -> Session | None:
        """The session of the last bar (None: no bar yet, or the calendar could not answer)."""
        return self._session

    @property
    def session_uncovered(self) -> str | None:
        """Why the calendar could not answer for the last bar (None: it could)."""
        return self._session_uncovered

    @property
    def exit_required(self) -> ExitReason | None:
        """An exit decided and not yet done (it is placed again on the next bar)."""
        return self._exit_required

    @property
    def closed_at(self) -> int | None:
        """When a FLATTEN/CLOSE boundary arrived (epoch seconds): its session takes no entries."""
        return self._closed_at

    @property
    def entry_gates(self) -> dict[str, str]:
        """Gates on new entries closed now, by source."""
        return dict(self._gates)

    @property
    def working_orders(self) -> dict[str, WorkingOrder]:
        return dict(self._orders)

    def entry_blocker(self, now: datetime) -> str | None:
        """Why a new entry would be refused now (None: entries are open)."""
        blocks = self.entry_blocks(now)
        return str(blocks[0]) if blocks else None

    def entry_blocks(self, now: datetime) -> tuple[EntryBlock, ...]:
        """Every reason a new entry would be refused now, the deciding one first."""
        blocks = [EntryBlock(gate, reason, persistent=True) for gate, reason in self._gates.items()]
        if self._reconcile_required is not None:
            blocks.append(EntryBlock(RECONCILE_REQUIRED, self._reconcile_required, persistent=True))
        if self._paused:
            blocks.append(EntryBlock(PAUSED, persistent=True))
        rule = self.breaker.entry_blocker(now)
        if rule is not None:
            until = self.breaker.paused_until if rule is BreakerRule.CONSECUTIVE_LOSSES else None
            detail = "" if until is None else f"until {until.isoformat()}"
            blocks.append(EntryBlock(breaker_reason(rule), detail, persistent=True))
        session = self._session_blocker(int(now.timestamp()))
        if session is not None:
            blocks.append(session)
        return tuple(blocks)

    def status(self) -> EngineStatus:
        bar = self._last_bar
        now = bar.end if bar is not None else None
        return EngineStatus(
            state=self.state,
            position=self.position.snapshot(),
            paused=self._paused,
            reconcile_required=self._reconcile_required,
            entry_blocker=self.entry_blocker(now) if now is not None else None,
            breaker=self.breaker.status(),
            working_orders=tuple(self._orders),
            last_bar_end=now,
            last_close=bar.close if bar is not None else None,
            last_z=self._last_z,
            stop_price=self._leg_price(OrderRole.STOP),
            target_price=self._leg_price(OrderRole.TARGET),
            unrealized_pnl=self._unrealized(bar.close if bar is not None else None),
        )

    def _leg_price(self, role: OrderRole) -> Decimal | None:
        for key, order in self._orders.items():
            if order.role is role and key in self._leg_prices:
                return self._leg_prices[key]
        return None

    def _unrealized(self, close: float | None) -> Decimal | None:
        position = self.position.snapshot()
        if position is None or close is None:
            return None
        points = (Decimal(close) - position.avg_price) * position.side.sign * position.qty
        return points * self.config.instrument.multiplier

    # == bars ==================================================================================

    def _on_bar_closed(self, event: BarClosed) -> list[EngineCommand]:
        return self.on_bar(event.bar, event.z)

    def _enter_session(self, bar: Bar, out: list[EngineCommand]) -> None:
        try:
            session = self.config.sessions.calendar.session_at(bar.epoch)
        except CalendarCoverageError as exc:
            self._session = None
            self._session_uncovered = str(exc)
            return
        self._session_uncovered = None
        self._session = session
        if session is not None:
            self._start_session(session.trade_date, bar.end, out)

    def _start_session(self, trade_date: date, ts: datetime, out: list[EngineCommand]) -> None:
        reset = self.breaker.start_session(trade_date, ts)
        if reset is not None:
            self._journal_breaker(reset, out)

    def _session_blocker(self, now: int) -> EntryBlock | None:
        rules = self.config.sessions
        if not rules.enabled:
            return None
        if self._session_uncovered is not None:
            return EntryBlock(
                CALENDAR_NOT_COVERED, f"{self._session_uncovered} (fail closed)", persistent=True
            )
        session = self._session
        if session is None or not (session.open_epoch <= now - 1 < session.close_epoch):
            return EntryBlock(MARKET_CLOSED)
        if self._closed_at is not None and session.open_epoch <= self._closed_at:
            return EntryBlock(SESSION_CLOSED)
        if now >= session.close_epoch - rules.no_entry_before_close.total_seconds():
            return EntryBlock(NEAR_CLOSE)
        return None

    def _in_flatten_window(self, now: int) -> bool:
        rules = self.config.sessions
        if not rules.enabled:
            return False
        if self._session_uncovered is not None:
            return True
        session = self._session
        if session is None:
            return True
        if self._closed_at is not None and session.open_epoch <= self._closed_at:
            return True
        flatten = rules.flatten_before_close
        return flatten is not None and now >= session.close_epoch - flatten.total_seconds()

    def _try_enter(self, side: Side, bar: Bar, z: ZScore, out: list[EngineCommand]) -> None:
        now = bar.end
        blocker = self.entry_blocker(now)
        if blocker is None and bar.volume < self._min_volume:
            blocker = str(EntryBlock(LOW_VOLUME, f"volume {bar.volume} < {self._min_volume}"))
        if blocker is None:
            try:
                reference = Decimal(bar.close)
                prices = bracket_prices(
                    self.config.instrument,
                    side,
                    self.config.qty,
                    reference,
                    self.config.stop_loss_dollars,
                    self.config.take_profit_dollars,
                )
            except OffTickError as exc:
                blocker = str(EntryBlock(OFF_TICK, str(exc)))
                self._alert(out, AlertKind.ANOMALY, Severity.WARNING, f"entry skipped: {exc}", now)
        if blocker is not None:
            out.append(
                Journal(
                    SignalRecord(
                        now, bar.ts, bar.close, z.value, SignalAction.SKIPPED, side, blocker
                    )
                )
            )
            return
        cfg = self.config
        base = self._next_key(bar.end_epoch)
        entry_key = base + "-E"
        stop_key = base + STOP_KEY_SUFFIX if prices.stop is not None else None
        target_key = base + TARGET_KEY_SUFFIX if prices.target is not None else None
        qty = cfg.qty
        self._oca = base
        self._flatten_after_entry = False
        entry_action = side.entry_action
        self._orders[entry_key] = WorkingOrder(entry_key, OrderRole.ENTRY, entry_action, qty, base)
        out.append(
            Journal(SignalRecord(now, bar.ts, bar.close, z.value, SignalAction.ENTER, side, ""))
        )
        out.append(
            Journal(
                OrderIntentRecord(
                    entry_key, "entry", entry_action, qty, "MKT", None, now, f"ref {reference}"
                )
            )
        )
        legs = (
            ()
            if stop_key is None and target_key is None
            else (
                (stop_key, OrderRole.STOP, prices.stop, "STP"),
                (target_key, OrderRole.TARGET, prices.target, "LMT"),
            )
        )
        for key, role, price, kind in legs:
            if key is not None:
                self._orders[key] = WorkingOrder(key, role, side.exit_action, qty, base)
                if price is not None:
                    self._leg_prices[key] = price
                out.append(
                    Journal(
                        OrderIntentRecord(
                            key,
                            role.value,
                            side.exit_action,
                            qty,
                            kind,
                            price,
                            now,
                            "bracket child",
                        )
                    )
                )
        out.append(
            PlaceBracket(
                entry_key=entry_key,
                stop_key=stop_key,
                target_key=target_key,
                side=side,
                qty=qty,
                reference_price=reference,
                stop_price=prices.stop,
                target_price=prices.target,
                oca_group=base,
                ts=now,
            )
        )
        self.state = _ENTERING[side]
        self._entry_cancel_sent = False

    def _check_exit(self, bar: Bar, z: ZScore | None, out: list[EngineCommand]) -> None:
        position = self.position
        breaker = self.breaker
        now_epoch = bar.end_epoch
        reason: ExitReason | None = None
        if breaker.limits.max_daily_loss is not None:
            # Open P&L plus what partial exits of this trip already realized.
            trip = breaker.check_open_loss(
                position.open_pnl_at_ticks(self._mark_ticks(bar.close))
                + position.trip_realized_pnl,
                position.commissions_paid,
                bar.end,
            )
            if trip is not None:
                self._journal_breaker(trip, out)
                reason = ExitReason.DAILY_LOSS
        if reason is None and breaker.limits.max_position_duration is not None:
            opened = position.opened_at
            if opened is not None and breaker.position_expired(opened, bar.end):
                reason = ExitReason.MAX_DURATION
                tripped = BreakerTripped(
                    BreakerRule.MAX_DURATION, bar.end, f"position open since {opened.isoformat()}"
                )
                self._journal_breaker(tripped, out)
        if reason is None and self._in_flatten_window(now_epoch):
            reason = ExitReason.SESSION
        if reason is None and z is not None and z.abs_at_most(self._exit):
            reason = ExitReason.SIGNAL
        if reason is not None:
            side = position.side
            out.append(
                Journal(
                    SignalRecord(
                        bar.end,
                        bar.ts,
                        bar.close,
                        z.value if z is not None else None,
                        SignalAction.EXIT,
                        side,
                        reason.value,
                    )
                )
            )
            reference = self.config.instrument.price(self._mark_ticks(bar.close))
            self._place_exit(reason, bar.end, reference, out)

    def _mark_ticks(self, close: float) -> int:
        """The close in ticks; a price off the grid (never from a validated MES feed) is rounded
        against the position, so a loss check can only err on the side of caution."""
        instrument = self.config.instrument
        try:
            return instrument.ticks(close)
        except OffTickError:
            long = self.position.side is not Side.SHORT
            rounding = ROUND_FLOOR if long else ROUND_CEILING
            return instrument.points_to_ticks(Decimal(close), rounding)

    def _retry_exit(self, bar: Bar, out: list[EngineCommand]) -> None:
        reason = self._exit_required
        assert reason is not None
        out.append(
            Journal(
                SignalRecord(
                    bar.end,
                    bar.ts,
                    bar.close,
                    self._last_z,
                    SignalAction.EXIT,
                    self.position.side,
                    f"retry: {reason.value}",
                )
            )
        )
        reference = self.config.instrument.price(self._mark_ticks(bar.close))
        self._place_exit(reason, bar.end, reference, out)

    def _entry_overdue(self, bar: Bar, out: list[EngineCommand]) -> None:
        """An entry market order still working at the next bar close: cancel what is left of it."""
        if self._entry_cancel_sent:
            return
        entries = tuple(k for k, o in self._orders.items() if o.role is OrderRole.ENTRY)
        if not entries:
            return
        self._entry_cancel_sent = True
        partial = not self.position.is_flat
        filled = f" ({self.position.qty} filled)" if partial else ""
        self._alert(
            out,
            AlertKind.ANOMALY,
            Severity.CRITICAL if partial else Severity.WARNING,
            f"entry {entries[0]} not complete at the next bar close{filled}: cancelling the rest",
            bar.end,
        )
        out.append(CancelOrders(entries, "entry not filled by the next bar close", bar.end))

    # == orders and fills ======================================================================

    def _next_key(self, epoch: int) -> str:
        self._key_seq += 1
        return f"{self.config.key_prefix}-{epoch}-{self._key_seq}"

    def _place_exit(
        self,
        reason: ExitReason,
        ts: datetime,
        reference: Decimal | None,
        out: list[EngineCommand],
    ) -> None:
        side = self.position.side
        if side is None or any(o.role is OrderRole.EXIT for o in self._orders.values()):
            return
        if self._exit_required is None:
            self._exit_required = reason
        key = self._next_key(int(ts.timestamp())) + "-X"
        qty = self.position.qty
        action = side.exit_action
        self._orders[key] = WorkingOrder(key, OrderRole.EXIT, action, qty, self._oca, reason=reason)
        out.append(
            Journal(OrderIntentRecord(key, "exit", action, qty, "MKT", None, ts, reason.value))
        )
        out.append(PlaceExit(key, action, qty, reason.value, self._oca, reference, ts))
        self.state = _EXITING[side]

    def _on_accepted(self, event: OrderAccepted) -> list[EngineCommand]:
        order = self._orders.get(event.key)
        if order is not None:
            order.accepted = True
            out: list[EngineCommand] = [
                Journal(OrderEventRecord(event.key, "accepted", event.ts, ""))
            ]
            if order.role in _PROTECTIVE:
                self._announce_bracket(event.ts, out)
            return out
        if event.key in self._retired:
            return [Journal(OrderEventRecord(event.key, "accepted", event.ts, "late, order done"))]
        return self._anomaly(
            f"broker accepted an order we did not place ({event.key})", event.ts, reconcile=True
        )

    def _announce_bracket(self, ts: datetime, out: list[EngineCommand]) -> None:
        """Once per position: tell the operator when every configured leg is live at the broker."""
        if self._bracket_announced or self.position.is_flat:
            return
        wanted = [
            role
            for role, configured in (
                (OrderRole.STOP, self.config.stop_loss_dollars),
                (OrderRole.TARGET, self.config.take_profit_dollars),
            )
            if configured is not None
        ]
        if not wanted:  # no bracket configured: nothing to announce
            return
        legs = {o.role: o for o in self._orders.values() if o.role in _PROTECTIVE}
        if any(r not in legs or not legs[r].accepted for r in wanted):
            return
        self._bracket_announced = True
        names = ", ".join(f"{r.value} {self._leg_text(legs[r].key)}" for r in wanted)
        held = self.position.snapshot()
        at = f" @ {price_text(held.avg_price)}" if held is not None else ""
        self._alert(
            out,
            AlertKind.BRACKET_LIVE,
            Severity.INFO,
            f"{self.position.side.name if self.position.side else ''} {self.position.qty}{at} "
            f"protected at the broker: {names}",
            ts,
        )

    def _order_text(self, order: WorkingOrder, *, leg: bool = False) -> str:
        """``stop 4,987.25 (SELL 1)``, ``stop leg 4,987.25 (SELL 1)``, ``entry order (BUY 1)``: what
        an alert names an order by (its key stays in the journal)."""
        name = f"{order.role.value} leg" if leg else order.role.value
        price = self._leg_prices.get(order.key)
        if price is not None:
            name += f" {price_text(price)}"
        elif not leg:
            name += " order"
        return f"{name} ({order.action.value} {order.qty})"

    def _leg_text(self, key: str) -> str:
        """A bracket leg as an operator reads it: its price (the key stays in the journal)."""
        price = self._leg_prices.get(key)
        return price_text(price) if price is not None else "order (price not known)"

    def _on_filled(self, event: OrderFilled) -> list[EngineCommand]:
        return self._apply_fill(event.fill, None)

    def _on_protective_filled(self, event: ProtectiveExitFilled) -> list[EngineCommand]:
        return self._apply_fill(event.fill, event.kind.value)

    def _apply_fill(self, fill: Fill, protective: str | None) -> list[EngineCommand]:
        if fill.exec_id in self._seen_exec:
            return []  # the same execution reported twice
        self._seen_exec.add(fill.exec_id)
        out: list[EngineCommand] = []
        order = self._orders.get(fill.order_key)
        expected = True
        if order is None:
            expected = False
            role_name = protective or "unknown"
            reason = ExitReason.EXTERNAL
        else:
            role_name = order.role.value
            if order.role is OrderRole.STOP:
                reason = ExitReason.STOP
            elif order.role is OrderRole.TARGET:
                reason = ExitReason.TARGET
            else:
                reason = order.reason or ExitReason.EXTERNAL
            order.filled += fill.qty
            if order.filled >= order.qty:
                self._retire(order.key)
        was_flat = self.position.is_flat
        held = self.position.side
        is_leg = protective is not None or (order is not None and order.role in _PROTECTIVE)
        # A bracket leg only ever reduces the position it protects.
        if (
            expected
            and is_leg
            and (
                held is None or fill.action is not held.exit_action or fill.qty > self.position.qty
            )
        ):
            expected = False
        trips = self.position.apply(fill, reason)
        # The fill is recorded first: whatever follows (alerts, a reconcile) may fail, the fill not.
        out.append(Journal(FillRecord(fill, role_name)))
        if order is not None and order.filled > order.qty:
            # One alert and one reconcile for the one fault (an overfilled leg also fails to
            # "reduce the position", which would otherwise be reported a second time).
            out.extend(
                self._anomaly(
                    f"order {order.key} overfilled: {order.filled} > {order.qty}",
                    fill.ts,
                    reconcile=True,
                )
            )
        elif not expected:
            if order is not None:
                what = (
                    f"{order.role.value} order {fill.order_key} that does not reduce the position"
                )
            elif fill.order_key in self._retired:
                what = f"finished order {fill.order_key}"
            else:
                what = f"unknown order {fill.order_key}"
            out.extend(
                self._anomaly(
                    f"fill of {fill.action.value} {fill.qty} @ {fill.price} on {what}",
                    fill.ts,
                    reconcile=True,
                )
            )
        elif order is not None and order.role is OrderRole.ENTRY and was_flat:
            # An entry counts toward the daily allowance when it opens a position, not when sent.
            counted = self.breaker.on_entry(fill.ts)
            if counted is not None:
                self._journal_breaker(counted, out)
            self._alert(
                out,
                AlertKind.ENTRY_FILLED,
                Severity.INFO,
                f"entered {self.position.side.name if self.position.side else ''} "
                f"{fill.qty} @ {price_text(fill.price)}",
                fill.ts,
            )
        for trip in trips:
            self._book(trip, fill.ts, out)
        if was_flat and not self.position.is_flat:
            self._announce_bracket(fill.ts, out)
        if self.position.is_flat:
            self._exit_required = None
            self._bracket_announced = False
            self._lost_prices.clear()
            self._replaced.clear()
        if self._mismatch_only:
            out.append(Reconcile("confirm the position after a fill", fill.ts))
        if self.position.is_flat and self._oca is not None:
            # The broker's OCA group cancels the bracket's remaining legs (and a racing exit).
            for key in [k for k, o in self._orders.items() if o.oca == self._oca]:
                self._retire(key)
            self._oca = None
        elif (
            self._flatten_after_entry
            and not self.position.is_flat
            and not any(o.role is OrderRole.ENTRY for o in self._orders.values())
        ):
            self._flatten_after_entry = False
            self._place_exit(ExitReason.OPERATOR, fill.ts, None, out)
        self._derive_state()
        return out

    def _book(self, trip: RoundTrip, ts: datetime, out: list[EngineCommand]) -> None:
        out.append(Journal(RoundTripRecord(trip)))
        protective = trip.exit_reason in (ExitReason.STOP, ExitReason.TARGET)
        self._alert(
            out,
            AlertKind.PROTECTIVE_EXIT if protective else AlertKind.EXIT_FILLED,
            # A loss is news an operator should not skim past.
            Severity.WARNING if trip.net_pnl < 0 else Severity.INFO,
            f"closed {trip.side.name} {trip.qty} @ {price_text(trip.exit_price)} "
            f"({trip.exit_reason.value}, entered @ {price_text(trip.entry_price)}): "
            f"net {trip.net_pnl:+,.2f} USD",
            ts,
        )
        for tripped in self.breaker.on_round_trip(trip, ts):
            self._journal_breaker(tripped, out)

    def _on_rejected(self, event: OrderRejected) -> list[EngineCommand]:
        out: list[EngineCommand] = [
            Journal(
                OrderEventRecord(event.key, "rejected", event.ts, f"{event.code}: {event.reason}")
            )
        ]
        order = self._orders.get(event.key)
        if order is None:
            if event.key not in self._retired:
                self._alert(
                    out,
                    AlertKind.ORDER_REJECTED,
                    Severity.WARNING,
                    f"rejection for unknown order {event.key}: {event.reason}",
                    event.ts,
                )
            return out
        what = self._order_text(order)
        self._retire(order.key)
        self._alert(
            out,
            AlertKind.ORDER_REJECTED,
            Severity.WARNING
            if order.role in (OrderRole.ENTRY, OrderRole.EXIT)
            else Severity.CRITICAL,
            f"{what} rejected ({event.code}): {event.reason}",
            event.ts,
        )
        if order.role is OrderRole.ENTRY and event.code is not None:
            # The broker's refusal (not ours to send): it counts toward the breaker.
            tripped = self.breaker.on_reject(event.ts, f"{event.reason} ({event.code})")
            if tripped is not None:
                self._journal_breaker(tripped, out)
        self._after_order_gone(order, event.ts, out)
        return out

    def _on_cancelled(self, event: OrderCancelled) -> list[EngineCommand]:
        out: list[EngineCommand] = [
            Journal(OrderEventRecord(event.key, "cancelled", event.ts, event.reason))
        ]
        order = self._orders.get(event.key)
        if order is None:
            return out  # already done (e.g. the OCA cancel of a leg whose sibling filled)
        what = self._order_text(order, leg=True)
        self._retire(order.key)
        if order.role in _PROTECTIVE and not self.position.is_flat:
            # Possibly the OCA cancel of a leg whose sibling's fill has not reached us yet: ask the
            # broker before acting, rather than flattening a position that may already be flat.
            self._protection_uncertain = True
            self._alert(
                out,
                AlertKind.ANOMALY,
                Severity.WARNING,
                f"{what} cancelled while a position is open",
                event.ts,
            )
            out.append(Reconcile(f"{order.role.value} leg cancelled", event.ts))
            self._derive_state()
            return out
        self._after_order_gone(order, event.ts, out)
        return out

    def _on_cancel_failed(self, event: CancelFailed) -> list[EngineCommand]:
        keys = ", ".join(event.keys)
        out: list[EngineCommand] = [
            Journal(OrderEventRecord(key, "cancel_failed", event.ts, event.reason))
            for key in event.keys
        ]
        if any(
            (order := self._orders.get(key)) is not None and order.role is OrderRole.ENTRY
            for key in event.keys
        ):
            # The overdue entry is still working: cancel it again at the next bar close.
            self._entry_cancel_sent = False
        self._alert(
            out,
            AlertKind.ANOMALY,
            Severity.WARNING,
            f"cancel of {keys} not sent ({event.reason}): the order may still be working",
            event.ts,
        )
        return out

    def _after_order_gone(
        self, order: WorkingOrder, ts: datetime, out: list[EngineCommand]
    ) -> None:
        """An order was rejected or cancelled without filling (fully): restore a consistent state."""
        position = self.position
        if order.role is OrderRole.ENTRY:
            self._entry_cancel_sent = False
            if position.is_flat:
                # Children cannot go live without their parent.
                for key in [
                    k
                    for k, o in self._orders.items()
                    if o.oca == order.oca and o.role in _PROTECTIVE
                ]:
                    self._retire(key)
                self._oca = None
                self._flatten_after_entry = False
            else:
                # Part of the entry filled: its legs are sized for the whole order, so the position
                # they protect is not the one held. Close it rather than guess.
                operator = self._flatten_after_entry
                reason = ExitReason.OPERATOR if operator else ExitReason.PARTIAL_ENTRY
                self._flatten_after_entry = False
                self._alert(
                    out,
                    AlertKind.ANOMALY,
                    Severity.CRITICAL,
                    f"entry {order.key} ended with {order.filled} of {order.qty} filled: closing it",
                    ts,
                )
                self._place_exit(reason, ts, None, out)
        elif order.role is OrderRole.EXIT:
            if not position.is_flat:
                why = self._exit_required.value if self._exit_required is not None else "exit"
                self._alert(
                    out,
                    AlertKind.ANOMALY,
                    Severity.CRITICAL,
                    f"exit {order.key} ({why}) did not complete and the position is still open: "
                    "placing it again on the next bar",
                    ts,
                )
        elif order.role in _PROTECTIVE:
            if position.is_flat:
                # A leg failed before the entry filled: do not let the entry go naked.
                entries = [k for k, o in self._orders.items() if o.role is OrderRole.ENTRY]
                if entries:
                    self._flatten_after_entry = True
                    out.append(CancelOrders(tuple(entries), f"{order.role.value} leg failed", ts))
            else:
                self._protect_again(
                    {order.role},
                    f"position lost its {order.role.value} leg",
                    f"position lost its {order.role.value} leg: closing it",
                    ts,
                    out,
                )
        self._derive_state()

    def _retire(self, key: str) -> None:
        order = self._orders.pop(key, None)
        price = self._leg_prices.pop(key, None)
        if (
            price is not None
            and order is not None
            and order.role in _PROTECTIVE
            and not self.position.is_flat
        ):
            self._lost_prices[order.role] = price
        self._retired.add(key)

    def _protect_again(
        self,
        roles: set[OrderRole],
        what: str,
        closing: str,
        ts: datetime,
        out: list[EngineCommand],
    ) -> None:
        """The open position lost these legs at the broker: place them again at their prices
        (``risk.lost_leg: replace``, once per leg and position), or close it (``closing`` says so)."""
        side = self.position.side
        prices = {role: self._lost_prices.get(role) for role in roles}
        # An exit decided or working closes the position: a leg placed now would outlive it (its
        # OCA group cancels the old legs as the exit fills, often before the fill is reported).
        exiting = self._exit_required is not None or any(
            o.role is OrderRole.EXIT for o in self._orders.values()
        )
        if (
            self.config.lost_leg is not LostLeg.REPLACE
            or side is None
            or exiting
            or not roles
            or roles & self._replaced
            or any(price is None for price in prices.values())
        ):
            if self.config.lost_leg is LostLeg.REPLACE and side is not None and not exiting:
                why = (
                    "it was placed again once already"
                    if roles & self._replaced
                    else "its price is not known to this process"
                )
                closing = f"{closing} ({why})"
            self._alert(out, AlertKind.ANOMALY, Severity.CRITICAL, closing, ts)
            self._place_exit(ExitReason.PROTECTION_LOST, ts, None, out)
            return
        qty = self.position.qty
        action = side.exit_action
        placed = []
        for role in _PROTECTIVE:
            price = prices.get(role)
            if role not in roles or price is None:
                continue
            stop = role is OrderRole.STOP
            key = self._next_key(int(ts.timestamp())) + (
                STOP_KEY_SUFFIX if stop else TARGET_KEY_SUFFIX
            )
            self._orders[key] = WorkingOrder(key, role, action, qty, self._oca)
            self._leg_prices[key] = price
            self._replaced.add(role)
            del self._lost_prices[role]
            order_type = "STP" if stop else "LMT"
            out.append(
                Journal(
                    OrderIntentRecord(
                        key, role.value, action, qty, order_type, price, ts, "replaces a lost leg"
                    )
                )
            )
            kind = ProtectiveKind.STOP if stop else ProtectiveKind.TARGET
            out.append(PlaceProtective(key, kind, action, qty, price, self._oca, ts))
            placed.append(f"{role.value} {price_text(price)} ({action.value} {qty})")
        self._alert(
            out,
            AlertKind.ANOMALY,
            Severity.CRITICAL,
            f"{what}: placed again, {', '.join(placed)}",
            ts,
        )

    def _derive_state(self) -> None:
        position = self.position
        side = position.side
        entry: WorkingOrder | None = None
        exiting = False
        for order in self._orders.values():
            if order.role is OrderRole.ENTRY:
                entry = order
            elif order.role is OrderRole.EXIT:
                exiting = True
        if side is None:
            if entry is not None:
                self.state = _ENTERING[Side.LONG if entry.action is Action.BUY else Side.SHORT]
            else:
                self.state = EngineState.IDLE
        elif exiting:
            self.state = _EXITING[side]
        elif entry is not None:
            self.state = _ENTERING[side]
        else:
            self.state = _HOLDING[side]

    # == operator, session and broker reports ==================================================

    def _on_flatten(self, event: FlattenRequested) -> list[EngineCommand]:
        out: list[EngineCommand] = []
        if event.pause:
            self._paused = True
        state = self.state
        if state is EngineState.IDLE:
            outcome = "already flat"
        elif state in (EngineState.LONG, EngineState.SHORT):
            self._place_exit(ExitReason.OPERATOR, event.ts, None, out)
            outcome = "exit placed"
        elif state in (EngineState.ENTERING_LONG, EngineState.ENTERING_SHORT):
            entries = tuple(k for k, o in self._orders.items() if o.role is OrderRole.ENTRY)
            self._flatten_after_entry = True
            out.append(CancelOrders(entries, "flatten requested", event.ts))
            outcome = "entry cancelled; any filled part will be closed"
        else:
            outcome = "exit already working"
        out.insert(0, Journal(OperatorRecord("flatten", event.by, event.ts, outcome)))
        self._alert(
            out, AlertKind.OPERATOR, Severity.INFO, f"flatten by {event.by}: {outcome}", event.ts
        )
        return out

    def _on_pause(self, event: PauseRequested) -> list[EngineCommand]:
        outcome = "already paused" if self._paused else "entries paused"
        self._paused = True
        out: list[EngineCommand] = [Journal(OperatorRecord("pause", event.by, event.ts, outcome))]
        self._alert(
            out, AlertKind.OPERATOR, Severity.INFO, f"pause by {event.by}: {outcome}", event.ts
        )
        return out

    def _on_resume(self, event: ResumeRequested) -> list[EngineCommand]:
        outcome = "entries resumed" if self._paused else "was not paused"
        self._paused = False
        out: list[EngineCommand] = [Journal(OperatorRecord("resume", event.by, event.ts, outcome))]
        self._alert(
            out, AlertKind.OPERATOR, Severity.INFO, f"resume by {event.by}: {outcome}", event.ts
        )
        return out

    def _on_breaker_reset(self, event: BreakerResetRequested) -> list[EngineCommand]:
        out: list[EngineCommand] = [
            Journal(OperatorRecord("breaker reset", event.by, event.ts, "reset"))
        ]
        self._journal_breaker(self.breaker.reset(event.ts), out)
        return out

    def _on_boundary(self, event: SessionBoundary) -> list[EngineCommand]:
        out: list[EngineCommand] = []
        if event.kind is BoundaryKind.OPEN:
            self._closed_at = None
            self._start_session(event.trade_date, event.ts, out)
            return out
        self._closed_at = int(event.ts.timestamp())
        if not self.config.sessions.enabled:
            return out
        state = self.state
        if state in (EngineState.LONG, EngineState.SHORT):
            self._place_exit(ExitReason.SESSION, event.ts, None, out)
        elif state in (EngineState.ENTERING_LONG, EngineState.ENTERING_SHORT):
            entries = tuple(k for k, o in self._orders.items() if o.role is OrderRole.ENTRY)
            self._flatten_after_entry = True
            out.append(CancelOrders(entries, f"session {event.kind.value}", event.ts))
        return out

    def _on_broker_position(self, event: BrokerPositionReported) -> list[EngineCommand]:
        ours = self.position.signed_qty
        out: list[EngineCommand] = []
        if event.signed_qty != ours:
            if self._reconcile_required is None or self._mismatch_only:
                self._reconcile_required = f"broker reports {event.signed_qty}, journal has {ours}"
                self._mismatch_only = True
            self._protection_uncertain = False
            out.append(
                Journal(
                    OrderEventRecord("-", "reconcile_mismatch", event.ts, self._reconcile_required)
                )
            )
            self._alert(
                out,
                AlertKind.RECONCILE_MISMATCH,
                Severity.CRITICAL,
                f"position mismatch: {self._reconcile_required}; entries halted until an operator "
                "reconciles or flattens",
                event.ts,
            )
            return out
        out.append(Journal(OrderEventRecord("-", "reconciled", event.ts, f"position {ours}")))
        if event.open_orders is not None and ours != 0:
            self._verify_protection(set(event.open_orders), event.ts, out)
        if self._mismatch_only:
            self._mismatch_only = False
            self._reconcile_required = None
            self._alert(
                out,
                AlertKind.RECONCILE_MISMATCH,
                Severity.INFO,
                f"position agrees with the broker again ({ours}): entries resume",
                event.ts,
            )
        if self._protection_uncertain:
            self._protection_uncertain = False
            legs = {o.role for o in self._orders.values() if o.role in _PROTECTIVE}
            wanted = {
                role
                for role, configured in (
                    (OrderRole.STOP, self.config.stop_loss_dollars),
                    (OrderRole.TARGET, self.config.take_profit_dollars),
                )
                if configured is not None
            }
            if ours != 0 and legs != wanted:
                self._protect_again(
                    wanted - legs,
                    "position confirmed at the broker without its full bracket",
                    "position confirmed at the broker without its full bracket: closing it",
                    event.ts,
                    out,
                )
                self._derive_state()
        return out

    def _verify_protection(self, live: set[str], ts: datetime, out: list[EngineCommand]) -> None:
        """The broker listed its working orders: a protective leg we count on must be among them."""
        legs = {k: o for k, o in self._orders.items() if o.role in _PROTECTIVE}
        missing = sorted(k for k in legs if k not in live)
        if not missing:
            if legs:
                names = ", ".join(f"{o.role.value} {k}" for k, o in sorted(legs.items()))
                out.append(Journal(OrderEventRecord("-", "protection_verified", ts, names)))
            return
        roles = {legs[key].role for key in missing}
        for key in missing:
            self._retire(key)
        if any(o.role is OrderRole.EXIT for o in self._orders.values()):
            self._derive_state()
            return  # an exit is already working; it closes what the legs no longer protect
        self._protect_again(
            roles,
            f"the broker does not hold protective order(s) {', '.join(missing)}",
            f"the broker does not hold protective order(s) {', '.join(missing)}: closing the "
            "position",
            ts,
            out,
        )
        self._derive_state()

    def _on_gate(self, event: EntryGateChanged) -> list[EngineCommand]:
        if event.reason is None:
            if self._gates.pop(event.gate, None) is None:
                return []
            detail = f"{event.gate}: open"
        else:
            if self._gates.get(event.gate) == event.reason:
                return []
            self._gates[event.gate] = event.reason
            detail = f"{event.gate}: {event.reason}"
        return [Journal(OrderEventRecord("-", "entry_gate", event.ts, detail))]

    def _on_reconcile_failed(self, event: ReconcileFailed) -> list[EngineCommand]:
        # Fail closed: without the broker's word, no new entries until a report agrees with us.
        if self._reconcile_required is None or self._mismatch_only:
            self._reconcile_required = f"reconcile failed: {event.reason}"
            self._mismatch_only = True
        out: list[EngineCommand] = [
            Journal(OrderEventRecord("-", "reconcile_failed", event.ts, event.reason))
        ]
        self._alert(
            out,
            AlertKind.RECONCILE_MISMATCH,
            Severity.CRITICAL,
            f"could not ask the broker for the position ({event.reason}): entries halted until a "
            "reconcile succeeds",
            event.ts,
        )
        return out

    # == helpers ===============================================================================

    def _anomaly(self, text: str, ts: datetime, *, reconcile: bool) -> list[EngineCommand]:
        out: list[EngineCommand] = []
        if reconcile:
            self._reconcile_required = text
            self._mismatch_only = False  # an anomaly waits for an operator
        self._alert(out, AlertKind.ANOMALY, Severity.CRITICAL, text, ts)
        if reconcile:
            out.append(Reconcile(text, ts))
        return out

    def _journal_breaker(
        self, event: BreakerTripped | BreakerReset, out: list[EngineCommand]
    ) -> None:
        out.append(Journal(BreakerRecord(event)))
        if isinstance(event, BreakerTripped):
            until = f" until {event.until.isoformat()}" if event.until is not None else ""
            self._alert(
                out,
                AlertKind.BREAKER_TRIPPED,
                Severity.WARNING,
                f"circuit breaker {event.rule.value}: {event.detail}{until}",
                event.ts,
            )
        else:
            self._alert(
                out,
                AlertKind.BREAKER_RESET,
                Severity.INFO,
                f"breaker reset ({event.reason})",
                event.ts,
            )

    @staticmethod
    def _alert(
        out: list[EngineCommand], kind: AlertKind, severity: Severity, text: str, ts: datetime
    ) -> None:
        out.append(Notify(Alert(kind, severity, text, ts)))
