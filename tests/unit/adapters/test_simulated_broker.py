"""The simulated broker: fill models, bracket legs on finer bars, OCA groups, scripted faults."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from adapters.simulated.broker import SimulatedBroker
from application.ports import BrokerError
from application.services import EventInbox
from domain.commands import CancelOrders, PlaceBracket, PlaceExit
from domain.events import (
    EngineEvent,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    ProtectiveExitFilled,
    ProtectiveKind,
)
from domain.values import MES, Action, Side
from tests.support.builders import T0, bar

D = Decimal


def _broker(**kwargs: object) -> tuple[SimulatedBroker, EventInbox]:
    inbox = EventInbox()
    return SimulatedBroker(instrument=MES, sink=inbox, **kwargs), inbox  # type: ignore[arg-type]


def _drain(inbox: EventInbox) -> list[EngineEvent]:
    events = []
    while inbox:
        events.append(inbox.pop())
    return events


def _bracket(
    side: Side = Side.LONG,
    ref: str = "5000",
    stop: str | None = "4990",
    target: str | None = "5015",
    qty: int = 1,
) -> PlaceBracket:
    return PlaceBracket(
        entry_key="K-E",
        stop_key="K-S" if stop else None,
        target_key="K-T" if target else None,
        side=side,
        qty=qty,
        reference_price=D(ref),
        stop_price=D(stop) if stop else None,
        target_price=D(target) if target else None,
        oca_group="K",
        ts=T0,
    )


def _fills(events: list[EngineEvent]) -> list[tuple[str, Action, int, Decimal]]:
    out = []
    for e in events:
        if isinstance(e, OrderFilled | ProtectiveExitFilled):
            out.append((e.fill.order_key, e.fill.action, e.fill.qty, e.fill.price))
    return out


ONE_MIN = timedelta(minutes=1)


async def test_next_open_fills_a_market_entry_at_the_next_bar_open_with_slippage() -> None:
    broker, inbox = _broker(slippage_ticks=1, commission_per_side=D("0.62"))
    await broker.place_bracket(_bracket())
    assert [type(e) for e in _drain(inbox)] == [OrderAccepted] * 3
    broker.on_bar(bar(T0, 5002.0, seconds=60, open_=5001.0, high=5003.0, low=5000.5))
    events = _drain(inbox)
    assert _fills(events) == [("K-E", Action.BUY, 1, D("5001.25"))]
    filled = events[0]
    assert isinstance(filled, OrderFilled)
    assert filled.fill.commission == D("0.62")
    assert filled.fill.ts == T0  # at the bar's open


async def test_signal_close_fills_at_the_reference_price_at_once() -> None:
    broker, inbox = _broker(fill_model="signal_close", slippage_ticks=2)
    await broker.place_bracket(_bracket(side=Side.SHORT, stop="5010", target="4985"))
    assert _fills(_drain(inbox)) == [("K-E", Action.SELL, 1, D("4999.50"))]


async def test_a_stop_triggers_intrabar_and_cancels_its_target() -> None:
    broker, inbox = _broker(fill_model="signal_close")
    await broker.place_bracket(_bracket())
    _drain(inbox)
    broker.on_bar(bar(T0 + ONE_MIN, 4995.0, seconds=60, open_=4999.0, high=5001.0, low=4989.5))
    events = _drain(inbox)
    assert _fills(events) == [("K-S", Action.SELL, 1, D("4990"))]
    stop_fill = events[0]
    assert isinstance(stop_fill, ProtectiveExitFilled)
    assert stop_fill.kind is ProtectiveKind.STOP
    assert [e.key for e in events if isinstance(e, OrderCancelled)] == ["K-T"]
    assert (await broker.snapshot(None)).position == 0


async def test_a_bar_touching_both_legs_takes_the_stop() -> None:
    broker, inbox = _broker(fill_model="signal_close")
    await broker.place_bracket(_bracket())
    _drain(inbox)
    broker.on_bar(bar(T0 + ONE_MIN, 5000.0, seconds=60, open_=5000.0, high=5020.0, low=4980.0))
    assert _fills(_drain(inbox)) == [("K-S", Action.SELL, 1, D("4990"))]


async def test_a_gap_through_the_stop_fills_at_the_worse_open() -> None:
    broker, inbox = _broker(fill_model="signal_close", slippage_ticks=1)
    await broker.place_bracket(_bracket())
    _drain(inbox)
    broker.on_bar(bar(T0 + ONE_MIN, 4984.0, seconds=60, open_=4985.0, high=4986.0, low=4983.0))
    assert _fills(_drain(inbox)) == [("K-S", Action.SELL, 1, D("4984.75"))]


async def test_a_target_fills_at_its_limit_without_price_improvement() -> None:
    broker, inbox = _broker(fill_model="signal_close", slippage_ticks=3)
    await broker.place_bracket(_bracket(side=Side.SHORT, stop="5010", target="4985"))
    _drain(inbox)
    # Opens above the buy limit and trades through it: the limit, no improvement, no slippage.
    broker.on_bar(bar(T0 + ONE_MIN, 4980.0, seconds=60, open_=4988.0, high=4990.0, low=4979.0))
    assert _fills(_drain(inbox)) == [("K-T", Action.BUY, 1, D("4985"))]


async def test_legs_are_inactive_until_the_parent_fills() -> None:
    broker, inbox = _broker()  # next_open: the parent fills on the next bar
    await broker.place_bracket(_bracket())
    _drain(inbox)
    # The first bar fills the parent at its open, and its range then reaches the stop.
    broker.on_bar(bar(T0 + ONE_MIN, 4995.0, seconds=60, open_=5000.0, high=5000.0, low=4989.0))
    assert [k for k, *_ in _fills(_drain(inbox))] == ["K-E", "K-S"]


async def test_an_exit_in_the_oca_group_cancels_the_legs() -> None:
    broker, inbox = _broker(fill_model="signal_close")
    await broker.place_bracket(_bracket())
    _drain(inbox)
    await broker.place_exit(PlaceExit("K-X", Action.SELL, 1, "signal", "K", D("5003"), T0))
    events = _drain(inbox)
    assert _fills(events) == [("K-X", Action.SELL, 1, D("5003"))]
    assert sorted(e.key for e in events if isinstance(e, OrderCancelled)) == ["K-S", "K-T"]
    broker.on_bar(bar(T0 + ONE_MIN, 4980.0, seconds=60, open_=4985.0, high=4985.0, low=4970.0))
    assert _drain(inbox) == []


async def test_cancelling_an_unfilled_parent_cancels_its_children() -> None:
    broker, inbox = _broker()
    await broker.place_bracket(_bracket())
    _drain(inbox)
    await broker.cancel(CancelOrders(("K-E",), "flatten", T0))
    assert [e.key for e in _drain(inbox) if isinstance(e, OrderCancelled)] == ["K-E", "K-S", "K-T"]
    snapshot = await broker.snapshot(None)
    assert snapshot.open_orders == ()


async def test_reject_next_rejects_the_whole_bracket() -> None:
    broker, inbox = _broker()
    broker.reject_next(201, "Order rejected - margin")
    await broker.place_bracket(_bracket())
    events = _drain(inbox)
    assert [(type(e), e.key) for e in events if isinstance(e, OrderRejected)] == [
        (OrderRejected, "K-E"),
        (OrderRejected, "K-S"),
        (OrderRejected, "K-T"),
    ]


async def test_partial_fills_split_a_market_order() -> None:
    broker, inbox = _broker(fill_model="signal_close")
    broker.partial_fills(1, 1)
    await broker.place_bracket(_bracket(qty=3, stop="4995", target="5005"))
    assert [q for _, _, q, _ in _fills(_drain(inbox))] == [1, 1, 1]
    assert (await broker.snapshot(None)).position == 3


async def test_a_disconnected_broker_refuses_to_send() -> None:
    broker, _ = _broker()
    broker.connected = False
    with pytest.raises(BrokerError):
        await broker.place_bracket(_bracket())


async def test_snapshot_reports_position_orders_and_executions_since() -> None:
    broker, inbox = _broker(fill_model="signal_close")
    await broker.place_bracket(_bracket())
    _drain(inbox)
    snapshot = await broker.snapshot(None)
    assert snapshot.position == 1
    assert sorted(o.key for o in snapshot.open_orders) == ["K-S", "K-T"]
    assert [f.order_key for f in snapshot.executions] == ["K-E"]
    assert (await broker.snapshot(T0 + ONE_MIN)).executions == ()


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="fill model"):
        _broker(fill_model="mid")
    with pytest.raises(ValueError, match="slippage"):
        _broker(slippage_ticks=-1)


async def test_a_bar_opening_through_the_target_takes_the_target_first() -> None:
    broker, inbox = _broker(fill_model="signal_close")
    await broker.place_bracket(_bracket())  # long, stop 4990, target 5015
    _drain(inbox)
    broker.on_bar(bar(T0 + ONE_MIN, 4986.0, seconds=60, open_=5020.0, high=5021.0, low=4985.0))
    events = _drain(inbox)
    # At the open it traded through: the better price, not the limit.
    assert _fills(events) == [("K-T", Action.SELL, 1, D("5020"))]
    assert [e.key for e in events if isinstance(e, OrderCancelled)] == ["K-S"]


async def test_a_target_the_bar_gapped_past_fills_at_a_price_the_market_traded() -> None:
    broker, inbox = _broker(fill_model="signal_close")
    await broker.place_bracket(_bracket(Side.SHORT, stop="5010", target="4985"))
    _drain(inbox)
    # The whole bar trades below the buy limit: 4985 never traded, the open 4980 did.
    broker.on_bar(bar(T0 + ONE_MIN, 4981.0, seconds=60, open_=4980.0, high=4982.0, low=4979.0))
    fills = _fills(_drain(inbox))
    assert fills == [("K-T", Action.BUY, 1, D("4980"))]
    assert D("4979") <= fills[0][3] <= D("4982")


async def test_a_target_only_touched_does_not_fill() -> None:
    broker, inbox = _broker(fill_model="signal_close")
    await broker.place_bracket(_bracket())  # long, target 5015
    _drain(inbox)
    broker.on_bar(bar(T0 + ONE_MIN, 5010.0, seconds=60, open_=5005.0, high=5015.0, low=5004.0))
    assert _fills(_drain(inbox)) == []
    broker.on_bar(bar(T0 + 2 * ONE_MIN, 5012.0, seconds=60, open_=5010.0, high=5015.25, low=5009.0))
    assert _fills(_drain(inbox)) == [("K-T", Action.SELL, 1, D("5015"))]


@pytest.mark.parametrize(
    ("side", "low", "high", "expected"),
    [
        # Long: a sell stop at 4990 fills when the low touches it, a sell limit at 5015 only when
        # the high trades through it; one tick short of either fills nothing.
        (Side.LONG, 4990.0, 4996.0, ("K-S", D("4990"))),
        (Side.LONG, 4990.25, 4996.0, None),
        (Side.LONG, 4996.0, 5015.0, None),
        (Side.LONG, 4996.0, 5015.25, ("K-T", D("5015"))),
        # Short: a buy stop at 5010 on the high, a buy limit at 4985 through the low.
        (Side.SHORT, 5004.0, 5010.0, ("K-S", D("5010"))),
        (Side.SHORT, 5004.0, 5009.75, None),
        (Side.SHORT, 4985.0, 5004.0, None),
        (Side.SHORT, 4984.75, 5004.0, ("K-T", D("4985"))),
    ],
)
async def test_a_leg_fills_exactly_when_the_bar_reaches_it(
    side: Side, low: float, high: float, expected: tuple[str, Decimal] | None
) -> None:
    # Each bar lies at the edge of a leg: on_bar's quick test on floats must not skip a bar that
    # reaches a leg, nor fill one that does not.
    stop, target = ("4990", "5015") if side is Side.LONG else ("5010", "4985")
    broker, inbox = _broker(fill_model="signal_close")
    await broker.place_bracket(_bracket(side=side, stop=stop, target=target))
    _drain(inbox)
    open_ = (low + high) / 2
    broker.on_bar(bar(T0 + ONE_MIN, open_, seconds=60, open_=open_, high=high, low=low))
    fills = [(key, price) for key, _, _, price in _fills(_drain(inbox))]
    assert fills == ([] if expected is None else [expected])
