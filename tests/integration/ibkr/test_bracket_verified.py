"""The bracket is verified, not assumed (issue 16 item 5): a stop or target IB holds as DAY (an order
preset, with its 10349 on which ib_async 2.1 marks the order Cancelled) is found in IB's open
orders after the entry fills and modified back to GTC and outside regular hours."""

from __future__ import annotations

import pytest

from domain.commands import AlertKind
from domain.engine import EngineState
from tests.support.live_bot import QUIET_CLOSES, SIGNAL_CLOSE, START, live_bot
from tests.support.tws import TwsGateway

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
