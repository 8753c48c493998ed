"""A wire-level TWS/IB Gateway stand-in that real `ib_async` talks to (see gateway.py)."""

from tests.support.tws.contracts import ListedFuture, mes_future, mes_quarterlies
from tests.support.tws.gateway import (
    FillSequence,
    GatewayBar,
    GatewayExecution,
    GatewayFaults,
    GatewayOrder,
    HistoricalSubscription,
    RealtimeSubscription,
    TwsGateway,
)

__all__ = [
    "FillSequence",
    "GatewayBar",
    "GatewayExecution",
    "GatewayFaults",
    "GatewayOrder",
    "HistoricalSubscription",
    "ListedFuture",
    "RealtimeSubscription",
    "TwsGateway",
    "mes_future",
    "mes_quarterlies",
]
