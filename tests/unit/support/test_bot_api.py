"""The fake Bot API server, driven by real, unmodified aiogram 3 over HTTP on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command
from aiogram.types import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message

from tests.support.bot_api import (
    AnsweredCallback,
    EditedMessage,
    FakeBotApi,
    LoopbackSession,
    SentMessage,
)

USER = 1001
KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="Yes", callback_data="confirm:1")]]
)
KEYBOARD_JSON = {"inline_keyboard": [[{"text": "Yes", "callback_data": "confirm:1"}]]}


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


async def test_get_me_describes_the_bot(api: FakeBotApi, bot: Bot) -> None:
    me = await bot.get_me()

    assert (me.id, me.username, me.is_bot) == (123456, "qs_test_bot", True)
    assert api.calls == [("getMe", {})]


async def test_send_message_records_markup_silence_and_parse_mode(
    api: FakeBotApi, bot: Bot
) -> None:
    first = await bot.send_message(USER, "hello", reply_markup=KEYBOARD, disable_notification=True)
    second = await bot.send_message(-100, "<b>hi</b>", parse_mode="HTML")

    assert first.from_user is not None
    assert (first.chat.id, first.text, first.from_user.id) == (USER, "hello", 123456)
    assert first.reply_markup is not None
    assert first.reply_markup.model_dump(exclude_none=True) == KEYBOARD_JSON
    assert second.message_id > first.message_id
    assert api.sent == [
        SentMessage(first.message_id, USER, "hello", KEYBOARD_JSON, True, None),
        SentMessage(second.message_id, -100, "<b>hi</b>", None, False, "HTML"),
    ]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"chat_id": USER, "text": ""}, "message text is empty"),
        ({"text": "no chat"}, "chat not found"),
    ],
)
async def test_send_message_rejects_bad_requests(
    api: FakeBotApi, params: dict[str, object], error: str
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{api.base_url}/bot{api.token}/sendMessage", json=params) as response,
    ):
        body = await response.json()

    assert response.status == 400
    assert body["ok"] is False
    assert error in body["description"]
    assert api.sent == []


async def test_edits_change_the_message_and_are_recorded(api: FakeBotApi, bot: Bot) -> None:
    sent = await bot.send_message(USER, "Flatten?", reply_markup=KEYBOARD)

    edited = await bot.edit_message_text(
        text="Flattening", chat_id=USER, message_id=sent.message_id
    )
    await bot.edit_message_reply_markup(
        chat_id=USER, message_id=sent.message_id, reply_markup=KEYBOARD
    )
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            text="Flattening", chat_id=USER, message_id=sent.message_id, reply_markup=KEYBOARD
        )
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="x", chat_id=USER, message_id=999)

    assert isinstance(edited, Message)
    assert (edited.text, edited.reply_markup) == ("Flattening", None)
    assert api.edits == [
        EditedMessage(USER, sent.message_id, "Flattening", None),
        EditedMessage(USER, sent.message_id, "Flattening", KEYBOARD_JSON),
    ]


async def test_callback_query_carries_the_bot_message_and_is_answered_once(
    api: FakeBotApi, bot: Bot
) -> None:
    sent = await bot.send_message(USER, "Flatten?", reply_markup=KEYBOARD)
    query_id = api.push_callback(USER, "confirm:1", message_id=sent.message_id)

    [update] = await bot.get_updates()
    assert update.callback_query is not None
    await bot.answer_callback_query(update.callback_query.id, text="Done", show_alert=True)
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query(query_id)

    query = update.callback_query
    assert isinstance(query.message, Message)
    assert (query.id, query.data, query.from_user.id) == (query_id, "confirm:1", USER)
    assert (query.message.message_id, query.message.text) == (sent.message_id, "Flatten?")
    assert api.answered == [AnsweredCallback(query_id, "Done", True)]


def test_push_callback_refuses_a_message_the_bot_never_sent(api: FakeBotApi) -> None:
    with pytest.raises(ValueError, match="sent no message 7 to chat 1001"):
        api.push_callback(USER, "x", message_id=7)


async def test_long_poll_returns_as_soon_as_an_update_arrives() -> None:
    async with FakeBotApi(max_poll_wait=10) as api:
        bot = api.bot()
        try:
            poll = asyncio.create_task(bot.get_updates(timeout=10))
            await api.wait_for(lambda: len(api.calls) == 1, what="the long poll")
            loop = asyncio.get_running_loop()
            pushed_at = loop.time()
            update_id = api.push_message(USER, "/status now", username="alice")
            [update] = await asyncio.wait_for(poll, 2)
            waited = loop.time() - pushed_at
        finally:
            await bot.session.close()

    assert waited < 1
    assert update.update_id == update_id
    assert update.message is not None
    assert update.message.from_user is not None
    assert (update.message.text, update.message.from_user.username) == ("/status now", "alice")
    assert update.message.entities is not None
    [entity] = update.message.entities
    assert (entity.type, entity.offset, entity.length) == ("bot_command", 0, len("/status"))


async def test_long_poll_without_updates_waits_the_capped_timeout() -> None:
    async with FakeBotApi(max_poll_wait=0.2) as api:
        bot = api.bot()
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            updates = await bot.get_updates(timeout=30)
            waited = loop.time() - started
        finally:
            await bot.session.close()

    assert updates == []
    assert 0.15 <= waited < 2


async def test_offset_confirms_updates(api: FakeBotApi, bot: Bot) -> None:
    first = api.push_message(USER, "one")
    second = api.push_message(USER, "two")

    unconfirmed = await bot.get_updates()
    again = await bot.get_updates()
    after_first = await bot.get_updates(offset=first + 1)
    after_second = await bot.get_updates(offset=second + 1)

    assert [u.update_id for u in unconfirmed] == [first, second]
    assert [u.update_id for u in again] == [first, second]
    assert [u.update_id for u in after_first] == [second]
    assert after_second == []
    assert api.pending_updates == 0


async def test_dispatcher_polling_answers_a_command(api: FakeBotApi) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message(Command("ping"))
    async def ping(message: Message) -> None:
        await message.answer("pong")

    bot = api.bot()
    polling = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, polling_timeout=5)
    )
    try:
        api.push_message(USER, "/ping")
        await api.wait_for(lambda: len(api.sent) == 1, what="the pong")
    finally:
        await dispatcher.stop_polling()
        await polling

    assert [(m.chat_id, m.text) for m in api.sent] == [(USER, "pong")]


async def test_wrong_token_is_unauthorized_and_never_echoed(api: FakeBotApi) -> None:
    stranger = Bot("999:WRONG-TOKEN", session=LoopbackSession(api=api.api_server))
    try:
        with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
            await stranger.get_me()
    finally:
        await stranger.session.close()
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{api.base_url}/bot999:WRONG-TOKEN/getMe") as response,
    ):
        body = await response.text()

    assert response.status == 401
    assert "WRONG-TOKEN" not in body
    assert api.unauthorized == 2
    assert api.calls == []


@pytest.mark.parametrize("path", ["/bot{token}/noSuchMethod", "/file/x", "/bot{token}/"])
async def test_unknown_paths_are_not_found(api: FakeBotApi, path: str) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(api.base_url + path.format(token=api.token)) as response,
    ):
        body = await response.json()

    assert response.status == 404
    assert body == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_flood_answers_429_with_retry_after_then_recovers(api: FakeBotApi, bot: Bot) -> None:
    api.flood(3, times=2)

    for _ in range(2):
        with pytest.raises(TelegramRetryAfter) as raised:
            await bot.send_message(USER, "x")
        assert raised.value.retry_after == 3
    await bot.get_me()  # other methods are not flooded
    await bot.send_message(USER, "y")

    assert [m.text for m in api.sent] == ["y"]


async def test_down_answers_502_until_up(api: FakeBotApi, bot: Bot) -> None:
    api.down()
    with pytest.raises(TelegramServerError, match="Bad Gateway"):
        await bot.send_message(USER, "lost")
    api.up()
    await bot.send_message(USER, "back")

    assert [m.text for m in api.sent] == ["back"]


async def test_refused_connections_reopen_on_the_same_port(api: FakeBotApi, bot: Bot) -> None:
    await bot.get_me()  # leaves a keep-alive connection open, which refusing must close too
    url = api.base_url
    api.refuse_connections()
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(USER, "lost")
    api.up()
    await bot.send_message(USER, "back")

    assert api.base_url == url
    assert [m.text for m in api.sent] == ["back"]


async def test_conflict_answers_409(api: FakeBotApi, bot: Bot) -> None:
    api.conflict()
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await bot.get_updates()
    api.conflict(on=False)

    assert await bot.get_updates() == []


async def test_a_second_poller_terminates_the_first(api: FakeBotApi, bot: Bot) -> None:
    other = api.bot()
    try:
        first = asyncio.create_task(bot.get_updates(timeout=5))
        await api.wait_for(lambda: len(api.calls) == 1, what="the first long poll")
        second = asyncio.create_task(other.get_updates(timeout=5))
        with pytest.raises(TelegramConflictError):
            await asyncio.wait_for(first, 2)
        api.push_message(USER, "hi")
        [update] = await asyncio.wait_for(second, 2)
    finally:
        await other.session.close()

    assert update.message is not None
    assert update.message.text == "hi"


async def test_failing_chat_answers_its_error(api: FakeBotApi, bot: Bot) -> None:
    api.fail_chat(-5)

    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(-5, "x")
    await bot.send_message(USER, "y")

    assert [m.chat_id for m in api.sent] == [USER]


async def test_set_my_commands_is_recorded(api: FakeBotApi, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand(command="status", description="State")])
    await bot.delete_webhook(drop_pending_updates=True)
    await bot.close()
    await bot.log_out()

    assert api.commands == [{"command": "status", "description": "State"}]
    assert [name for name, _ in api.calls] == ["setMyCommands", "deleteWebhook", "close", "logOut"]


async def test_wait_for_names_what_it_waited_for(api: FakeBotApi) -> None:
    with pytest.raises(AssertionError, match="waiting for the impossible"):
        await api.wait_for(lambda: False, timeout=0.05, what="the impossible")


def _png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return buffer.getvalue()


async def test_send_photo_takes_aiograms_multipart_upload(api: FakeBotApi, bot: Bot) -> None:
    from aiogram.types import BufferedInputFile

    data = _png(40, 30)
    sent = await bot.send_photo(USER, BufferedInputFile(data, "chart.png"), caption="equity")

    assert sent.photo is not None
    assert (sent.photo[-1].width, sent.photo[-1].height) == (40, 30)
    assert sent.caption == "equity"
    [photo] = api.photos
    assert (photo.chat_id, photo.data, photo.filename, photo.caption) == (
        USER,
        data,
        "chart.png",
        "equity",
    )


async def test_send_photo_takes_a_file_in_the_photo_field(api: FakeBotApi) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(USER))
    form.add_field("photo", _png(8, 8), filename="p.png", content_type="image/png")
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{api.base_url}/bot{api.token}/sendPhoto", data=form) as response,
    ):
        body = await response.json()
    assert body["ok"] is True
    assert body["result"]["photo"][0]["width"] == 8
    assert len(api.photos) == 1


@pytest.mark.parametrize(
    ("photo", "error"),
    [
        (b"not an image", "IMAGE_PROCESS_FAILED"),
        (None, "there is no photo in the request"),
    ],
)
async def test_send_photo_refuses_what_telegram_refuses(
    api: FakeBotApi, photo: bytes | None, error: str
) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(USER))
    if photo is not None:
        form.add_field("photo", photo, filename="p.png", content_type="image/png")
    else:
        form.add_field("caption", "no file")
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{api.base_url}/bot{api.token}/sendPhoto", data=form) as response,
    ):
        body = await response.json()
    assert response.status == 400
    assert error in body["description"]
    assert api.photos == []


async def test_send_photo_refuses_a_remote_file_id(api: FakeBotApi, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="wrong remote file identifier"):
        await bot.send_photo(USER, "AgACAgIAAxkBAAI")
