"""The stream and the z-score warm-up overlap: the daemon subscribes to IB's bars before it asks IB's
history for the window, so bars of a strategy bar the warm-up counted can still arrive on the
stream. They are dropped (the daemon-level proof is in
``tests/integration/daemon/test_kill_nine_ib.py``)."""

from __future__ import annotations

import pytest

from adapters.ibkr.market_data import IbkrMarketData
from tests.support.live_bot import START, STEP, live_bot
from tests.support.tws import TwsGateway

pytestmark = pytest.mark.timeout(60)


async def test_stream_bars_of_strategy_bars_the_warm_up_counted_are_dropped() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        feed: IbkrMarketData = bot.app.adapters.market_data()
        feed.skip_before(int((START + 2 * STEP).timestamp()))
        await bot.push(["5000", "5001", "5002", "5003"], at=START)
        assert [b.close for b in bot.seen.bars] == [5002.0, 5003.0]
        assert feed.warm_up_overlap == 2
        assert feed.first_epoch == int(START.timestamp())
