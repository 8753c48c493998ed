"""Entry gates held by the world outside the engine, and protection verified against the broker."""

from __future__ import annotations

from datetime import timedelta

from domain.calendar import ContinuousCalendar
from domain.commands import (
    AlertKind,
    CancelOrders,
    EngineCommand,
    Journal,
    Notify,
    OrderEventRecord,
    PlaceBracket,
    PlaceExit,
    SignalAction,
    SignalRecord,
)
from domain.engine import EngineState
from domain.events import (
    BrokerPositionReported,
    CancelFailed,
    EntryGateChanged,
    OrderAccepted,
    OrderFilled,
)
from domain.position import ExitReason
from domain.values import Action
from tests.support.builders import T0, bar, engine, fill, z


def _statuses(commands: list[EngineCommand]) -> list[str]:
    return [
        c.record.status
        for c in commands
        if isinstance(c, Journal) and isinstance(c.record, OrderEventRecord)
    ]


def _signals(commands: list[EngineCommand]) -> list[SignalRecord]:
    return [
        c.record for c in commands if isinstance(c, Journal) and isinstance(c.record, SignalRecord)
    ]


def test_a_closed_gate_refuses_entries_and_names_itself_until_it_opens() -> None:
    eng = engine(calendar=ContinuousCalendar())
    eng.handle(EntryGateChanged("broker_link", "connectivity lost (1100)", T0))
    refused = eng.on_bar(bar(T0), z(-2.5))
    assert not [c for c in refused if isinstance(c, PlaceBracket)]
    [skipped] = _signals(refused)
    assert skipped.action is SignalAction.SKIPPED
    assert skipped.detail == "broker_link: connectivity lost (1100)"
    assert eng.entry_gates == {"broker_link": "connectivity lost (1100)"}

    eng.handle(EntryGateChanged("broker_link", None, T0 + timedelta(minutes=1)))
    assert eng.entry_gates == {}
    placed = eng.on_bar(bar(T0 + timedelta(minutes=5)), z(-2.5))
    assert [c for c in placed if isinstance(c, PlaceBracket)]


def test_every_gate_must_open_before_entries_resume() -> None:
    eng = engine(calendar=ContinuousCalendar())
    eng.handle(EntryGateChanged("broker_link", "down", T0))
    eng.handle(EntryGateChanged("journal", "database unreachable", T0))
    eng.handle(EntryGateChanged("broker_link", None, T0))
    assert eng.entry_blocker(T0) == "journal: database unreachable"


def test_gate_changes_are_journaled_once() -> None:
    eng = engine(calendar=ContinuousCalendar())
    first = eng.handle(EntryGateChanged("broker_link", "down", T0))
    again = eng.handle(EntryGateChanged("broker_link", "down", T0))
    opened = eng.handle(EntryGateChanged("broker_link", None, T0))
    opened_again = eng.handle(EntryGateChanged("broker_link", None, T0))
    assert _statuses(first) == ["entry_gate"]
    assert again == []
    assert len(opened) == 1
    assert opened_again == []


def test_a_closed_gate_still_lets_an_open_position_exit() -> None:
    eng = engine(calendar=ContinuousCalendar())
    [bracket] = [c for c in eng.on_bar(bar(T0), z(-2.5)) if isinstance(c, PlaceBracket)]
    eng.handle(OrderFilled(fill(bracket.entry_key, Action.BUY, "5000")))
    eng.handle(EntryGateChanged("broker_link", "down", T0))
    out = eng.on_bar(bar(T0 + timedelta(minutes=5)), z(0.25))
    assert [c for c in out if isinstance(c, PlaceExit)]


def test_a_reconcile_that_lists_both_legs_verifies_the_protection() -> None:
    eng = engine(calendar=ContinuousCalendar())
    [bracket] = [c for c in eng.on_bar(bar(T0), z(-2.5)) if isinstance(c, PlaceBracket)]
    eng.handle(OrderFilled(fill(bracket.entry_key, Action.BUY, "5000")))
    assert bracket.stop_key is not None
    assert bracket.target_key is not None
    out = eng.handle(
        BrokerPositionReported(1, T0, open_orders=(bracket.stop_key, bracket.target_key))
    )
    statuses = [
        c.record.status
        for c in out
        if isinstance(c, Journal) and isinstance(c.record, OrderEventRecord)
    ]
    assert statuses == ["reconciled", "protection_verified"]
    assert eng.state is EngineState.LONG


def test_a_reconcile_missing_the_stop_closes_the_position() -> None:
    eng = engine(calendar=ContinuousCalendar())
    [bracket] = [c for c in eng.on_bar(bar(T0), z(-2.5)) if isinstance(c, PlaceBracket)]
    eng.handle(OrderFilled(fill(bracket.entry_key, Action.BUY, "5000")))
    assert bracket.target_key is not None
    out = eng.handle(BrokerPositionReported(1, T0, open_orders=(bracket.target_key,)))
    [exit_] = [c for c in out if isinstance(c, PlaceExit)]
    assert exit_.reason == ExitReason.PROTECTION_LOST.value
    assert exit_.action is Action.SELL
    assert eng.state is EngineState.EXITING_LONG
    assert bracket.stop_key not in eng.working_orders


def test_a_cancel_that_could_not_be_sent_is_sent_again_at_the_next_bar() -> None:
    eng = engine(calendar=ContinuousCalendar())
    [bracket] = [c for c in eng.on_bar(bar(T0), z(-2.5)) if isinstance(c, PlaceBracket)]
    first = eng.on_bar(bar(T0 + timedelta(minutes=5)), z(-1.5))
    assert [c.keys for c in first if isinstance(c, CancelOrders)] == [(bracket.entry_key,)]
    # Without the failure report the engine would not cancel again (one cancel per overdue entry).
    assert not [
        c
        for c in eng.on_bar(bar(T0 + timedelta(minutes=10)), z(-1.5))
        if isinstance(c, CancelOrders)
    ]
    out = eng.handle(CancelFailed((bracket.entry_key,), T0, "not connected to IB Gateway"))
    assert _statuses(out) == ["cancel_failed"]
    again = eng.on_bar(bar(T0 + timedelta(minutes=15)), z(-1.5))
    assert [c.keys for c in again if isinstance(c, CancelOrders)] == [(bracket.entry_key,)]


def _alerts(commands: list[EngineCommand], kind: AlertKind) -> list[str]:
    return [c.alert.text for c in commands if isinstance(c, Notify) and c.alert.kind is kind]


def test_the_bracket_is_announced_once_when_the_broker_holds_both_legs() -> None:
    eng = engine(calendar=ContinuousCalendar())
    [bracket] = [c for c in eng.on_bar(bar(T0), z(-2.5)) if isinstance(c, PlaceBracket)]
    assert bracket.stop_key is not None
    assert bracket.target_key is not None
    seen: list[str] = []
    seen += _alerts(eng.handle(OrderAccepted(bracket.stop_key, T0)), AlertKind.BRACKET_LIVE)
    seen += _alerts(eng.handle(OrderAccepted(bracket.target_key, T0)), AlertKind.BRACKET_LIVE)
    assert seen == []  # legs wait for their parent: nothing is protected yet
    filled = eng.handle(OrderFilled(fill(bracket.entry_key, Action.BUY, "5000")))
    [text] = _alerts(filled, AlertKind.BRACKET_LIVE)
    # Prices for the operator; the keys stay in the journal.
    assert text == "LONG 1 @ 5,000.00 protected at the broker: stop 4,990.00, target 5,015.00"
    assert bracket.stop_key not in text
    again = eng.handle(OrderAccepted(bracket.stop_key, T0))
    assert _alerts(again, AlertKind.BRACKET_LIVE) == []


def test_a_leg_accepted_after_the_fill_completes_the_announcement() -> None:
    eng = engine(calendar=ContinuousCalendar())
    [bracket] = [c for c in eng.on_bar(bar(T0), z(-2.5)) if isinstance(c, PlaceBracket)]
    assert bracket.stop_key is not None
    assert bracket.target_key is not None
    eng.handle(OrderAccepted(bracket.stop_key, T0))
    assert (
        _alerts(
            eng.handle(OrderFilled(fill(bracket.entry_key, Action.BUY, "5000"))),
            AlertKind.BRACKET_LIVE,
        )
        == []
    )
    assert (
        len(_alerts(eng.handle(OrderAccepted(bracket.target_key, T0)), AlertKind.BRACKET_LIVE)) == 1
    )
