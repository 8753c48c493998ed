"""TelegramNotifier end to end: real aiogram over HTTP against the fake Bot API, real time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from aiogram import Bot

from adapters.clock import SystemClock
from adapters.telegram import DEFAULT_MODES, TelegramNotifier
from domain.commands import Alert, AlertKind, Severity
from tests.support.bot_api import FakeBotApi
from tests.support.stall import StallMeter

CHAT = 42
QUEUE = 200
REQUEST_TIMEOUT_S = 5.0
"""The Bot API request timeout. Anything that waited on the API would take this long, so a bound
of half of it tells "never waited on I/O" from a busy machine's scheduling delays."""
NEVER_WAITED_S = REQUEST_TIMEOUT_S / 2

Factory = Callable[..., TelegramNotifier]


def alert(text: str, kind: AlertKind = AlertKind.ANOMALY) -> Alert:
    return Alert(kind, Severity.WARNING, text, datetime.now(UTC))


def delivered(api: FakeBotApi) -> list[tuple[str, bool]]:
    """(alert text, silent) for every alert line the chat received, in order."""
    return [
        (line.split(": ", 1)[1].rsplit(" (", 1)[0], message.disable_notification)
        for message in api.sent
        for line in message.text.split("\n")
    ]


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as server:
        yield server


@pytest.fixture
async def make(api: FakeBotApi) -> AsyncIterator[Factory]:
    bot: Bot = api.bot(timeout=REQUEST_TIMEOUT_S)
    made: list[TelegramNotifier] = []

    def factory(**overrides: Any) -> TelegramNotifier:
        options: dict[str, Any] = {
            "chat_ids": [CHAT],
            "clock": SystemClock(),
            "rate_limit_per_minute": 600,
            "initial_backoff_s": 0.05,
            "max_backoff_s": 0.4,
        }
        options.update(overrides)
        notifier = TelegramNotifier(bot, **options)
        notifier.start()
        made.append(notifier)
        return notifier

    try:
        yield factory
    finally:
        for notifier in made:
            await notifier.close(timeout=0.5)
        await bot.session.close()


async def test_alerts_arrive_in_order_with_sound_per_mode(api: FakeBotApi, make: Factory) -> None:
    notifier = make(modes={"stale_data": "off", "connection": "silent"})
    kinds = [
        AlertKind.LIFECYCLE,
        AlertKind.ENTRY_FILLED,
        AlertKind.BRACKET_LIVE,
        AlertKind.STALE_DATA,
        AlertKind.CONNECTION,
        AlertKind.EXIT_FILLED,
        AlertKind.OPERATOR,
        AlertKind.DAILY_SUMMARY,
    ]
    for i, kind in enumerate(kinds):
        notifier.notify(alert(f"{kind.value} {i}", kind))
        if i == 3:
            await api.wait_for(lambda: notifier.backlog == 0, what="the first alerts")

    expected = [
        (
            f"{kind.value} {i}",
            kind in (AlertKind.BRACKET_LIVE, AlertKind.OPERATOR, AlertKind.CONNECTION),
        )
        for i, kind in enumerate(kinds)
        if kind is not AlertKind.STALE_DATA
    ]
    await api.wait_for(lambda: len(delivered(api)) == len(expected), what="every alert")
    assert delivered(api) == expected
    assert all(m.parse_mode is None and m.chat_id == CHAT for m in api.sent)
    # The server has the last message before the notifier has read the answer to it.
    await api.wait_for(lambda: notifier.sent == len(expected), what="the last answer read")
    assert (notifier.sent, notifier.muted, notifier.dropped) == (7, 1, 0)
    assert DEFAULT_MODES[AlertKind.BRACKET_LIVE] == "silent"


async def test_flood_control_delays_then_delivers_everything(
    api: FakeBotApi, make: Factory
) -> None:
    notifier = make()
    api.flood(1)
    loop = asyncio.get_running_loop()
    started = loop.time()

    for i in range(10):
        notifier.notify(alert(f"a{i}"))
    await api.wait_for(lambda: notifier.sent == 10, what="all ten alerts")

    assert loop.time() - started >= 1.0
    assert [text for text, _ in delivered(api)] == [f"a{i}" for i in range(10)]
    assert (notifier.retries, notifier.dropped, notifier.backlog) == (1, 0, 0)


@pytest.mark.parametrize("outage", ["502 Bad Gateway", "connection refused"])
async def test_bot_api_outage_loses_only_the_overflow_and_never_stalls(
    api: FakeBotApi, make: Factory, outage: str
) -> None:
    notifier = make(queue_size=QUEUE)
    notifier.notify(alert("before"))
    await api.wait_for(lambda: notifier.sent == 1, what="the alert before the outage")
    if outage == "502 Bad Gateway":
        api.down()
    else:
        api.refuse_connections()

    # The engine keeps trading and alerting at a high rate (every 2 ms: the pace is the point)
    # until the sender has failed twice and the queue has overflowed ten times over (standing in
    # for minutes); the deadline is only for a sender that never retries.
    loop = asyncio.get_running_loop()
    texts: list[str] = []
    meter = StallMeter()
    slowest_tick = 0.0
    with meter.installed():
        deadline = loop.time() + 60.0
        last_tick = loop.time()
        while notifier.retries < 2 or len(texts) <= 10 * QUEUE:
            assert loop.time() < deadline, f"{notifier.retries} retries in 60 s"
            for _ in range(20):
                item = alert(f"a{len(texts)}")
                texts.append(item.text)
                meter.call(partial(notifier.notify, item))
            await asyncio.sleep(0.002)
            slowest_tick = max(slowest_tick, loop.time() - last_tick)
            last_tick = loop.time()
    assert notifier.retries >= 2  # the sender kept failing all along
    assert notifier.sent == 1
    api.up()

    await api.wait_for(lambda: notifier.backlog == 0, what="the backlog to drain")
    # Never blocked on the dead API: a call that waited on I/O would take the request timeout or
    # the outage (seconds). The microsecond figures are the benchmark's business, not a test's.
    assert max(meter.walls) < NEVER_WAITED_S, f"a notify() took {max(meter.walls):.2f} s"
    assert slowest_tick < NEVER_WAITED_S
    assert len(texts) > 10 * QUEUE
    assert [text for text, _ in delivered(api)] == ["before", *texts[-QUEUE:]]
    assert notifier.dropped == len(texts) - QUEUE
    assert notifier.sent == 1 + QUEUE


async def test_close_sends_what_is_queued(api: FakeBotApi, make: Factory) -> None:
    notifier = make()
    for i in range(5):
        notifier.notify(alert(f"a{i}"))

    await notifier.close(timeout=2)

    assert [text for text, _ in delivered(api)] == [f"a{i}" for i in range(5)]
    assert notifier.backlog == 0


async def test_close_gives_up_after_its_timeout_while_the_api_is_down(
    api: FakeBotApi, make: Factory
) -> None:
    notifier = make()
    api.down()
    notifier.notify(alert("never"))
    await api.wait_for(lambda: notifier.retries >= 1, what="a failed attempt")
    loop = asyncio.get_running_loop()
    started = loop.time()

    await notifier.close(timeout=0.2)

    # It gave up: it did not wait for the failing request's timeout, let alone the outage.
    assert loop.time() - started < NEVER_WAITED_S
    assert notifier.backlog == 1
    assert api.sent == []
