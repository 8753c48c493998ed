"""The live stack through real ib_async against the TWS test gateway: the issue's scenarios.

Each test scripts 5-second bars into the gateway; the bot aggregates them into 1-minute strategy
bars (lookback 10), so eleven minutes of bars produce a LONG signal at 4990 with its bracket: stop at
4980 (USD 50 on one MES), target at 5005 (USD 75).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from adapters.ibkr.contracts import ContractError
from domain.commands import AlertKind, FillRecord, OrderIntentRecord, RoundTripRecord
from domain.engine import EngineState
from domain.events import FlattenRequested
from domain.position import ExitReason
from tests.support.live_bot import (
    QUIET_CLOSES,
    SIGNAL_CLOSE,
    SIGNAL_END,
    START,
    LiveBot,
    bot_settings,
    live_bot,
)
from tests.support.tws import TwsGateway

pytestmark = pytest.mark.timeout(60)


async def _enter_long(bot: LiveBot) -> tuple[str, str, str]:
    """Bars that make a LONG signal; the entry fills at once. Returns the (entry, stop, target) keys."""
    # The minute's last 5-second bar completes the signal bar: the bracket goes out at once.
    await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
    await bot.wait_for(lambda: bot.engine.state is EngineState.LONG, "the entry fill")
    intents = [r for r in bot.journal.records if isinstance(r, OrderIntentRecord)]
    keys = {r.role: r.key for r in intents}
    return keys["entry"], keys["stop"], keys["target"]


async def test_signal_bracket_fill_then_the_stop_takes_it_flat() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        entry, stop, target = await _enter_long(bot)
        parent, stop_order, target_order = (gateway.order_by_ref(k) for k in (entry, stop, target))
        assert parent is not None
        assert stop_order is not None
        assert target_order is not None
        # DESIGN §3: GTC children outside RTH in one OCA group; only the last one transmitted.
        assert (stop_order.order_type, stop_order.aux_price) == ("STP", Decimal("4980"))
        assert (target_order.order_type, target_order.lmt_price) == ("LMT", Decimal("5005"))
        for child in (stop_order, target_order):
            assert child.parent_id == parent.order_id
            assert (child.tif, child.outside_rth) == ("GTC", True)
            assert child.oca_group == stop_order.oca_group != ""
        assert [o.transmit for o in (parent, stop_order, target_order)] == [False, False, True]
        assert gateway.position(bot.con_id) == 1

        await bot.push([("4985", "4985", "4979.75", "4980")], at=START + SIGNAL_END)
        await bot.wait_for(lambda: bot.engine.state is EngineState.IDLE, "the stop fill")
        [trip] = [r.trip for r in bot.journal.records if isinstance(r, RoundTripRecord)]
        assert (trip.exit_reason, trip.entry_price, trip.exit_price) == (
            ExitReason.STOP,
            Decimal("4990"),
            Decimal("4980"),
        )
        assert trip.commissions == Decimal("1.24")  # IB's commission reports, both sides
        assert gateway.position(bot.con_id) == 0
        target_order = gateway.order_by_ref(target)
        assert target_order is not None
        assert target_order.status == "Cancelled"  # OCA
        assert bot.alerts(AlertKind.PROTECTIVE_EXIT)


async def test_the_target_takes_it_flat() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        await _enter_long(bot)
        await bot.push([("4995", "5005.25", "4995", "5005")], at=START + SIGNAL_END)
        await bot.wait_for(lambda: bot.engine.state is EngineState.IDLE, "the target fill")
        [trip] = [r.trip for r in bot.journal.records if isinstance(r, RoundTripRecord)]
        assert (trip.exit_reason, trip.exit_price) == (ExitReason.TARGET, Decimal("5005"))
        assert trip.net_pnl == Decimal("75") - Decimal("1.24")
        assert gateway.position(bot.con_id) == 0


async def test_a_rejected_bracket_leaves_the_engine_flat_and_alerted() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        gateway.faults.reject_next(201, "Order rejected - reason: margin")
        await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
        await bot.wait_for(lambda: bool(bot.alerts(AlertKind.ORDER_REJECTED)), "the rejection")
        await bot.settled()
        assert bot.engine.state is EngineState.IDLE
        assert bot.engine.position.is_flat
        assert gateway.position(bot.con_id) == 0
        assert "margin" in bot.alerts(AlertKind.ORDER_REJECTED)[0]
        assert not [r for r in bot.journal.records if isinstance(r, FillRecord)]


async def test_a_partial_fill_then_the_rest_books_two_executions() -> None:
    settings = None
    async with TwsGateway() as gateway:
        settings = bot_settings(
            gateway.port,
            QS_RISK__MAX_POSITION_SIZE="2",
            QS_RISK__STOP_LOSS_DOLLARS="100",
            QS_RISK__TAKE_PROFIT_DOLLARS="150",
        )
        async with live_bot(gateway, settings=settings) as bot:
            gateway.faults.partial_fill_next(1)
            await _enter_long(bot)
            await bot.wait_for(lambda: bot.engine.position.qty == 2, "both executions")
            fills = [r.fill for r in bot.journal.records if isinstance(r, FillRecord)]
            assert [f.qty for f in fills] == [1, 1]
            assert len({f.exec_id for f in fills}) == 2
            assert gateway.position(bot.con_id) == 2
            assert bot.engine.state is EngineState.LONG


@pytest.mark.parametrize("sequence", ["exec_first", "status_first", "commission_first"])
async def test_any_callback_order_books_the_same_fill(sequence: str) -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        gateway.faults.fill_sequence = sequence  # type: ignore[assignment]
        gateway.faults.duplicate_statuses = 2
        await _enter_long(bot)
        fills = [r.fill for r in bot.journal.records if isinstance(r, FillRecord)]
        assert len(fills) == 1
        assert fills[0].price == Decimal("4990")
        # ib_async drops a commission report that comes before its execution: the configured rate.
        assert fills[0].commission == Decimal("0.62")


async def test_a_fill_during_a_disconnect_is_booked_after_reconnect_without_a_second_order() -> (
    None
):
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        gateway.faults.hold_fills = True
        await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
        await bot.wait_for(lambda: len(gateway.orders) == 3, "the bracket at the gateway")
        entry = gateway.orders[0].order_ref
        await gateway.disconnect_clients()
        await gateway.fill_held(entry)  # at once: the bot cannot have reconnected yet
        await bot.wait_for(lambda: bot.session.reconnects == 1, "the reconnect")
        await bot.wait_for(lambda: bot.engine.state is EngineState.LONG, "the fill after reconnect")
        await bot.settled()
        assert len(gateway.orders) == 3  # nothing placed twice
        fills = [r.fill for r in bot.journal.records if isinstance(r, FillRecord)]
        assert [(f.order_key, f.qty) for f in fills] == [(entry, 1)]
        assert gateway.position(bot.con_id) == bot.engine.position.signed_qty == 1
        assert bot.engine.reconcile_required is None
        assert bot.engine.entry_gates == {}
        assert bot.session.reconnects == 1
        # Entries were gated from the disconnect until the reconnect had reconciled.
        gates = [r.detail for r in bot.order_events("entry_gate")]
        assert gates[-2:] == ["broker_link: disconnected from IB Gateway", "broker_link: open"]


async def test_1101_backfills_the_gap_and_no_bar_is_invented_or_repeated() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        t = await bot.push(["5000"] * 6, at=START)
        await gateway.send_error(
            1100, "Connectivity between IB and Trader Workstation has been lost."
        )
        await bot.wait_for(lambda: bool(bot.engine.entry_gates), "entries frozen on 1100")
        gateway.drop_realtime_subscriptions()
        t = await bot.push(["5001", "5002", "5003", "5004"], at=t, streamed=False)
        await gateway.send_error(1101, "Connectivity restored - data lost.")
        await bot.wait_for(
            lambda: bot.session.link_up and not bot.engine.entry_gates, "1101 handled"
        )
        t = await bot.push(["5005", "5006"], at=t)
        closes = [b.close for b in bot.seen.bars]
        assert closes == [5000.0] * 6 + [5001.0, 5002.0, 5003.0, 5004.0, 5005.0, 5006.0]
        epochs = [b.epoch for b in bot.seen.bars]
        assert epochs == sorted(set(epochs))
        assert bot.service.aggregator.stats.duplicates == 0
        assert bot.app.adapters.market_data().backfilled == 4
        assert bot.alerts(AlertKind.CONNECTION)[-1].startswith("IB connectivity restored")


async def test_a_restart_with_a_position_at_the_broker_reconciles_and_verifies_its_protection() -> (
    None
):
    async with TwsGateway() as gateway:
        async with live_bot(gateway) as bot:
            _entry, stop, target = await _enter_long(bot)
            snapshot = bot.engine.snapshot()
        # The bot is gone (no flatten); the bracket stays at the broker.
        async with live_bot(gateway, restore=snapshot) as bot:
            await bot.wait_for(
                lambda: bool(bot.order_events("protection_verified")), "verification"
            )
            [verified] = bot.order_events("protection_verified")
            assert stop in verified.detail
            assert target in verified.detail
            assert bot.engine.state is EngineState.LONG
            assert bot.engine.reconcile_required is None
            assert len(gateway.orders) == 3


async def test_a_restart_that_finds_the_stop_gone_closes_the_position() -> None:
    async with TwsGateway() as gateway:
        async with live_bot(gateway) as bot:
            _entry, stop, target = await _enter_long(bot)
            snapshot = bot.engine.snapshot()
        await gateway.cancel_by_broker(stop)
        async with live_bot(gateway, restore=snapshot) as bot:
            await bot.wait_for(lambda: gateway.position(bot.con_id) == 0, "the protective exit")
            await bot.wait_for(lambda: bot.engine.state is EngineState.IDLE, "flat")
            [trip] = [r.trip for r in bot.journal.records if isinstance(r, RoundTripRecord)]
            assert trip.exit_reason is ExitReason.PROTECTION_LOST
            target_order = gateway.order_by_ref(target)
            assert target_order is not None
            assert target_order.status == "Cancelled"  # OCA with the exit


async def test_a_stale_feed_alerts_once_and_resubscribes_but_a_weekend_is_quiet() -> None:
    async with TwsGateway() as gateway:
        settings = bot_settings(gateway.port, QS_SESSION__CALENDAR="cme_globex_equity")
        async with live_bot(gateway, settings=settings) as bot:
            await bot.push(["5000"] * 3, at=START)
            subscriptions = sum(1 for msg_id, _ in gateway.received if msg_id == 50)
            bot.clock.advance(timedelta(seconds=60))
            await bot.session.check_feed()
            bot.clock.advance(timedelta(seconds=5))
            await bot.session.check_feed()  # still stale: no second alert
            assert len(bot.alerts(AlertKind.STALE_DATA)) == 1
            await bot.wait_for(
                lambda: sum(1 for m, _ in gateway.received if m == 50) > subscriptions,
                "a new real-time bar request",
            )
            # Saturday: the market is closed, silence is expected.
            bot.clock.set(START + timedelta(days=4))
            await bot.session.check_feed()
            assert len(bot.alerts(AlertKind.STALE_DATA)) == 1


async def test_roll_week_trades_the_next_contract_and_switches_when_the_roll_starts() -> None:
    sunday_before_roll = START.replace(month=12, day=13, hour=22)  # 17:00 New York, Z6 rolls 18:00
    async with TwsGateway(now=lambda: sunday_before_roll) as gateway:
        async with live_bot(gateway, start=sunday_before_roll) as bot:
            assert bot.session.contract is not None
            assert bot.session.contract.local_symbol == "MESZ6"
            bot.clock.advance(timedelta(hours=1, minutes=1))  # the roll has started
            await bot.session.check_roll(force=True)
            assert bot.session.contract.local_symbol == "MESH7"
            assert bot.alerts(AlertKind.CONNECTION)[-1] == "rolled from MESZ6 to MESH7"
            new = str(bot.con_id)
            await bot.wait_for(
                lambda: any(m == 50 and new in f for m, f in gateway.received),
                "real-time bars of the new contract",
            )
        monday = sunday_before_roll + timedelta(hours=20)
        async with live_bot(gateway, start=monday) as bot:
            assert bot.session.contract is not None
            assert bot.session.contract.local_symbol == "MESH7"


async def test_a_stop_cancelled_by_the_broker_while_holding_closes_the_position() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        _entry, stop, target = await _enter_long(bot)
        bot.clock.advance(timedelta(seconds=1))
        await gateway.cancel_by_broker(stop, 202, "Order Canceled - reason: risk")
        await bot.wait_for(lambda: gateway.position(bot.con_id) == 0, "the protective exit")
        await bot.wait_for(lambda: bot.engine.state is EngineState.IDLE, "flat")
        [trip] = [r.trip for r in bot.journal.records if isinstance(r, RoundTripRecord)]
        assert trip.exit_reason is ExitReason.PROTECTION_LOST
        assert any("stop leg" in text for text in bot.alerts(AlertKind.ANOMALY))
        target_order = gateway.order_by_ref(target)
        assert target_order is not None
        assert target_order.status == "Cancelled"


async def test_an_entry_still_working_at_the_next_bar_is_cancelled_with_its_legs() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        gateway.faults.hold_fills = True
        t = await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
        await bot.wait_for(lambda: len(gateway.orders) == 3, "the bracket")
        await bot.push_minutes([SIGNAL_CLOSE], at=t)  # the next bar closes: the entry is overdue
        await bot.wait_for(lambda: bot.engine.state is EngineState.IDLE, "the cancel")
        assert {o.status for o in gateway.orders} == {"Cancelled"}
        assert gateway.position(bot.con_id) == 0
        assert len(bot.order_events("cancelled")) >= 1


@pytest.mark.parametrize(
    "held",
    [
        # IB acknowledged the entry; its answer to the cancel, 10148 "cannot be cancelled, state:
        # Filled", comes before the fill's reports, and ib_async marks the order Cancelled on it.
        "hold_fill_reports",
        # Nothing from IB yet (the bracket's parent still PendingSubmit, transmit False): ib_async
        # marks the order Cancelled the moment we ask to cancel it, without a word from IB.
        "hold_order_reports",
    ],
)
async def test_an_entry_that_filled_while_its_cancel_was_on_the_way_is_held_not_forgotten(
    held: str,
) -> None:
    """Either way the broker asks IB (executions, open orders) before the engine hears a word: the
    engine holds the position, nothing is booked twice, and no reconcile is needed."""
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        setattr(gateway.faults, held, True)  # the entry fills at IB; the reports wait
        t = await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
        await bot.wait_for(lambda: len(gateway.orders) == 3, "the bracket")
        entry = gateway.orders[0]
        assert entry.status == "Filled"
        await bot.push_minutes([SIGNAL_CLOSE], at=t)  # the next bar closes: the entry looks overdue
        await bot.wait_for(
            lambda: any("10148" in fields for _, fields in gateway.sent), "IB's refusal"
        )
        await bot.wait_for(lambda: bot.engine.state is EngineState.LONG, "the fill, asked of IB")
        assert await gateway.release_order_reports() > 0  # the reports, late: nothing booked twice
        await bot.settled()
        fills = [r.fill for r in bot.journal.records if isinstance(r, FillRecord)]
        assert [(f.order_key, f.qty) for f in fills] == [(entry.order_ref, 1)]
        assert bot.engine.status().reconcile_required is None
        assert bot.engine.state is EngineState.LONG
        assert not bot.order_events("cancelled")
        assert not bot.order_events("rejected")
        assert gateway.position(bot.con_id) == 1


async def test_an_operator_flatten_exits_in_the_oca_group_and_the_legs_go() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        _entry, stop, target = await _enter_long(bot)
        await bot.service.handle(FlattenRequested(bot.clock.now(), "operator"))
        await bot.wait_for(lambda: bot.engine.state is EngineState.IDLE, "the exit fill")
        [trip] = [r.trip for r in bot.journal.records if isinstance(r, RoundTripRecord)]
        assert trip.exit_reason is ExitReason.OPERATOR
        exit_order = gateway.orders[-1]
        assert (exit_order.order_type, exit_order.action) == ("MKT", "SELL")
        assert exit_order.oca_group == gateway.order_by_ref(stop).oca_group  # type: ignore[union-attr]
        assert {gateway.order_by_ref(k).status for k in (stop, target)} == {"Cancelled"}  # type: ignore[union-attr]
        assert gateway.position(bot.con_id) == 0


async def test_the_broker_snapshot_speaks_for_ib() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        _entry, stop, target = await _enter_long(bot)
        broker = bot.session.broker
        snapshot = await broker.snapshot(None)
        assert snapshot.position == 1
        assert {o.key for o in snapshot.open_orders} == {stop, target}
        assert {(o.order_type, o.price) for o in snapshot.open_orders} == {
            ("STP", "4980.0"),
            ("LMT", "5005.0"),
        }
        assert [f.price for f in snapshot.executions] == [Decimal("4990")]


async def test_a_configured_expiry_trades_that_quarterly_and_an_unlisted_one_is_refused() -> None:
    async with TwsGateway() as gateway:
        settings = bot_settings(gateway.port, QS_INSTRUMENT__EXPIRY="202703")
        async with live_bot(gateway, settings=settings) as bot:
            assert bot.session.contract is not None
            assert bot.session.contract.local_symbol == "MESH7"
        settings = bot_settings(gateway.port, QS_INSTRUMENT__EXPIRY="202609")
        with pytest.raises(ContractError, match="no MES contract expires in 202609"):
            async with live_bot(gateway, settings=settings):
                pass
