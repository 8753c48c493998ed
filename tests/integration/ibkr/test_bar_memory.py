"""A week of 5-second bars must not pile up in memory: ib_async appends every real-time bar to the
subscription's list, and the adapter keeps only the newest."""

from __future__ import annotations

import pytest

from tests.support.live_bot import START, live_bot
from tests.support.tws import TwsGateway

pytestmark = pytest.mark.timeout(60)


async def test_the_real_time_bar_list_holds_only_the_newest_bar() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        await bot.push(["5000", "5000.25", "5000.5"] * 20, at=START)
        assert len(bot.seen.bars) == 60
        assert [len(bars) for bars in bot.session.client.ib.realtimeBars()] == [1]
