"""The engine snapshot's fields are declared once, by EngineSnapshot: every one of them, set off its
default, comes back through Engine.restore and out of Engine.snapshot unchanged."""

from __future__ import annotations

from dataclasses import fields, replace

from domain.calendar import ContinuousCalendar
from domain.commands import PlaceBracket
from domain.engine import Engine, EngineSnapshot
from domain.events import OrderFilled
from domain.position import ExitReason
from domain.values import Action
from tests.support.builders import T0, bar, engine, fill, z


def _unusual_snapshot() -> tuple[Engine, EngineSnapshot]:
    """A mid-trade snapshot with every field away from a fresh engine's value."""
    eng = engine(calendar=ContinuousCalendar())
    placed = [c for c in eng.on_bar(bar(T0), z(-2.5)) if isinstance(c, PlaceBracket)]
    eng.handle(OrderFilled(fill(placed[0].entry_key, Action.BUY, "5000.25", exec_id="X-1")))
    snapshot = replace(
        eng.snapshot(),
        paused=True,
        reconcile_required="broker reports 2, journal has 1",
        key_seq=41,
        oca="OCA-7",
        flatten_after_entry=True,
        protection_uncertain=True,
        closed_at=1_741_100_400,
        exit_required=ExitReason.SESSION,
        entry_cancel_sent=True,
        mismatch_only=True,
        retired_keys=("QS-1-1", "QS-1-2"),
    )
    return eng, snapshot


def test_every_snapshot_field_survives_a_restore() -> None:
    eng, snapshot = _unusual_snapshot()
    fresh = engine(calendar=ContinuousCalendar()).snapshot()
    unchanged = [
        f.name
        for f in fields(EngineSnapshot)
        if getattr(snapshot, f.name) == getattr(fresh, f.name)
    ]
    assert unchanged == []  # the test covers every field, a new one included
    assert Engine.restore(eng.config, snapshot).snapshot() == snapshot


def test_restored_flags_are_the_ones_the_engine_acts_on() -> None:
    eng, snapshot = _unusual_snapshot()
    restored = Engine.restore(eng.config, snapshot)
    assert restored.paused
    assert restored.reconcile_required == "broker reports 2, journal has 1"
    assert restored.exit_required is ExitReason.SESSION
    assert restored.closed_at == 1_741_100_400
