"""A snapshot stored by an earlier version of the code still restores: the stored JSON format did
not change when the engine's snapshot fields came to be declared once (by EngineSnapshot)."""

from __future__ import annotations

from adapters.sql.serialization import snapshot_from_json, snapshot_to_json
from domain.calendar import ContinuousCalendar
from domain.engine import Engine, EngineState
from domain.position import ExitReason
from tests.support.builders import engine

# Written by ``snapshot_to_json`` before the change (commit 248c3c9): a long position with its
# bracket, and every flag set away from its default.
STORED = (
    '{"format":1,"snapshot":{"$type":"EngineSnapshot","state":"LONG","position":{"$type":"PositionState",'
    '"side":1,"lots":[[1,20001]],"opened_at":"2025-03-04T15:00:00+00:00","entry_qty":1,'
    '"entry_ticks":20001,"exit_qty":0,"exit_ticks":0,"realized_ticks":0,"commissions":"0.62",'
    '"trips_booked":0},"breaker":{"$type":"BreakerState","trade_date":"2025-03-04","realized_pnl":"0",'
    '"trades_today":1,"loss_streak":0,"daily_loss_halt":false,"paused_until":null},"orders":[{"$type":"WorkingOrder",'
    '"key":"QS-1741100700-1-S","role":"stop","action":"SELL","qty":1,"oca":"QS-1741100700-1",'
    '"reason":null,"filled":0,"accepted":false},{"$type":"WorkingOrder","key":"QS-1741100700-1-T",'
    '"role":"target","action":"SELL","qty":1,"oca":"QS-1741100700-1","reason":null,"filled":0,'
    '"accepted":false}],"paused":true,"reconcile_required":"broker reports 2, journal has 1",'
    '"key_seq":1,"oca":"OCA-7","flatten_after_entry":true,"protection_uncertain":true,'
    '"closed_at":1741100400,"exit_required":"session","entry_cancel_sent":true,"mismatch_only":true,'
    '"last_bar_end":1741100700,"recent_exec_ids":["X-1"],"retired_keys":["QS-1-1"]}}'
)


def test_a_snapshot_stored_before_still_restores_the_engine() -> None:
    snapshot = snapshot_from_json(STORED)
    eng = Engine.restore(engine(calendar=ContinuousCalendar()).config, snapshot)
    assert eng.state is EngineState.LONG
    assert eng.position.qty == 1
    assert sorted(eng.working_orders) == ["QS-1741100700-1-S", "QS-1741100700-1-T"]
    assert eng.paused
    assert eng.reconcile_required == "broker reports 2, journal has 1"
    assert eng.exit_required is ExitReason.SESSION
    assert eng.closed_at == 1741100400
    assert eng.last_bar_end == 1741100700


def test_a_restored_old_snapshot_is_stored_again_byte_for_byte() -> None:
    """... but for the fields added since, at their defaults (the breaker's rejected entries)."""
    snapshot = snapshot_from_json(STORED)
    eng = Engine.restore(engine(calendar=ContinuousCalendar()).config, snapshot)
    added = STORED.replace('"paused_until":null}', '"paused_until":null,"rejects_today":0}')
    assert added != STORED
    assert snapshot_to_json(eng.snapshot()) == added
