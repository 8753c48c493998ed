"""Every (state, event) pair of the engine has a defined outcome (DESIGN section 2).

States are reached by feeding real events, for both sides; each event is applied and the resulting
state, the kinds of commands returned and the halt flags are checked against the table below. The
table is written side-relative: HOLDING means LONG for the long side and SHORT for the short side.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest

from domain.calendar import ContinuousCalendar
from domain.commands import EngineCommand, PlaceBracket, PlaceExit
from domain.engine import Engine, EngineState
from domain.events import (
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
from domain.values import Side
from tests.support.builders import T0, bar, engine, fill, z

STAGES = ("IDLE", "ENTERING", "HOLDING", "EXITING")
EVENTS = (
    "bar_quiet",
    "bar_signal",
    "accepted",
    "filled",
    "protective_filled",
    "rejected",
    "cancelled",
    "flatten",
    "pause",
    "resume",
    "breaker_reset",
    "boundary_open",
    "boundary_flatten",
    "broker_agrees",
    "broker_disagrees",
    "reconcile_failed",
    "gate_closed",
    "broker_legs_missing",
    "cancel_failed",
)
J, N, PB, PX, C, R = "Journal", "Notify", "PlaceBracket", "PlaceExit", "CancelOrders", "Reconcile"

# (stage, event) -> (next stage, command kinds, flags). Flags: "reconcile" (entries halted until an
# operator reconciles), "paused". Next stages prefixed OPPOSITE_ are on the other side (anomalies).
TABLE: dict[tuple[str, str], tuple[str, frozenset[str], frozenset[str]]] = {}


def row(stage: str, event: str, after: str, kinds: set[str], flags: set[str] | None = None) -> None:
    TABLE[(stage, event)] = (after, frozenset(kinds), frozenset(flags or set()))


# IDLE: only a signal acts; order events for orders we never placed are anomalies.
row("IDLE", "bar_quiet", "IDLE", set())
row("IDLE", "bar_signal", "ENTERING", {J, PB})
row("IDLE", "accepted", "IDLE", {N, R}, {"reconcile"})
row("IDLE", "filled", "HOLDING", {J, N, R}, {"reconcile"})
row("IDLE", "protective_filled", "OPPOSITE_HOLDING", {J, N, R}, {"reconcile"})
row("IDLE", "rejected", "IDLE", {J, N})
row("IDLE", "cancelled", "IDLE", {J})
row("IDLE", "flatten", "IDLE", {J, N})
row("IDLE", "pause", "IDLE", {J, N}, {"paused"})
row("IDLE", "resume", "IDLE", {J, N})
row("IDLE", "breaker_reset", "IDLE", {J, N})
row("IDLE", "boundary_open", "IDLE", set())
row("IDLE", "boundary_flatten", "IDLE", set())
row("IDLE", "broker_agrees", "IDLE", {J})
row("IDLE", "broker_disagrees", "IDLE", {J, N}, {"reconcile"})
row("IDLE", "reconcile_failed", "IDLE", {J, N}, {"reconcile"})
row("IDLE", "gate_closed", "IDLE", {J})
row("IDLE", "cancel_failed", "IDLE", {J, N})
row("IDLE", "broker_legs_missing", "IDLE", {J})

# ENTERING: the bracket is working. A market entry still working at the next bar close is overdue:
# the rest of it is cancelled (and whatever filled is closed when the cancel lands).
row("ENTERING", "bar_quiet", "ENTERING", {N, C})
row("ENTERING", "bar_signal", "ENTERING", {N, C})
row("ENTERING", "accepted", "ENTERING", {J})
row("ENTERING", "filled", "HOLDING", {J, N})
row("ENTERING", "protective_filled", "OPPOSITE_ENTERING", {J, N, R}, {"reconcile"})
row("ENTERING", "rejected", "IDLE", {J, N})
row("ENTERING", "cancelled", "IDLE", {J})
row("ENTERING", "flatten", "ENTERING", {J, C, N})
row("ENTERING", "pause", "ENTERING", {J, N}, {"paused"})
row("ENTERING", "resume", "ENTERING", {J, N})
row("ENTERING", "breaker_reset", "ENTERING", {J, N})
row("ENTERING", "boundary_open", "ENTERING", {J, N})
row("ENTERING", "boundary_flatten", "ENTERING", {C})
row("ENTERING", "broker_agrees", "ENTERING", {J})
row("ENTERING", "broker_disagrees", "ENTERING", {J, N}, {"reconcile"})
row("ENTERING", "reconcile_failed", "ENTERING", {J, N}, {"reconcile"})
row("ENTERING", "gate_closed", "ENTERING", {J})
row("ENTERING", "cancel_failed", "ENTERING", {J, N})
row("ENTERING", "broker_legs_missing", "ENTERING", {J})

# HOLDING: the position is protected by its bracket; exits go out on signal, session or operator.
row("HOLDING", "bar_quiet", "HOLDING", set())
row("HOLDING", "bar_signal", "EXITING", {J, PX})
row("HOLDING", "accepted", "HOLDING", {J})
row("HOLDING", "filled", "HOLDING", {J, N, R}, {"reconcile"})
row("HOLDING", "protective_filled", "IDLE", {J, N})
row("HOLDING", "rejected", "EXITING", {J, N, PX})
row("HOLDING", "cancelled", "HOLDING", {J, N, R})
row("HOLDING", "flatten", "EXITING", {J, PX, N})
row("HOLDING", "pause", "HOLDING", {J, N}, {"paused"})
row("HOLDING", "resume", "HOLDING", {J, N})
row("HOLDING", "breaker_reset", "HOLDING", {J, N})
row("HOLDING", "boundary_open", "HOLDING", {J, N})
row("HOLDING", "boundary_flatten", "EXITING", {J, PX})
row("HOLDING", "broker_agrees", "HOLDING", {J})
row("HOLDING", "broker_disagrees", "HOLDING", {J, N}, {"reconcile"})
row("HOLDING", "reconcile_failed", "HOLDING", {J, N}, {"reconcile"})
row("HOLDING", "gate_closed", "HOLDING", {J})
row("HOLDING", "cancel_failed", "HOLDING", {J, N})
row("HOLDING", "broker_legs_missing", "EXITING", {J, N, PX})

# EXITING: the exit is working in the bracket's OCA group; whichever fills first ends the trade.
row("EXITING", "bar_quiet", "EXITING", set())
row("EXITING", "bar_signal", "EXITING", set())
row("EXITING", "accepted", "EXITING", {J})
row("EXITING", "filled", "IDLE", {J, N})
row("EXITING", "protective_filled", "IDLE", {J, N})
row("EXITING", "rejected", "HOLDING", {J, N})
row("EXITING", "cancelled", "HOLDING", {J, N})
row("EXITING", "flatten", "EXITING", {J, N})
row("EXITING", "pause", "EXITING", {J, N}, {"paused"})
row("EXITING", "resume", "EXITING", {J, N})
row("EXITING", "breaker_reset", "EXITING", {J, N})
row("EXITING", "boundary_open", "EXITING", {J, N})
row("EXITING", "boundary_flatten", "EXITING", set())
row("EXITING", "broker_agrees", "EXITING", {J})
row("EXITING", "broker_disagrees", "EXITING", {J, N}, {"reconcile"})
row("EXITING", "reconcile_failed", "EXITING", {J, N}, {"reconcile"})
row("EXITING", "gate_closed", "EXITING", {J})
row("EXITING", "cancel_failed", "EXITING", {J, N})
row("EXITING", "broker_legs_missing", "EXITING", {J})


def test_the_table_covers_every_state_and_event() -> None:
    assert set(TABLE) == {(s, e) for s in STAGES for e in EVENTS}
    # Every event type the engine handles appears in the table's event builders.
    handled = {t.__name__ for t in engine()._handlers}
    built = {type(make_event(e, "IDLE", Side.LONG, {"stop": "S"})).__name__ for e in EVENTS}
    assert handled == built
    assert set(EngineState.__members__) == {
        "IDLE",
        *(f"{p}{s}" for p in ("ENTERING_", "", "EXITING_") for s in ("LONG", "SHORT")),
    }


def _state(stage: str, side: Side) -> EngineState:
    if stage.startswith("OPPOSITE_"):
        return _state(stage.removeprefix("OPPOSITE_"), side.opposite)
    if stage == "IDLE":
        return EngineState.IDLE
    prefix = {"ENTERING": "ENTERING_", "HOLDING": "", "EXITING": "EXITING_"}[stage]
    return EngineState[prefix + side.name]


def reach(stage: str, side: Side) -> tuple[Engine, dict[str, str]]:
    """An engine in ``stage`` for ``side``, reached through real events, and its order keys."""
    eng = engine(calendar=ContinuousCalendar())
    keys: dict[str, str] = {}
    if stage == "IDLE":
        return eng, keys
    placed = [c for c in eng.on_bar(bar(T0), z(-2.5 * side.sign)) if isinstance(c, PlaceBracket)]
    assert len(placed) == 1
    bracket = placed[0]
    assert bracket.stop_key is not None
    assert bracket.target_key is not None
    keys.update(entry=bracket.entry_key, stop=bracket.stop_key, target=bracket.target_key)
    if stage == "ENTERING":
        return eng, keys
    eng.handle(OrderFilled(fill(bracket.entry_key, side.entry_action, "5000", at=T0)))
    if stage == "HOLDING":
        return eng, keys
    exits = [
        c
        for c in eng.on_bar(bar(T0 + timedelta(minutes=5)), z(0.25 * side.sign))
        if isinstance(c, PlaceExit)
    ]
    assert len(exits) == 1
    keys["exit"] = exits[0].key
    return eng, keys


def make_event(name: str, stage: str, side: Side, keys: dict[str, str]) -> EngineEvent:
    at = T0 + timedelta(minutes=10)
    current = {"IDLE": "FOREIGN-1", "ENTERING": keys.get("entry"), "EXITING": keys.get("exit")}
    # In HOLDING the working orders are the bracket legs: reject/cancel/accept act on the stop.
    working = current.get(stage) or keys["stop"]
    held = {"IDLE": 0, "ENTERING": 0}.get(stage, side.sign)
    builders: dict[str, Callable[[], EngineEvent]] = {
        "bar_quiet": lambda: BarClosed(bar(at), z(-1.5 * side.sign)),
        "bar_signal": lambda: BarClosed(
            bar(at), z(0.25 * side.sign) if stage in ("HOLDING", "EXITING") else z(-2.5 * side.sign)
        ),
        "accepted": lambda: OrderAccepted(working, at),
        "filled": lambda: OrderFilled(
            fill(
                working if stage in ("ENTERING", "EXITING") else "FOREIGN-1",
                side.exit_action if stage == "EXITING" else side.entry_action,
                "5001",
                at=at,
            )
        ),
        "protective_filled": lambda: ProtectiveExitFilled(
            fill(keys.get("stop", "FOREIGN-2"), side.exit_action, "4990", at=at),
            ProtectiveKind.STOP,
        ),
        "rejected": lambda: OrderRejected(working, at, "simulated rejection", 201),
        "cancelled": lambda: OrderCancelled(working, at, "cancelled"),
        "flatten": lambda: FlattenRequested(at, "operator"),
        "pause": lambda: PauseRequested(at, "operator"),
        "resume": lambda: ResumeRequested(at, "operator"),
        "breaker_reset": lambda: BreakerResetRequested(at, "operator"),
        "boundary_open": lambda: SessionBoundary(BoundaryKind.OPEN, at, date(2025, 3, 6)),
        "boundary_flatten": lambda: SessionBoundary(BoundaryKind.FLATTEN, at, date(2025, 3, 4)),
        "broker_agrees": lambda: BrokerPositionReported(held, at),
        "broker_disagrees": lambda: BrokerPositionReported(held + 2, at),
        "reconcile_failed": lambda: ReconcileFailed(at, "not connected"),
        "cancel_failed": lambda: CancelFailed((working,), at, "not connected to IB Gateway"),
        "gate_closed": lambda: EntryGateChanged("broker_link", "connectivity lost (1100)", at),
        # The broker agrees on the position but lists none of our orders as working.
        "broker_legs_missing": lambda: BrokerPositionReported(held, at, open_orders=()),
    }
    return builders[name]()


def _kinds(commands: list[EngineCommand]) -> frozenset[str]:
    return frozenset(type(c).__name__ for c in commands)


@pytest.mark.parametrize("side", [Side.LONG, Side.SHORT], ids=lambda s: s.name)
@pytest.mark.parametrize(("stage", "event"), sorted(TABLE), ids=str)
def test_every_state_event_pair_has_its_defined_outcome(stage: str, event: str, side: Side) -> None:
    eng, keys = reach(stage, side)
    assert eng.state is _state(stage, side)
    commands = eng.handle(make_event(event, stage, side, keys))
    after, kinds, flags = TABLE[(stage, event)]
    assert eng.state is _state(after, side)
    assert _kinds(commands) == kinds
    assert (eng.reconcile_required is not None) == ("reconcile" in flags)
    assert eng.paused == ("paused" in flags)
