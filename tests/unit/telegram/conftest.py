"""The bot's handlers fed through ``Dispatcher.feed_update`` by a real aiogram Bot on the fake Bot
API server: the test pushes a message or a button press into the server, fetches it back with
``getUpdates`` and feeds it to the dispatcher itself (no polling task, so every step is awaited),
and reads what the bot sent from the server's records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiogram import Bot, Dispatcher

from entrypoints.settings import Settings
from entrypoints.telegram import build_dispatcher
from tests.support.bot_api import AnsweredCallback, EditedMessage, FakeBotApi, SentMessage
from tests.support.trading_desk import Desk, build_desk, desk_settings

OPERATOR = 1001
VIEWER = 1002
OPERATOR_2 = 1003
STRANGER = 6666
GROUP = -100500
"""A group listed in telegram.group_chats: the bot answers its allowed users there."""
OTHER_GROUP = -100600
"""A group not listed: the bot answers nobody there."""
USERS = f'{{"{OPERATOR}": "operator", "{VIEWER}": "viewer", "{OPERATOR_2}": "operator"}}'
TIMEOUT_S = 60


@dataclass
class Chat:
    """Talk to the bot as a given user and see what it did."""

    api: FakeBotApi
    bot: Bot
    dp: Dispatcher
    desk: Desk
    offset: int = 0

    async def send(self, user: int, text: str, *, chat: int | None = None) -> list[SentMessage]:
        """Send ``text`` as ``user`` (in a private chat unless ``chat``); the messages it got."""
        before = len(self.api.sent)
        self.api.push_message(user, text, chat_id=chat)
        await self._deliver()
        return self.api.sent[before:]

    async def press(
        self, user: int, prompt: SentMessage, label: str
    ) -> tuple[list[EditedMessage], list[AnsweredCallback]]:
        """Press the button called ``label`` under ``prompt`` as ``user``."""
        edits, answers = len(self.api.edits), len(self.api.answered)
        query_id = self.api.push_callback(
            user, button_data(prompt, label), message_id=prompt.message_id, chat_id=prompt.chat_id
        )
        await self._deliver()
        answered = self.api.answered[answers:]
        assert [a.callback_query_id for a in answered] == [query_id], "each press is answered"
        return self.api.edits[edits:], answered

    async def _deliver(self) -> None:
        for update in await self.bot.get_updates(offset=self.offset, timeout=0):
            self.offset = update.update_id + 1
            await self.dp.feed_update(self.bot, update)


def button_data(prompt: SentMessage, label: str) -> str:
    assert prompt.reply_markup is not None, f"no buttons under {prompt.text!r}"
    for row in prompt.reply_markup["inline_keyboard"]:
        for button in row:
            if button["text"] == label:
                data: str = button["callback_data"]
                return data
    raise AssertionError(f"no button {label!r} under {prompt.text!r}")


def labels(prompt: SentMessage) -> list[list[str]]:
    assert prompt.reply_markup is not None, f"no buttons under {prompt.text!r}"
    return [[b["text"] for b in row] for row in prompt.reply_markup["inline_keyboard"]]


def texts(messages: list[SentMessage]) -> list[str]:
    return [m.text for m in messages]


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as server:
        yield server


@pytest.fixture
def settings(api: FakeBotApi) -> Settings:
    return desk_settings(
        api.token,
        QS_TELEGRAM__USERS=USERS,
        QS_TELEGRAM__CONFIRM_TIMEOUT_S=str(TIMEOUT_S),
        QS_TELEGRAM__GROUP_CHATS=f"[{GROUP}]",
        # One loss trips the losing-streak pause: something for /breaker reset to lift.
        QS_RISK__MAX_CONSECUTIVE_LOSSES="1",
    )


@pytest.fixture
def desk(settings: Settings) -> Desk:
    return build_desk(settings)


@pytest.fixture
async def chat(api: FakeBotApi, settings: Settings, desk: Desk) -> AsyncIterator[Chat]:
    dp = build_dispatcher(desk.console, settings.telegram, clock=desk.clock)
    bot = api.bot()
    try:
        yield Chat(api, bot, dp, desk)
    finally:
        await bot.session.close()
