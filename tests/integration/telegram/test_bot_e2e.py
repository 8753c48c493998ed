"""The bot end to end: real aiogram long polling over HTTP against the fake Bot API on loopback.

The Bot comes from ``build_bot`` with ``telegram.api_base_url`` pointed at the fake server, the
dispatcher from ``build_dispatcher`` over a real OperatorConsole on the simulated trading stack,
and ``Dispatcher.start_polling`` runs in a task as it does in the daemon. Updates are handled in
order (``handle_as_tasks=False``), so once the bot answered the last message every earlier one has
been dealt with, and "nothing else was sent" is a fact, not a race.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest

from adapters.simulated.clock import ManualClock
from application.ports import Clock
from domain.engine import EngineState
from entrypoints.settings import Settings
from entrypoints.telegram import (
    BotTokenInUse,
    build_bot,
    build_dispatcher,
    check_single_poller,
)
from tests.support.bot_api import FakeBotApi, SentMessage
from tests.support.trading_desk import Desk, build_desk, desk_settings

OPERATOR, VIEWER, STRANGER = 1001, 1002, 6666
TIMEOUT_S = 30


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as server:
        yield server


@pytest.fixture
def settings(api: FakeBotApi) -> Settings:
    return desk_settings(
        api.token,
        QS_TELEGRAM__API_BASE_URL=api.base_url,
        QS_TELEGRAM__USERS=f'{{"{OPERATOR}": "operator", "{VIEWER}": "viewer"}}',
        QS_TELEGRAM__CONFIRM_TIMEOUT_S=str(TIMEOUT_S),
    )


@pytest.fixture
def desk(settings: Settings) -> Desk:
    return build_desk(settings)


@asynccontextmanager
async def polling(
    api: FakeBotApi, settings: Settings, desk: Desk, clock: Clock | None = None
) -> AsyncIterator[None]:
    """The bot as the daemon runs it: start check, then long polling until the block ends.

    ``clock`` times the confirmation buttons (default: the desk's market clock)."""
    bot = build_bot(settings.telegram)
    dp = build_dispatcher(desk.console, settings.telegram, clock=clock or desk.clock)
    await check_single_poller(bot)
    task = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, handle_as_tasks=False, polling_timeout=5)
    )
    await api.wait_for(lambda: _called(api, "getMe") or task.done(), what="polling to start")
    try:
        yield
    finally:
        if not task.done():
            await dp.stop_polling()
        await task  # re-raises anything polling died of; its session is closed


def _called(api: FakeBotApi, method: str) -> bool:
    return any(name.lower() == method.lower() for name, _ in api.calls)


def _to(api: FakeBotApi, chat_id: int) -> list[SentMessage]:
    return [m for m in api.sent if m.chat_id == chat_id]


async def _reply(api: FakeBotApi, chat_id: int, count: int = 1) -> SentMessage:
    """Wait for the ``count``-th message the bot sends to ``chat_id``."""
    await api.wait_for(lambda: len(_to(api, chat_id)) >= count, what=f"reply {count} to {chat_id}")
    return _to(api, chat_id)[count - 1]


def _button(prompt: SentMessage, label: str) -> str:
    assert prompt.reply_markup is not None, prompt.text
    found = [
        b["callback_data"]
        for row in prompt.reply_markup["inline_keyboard"]
        for b in row
        if b["text"] == label
    ]
    assert len(found) == 1, (label, prompt.reply_markup)
    data: str = found[0]
    return data


async def test_an_operator_is_answered_and_a_stranger_refused_once(
    api: FakeBotApi, settings: Settings, desk: Desk
) -> None:
    async with polling(api, settings, desk):
        api.push_message(STRANGER, "/status")
        api.push_message(STRANGER, "/flatten")
        api.push_message(STRANGER, "anyone there?")
        api.push_message(OPERATOR, "/status")
        status = await _reply(api, OPERATOR)

    assert status.text.startswith("State IDLE · flat\nEntries:")
    assert [m.text for m in _to(api, STRANGER)] == ["Not authorised."]
    assert desk.telegram_commands() == [
        ("/status", f"telegram:{STRANGER}", "refused: not authorised"),
        ("/flatten", f"telegram:{STRANGER}", "refused: not authorised"),
        ("/status", f"telegram:{OPERATOR}", "allowed"),
    ]
    assert api.unauthorized == 0  # every request carried the configured token
    assert [c["command"] for c in api.commands] == [
        "help",
        "status",
        "pnl",
        "trades",
        "positions",
        "orders",
        "breaker",
        "health",
        "config",
        "chart",
        "version",
        "pause",
        "resume",
        "flatten",
        "stop",
        "reconcile",
    ]  # the client's command menu, published at start


async def test_a_viewer_trying_flatten_is_refused_and_nothing_is_asked(
    api: FakeBotApi, settings: Settings, desk: Desk
) -> None:
    await desk.open_long()
    async with polling(api, settings, desk):
        api.push_message(VIEWER, "/flatten")
        api.push_message(VIEWER, "/positions")
        refusal = await _reply(api, VIEWER)
        await _reply(api, VIEWER, 2)

    assert refusal.text == "/flatten needs the operator role; you are a viewer."
    assert refusal.reply_markup is None
    assert desk.console.status().state is EngineState.LONG
    assert desk.telegram_commands()[0] == (
        "/flatten",
        f"telegram:{VIEWER}",
        "refused: needs the operator role; user is a viewer",
    )


async def test_flatten_is_confirmed_with_the_button_and_carried_out(
    api: FakeBotApi, settings: Settings, desk: Desk
) -> None:
    await desk.open_long()
    async with polling(api, settings, desk):
        api.push_message(OPERATOR, "/flatten")
        prompt = await _reply(api, OPERATOR)
        assert desk.console.status().state is EngineState.LONG
        query = api.push_callback(
            OPERATOR, _button(prompt, "Confirm"), message_id=prompt.message_id
        )
        await api.wait_for(lambda: bool(api.edits) and bool(api.answered), what="the confirmation")

    assert [a.callback_query_id for a in api.answered] == [query]
    assert [(e.message_id, e.reply_markup) for e in api.edits] == [(prompt.message_id, None)]
    assert api.edits[0].text.startswith("Flatten sent: state EXITING_LONG")
    status = desk.console.status()
    assert (status.state, status.paused) == (EngineState.EXITING_LONG, True)
    assert [c for c, _, _ in desk.telegram_commands()] == ["/flatten", "/flatten confirm"]


async def test_a_confirmation_pressed_after_it_expired_does_nothing(
    api: FakeBotApi, settings: Settings, desk: Desk
) -> None:
    await desk.open_long()
    async with polling(api, settings, desk):
        api.push_message(OPERATOR, "/stop")
        prompt = await _reply(api, OPERATOR)
        desk.clock.advance(timedelta(seconds=TIMEOUT_S))
        api.push_callback(
            OPERATOR, _button(prompt, "Flatten and stop"), message_id=prompt.message_id
        )
        await api.wait_for(lambda: bool(api.edits) and bool(api.answered), what="the expiry")

    assert [e.text for e in api.edits] == ["Expired: /stop was not done (the buttons last 30 s)."]
    assert [a.text for a in api.answered] == ["Expired: nothing done."]
    assert desk.stops == []
    assert desk.console.status().state is EngineState.LONG


async def test_the_start_check_names_another_poller_of_the_same_token(
    api: FakeBotApi, settings: Settings
) -> None:
    bot = build_bot(settings.telegram)
    try:
        api.push_message(OPERATOR, "/status")
        await check_single_poller(bot)  # nobody else polls: fine
        api.conflict(True)
        with pytest.raises(BotTokenInUse) as raised:
            await check_single_poller(bot)
    finally:
        await bot.session.close()

    assert str(raised.value) == (
        "another process is already polling this bot token (Telegram answered 409 Conflict): "
        "stop the other bot instance, or give this one its own token"
    )
    assert api.pending_updates == 1  # the check confirmed (and so lost) no update
    assert [(name, params.get("timeout")) for name, params in api.calls] == [
        ("getUpdates", 0),
        ("getUpdates", 0),
    ]


async def test_a_flatten_confirmed_after_the_position_changed_does_nothing_and_says_so(
    api: FakeBotApi, settings: Settings, desk: Desk
) -> None:
    await desk.open_long()
    # The buttons' clock stands still while the market moves on: they have not expired.
    async with polling(api, settings, desk, clock=ManualClock(desk.clock.now())):
        api.push_message(OPERATOR, "/flatten")
        prompt = await _reply(api, OPERATOR)
        assert "close the long 1 @ 5,000.00" in prompt.text
        await desk.stop_out()  # within the expiry the long is stopped out: the question is stale
        api.push_callback(OPERATOR, _button(prompt, "Confirm"), message_id=prompt.message_id)
        await api.wait_for(lambda: bool(api.edits) and bool(api.answered), what="the refusal")
        # Asked again, the operator is asked about what is there now.
        api.push_message(OPERATOR, "/flatten")
        again = await _reply(api, OPERATOR, 2)

    [edit] = api.edits
    assert edit.text == (
        "Not done: the position changed since you asked (flat now). "
        "Send /flatten again to act on what is there now."
    )
    assert edit.reply_markup is None
    assert [a.text for a in api.answered] == ["Changed since you asked: nothing done."]
    status = desk.console.status()
    assert (status.state, status.paused) == (EngineState.IDLE, False)  # no flatten, no pause
    assert again.text.startswith("Nothing to flatten: the engine is flat.")
    [(_, _, outcome)] = [c for c in desk.telegram_commands() if c[0] == "/flatten confirm"]
    assert outcome.startswith("refused: changed since asked")


async def test_a_stop_keeping_the_bracket_is_not_done_for_a_position_it_did_not_describe(
    api: FakeBotApi, settings: Settings, desk: Desk
) -> None:
    await desk.open_long()
    async with polling(api, settings, desk, clock=ManualClock(desk.clock.now())):
        api.push_message(OPERATOR, "/stop")
        prompt = await _reply(api, OPERATOR)
        await desk.stop_out()
        api.push_callback(
            OPERATOR, _button(prompt, "Stop, keep the bracket"), message_id=prompt.message_id
        )
        await api.wait_for(lambda: bool(api.edits) and bool(api.answered), what="the refusal")

    assert api.edits[0].text.startswith("Not done: the position changed since you asked")
    assert desk.stops == []  # the daemon was not asked to stop
