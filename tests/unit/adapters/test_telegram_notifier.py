"""TelegramNotifier's policy: modes, de-duplication, rate limit, queue bound, retries.

Time is a manual clock the test moves; the Bot API is the fake server, reached by real aiogram.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from aiogram import Bot

from adapters.simulated.clock import ManualClock
from adapters.telegram import DEFAULT_MODES, TelegramNotifier
from adapters.telegram.notifier import MAX_MESSAGE, TokenBucket, format_alert
from domain.commands import Alert, AlertKind, Severity
from tests.support.bot_api import FakeBotApi
from tests.support.stall import StallMeter

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
CHAT = 42


def alert(
    text: str = "lost",
    kind: AlertKind = AlertKind.CONNECTION,
    severity: Severity = Severity.WARNING,
) -> Alert:
    return Alert(kind, severity, text, T0)


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as server:
        yield server


@pytest.fixture
async def bot(api: FakeBotApi) -> AsyncIterator[Bot]:
    bot = api.bot()
    try:
        yield bot
    finally:
        await bot.session.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


Factory = Callable[..., TelegramNotifier]


@pytest.fixture
async def make(bot: Bot, clock: ManualClock) -> AsyncIterator[Factory]:
    made: list[TelegramNotifier] = []

    def factory(**overrides: Any) -> TelegramNotifier:
        options: dict[str, Any] = {"chat_ids": [CHAT], "clock": clock, "rate_limit_per_minute": 600}
        options.update(overrides)
        notifier = TelegramNotifier(bot, **options)
        made.append(notifier)
        return notifier

    yield factory
    for notifier in made:
        await notifier.close(timeout=0.05)


def lines(api: FakeBotApi) -> list[str]:
    return [line for message in api.sent for line in message.text.split("\n")]


def has_lines(api: FakeBotApi, count: int) -> bool:
    return len(lines(api)) == count


def test_default_modes_cover_every_alert_kind() -> None:
    assert set(DEFAULT_MODES) == set(AlertKind)
    assert set(DEFAULT_MODES.values()) <= {"on", "silent", "off"}


@pytest.mark.parametrize(
    ("kind", "overrides", "expected"),
    [
        (AlertKind.ENTRY_FILLED, {}, False),
        (AlertKind.BRACKET_LIVE, {}, True),
        (AlertKind.OPERATOR, {}, True),
        (AlertKind.CONNECTION, {"connection": "silent"}, True),
        (AlertKind.OPERATOR, {"operator": "on"}, False),
        (AlertKind.STALE_DATA, {"stale_data": "off"}, None),
    ],
)
async def test_mode_decides_sound_silence_or_nothing(
    api: FakeBotApi,
    make: Factory,
    kind: AlertKind,
    overrides: dict[str, str],
    expected: bool | None,
) -> None:
    notifier = make(modes=overrides)
    notifier.start()

    notifier.notify(alert("x", kind))
    notifier.notify(alert("marker", AlertKind.ERROR))
    await api.wait_for(lambda: any("marker" in m.text for m in api.sent), what="the marker")

    sent = [m.disable_notification for m in api.sent if f"{kind.value}: x" in m.text]
    assert sent == ([] if expected is None else [expected])
    assert notifier.muted == (1 if expected is None else 0)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"fills": "on"}, "unknown alert kind 'fills'"),
        ({"connection": "loud"}, "mode 'loud' is not one of on, silent, off"),
    ],
)
def test_bad_mode_overrides_are_named(
    bot: Bot, clock: ManualClock, overrides: dict[str, str], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        TelegramNotifier(bot, [CHAT], clock=clock, modes=overrides)


def test_no_chat_is_an_error(bot: Bot, clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="chat_ids is empty"):
        TelegramNotifier(bot, [], clock=clock)


@pytest.mark.parametrize(
    ("item", "repeats", "expected"),
    [
        (alert("lost"), 0, "[WARNING] connection: lost (2026-11-24 15:00:00 UTC)"),
        (
            alert("tripped", AlertKind.BREAKER_TRIPPED, Severity.CRITICAL),
            3,
            "[CRITICAL] breaker_tripped: tripped (repeated 3 times, last 2026-11-24 15:00:00 UTC)",
        ),
        (
            alert("up", AlertKind.LIFECYCLE, Severity.INFO),
            1,
            "[INFO] lifecycle: up (repeated 1 time, last 2026-11-24 15:00:00 UTC)",
        ),
    ],
)
def test_alert_is_one_plain_line(item: Alert, repeats: int, expected: str) -> None:
    assert format_alert(item, repeats) == expected


def test_a_long_alert_is_cut_to_telegrams_limit() -> None:
    line = format_alert(alert("x" * 10_000, AlertKind.ERROR))

    assert len(line) == MAX_MESSAGE
    assert line.endswith("… (2026-11-24 15:00:00 UTC)")


async def test_repeats_within_the_window_collapse_into_one_count(
    api: FakeBotApi, make: Factory, clock: ManualClock
) -> None:
    notifier = make(dedup_window_s=60)
    notifier.start()
    for _ in range(5):
        notifier.notify(alert("lost"))
    notifier.notify(alert("restored"))
    await api.wait_for(lambda: len(lines(api)) == 2, what="the first of each")
    await api.wait_for(lambda: clock.sleeping == [60], what="the sender to wait for the window")

    clock.advance(59)
    notifier.notify(alert("lost"))
    clock.advance(1)  # the window closes: its repeats are reported
    await api.wait_for(lambda: len(lines(api)) == 3, what="the repeat count")

    assert lines(api) == [
        "[WARNING] connection: lost (2026-11-24 15:00:00 UTC)",
        "[WARNING] connection: restored (2026-11-24 15:00:00 UTC)",
        "[WARNING] connection: lost (repeated 5 times, last 2026-11-24 15:00:00 UTC)",
    ]
    assert (notifier.deduplicated, notifier.sent) == (5, 3)


async def test_a_steady_flood_costs_one_message_per_window(
    api: FakeBotApi, make: Factory, clock: ManualClock
) -> None:
    notifier = make(dedup_window_s=60)
    notifier.start()
    for window in range(3):
        for _ in range(10):
            notifier.notify(alert("stale"))
            clock.advance(6)
        expected = window + 2  # the first alert, then one count per closed window
        await api.wait_for(partial(has_lines, api, expected), what="the window's count")
        await api.wait_for(lambda: len(clock.sleeping) == 1, what="the next window")
    clock.advance(60)  # the last window had no repeats: it closes quietly

    assert [line.split(" (")[1].split(",")[0] for line in lines(api)] == [
        "2026-11-24 15:00:00 UTC)",
        "repeated 9 times",
        "repeated 10 times",
        "repeated 10 times",
    ]
    assert notifier.deduplicated == 29


async def test_a_repeat_after_the_window_carries_the_count(
    api: FakeBotApi, make: Factory, clock: ManualClock
) -> None:
    notifier = make(dedup_window_s=60)  # not started: the sender cannot report the window itself
    for _ in range(3):
        notifier.notify(alert("lost"))
    clock.advance(61)
    notifier.notify(alert("lost"))
    notifier.start()
    await api.wait_for(lambda: notifier.backlog == 0, what="the queue to drain")

    assert lines(api) == [
        "[WARNING] connection: lost (2026-11-24 15:00:00 UTC)",
        "[WARNING] connection: lost (repeated 3 times, last 2026-11-24 15:00:00 UTC)",
    ]


async def test_close_reports_pending_repeats(api: FakeBotApi, make: Factory) -> None:
    notifier = make(dedup_window_s=60)
    notifier.start()
    for _ in range(4):
        notifier.notify(alert("lost"))

    await notifier.close(timeout=2)

    assert lines(api) == [
        "[WARNING] connection: lost (2026-11-24 15:00:00 UTC)",
        "[WARNING] connection: lost (repeated 3 times, last 2026-11-24 15:00:00 UTC)",
    ]


async def test_no_window_means_no_deduplication(api: FakeBotApi, make: Factory) -> None:
    notifier = make(dedup_window_s=0)
    notifier.start()
    for _ in range(3):
        notifier.notify(alert("lost"))

    await api.wait_for(lambda: notifier.sent == 3, what="three alerts")
    assert notifier.deduplicated == 0


async def test_rate_limit_spaces_messages(
    api: FakeBotApi, make: Factory, clock: ManualClock
) -> None:
    notifier = make(rate_limit_per_minute=6, burst=1)
    # Alternate sound and silence so no two alerts can share a message.
    for i in range(4):
        notifier.notify(alert(f"a{i}", AlertKind.ENTRY_FILLED if i % 2 else AlertKind.OPERATOR))
    notifier.start()

    seen: list[int] = []
    for _ in range(4):
        await api.wait_for(lambda: len(api.sent) == len(seen) + 1, what="the next message")
        seen.append(len(api.sent))
        if len(seen) < 4:
            await api.wait_for(lambda: clock.sleeping == [10.0], what="the 10 s token wait")
            assert len(api.sent) == len(seen)
            clock.advance(10)

    assert [m.text.split(": ")[1].split(" ")[0] for m in api.sent] == ["a0", "a1", "a2", "a3"]


def test_token_bucket_refills_at_the_rate_up_to_the_burst() -> None:
    bucket = TokenBucket(rate_per_minute=30, burst=2, now=0)

    bucket.take(0)
    bucket.take(0)
    assert bucket.delay(0) == pytest.approx(2.0)
    assert bucket.delay(1) == pytest.approx(1.0)
    assert bucket.delay(100) == 0
    bucket.take(100)
    bucket.take(100)
    assert bucket.delay(100) == pytest.approx(2.0)


async def test_waiting_alerts_share_a_message(api: FakeBotApi, make: Factory) -> None:
    notifier = make()
    for i in range(5):
        notifier.notify(alert(f"a{i}"))
    notifier.notify(alert("quiet", AlertKind.OPERATOR))
    notifier.start()

    await api.wait_for(lambda: notifier.sent == 6, what="six alerts")
    assert [m.text.count("\n") + 1 for m in api.sent] == [5, 1]
    assert [m.disable_notification for m in api.sent] == [False, True]
    assert notifier.messages == 2


async def test_full_queue_drops_the_oldest_and_counts_them(api: FakeBotApi, make: Factory) -> None:
    notifier = make(queue_size=3)
    for i in range(5):
        notifier.notify(alert(f"a{i}"))
    assert (notifier.backlog, notifier.dropped) == (3, 2)
    notifier.start()

    await api.wait_for(lambda: notifier.backlog == 0, what="the queue to drain")
    assert [line.split(": ")[1].split(" ")[0] for line in lines(api)] == ["a2", "a3", "a4"]
    assert notifier.dropped == 2


async def test_retry_after_waits_exactly_that_long(
    api: FakeBotApi, make: Factory, clock: ManualClock
) -> None:
    notifier = make()
    api.flood(7)
    notifier.start()
    notifier.notify(alert())

    await api.wait_for(lambda: clock.sleeping == [7.0], what="the 7 s flood wait")
    assert api.sent == []
    clock.advance(7)
    await api.wait_for(lambda: notifier.sent == 1, what="the alert")
    assert notifier.retries == 1


async def test_server_errors_back_off_exponentially_up_to_the_cap(
    api: FakeBotApi, make: Factory, clock: ManualClock
) -> None:
    notifier = make(initial_backoff_s=1, max_backoff_s=8)
    api.down()
    notifier.start()
    notifier.notify(alert())

    waits: list[float] = []
    for attempt in range(6):
        await api.wait_for(lambda: len(clock.sleeping) == 1, what="a backoff wait")
        waits.extend(clock.sleeping)
        assert notifier.failing_since == T0
        if attempt == 5:
            api.up()
        clock.advance(waits[-1])
    await api.wait_for(lambda: notifier.sent == 1, what="the alert")

    assert waits == [1, 2, 4, 8, 8, 8]
    assert (notifier.retries, notifier.failing_since) == (6, None)
    api.down()
    notifier.notify(alert("again"))
    await api.wait_for(lambda: clock.sleeping == [1], what="the backoff to start over")


async def test_a_refusing_chat_loses_only_its_copy(
    api: FakeBotApi, bot: Bot, make: Factory
) -> None:
    api.fail_chat(-7, 403, "Forbidden: bot was kicked from the group chat")
    notifier = make(chat_ids=[-7, CHAT])
    notifier.start()
    notifier.notify(alert())

    await api.wait_for(lambda: notifier.sent == 1, what="the alert")
    assert [m.chat_id for m in api.sent] == [CHAT]
    assert (notifier.rejected, notifier.retries) == (1, 0)


async def test_notify_never_blocks_or_raises_while_sending_fails(
    api: FakeBotApi, make: Factory, clock: ManualClock
) -> None:
    notifier = make(queue_size=100)
    api.refuse_connections()
    notifier.start()

    meter = StallMeter()
    with meter.installed():
        for i in range(5_000):
            item = alert(f"a{i}")
            meter.call(partial(notifier.notify, item))
            if i % 100 == 0:
                await asyncio.sleep(0)  # let the sender fail meanwhile

    # Never waited on the failing sender (bench/notifier_bench.py measures the microseconds; a
    # busy machine can hold any call for a scheduling slice, so the bound is a gross one).
    assert max(meter.walls) < 1.0, f"a notify() took {max(meter.walls):.2f} s"
    assert notifier.retries >= 1
    assert notifier.backlog == 100
    assert notifier.dropped == 4_900
    assert notifier.sent == 0
