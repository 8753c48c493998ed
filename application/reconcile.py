"""The one reconcile path: the broker's word on our position and working orders, as the engine's event.

Used by the engine's own ``Reconcile`` command (the trading service), the daemon at start-up and the
IB session on every (re)connect and periodically. The engine compares the report with what it holds
and fails closed on any mismatch.
"""

from __future__ import annotations

from datetime import datetime

from application.ports import Broker, BrokerError
from domain.events import BrokerPositionReported, ReconcileFailed


async def broker_report(
    broker: Broker, ts: datetime, reason: str
) -> BrokerPositionReported | ReconcileFailed:
    """Ask ``broker`` for the position and our working orders; a broker that cannot answer is a
    ``ReconcileFailed`` (prefixed with ``reason`` when one is given), never an exception.

    Only the position is a request: the working orders are the broker's last word on them, so a
    periodic reconcile costs IB one ``reqPositions`` and no executions query."""
    try:
        position = await broker.position()
    except (BrokerError, TimeoutError, ConnectionError) as exc:
        what = str(exc) or type(exc).__name__
        return ReconcileFailed(ts, f"{reason}: {what}" if reason else what)
    working = tuple(order.key for order in broker.working_orders())
    return BrokerPositionReported(position, ts, open_orders=working)
