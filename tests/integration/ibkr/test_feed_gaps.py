"""The 5-second stream through real ib_async and the TWS test gateway: bars lost on the way are found
by the stream's own gap check and filled from IB's history; a resubscribe opens the new subscription
before it cancels the old; the watchdog keeps the daemon's clock, not the wall's.

(The soak, ``tests/integration/daemon/test_soak.py``, runs the same paths for 48 market hours at
1920 times real time, where a slow machine drops and races subscriptions.)
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.ibkr.market_data import HOLD_LIMIT_S, IbkrMarketData
from tests.support.live_bot import START, STEP, LiveBot, bot_settings, live_bot
from tests.support.live_daemon import daemon_settings, live_daemon
from tests.support.tws import GatewayBar, TwsGateway
from tests.support.tws import protocol as wire

pytestmark = pytest.mark.timeout(60)

REQ_HISTORICAL_DATA = 20
REQ_REAL_TIME_BARS = 50
CANCEL_REAL_TIME_BARS = 51


def _flat(at: datetime, close: str) -> GatewayBar:
    price = Decimal(close)
    return GatewayBar(at, price, price, price, price)


def _feed(bot: LiveBot) -> IbkrMarketData:
    market_data: IbkrMarketData = bot.app.adapters.market_data()
    return market_data


def _sent(gateway: TwsGateway, msg_id: int) -> int:
    return sum(1 for m, _ in gateway.received if m == msg_id)


def _contiguous(bot: LiveBot) -> bool:
    epochs = [b.epoch for b in bot.seen.bars]
    return epochs == list(range(epochs[0], epochs[0] + 5 * len(epochs), 5))


async def test_a_bar_lost_on_the_real_time_stream_is_filled_from_history_in_order() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        t = await bot.push(["5000", "5001", "5002"], at=START)
        # IB has these two bars, but the stream never brought them (a raced subscription).
        gateway.add_history(bot.con_id, [_flat(t, "5003"), _flat(t + STEP, "5004")])
        await bot.push(["5005", "5006"], at=t + 2 * STEP)
        closes = [b.close for b in bot.seen.bars]
        assert closes == [5000.0, 5001.0, 5002.0, 5003.0, 5004.0, 5005.0, 5006.0]
        assert _contiguous(bot)
        feed = _feed(bot)
        assert (feed.gaps_found, feed.backfilled, feed.bars_unfilled) == (1, 2, 0)
        assert bot.service.aggregator.stats.duplicates == 0


async def test_a_gap_history_does_not_have_is_left_and_the_stream_goes_on() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        t = await bot.push(["5000", "5001"], at=START)
        asked = _sent(gateway, REQ_HISTORICAL_DATA)
        await bot.push(["5004", "5005"], at=t + 2 * STEP)  # two bars IB never had
        assert [b.close for b in bot.seen.bars] == [5000.0, 5001.0, 5004.0, 5005.0]
        assert _sent(gateway, REQ_HISTORICAL_DATA) == asked + 1  # asked once, not again and again
        feed = _feed(bot)
        assert (feed.gaps_found, feed.backfilled, feed.bars_unfilled) == (1, 0, 2)


async def test_the_daily_halt_is_not_a_gap_to_look_up() -> None:
    async with TwsGateway() as gateway:
        settings = bot_settings(gateway.port, QS_SESSION__CALENDAR="cme_globex_equity")
        async with live_bot(gateway, settings=settings) as bot:
            before_halt = START.replace(hour=21, minute=59, second=50)  # 16:59:50 New York
            await bot.push(["5000", "5000"], at=before_halt)
            asked = _sent(gateway, REQ_HISTORICAL_DATA)
            await bot.push(["5001", "5002"], at=START.replace(hour=23))  # 18:00 New York
            assert [b.close for b in bot.seen.bars][-4:] == [5000.0, 5000.0, 5001.0, 5002.0]
            assert _sent(gateway, REQ_HISTORICAL_DATA) == asked
            assert _feed(bot).gaps_found == 0


async def test_a_gap_that_cannot_reach_ib_is_held_until_a_recovery_fills_it() -> None:
    async with TwsGateway() as gateway:
        settings = bot_settings(gateway.port, QS_IBKR__REQUEST_TIMEOUT_S="0.5")
        async with live_bot(gateway, settings=settings) as bot:
            t = await bot.push(["5000"], at=START)
            silent = {"on": True}
            gateway.faults.unanswered[REQ_HISTORICAL_DATA] = lambda fields: silent["on"]
            gateway.add_history(bot.con_id, [_flat(t, "5001")])
            await bot.push(["5002", "5003"], at=t + STEP, streamed=False)
            feed = _feed(bot)
            await bot.wait_for(lambda: feed.gaps_found == 1, "the gap")
            # ib_async answers a timed-out request with no bars; the gap is not given up for that.
            await bot.wait_for(
                lambda: _sent(gateway, REQ_HISTORICAL_DATA) >= 1 and feed.bars_received == 3,
                "the unanswered history request",
            )
            await bot.wait_for(lambda: feed._filling is None, "the fill to time out", timeout=10)
            assert [b.close for b in bot.seen.bars] == [5000.0]  # held, not sent past the gap
            silent["on"] = False
            assert await feed.recover() == 3  # from the last bar sent: 5001, and 5002, 5003 again
            await bot.wait_for(lambda: len(bot.seen.bars) == 4, "the held bars")
            assert [b.close for b in bot.seen.bars] == [5000.0, 5001.0, 5002.0, 5003.0]
            assert feed.bars_unfilled == 0


async def test_a_resubscribe_opens_the_new_subscription_before_it_cancels_the_old() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        t = await bot.push(["5000", "5001"], at=START)
        start = len(gateway.received)
        await _feed(bot).recover()

        def ids() -> list[int]:
            return [m for m, _ in gateway.received[start:]]

        await bot.wait_for(
            lambda: {REQ_REAL_TIME_BARS, CANCEL_REAL_TIME_BARS} <= set(ids()), "both messages"
        )
        assert ids().index(REQ_REAL_TIME_BARS) < ids().index(CANCEL_REAL_TIME_BARS)
        # For a moment both deliver; each bar still goes out once.
        await bot.push(["5002", "5003"], at=t)
        assert [b.close for b in bot.seen.bars] == [5000.0, 5001.0, 5002.0, 5003.0]


async def test_the_stale_feed_watchdog_keeps_the_daemon_s_clock(tmp_path: Path) -> None:
    """The daemon's clock moves only when the test moves it: the watchdog checks (and finds the
    feed stale) because market time passed, however little or much wall time did."""
    async with TwsGateway() as gateway:
        settings = daemon_settings(
            gateway.port,
            tmp_path,
            # Longer than the wait below: a watchdog on wall time would not have checked by then.
            QS_IBKR__WATCHDOG_INTERVAL_S="20",
            QS_IBKR__STALE_GRACE_S="30",
        )
        async with live_daemon(gateway, settings, start=START) as daemon:
            session = daemon.session

            async def checked_at(when: datetime) -> None:
                checks = session.feed_checks
                daemon.clock.set(when)
                await daemon.wait_for(lambda: session.feed_checks > checks, f"a check at {when}")

            t = await daemon.push(["5000"] * 3, at=START)
            subscriptions = _sent(gateway, REQ_REAL_TIME_BARS)
            await checked_at(t + timedelta(seconds=25))
            assert session.stale_alerts == 0  # within the grace
            await checked_at(t + timedelta(seconds=60))
            await daemon.wait_for(lambda: session.stale_alerts == 1, "the stale alert")
            await daemon.wait_for(
                lambda: _sent(gateway, REQ_REAL_TIME_BARS) > subscriptions, "a resubscribe"
            )
            # Bars again: the feed is fresh, no second alert.
            await daemon.push(["5001"], at=t + timedelta(seconds=65))
            await checked_at(t + timedelta(seconds=90))
            assert session.stale_alerts == 1
            await daemon.stop()


async def test_two_recoveries_at_once_leave_one_subscription_and_lose_nothing() -> None:
    """1101 and a farm's "OK" arrive together: each asks for a recovery."""
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        t = await bot.push(["5000", "5001"], at=START)
        feed = _feed(bot)
        requests = _sent(gateway, REQ_REAL_TIME_BARS)
        await asyncio.gather(feed.recover(), feed.recover())
        await bot.wait_for(  # the gateway has the new request, and the old one is cancelled
            lambda: (
                _sent(gateway, REQ_REAL_TIME_BARS) > requests
                and len(gateway.realtime_subscriptions) == 1
            ),
            "one new subscription",
        )
        await bot.push(["5002", "5003"], at=t)
        assert len(gateway.realtime_subscriptions) == 1
        assert [b.close for b in bot.seen.bars] == [5000.0, 5001.0, 5002.0, 5003.0]


async def test_two_reconnects_in_a_row_keep_the_stream() -> None:
    """After a reconnect the old subscription died with its link (its request id may be the new
    one's): it is forgotten, not cancelled."""
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        t = await bot.push(["5000"], at=START)
        for n in (1, 2):
            await gateway.disconnect_clients()
            await bot.wait_for(lambda n=n: bot.session.reconnects == n, f"reconnect {n}")
            await bot.wait_for(lambda: len(gateway.realtime_subscriptions) == 1, "the stream")
        t = await bot.push(["5001", "5002"], at=t)
        assert [b.close for b in bot.seen.bars] == [5000.0, 5001.0, 5002.0]


async def test_a_refused_history_request_holds_bars_no_longer_than_the_hold_limit() -> None:
    async with TwsGateway() as gateway, live_bot(gateway) as bot:
        t = await bot.push(["5000"], at=START)
        gateway.faults.unanswered[REQ_HISTORICAL_DATA] = lambda fields: True
        gateway.add_history(bot.con_id, [_flat(t, "5001")])
        await bot.push(["5002"], at=t + STEP, streamed=False)
        feed = _feed(bot)
        await bot.wait_for(lambda: _sent(gateway, REQ_HISTORICAL_DATA) >= 1, "the request")
        [(_, fields)] = [m for m in gateway.received if m[0] == REQ_HISTORICAL_DATA]
        req_id = wire.parse_historical_data_request(fields).req_id
        await gateway.send_error(
            162,
            "Historical Market Data Service error message:Historical data request pacing violation",
            req_id=req_id,
        )
        await bot.wait_for(lambda: not feed.filling, "the refused fill")
        assert [b.close for b in bot.seen.bars] == [5000.0]  # not an answer: still held
        # IB's history stays out of reach; the real-time bars go on after HOLD_LIMIT_S.
        held = HOLD_LIMIT_S // 5 - 1
        t = await bot.push(["5003"] * held, at=t + 2 * STEP, streamed=False)
        assert [b.close for b in bot.seen.bars] == [5000.0]
        await bot.push(["5004"], at=t)
        assert [b.close for b in bot.seen.bars] == [5000.0, 5002.0] + [5003.0] * held + [5004.0]
        assert feed.bars_unfilled == 1
