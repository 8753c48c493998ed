"""The bracket is verified, not assumed (issue 16 item 5): a stop or target IB holds as DAY (an order
preset, with its 10349 on which ib_async 2.1 marks the order Cancelled) is found in IB's open
orders after the entry fills and modified back to GTC and outside regular hours."""

from __future__ import annotations

import pytest

from domain.commands import AlertKind, RoundTripRecord
from domain.engine import EngineState
from domain.position import ExitReason
from tests.support.live_bot import QUIET_CLOSES, SIGNAL_CLOSE, START, bot_settings, live_bot
from tests.support.tws import TwsGateway
from tests.support.tws.gateway import GatewayOrder

pytestmark = pytest.mark.timeout(120)


async def test_day_children_from_a_preset_are_put_back_to_gtc_after_the_entry_fills() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        gateway.faults.day_preset = True
        await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
        await bot.wait_for(lambda: gateway.position(bot.con_id) == 1, "the entry")
        legs = [o for o in gateway.orders if o.parent_id]
        assert len(legs) == 2
        await bot.wait_for(
            lambda: all(o.tif == "GTC" and o.outside_rth for o in legs), "the legs put right"
        )
        await bot.settled()
        fixed = [a for a in bot.alerts(AlertKind.ANOMALY) if a.startswith("bracket checked")]
        assert len(fixed) == 2
        assert all("time in force DAY" in a and "modified to GTC" in a for a in fixed)
        assert all(o.is_working for o in legs)
        assert bot.engine.state is EngineState.LONG
        assert not bot.order_events("cancelled")  # the 10349s ended nothing
        assert len(gateway.orders) == 3  # modified in place: nothing re-sent


async def test_a_sound_bracket_is_checked_without_a_word() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        checks = bot.session.protection_checks
        await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
        await bot.wait_for(lambda: gateway.position(bot.con_id) == 1, "the entry")
        await bot.wait_for(lambda: bot.session.protection_checks > checks, "the check")
        assert not [a for a in bot.alerts(AlertKind.ANOMALY) if a.startswith("bracket checked")]


async def test_a_refused_change_of_a_leg_is_not_taken_for_its_end() -> None:
    """IB refuses the TIF change (201 on the modify: ib_async marks the leg Cancelled): the leg
    still works at IB, so the engine keeps it and no exit is sent."""
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        gateway.faults.day_preset = True
        gateway.faults.refuse_changes = (201, "Order rejected - reason: modification refused")
        await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
        await bot.wait_for(lambda: gateway.position(bot.con_id) == 1, "the entry")
        await bot.wait_for(
            lambda: len([a for a in bot.alerts(AlertKind.ANOMALY) if "modified" in a]) == 2,
            "both changes tried",
        )
        await bot.settled()
        legs = [o for o in gateway.orders if o.parent_id]
        assert all(o.is_working and o.tif == "DAY" for o in legs)
        assert bot.engine.state is EngineState.LONG
        assert not bot.order_events("rejected")
        assert len(gateway.orders) == 3  # no exit was sent
        keys = {o.key for o in bot.engine.working_orders.values()}
        assert {o.order_ref for o in legs} <= keys


async def test_a_stop_ib_cancelled_is_placed_again_when_lost_legs_are_replaced() -> None:
    """``risk.lost_leg: replace``: IB cancels the stop of an open position (202, as TWS's operator
    or an IB-side cancel would); the engine asks IB, finds the position held without its stop, and
    places a new stop at the old price, GTC and outside regular hours, in the bracket's OCA group:
    the position stays open and protected."""
    async with TwsGateway() as gateway:
        settings = bot_settings(gateway.port, QS_RISK__LOST_LEG="replace")
        async with live_bot(gateway, settings=settings) as bot:
            await bot.push_minutes([*QUIET_CLOSES, SIGNAL_CLOSE], at=START)
            await bot.wait_for(lambda: gateway.position(bot.con_id) == 1, "the entry")
            [stop] = [o for o in gateway.orders if o.parent_id and o.order_type == "STP"]
            await bot.wait_for(lambda: stop.is_working, "the stop at IB")
            await gateway.cancel_by_broker(stop.order_ref)

            def new_stops() -> list[GatewayOrder]:
                return [o for o in gateway.orders if o.order_type == "STP" and o is not stop]

            await bot.wait_for(lambda: any(o.is_working for o in new_stops()), "the new stop")
            [again] = new_stops()
            assert again.aux_price == stop.aux_price
            assert (again.tif, again.outside_rth) == ("GTC", True)
            assert again.oca_group == stop.oca_group
            assert again.order_ref.endswith("-S")
            await bot.settled()
            assert bot.engine.state is EngineState.LONG
            assert gateway.position(bot.con_id) == 1
            assert any("placed again, stop" in a for a in bot.alerts(AlertKind.ANOMALY))
            assert not [o for o in gateway.orders if o.order_type == "MKT" and o.action == "SELL"]
            # The new stop protects: a bar through it closes the position at IB and in the engine.
            assert stop.aux_price is not None
            await bot.push_minutes([str(stop.aux_price - 1)], at=bot.clock.now())
            await bot.wait_for(lambda: again.status == "Filled", "the new stop's fill")
            await bot.wait_for(
                lambda: any(isinstance(r, RoundTripRecord) for r in bot.journal.records),
                "the round trip",
            )
            [trip] = [r.trip for r in bot.journal.records if isinstance(r, RoundTripRecord)]
            assert trip.exit_reason is ExitReason.STOP  # at the bar's open: it gapped through
            target = gateway.order_by_ref(stop.order_ref.replace("-S", "-T"))
            assert target is not None
            assert target.status == "Cancelled"  # the new stop's fill cancelled it: one OCA group
