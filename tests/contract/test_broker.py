"""The Broker port: one suite, run on the simulated broker and on the IB broker over real ib_async
against the TWS test gateway.

Each test gets a venue: the broker, the inbox its order events land in, and a market that makes the
venue trade. ``market.trade(open, high, low, close)`` is one 5-second bar: market orders resting at
the venue fill at its open, then working stops and targets are matched against its range. On the
simulated venue the bar is fed to the broker; on IB the gateway holds market orders
(``faults.hold_fills``) until the bar's open fills them, then the bar is pushed, which fills the legs
it reaches. Events reach the inbox synchronously on the simulated venue and through the socket on IB,
so every test polls for what it waits for.

Where the venues genuinely differ today, the test says so and pins each venue's answer:

* a rejected bracket: the simulated broker rejects all three orders; IB rejects the parent and
  cancels its children (they were never acknowledged);
* a cancel of a key the venue never held: IB answers that key cancelled ("not working at the
  broker"); the simulated broker answers nothing (it forgets ended orders, so it cannot tell a key it
  never held from one that ended, and for an ended one both venues rightly say nothing);
* prices of working orders are text of the same number, not the same text (IB's come from floats,
  "4980.0"): compared as Decimals.

Flatten is tested the way the engine flattens: a market PlaceExit in the bracket's OCA group, and
with the engine's own commands, its events fed back until it is flat.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol, TypeVar

import pytest
from ib_async import Future

from adapters.ibkr.broker import IbkrBroker
from adapters.ibkr.client import IbClient
from adapters.simulated.broker import SimulatedBroker
from adapters.simulated.clock import ManualClock
from application.ports import Broker, BrokerError, BrokerOrder, BrokerSnapshot
from domain.bar import Bar
from domain.commands import CancelOrders, EngineCommand, PlaceBracket, PlaceExit, PlaceProtective
from domain.engine import Engine, EngineState
from domain.events import (
    EngineEvent,
    FlattenRequested,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    ProtectiveExitFilled,
    ProtectiveKind,
)
from domain.position import Fill
from domain.values import MES, Action, Side
from tests.support.builders import bar, engine, z
from tests.support.tws import GatewayBar, TwsGateway, mes_future

pytestmark = pytest.mark.timeout(120)

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 New York
STEP = timedelta(seconds=5)
FRONT = mes_future(2026, 12)
COMMISSION = Decimal("0.62")  # per contract and side, on both venues
DEADLINE = 30.0
"""Seconds to wait for an event: generous, so that a loaded machine is slow, not failing."""

E = TypeVar("E")


class Inbox:
    """The order event sink: keeps every event, in order."""

    def __init__(self) -> None:
        self.events: list[EngineEvent] = []

    def put(self, event: EngineEvent) -> None:
        self.events.append(event)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def keys(self, kind: type[OrderAccepted | OrderCancelled | OrderRejected]) -> list[str]:
        return [e.key for e in self.of(kind)]

    def fills(self) -> list[Fill]:
        """Every fill, entries and exits (OrderFilled) and bracket legs (ProtectiveExitFilled)."""
        return [e.fill for e in self.events if isinstance(e, OrderFilled | ProtectiveExitFilled)]


class Market(Protocol):
    """What makes a venue trade, and its scripted faults."""

    def now(self) -> datetime:
        """The start of the next bar :meth:`trade` makes."""
        ...

    async def trade(self, open_: str, high: str, low: str, close: str) -> None:
        """One 5-second bar: resting market orders fill at its open, then the legs it reaches."""
        ...

    def reject_next(self, code: int, reason: str) -> None: ...

    def split_next_fill(self, *chunks: int) -> None: ...

    async def settle(self, broker: Broker) -> None:
        """Return once every event the venue has sent so far is in the inbox."""
        ...

    def cut_link(self) -> None:
        """The broker loses its connection to the venue."""
        ...


@dataclass
class Venue:
    name: str
    broker: Broker
    inbox: Inbox
    market: Market
    key_seq: list[int] = field(default_factory=lambda: [0])

    async def until(self, predicate: Callable[[], bool], what: str) -> None:
        """Poll until ``predicate()`` holds; fail naming ``what`` after :data:`DEADLINE` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while not predicate():
            if loop.time() >= deadline:
                raise AssertionError(
                    f"{self.name}: still waiting for {what} after {DEADLINE} s; "
                    f"events: {self.inbox.events}"
                )
            await asyncio.sleep(0.005)

    async def settled(self) -> None:
        """Wait until the venue has sent everything still on its way (see :meth:`Market.settle`)."""
        await self.market.settle(self.broker)

    def base_key(self) -> str:
        self.key_seq[0] += 1
        return f"QS-{int(START.timestamp())}-{self.key_seq[0]}"


class SimulatedMarket:
    def __init__(self, broker: SimulatedBroker) -> None:
        self._broker = broker
        self._t = START

    def now(self) -> datetime:
        return self._t

    async def trade(self, open_: str, high: str, low: str, close: str) -> None:
        prices = (float(open_), float(high), float(low), float(close))
        self._broker.on_bar(Bar(self._t, 5, *prices, 10))
        self._t += STEP

    def reject_next(self, code: int, reason: str) -> None:
        self._broker.reject_next(code, reason)

    def split_next_fill(self, *chunks: int) -> None:
        self._broker.partial_fills(*chunks)

    async def settle(self, broker: Broker) -> None:
        """Nothing to wait for: the simulated broker reports synchronously."""

    def cut_link(self) -> None:
        self._broker.connected = False


class GatewayMarket:
    def __init__(self, gateway: TwsGateway, clock: ManualClock, client: IbClient) -> None:
        self._gateway = gateway
        self._clock = clock
        self._client = client
        self._t = START

    def now(self) -> datetime:
        return self._t

    async def trade(self, open_: str, high: str, low: str, close: str) -> None:
        gateway = self._gateway
        self._clock.set(self._t)  # the gateway's time: market orders fill at the bar's start
        for order in [o for o in gateway.orders if o.held and o.is_working]:
            await gateway.fill_held(order.order_ref, Decimal(open_))
        self._clock.set(self._t + STEP)  # a leg reached inside the bar fills at its end
        bar = GatewayBar(self._t, Decimal(open_), Decimal(high), Decimal(low), Decimal(close))
        await gateway.push_bar(FRONT.con_id, bar)
        self._t += STEP

    def reject_next(self, code: int, reason: str) -> None:
        self._gateway.faults.reject_next(code, reason)

    def split_next_fill(self, *chunks: int) -> None:
        self._gateway.faults.partial_fill_next(*chunks)

    async def settle(self, broker: Broker) -> None:
        """A round trip to IB: its answers come after every report it sent before them."""
        await broker.snapshot(None)

    def cut_link(self) -> None:
        self._client.disconnect()


async def _simulated() -> AsyncIterator[Venue]:
    inbox = Inbox()
    broker = SimulatedBroker(instrument=MES, sink=inbox, commission_per_side=COMMISSION)
    yield Venue("simulated", broker, inbox, SimulatedMarket(broker))


async def _ibkr() -> AsyncIterator[Venue]:
    clock = ManualClock(START)
    inbox = Inbox()
    async with TwsGateway(now=clock.now, contracts=[FRONT], commission=COMMISSION) as gateway:
        gateway.faults.hold_fills = True  # market orders wait for the market's next bar
        client = IbClient(
            host="127.0.0.1",
            port=gateway.port,
            client_id=21,
            connect_timeout_s=DEADLINE,
            request_timeout_s=DEADLINE,
        )
        broker = IbkrBroker(
            client=client,
            sink=inbox,
            instrument=MES,
            clock=clock,
            key_prefix="QS",
            commission_per_contract=Decimal("9.99"),  # never IB's: a fill booked at it shows
            commission_wait_s=DEADLINE,
        )
        await client.connect()
        broker.use_contract(Future(conId=FRONT.con_id, exchange="CME", currency="USD"))
        try:
            yield Venue("ibkr", broker, inbox, GatewayMarket(gateway, clock, client))
        finally:
            await broker.close()
            client.disconnect()


@pytest.fixture(params=["simulated", "ibkr"])
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[Venue]:
    venues = {"simulated": _simulated, "ibkr": _ibkr}
    async for made in venues[request.param]():
        yield made


# -- helpers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    entry: str
    stop: str
    target: str
    oca: str


def _bracket(
    venue: Venue, side: Side = Side.LONG, qty: int = 1, stop: str = "4980", target: str = "5005"
) -> tuple[PlaceBracket, Keys]:
    base = venue.base_key()
    keys = Keys(base + "-E", base + "-S", base + "-T", base)
    order = PlaceBracket(
        entry_key=keys.entry,
        stop_key=keys.stop,
        target_key=keys.target,
        side=side,
        qty=qty,
        reference_price=Decimal("4990"),
        stop_price=Decimal(stop),
        target_price=Decimal(target),
        oca_group=keys.oca,
        ts=venue.market.now(),
    )
    return order, keys


async def _place(
    venue: Venue, side: Side = Side.LONG, qty: int = 1, stop: str = "4980", target: str = "5005"
) -> Keys:
    """Place a bracket and wait until the venue has accepted its three orders."""
    order, keys = _bracket(venue, side, qty, stop, target)
    await venue.broker.place_bracket(order)
    await venue.until(
        lambda: {keys.entry, keys.stop, keys.target} <= set(venue.inbox.keys(OrderAccepted)),
        "the bracket's acceptance",
    )
    return keys


async def _enter_long(venue: Venue, qty: int = 1) -> Keys:
    """A long bracket whose entry has filled at 4990, with its legs working."""
    keys = await _place(venue, qty=qty)
    await venue.market.trade("4990", "4990.25", "4989.75", "4990")
    await venue.until(lambda: _filled(venue, keys.entry) == qty, "the entry fill")
    return keys


def _filled(venue: Venue, key: str) -> int:
    return sum(f.qty for f in venue.inbox.fills() if f.order_key == key)


def _working(orders: tuple[BrokerOrder, ...]) -> dict[str, tuple[str, int, str, Decimal | None]]:
    """Working orders by key: (action, qty, type, price as a number)."""
    return {
        o.key: (o.action, o.qty, o.order_type, None if o.price is None else Decimal(o.price))
        for o in orders
    }


async def _snapshot(venue: Venue, since: datetime | None = None) -> BrokerSnapshot:
    """The broker's snapshot, checked against position() and working_orders() asked beside it."""
    snapshot = await venue.broker.snapshot(since)
    assert await venue.broker.position() == snapshot.position
    assert _working(venue.broker.working_orders()) == _working(snapshot.open_orders)
    return snapshot


# -- brackets and fills ----------------------------------------------------------------------------


async def test_a_bracket_is_accepted_and_its_three_orders_work_with_their_keys_and_prices(
    venue: Venue,
) -> None:
    keys = await _place(venue)
    await venue.settled()
    assert sorted(venue.inbox.keys(OrderAccepted)) == sorted([keys.entry, keys.stop, keys.target])
    assert venue.inbox.fills() == []
    snapshot = await _snapshot(venue)
    assert snapshot.position == 0
    assert snapshot.executions == ()
    assert _working(snapshot.open_orders) == {
        keys.entry: ("BUY", 1, "MKT", None),
        keys.stop: ("SELL", 1, "STP", Decimal("4980")),
        keys.target: ("SELL", 1, "LMT", Decimal("5005")),
    }


async def test_the_entry_fills_at_the_next_open_with_commission_and_the_legs_protect_it(
    venue: Venue,
) -> None:
    keys = await _enter_long(venue)
    [entry] = venue.inbox.of(OrderFilled)
    accepted = next(e for e in venue.inbox.of(OrderAccepted) if e.key == keys.entry)
    assert venue.inbox.events.index(accepted) < venue.inbox.events.index(entry)
    fill = entry.fill
    assert (fill.order_key, fill.action, fill.qty) == (keys.entry, Action.BUY, 1)
    assert (fill.price, fill.commission, fill.ts) == (Decimal("4990"), COMMISSION, START)
    assert fill.exec_id
    snapshot = await _snapshot(venue)
    assert snapshot.position == 1
    assert snapshot.executions == (fill,)
    assert _working(snapshot.open_orders) == {
        keys.stop: ("SELL", 1, "STP", Decimal("4980")),
        keys.target: ("SELL", 1, "LMT", Decimal("5005")),
    }
    assert not venue.inbox.of(ProtectiveExitFilled)


async def test_a_short_bracket_sells_first_and_protects_above_and_below(venue: Venue) -> None:
    keys = await _place(venue, side=Side.SHORT, stop="5000", target="4975")
    assert _working(venue.broker.working_orders()) == {
        keys.entry: ("SELL", 1, "MKT", None),
        keys.stop: ("BUY", 1, "STP", Decimal("5000")),
        keys.target: ("BUY", 1, "LMT", Decimal("4975")),
    }
    await venue.market.trade("4990", "4990", "4990", "4990")
    await venue.until(lambda: _filled(venue, keys.entry) == 1, "the entry fill")
    await venue.market.trade("4980", "4980", "4974.75", "4975")  # through the target
    await venue.until(lambda: bool(venue.inbox.of(ProtectiveExitFilled)), "the target fill")
    [exit_] = venue.inbox.of(ProtectiveExitFilled)
    assert exit_.kind is ProtectiveKind.TARGET
    assert (exit_.fill.order_key, exit_.fill.action) == (keys.target, Action.BUY)
    assert (exit_.fill.qty, exit_.fill.price) == (1, Decimal("4975"))
    await venue.until(lambda: keys.stop in venue.inbox.keys(OrderCancelled), "the OCA cancel")
    assert (await _snapshot(venue)).position == 0


async def test_a_partial_fill_reports_each_execution_and_the_legs_cover_the_whole(
    venue: Venue,
) -> None:
    venue.market.split_next_fill(1)
    keys = await _enter_long(venue, qty=2)
    fills = [e.fill for e in venue.inbox.of(OrderFilled)]
    assert [(f.order_key, f.qty, f.price) for f in fills] == [
        (keys.entry, 1, Decimal("4990")),
        (keys.entry, 1, Decimal("4990")),
    ]
    assert len({f.exec_id for f in fills}) == 2
    assert [f.commission for f in fills] == [COMMISSION, COMMISSION]
    snapshot = await _snapshot(venue)
    assert snapshot.position == 2
    assert len(snapshot.executions) == 2
    assert {k: v[1] for k, v in _working(snapshot.open_orders).items()} == {
        keys.stop: 2,
        keys.target: 2,
    }
    await venue.market.trade("4985", "4985", "4979.75", "4980")
    await venue.until(lambda: bool(venue.inbox.of(ProtectiveExitFilled)), "the stop fill")
    [stop] = [e.fill for e in venue.inbox.of(ProtectiveExitFilled)]
    assert (stop.order_key, stop.qty, stop.commission) == (keys.stop, 2, 2 * COMMISSION)
    assert (await _snapshot(venue)).position == 0


async def test_the_stop_fills_as_a_protective_exit_and_oca_cancels_the_target(
    venue: Venue,
) -> None:
    keys = await _enter_long(venue)
    await venue.market.trade("4985", "4985", "4979.75", "4980")
    await venue.until(lambda: bool(venue.inbox.of(ProtectiveExitFilled)), "the stop fill")
    await venue.until(lambda: keys.target in venue.inbox.keys(OrderCancelled), "the OCA cancel")
    [exit_] = venue.inbox.of(ProtectiveExitFilled)
    assert exit_.kind is ProtectiveKind.STOP
    fill = exit_.fill
    assert (fill.order_key, fill.action, fill.qty) == (keys.stop, Action.SELL, 1)
    assert (fill.price, fill.commission) == (Decimal("4980"), COMMISSION)
    snapshot = await _snapshot(venue)
    assert snapshot.position == 0
    assert snapshot.open_orders == ()
    assert keys.stop not in venue.inbox.keys(OrderCancelled)


async def test_the_target_fills_as_a_protective_exit_and_oca_cancels_the_stop(
    venue: Venue,
) -> None:
    keys = await _enter_long(venue)
    await venue.market.trade("4995", "5006", "4995", "5005")
    await venue.until(lambda: bool(venue.inbox.of(ProtectiveExitFilled)), "the target fill")
    await venue.until(lambda: keys.stop in venue.inbox.keys(OrderCancelled), "the OCA cancel")
    [exit_] = venue.inbox.of(ProtectiveExitFilled)
    assert exit_.kind is ProtectiveKind.TARGET
    assert (exit_.fill.order_key, exit_.fill.price) == (keys.target, Decimal("5005"))
    snapshot = await _snapshot(venue)
    assert (snapshot.position, snapshot.open_orders) == (0, ())


async def test_a_bar_between_the_legs_fills_nothing(venue: Venue) -> None:
    keys = await _enter_long(venue)
    await venue.market.trade("4990", "5004.75", "4980.25", "4995")
    await venue.settled()
    assert _filled(venue, keys.stop) == _filled(venue, keys.target) == 0
    assert (await _snapshot(venue)).position == 1


# -- rejects ---------------------------------------------------------------------------------------


async def test_a_rejected_bracket_reports_the_reason_and_nothing_works_or_fills(
    venue: Venue,
) -> None:
    venue.market.reject_next(201, "Order rejected - reason: margin")
    order, keys = _bracket(venue)
    await venue.broker.place_bracket(order)
    await venue.until(lambda: keys.entry in venue.inbox.keys(OrderRejected), "the rejection")
    [rejected] = [e for e in venue.inbox.of(OrderRejected) if e.key == keys.entry]
    assert rejected.code == 201
    assert "margin" in rejected.reason
    # The children end too; how differs (see the module's docstring).
    children = {keys.stop, keys.target}
    ended_as = OrderRejected if venue.name == "simulated" else OrderCancelled
    await venue.until(lambda: children <= set(venue.inbox.keys(ended_as)), "the children's end")
    assert keys.entry not in venue.inbox.keys(OrderAccepted)
    await venue.market.trade("4990", "5010", "4970", "4990")
    await venue.settled()
    assert venue.inbox.fills() == []
    snapshot = await _snapshot(venue)
    assert (snapshot.position, snapshot.open_orders, snapshot.executions) == (0, (), ())


async def test_a_rejected_exit_leaves_the_position_and_its_legs(venue: Venue) -> None:
    keys = await _enter_long(venue)
    venue.market.reject_next(201, "Order rejected - reason: no trading permissions")
    exit_key = venue.base_key() + "-X"
    exit_ = PlaceExit(exit_key, Action.SELL, 1, "operator", keys.oca, None, venue.market.now())
    await venue.broker.place_exit(exit_)
    await venue.until(lambda: exit_key in venue.inbox.keys(OrderRejected), "the rejection")
    [rejected] = venue.inbox.of(OrderRejected)
    assert (rejected.code, "permissions" in rejected.reason) == (201, True)
    snapshot = await _snapshot(venue)
    assert snapshot.position == 1
    assert set(_working(snapshot.open_orders)) == {keys.stop, keys.target}


# -- cancels ---------------------------------------------------------------------------------------


async def test_cancelling_a_working_entry_takes_its_legs_with_it(venue: Venue) -> None:
    keys = await _place(venue)
    await venue.broker.cancel(CancelOrders((keys.entry,), "entry overdue", venue.market.now()))
    every = {keys.entry, keys.stop, keys.target}
    await venue.until(lambda: every <= set(venue.inbox.keys(OrderCancelled)), "the cancels")
    await venue.market.trade("4990", "5010", "4970", "4990")
    await venue.settled()
    assert venue.inbox.fills() == []
    assert sorted(venue.inbox.keys(OrderCancelled)) == sorted(every)  # each once
    snapshot = await _snapshot(venue)
    assert (snapshot.position, snapshot.open_orders) == (0, ())


async def test_cancelling_the_legs_leaves_the_position_unprotected(venue: Venue) -> None:
    keys = await _enter_long(venue)
    legs = (keys.stop, keys.target)
    await venue.broker.cancel(CancelOrders(legs, "operator", venue.market.now()))
    await venue.until(lambda: set(legs) <= set(venue.inbox.keys(OrderCancelled)), "the cancels")
    await venue.market.trade("4985", "5010", "4970", "4990")  # through both prices
    await venue.settled()
    assert not venue.inbox.of(ProtectiveExitFilled)
    snapshot = await _snapshot(venue)
    assert (snapshot.position, snapshot.open_orders) == (1, ())


async def test_a_lost_stop_placed_again_protects_the_position_in_the_bracket_s_oca_group(
    venue: Venue,
) -> None:
    keys = await _enter_long(venue)
    await venue.broker.cancel(CancelOrders((keys.stop,), "lost", venue.market.now()))
    await venue.until(lambda: keys.stop in venue.inbox.keys(OrderCancelled), "the lost stop")
    again = venue.base_key() + "-S"
    await venue.broker.place_protective(
        PlaceProtective(
            again,
            ProtectiveKind.STOP,
            Action.SELL,
            1,
            Decimal("4980"),
            keys.oca,
            venue.market.now(),
        )
    )
    await venue.until(lambda: again in venue.inbox.keys(OrderAccepted), "the new stop's acceptance")
    assert _working(venue.broker.working_orders()) == {
        again: ("SELL", 1, "STP", Decimal("4980")),
        keys.target: ("SELL", 1, "LMT", Decimal("5005")),
    }
    await venue.market.trade("4985", "4985", "4979.75", "4980")  # through the new stop
    await venue.until(lambda: bool(venue.inbox.of(ProtectiveExitFilled)), "the stop fill")
    await venue.until(lambda: keys.target in venue.inbox.keys(OrderCancelled), "the OCA cancel")
    [exit_] = venue.inbox.of(ProtectiveExitFilled)
    assert exit_.kind is ProtectiveKind.STOP
    assert (exit_.fill.order_key, exit_.fill.price, exit_.fill.qty) == (again, Decimal("4980"), 1)
    snapshot = await _snapshot(venue)
    assert (snapshot.position, snapshot.open_orders) == (0, ())


async def test_cancelling_a_key_the_venue_does_not_hold_disturbs_nothing(venue: Venue) -> None:
    keys = await _place(venue)
    unknown = "QS-1-999-E"
    await venue.broker.cancel(CancelOrders((unknown,), "stale", venue.market.now()))
    await venue.settled()
    # IB says it is as cancelled as it will get; the simulated broker says nothing (see above).
    expected = [unknown] if venue.name == "ibkr" else []
    assert venue.inbox.keys(OrderCancelled) == expected
    assert not venue.inbox.of(OrderRejected)
    assert set(_working(venue.broker.working_orders())) == {keys.entry, keys.stop, keys.target}
    await venue.market.trade("4990", "4990", "4990", "4990")
    await venue.until(lambda: _filled(venue, keys.entry) == 1, "the entry fill")


async def test_cancelling_an_order_that_already_filled_changes_nothing(venue: Venue) -> None:
    keys = await _enter_long(venue)
    await venue.broker.cancel(CancelOrders((keys.entry,), "entry overdue", venue.market.now()))
    await venue.settled()
    assert venue.inbox.keys(OrderCancelled) == []
    snapshot = await _snapshot(venue)
    assert snapshot.position == 1
    assert set(_working(snapshot.open_orders)) == {keys.stop, keys.target}


# -- no link ---------------------------------------------------------------------------------------


async def test_without_a_link_every_order_is_refused_with_a_broker_error(venue: Venue) -> None:
    keys = await _enter_long(venue)
    venue.market.cut_link()
    order, _ = _bracket(venue)
    exit_ = PlaceExit(keys.entry + "X", Action.SELL, 1, "operator", keys.oca, None, START)
    with pytest.raises(BrokerError):
        await venue.broker.place_bracket(order)
    with pytest.raises(BrokerError):
        await venue.broker.place_exit(exit_)
    with pytest.raises(BrokerError):
        await venue.broker.cancel(CancelOrders((keys.stop,), "operator", START))
    with pytest.raises(BrokerError):
        await venue.broker.snapshot(None)
    assert not [e for e in venue.inbox.events if isinstance(e, OrderRejected | OrderCancelled)]
    assert len(venue.inbox.of(OrderAccepted)) == 3  # the first bracket's, and no more


# -- flatten: the engine's exit in the bracket's OCA group -----------------------------------------


async def test_a_flatten_exit_fills_at_the_next_open_and_oca_cancels_the_legs(
    venue: Venue,
) -> None:
    keys = await _enter_long(venue)
    exit_key = venue.base_key() + "-X"
    exit_ = PlaceExit(exit_key, Action.SELL, 1, "operator", keys.oca, None, venue.market.now())
    await venue.broker.place_exit(exit_)
    await venue.until(lambda: exit_key in venue.inbox.keys(OrderAccepted), "the exit's acceptance")
    assert (await _snapshot(venue)).position == 1  # a market exit waits for the market
    await venue.market.trade("5000", "5000.25", "4999.75", "5000")
    await venue.until(lambda: _filled(venue, exit_key) == 1, "the exit fill")
    legs = {keys.stop, keys.target}
    await venue.until(lambda: legs <= set(venue.inbox.keys(OrderCancelled)), "the OCA cancels")
    [exit_fill] = [e.fill for e in venue.inbox.of(OrderFilled) if e.fill.order_key == exit_key]
    assert (exit_fill.action, exit_fill.price, exit_fill.commission) == (
        Action.SELL,
        Decimal("5000"),
        COMMISSION,
    )
    assert not venue.inbox.of(ProtectiveExitFilled)
    snapshot = await _snapshot(venue)
    assert (snapshot.position, snapshot.open_orders) == (0, ())


# -- executions since T ----------------------------------------------------------------------------


async def test_executions_since_a_time_are_those_at_or_after_it(venue: Venue) -> None:
    keys = await _enter_long(venue)  # fills at START
    await venue.market.trade("4985", "4985", "4979.75", "4980")  # the stop, inside the next bar
    await venue.until(lambda: bool(venue.inbox.of(ProtectiveExitFilled)), "the stop fill")
    entry, stop = venue.inbox.fills()
    assert (entry.order_key, stop.order_key) == (keys.entry, keys.stop)
    assert entry.ts == START < stop.ts <= START + 2 * STEP
    assert (await _snapshot(venue)).executions == (entry, stop)
    assert (await _snapshot(venue, since=START)).executions == (entry, stop)
    assert (await _snapshot(venue, since=START + timedelta(seconds=1))).executions == (stop,)
    assert (await _snapshot(venue, since=stop.ts + timedelta(seconds=1))).executions == ()


async def _carry_out(venue: Venue, commands: list[EngineCommand]) -> None:
    """The engine's orders, sent to the venue (its journal records and alerts are not ours here)."""
    for command in commands:
        if isinstance(command, PlaceBracket):
            await venue.broker.place_bracket(command)
        elif isinstance(command, PlaceExit):
            await venue.broker.place_exit(command)
        elif isinstance(command, CancelOrders):
            await venue.broker.cancel(command)


async def _follow(venue: Venue, eng: Engine, done: Callable[[Engine], bool], what: str) -> None:
    """Hand the venue's events to the engine, carrying out its answers, until ``done(eng)``."""
    seen = 0

    def caught_up() -> bool:
        return seen == len(venue.inbox.events)

    while True:
        while not caught_up():
            event = venue.inbox.events[seen]
            seen += 1
            await _carry_out(venue, eng.handle(event))
        if done(eng):
            return
        await venue.until(lambda: not caught_up(), what)


async def test_the_engines_flatten_goes_out_and_fills_and_leaves_engine_and_venue_flat(
    venue: Venue,
) -> None:
    eng = engine()  # stop USD 50, target USD 75 on one MES
    signal = bar(START - timedelta(minutes=5), 4990.0)
    await _carry_out(venue, eng.on_bar(signal, z(-2.5)))
    placed = set(eng.working_orders)
    await venue.until(lambda: placed <= set(venue.inbox.keys(OrderAccepted)), "the acceptance")
    await venue.market.trade("4990", "4990", "4990", "4990")
    await _follow(venue, eng, lambda e: e.state is EngineState.LONG, "the engine long")
    assert set(_working(venue.broker.working_orders())) == set(eng.working_orders)  # the legs
    commands = eng.handle(FlattenRequested(venue.market.now(), "operator"))
    [exit_] = [c for c in commands if isinstance(c, PlaceExit)]
    await _carry_out(venue, commands)
    await venue.until(lambda: exit_.key in venue.inbox.keys(OrderAccepted), "the exit's acceptance")
    await venue.market.trade("5000", "5000.25", "4999.75", "5000")
    await _follow(venue, eng, lambda e: e.state is EngineState.IDLE, "the engine flat")
    await _follow(venue, eng, lambda e: not e.working_orders, "the legs gone")
    assert eng.position.is_flat
    assert eng.reconcile_required is None
    assert _filled(venue, exit_.key) == 1
    snapshot = await _snapshot(venue)
    assert (snapshot.position, snapshot.open_orders) == (0, ())
