"""The live feed's gate, through real ib_async and the TWS test gateway: a bar at an absurd price
(issue 12 item 4) or stamped in the future (item 14) never reaches the engine, and is counted by
reason."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from adapters.ibkr.market_data import IbkrMarketData
from tests.support.live_bot import START, STEP, live_bot
from tests.support.tws import GatewayBar, TwsGateway

pytestmark = pytest.mark.timeout(60)

D5000 = Decimal("5000")


async def test_a_bar_at_an_absurd_price_is_refused_and_the_feed_goes_on() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        t = await bot.push(["5000"] * 12, at=START)
        spike = GatewayBar(t, *(Decimal("99999.75"),) * 4)
        jump = GatewayBar(t + STEP, *(Decimal("5900"),) * 4)
        await bot.push_bar(spike)
        await bot.push_bar(jump)
        t = await bot.push(["5000.25"] * 3, at=t + 2 * STEP)

        market_data: IbkrMarketData = bot.app.adapters.market_data()
        assert market_data.gate.refused == {"price_range": 1, "price_jump": 1}
        assert max(b.high for b in bot.seen.bars) == 5000.25
        assert len(bot.seen.bars) == 15


async def test_a_bar_stamped_in_the_future_is_refused_and_the_real_ones_after_it_go_on() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        t = await bot.push(["5000"] * 12, at=START)
        # IB sends it now, stamped an hour ahead: it must not become the last bar either, or every
        # real bar for the next hour would be dropped as a repeat.
        bot.clock.set(t + STEP)
        await bot.gateway.push_bar(bot.con_id, GatewayBar(t + timedelta(hours=1), *(D5000,) * 4))
        t = await bot.push(["5000.25"] * 3, at=t)

        market_data: IbkrMarketData = bot.app.adapters.market_data()
        assert market_data.gate.refused == {"future": 1}
        assert len(bot.seen.bars) == 15
        assert bot.seen.bars[-1].end_epoch == int(t.timestamp())
