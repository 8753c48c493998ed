"""A fake Telegram Bot API server on loopback that real, unmodified aiogram 3 talks to over HTTP.

Point aiogram at it with ``TelegramAPIServer.from_base(api.base_url)`` (or use :meth:`FakeBotApi.bot`).
It serves what a polling bot and the notifier call (getMe, getUpdates with long polling and offset
confirmation, deleteWebhook, sendMessage, sendPhoto (a multipart upload), editMessageText,
editMessageReplyMarkup, answerCallbackQuery, setMyCommands, close, logOut and a few more),
records every call, and answers the way Telegram does: ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": N, "description": ...}`` with the matching HTTP status. Faults are
scriptable: flood control (429 with ``retry_after``), the Bot API down (502), connections refused,
and the getUpdates conflict (409).

The token is checked on every request (``/bot<token>/<method>``) and is never logged or echoed:
the access log is off and no answer repeats the path.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self

import aiohttp
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import web

Json = dict[str, Any]

MAX_POLL_WAIT = 1.0
"""Longest a getUpdates long poll is held open (Telegram holds it up to ``timeout``; tests want less)."""

UNAUTHORIZED = "Unauthorized"
WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)
CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"

# How form fields are decoded (aiogram posts every value as a string; lists and objects as JSON).
_JSON_FIELDS = frozenset(
    {"reply_markup", "allowed_updates", "commands", "entities", "scope", "link_preview_options"}
)
_INT_FIELDS = frozenset(
    {"chat_id", "message_id", "offset", "limit", "timeout", "cache_time", "message_thread_id"}
)
_BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "show_alert",
        "drop_pending_updates",
        "protect_content",
        "disable_web_page_preview",
    }
)


@dataclass(frozen=True)
class SentMessage:
    message_id: int
    chat_id: int
    text: str
    reply_markup: dict[str, Any] | None
    disable_notification: bool
    parse_mode: str | None


@dataclass(frozen=True)
class SentPhoto:
    """A photo uploaded with sendPhoto: the file's bytes as the bot posted them."""

    message_id: int
    chat_id: int
    data: bytes
    filename: str | None
    caption: str | None
    width: int
    height: int


@dataclass(frozen=True)
class EditedMessage:
    chat_id: int
    message_id: int
    text: str
    reply_markup: dict[str, Any] | None


@dataclass(frozen=True)
class AnsweredCallback:
    callback_query_id: str
    text: str | None
    show_alert: bool


class LoopbackSession(AiohttpSession):
    """aiogram's own HTTP session, minus the 250 ms pause its close makes for TLS shutdown.

    Plain HTTP on loopback has no TLS to wind down; the pause only slows every test.
    """

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


class _ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: Json | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def _decode_field(name: str, value: str) -> Any:
    if name in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            raise _ApiError(400, f"Bad Request: can't parse {name} JSON object") from None
    if name in _BOOL_FIELDS:
        return value.lower() in ("true", "1")
    if name in _INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value  # e.g. chat_id "@channel"
    return value


class FakeBotApi:
    """One bot's Bot API on 127.0.0.1 at a random port; see the module docstring."""

    def __init__(
        self,
        *,
        token: str = "123456:TEST-TOKEN",
        bot_id: int = 123456,
        username: str = "qs_test_bot",
        max_poll_wait: float = MAX_POLL_WAIT,
    ) -> None:
        if not token or "/" in token:
            raise ValueError("token must be non-empty and contain no '/'")
        self.token = token
        self.bot_id = bot_id
        self.username = username
        self.max_poll_wait = max_poll_wait
        self.sent: list[SentMessage] = []
        self.photos: list[SentPhoto] = []
        self.edits: list[EditedMessage] = []
        self.answered: list[AnsweredCallback] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        """Every request with the right token, faulted ones included: (method as called, params)."""
        self.commands: list[Json] = []
        """The bot's command list as last set by setMyCommands."""
        self.unauthorized = 0
        """Requests that carried a wrong token."""
        self._messages: dict[tuple[int, int], Json] = {}
        self._updates: list[Json] = []
        self.webhook_url = ""
        self.webhook_secret = ""
        self.webhook_deliveries: list[asyncio.Task[int]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._open_callbacks: set[str] = set()
        self._floods: dict[str, deque[int]] = {}
        self._failing_chats: dict[int, tuple[int, str]] = {}
        self._down = False
        self._conflict = False
        self._refusing = False
        self._poll_waiter: asyncio.Future[bool] | None = None
        self._changed: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._reopening: asyncio.Task[None] | None = None
        self._port = 0

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if not self._port:
            raise RuntimeError("FakeBotApi is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_server(self) -> TelegramAPIServer:
        return TelegramAPIServer.from_base(self.base_url)

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("FakeBotApi is already started")
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # access_log=None: the access log would print the request path, which holds the token.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self._changed = asyncio.Event()
        await self._listen(self._bind(0))

    async def stop(self) -> None:
        if self._runner is None:
            return
        self._wake_poll(superseded=False)
        if self._reopening is not None:
            await self._reopening
            self._reopening = None
        self._close_listener()
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def bot(self, *, timeout: float = 10.0, **defaults: Any) -> Bot:
        """A real aiogram Bot talking to this server; the caller closes ``bot.session``."""
        session = LoopbackSession(api=self.api_server, timeout=timeout)
        return Bot(self.token, session=session, default=DefaultBotProperties(**defaults))

    def _bind(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        # listen() here, synchronously: from now on connects queue in the backlog, never refused.
        sock.listen(128)
        sock.setblocking(False)
        self._port = sock.getsockname()[1]
        return sock

    async def _listen(self, sock: socket.socket) -> None:
        assert self._runner is not None
        assert self._runner.server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._runner.server, sock=sock)

    def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()  # closes the listening socket at once
            self._server = None
        if self._runner is not None and self._runner.server is not None:
            for connection in self._runner.server.connections:
                connection.force_close()

    # -- faults ----------------------------------------------------------------------------------

    def flood(self, retry_after: int, times: int = 1, method: str = "sendMessage") -> None:
        """The next ``times`` calls of ``method`` answer 429 with ``retry_after`` seconds."""
        if retry_after < 1 or times < 1:
            raise ValueError(
                f"flood needs retry_after >= 1 and times >= 1, got {retry_after}, {times}"
            )
        self._floods.setdefault(method.lower(), deque()).extend([retry_after] * times)

    def down(self) -> None:
        """Every method answers 502 Bad Gateway until :meth:`up` (a held long poll too)."""
        self._down = True
        self._wake_poll(superseded=False)

    def refuse_connections(self) -> None:
        """Close the listener and every open connection: connects are refused until :meth:`up`."""
        if self._runner is None:
            raise RuntimeError("FakeBotApi is not started")
        self._refusing = True
        self._wake_poll(superseded=False)
        self._close_listener()

    def up(self) -> None:
        """Undo :meth:`down` and :meth:`refuse_connections` (the listener reopens on the same port)."""
        self._down = False
        if self._refusing:
            self._refusing = False
            sock = self._bind(self._port)
            self._reopening = asyncio.get_running_loop().create_task(self._listen(sock))

    def conflict(self, on: bool = True) -> None:
        """getUpdates answers 409, as when another process polls with the same token."""
        self._conflict = on
        if on:
            self._wake_poll(superseded=True)

    def fail_chat(
        self, chat_id: int, code: int = 400, description: str = "Bad Request: chat not found"
    ) -> None:
        """Sending to ``chat_id`` fails with ``code``/``description`` (e.g. 403 bot was blocked)."""
        self._failing_chats[chat_id] = (code, description)

    # -- updates ---------------------------------------------------------------------------------

    def push_message(
        self, user_id: int, text: str, *, chat_id: int | None = None, username: str = "user"
    ) -> int:
        """Queue a text message from ``user_id`` (a command gets its bot_command entity)."""
        chat = user_id if chat_id is None else chat_id
        message: Json = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chat(chat, username),
            "from": {"id": user_id, "is_bot": False, "first_name": username, "username": username},
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self._push({"message": message})

    def push_callback(
        self, user_id: int, data: str, *, message_id: int, chat_id: int | None = None
    ) -> str:
        """Queue a button press by ``user_id`` on message ``message_id`` that the bot sent."""
        chat = user_id if chat_id is None else chat_id
        message = self._messages.get((chat, message_id))
        if message is None:
            raise ValueError(f"the bot sent no message {message_id} to chat {chat}")
        query_id = str(next(self._callback_ids))
        self._open_callbacks.add(query_id)
        self._push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": {"id": user_id, "is_bot": False, "first_name": "user"},
                    "chat_instance": str(chat),
                    "message": dict(message),
                    "data": data,
                }
            }
        )
        return query_id

    @property
    def pending_updates(self) -> int:
        """Updates not yet confirmed by a getUpdates offset."""
        return len(self._updates)

    def _push(self, body: Json) -> int:
        update_id = next(self._update_ids)
        update = {"update_id": update_id, **body}
        if self.webhook_url:
            # As Telegram does with a webhook set: POST the update to it (with the secret header).
            self.webhook_deliveries.append(
                asyncio.get_running_loop().create_task(self._post_to_webhook(update))
            )
            self._touch()
            return update_id
        self._updates.append(update)
        self._wake_poll(superseded=False)
        self._touch()
        return update_id

    async def _post_to_webhook(self, update: Json) -> int:
        headers = {}
        if self.webhook_secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook_secret
        async with (
            aiohttp.ClientSession() as client,
            client.post(self.webhook_url, json=update, headers=headers) as response,
        ):
            return response.status

    def _chat(self, chat_id: int, username: str = "user") -> Json:
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": username, "username": username}
        return {"id": chat_id, "type": "supergroup", "title": f"group {chat_id}"}

    def _wake_poll(self, *, superseded: bool) -> None:
        waiter, self._poll_waiter = self._poll_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(superseded)

    # -- waiting ---------------------------------------------------------------------------------

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = ""
    ) -> None:
        """Return once ``predicate()`` holds; fail after ``timeout`` seconds naming ``what``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        changed = self._changed if self._changed is not None else asyncio.Event()
        while True:
            changed.clear()
            if predicate():
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                methods = [name for name, _ in self.calls[-20:]]
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what or 'the condition'}; "
                    f"last calls: {methods}"
                )
            # Re-check now and then too: the predicate may read state the server does not change.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, 0.02))

    def _touch(self) -> None:
        if self._changed is not None:
            self._changed.set()

    # -- HTTP ------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            method = self._authorize(request.path)
            params = await self._params(request)
            self.calls.append((method, params))
            self._touch()
            result = await self._dispatch(method, params)
        except _ApiError as error:
            body: Json = {"ok": False, "error_code": error.code, "description": error.description}
            if error.parameters:
                body["parameters"] = error.parameters
            return web.json_response(body, status=error.code)
        except (
            Exception
        ) as error:  # a bug in the fake: say so without the path (it holds the token)
            body = {"ok": False, "error_code": 500, "description": f"fake server error: {error!r}"}
            return web.json_response(body, status=500)
        finally:
            self._touch()
        return web.json_response({"ok": True, "result": result})

    def _authorize(self, path: str) -> str:
        parts = path.split("/")
        if len(parts) != 3 or parts[0] or not parts[1].startswith("bot"):
            raise _ApiError(404, "Not Found")
        given, method = parts[1][3:], parts[2]
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            self.unauthorized += 1
            raise _ApiError(401, UNAUTHORIZED)
        if not method:
            raise _ApiError(404, "Not Found")
        return method

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = {k: _decode_field(k, v) for k, v in request.query.items()}
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _ApiError(400, "Bad Request: can't parse JSON body") from None
            if not isinstance(body, dict):
                raise _ApiError(400, "Bad Request: JSON body must be an object")
            for key, value in body.items():
                params[key] = _decode_field(key, value) if isinstance(value, str) else value
        elif request.body_exists:
            form = await request.post()
            files: dict[str, tuple[str | None, bytes]] = {}
            for key, value in form.items():
                if isinstance(value, str):
                    params[key] = _decode_field(key, value)
                elif isinstance(value, web.FileField):  # a file part of a multipart upload
                    files[key] = (value.filename, value.file.read())
            if files:
                params[_FILES] = files
        return params

    async def _dispatch(self, method: str, params: dict[str, Any]) -> Any:
        name = method.lower()
        if self._down:
            raise _ApiError(502, "Bad Gateway")
        floods = self._floods.get(name)
        if floods:
            retry_after = floods.popleft()
            raise _ApiError(
                429,
                f"Too Many Requests: retry after {retry_after}",
                {"retry_after": retry_after},
            )
        handler = self._methods.get(name)
        if handler is None:
            raise _ApiError(404, "Not Found")
        return await handler(self, params)

    # -- methods ---------------------------------------------------------------------------------

    def _bot_user(self) -> Json:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "QS Test",
            "username": self.username,
        }

    async def _get_me(self, params: dict[str, Any]) -> Any:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _get_updates(self, params: dict[str, Any]) -> Any:
        if self._conflict:
            raise _ApiError(409, CONFLICT)
        if self.webhook_url:
            raise _ApiError(409, WEBHOOK_ACTIVE)
        # Any newer getUpdates terminates a long poll still held open, as Telegram does.
        self._wake_poll(superseded=True)
        offset = _int(params, "offset", 0)
        limit = min(max(_int(params, "limit", 100), 1), 100)
        timeout = min(max(_int(params, "timeout", 0), 0), self.max_poll_wait)
        if offset > 0:  # confirms every update before it
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        if not self._updates and timeout > 0:
            waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self._poll_waiter = waiter
            try:
                superseded = await asyncio.wait_for(asyncio.shield(waiter), timeout)
            except TimeoutError:
                superseded = False
            finally:
                if self._poll_waiter is waiter:
                    self._poll_waiter = None
            if superseded:
                raise _ApiError(409, CONFLICT)
            if self._down:
                raise _ApiError(502, "Bad Gateway")
        return self._updates[:limit]

    async def _delete_webhook(self, params: dict[str, Any]) -> Any:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook_url = ""
        self.webhook_secret = ""
        return True

    async def _set_webhook(self, params: dict[str, Any]) -> Any:
        url = params.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _ApiError(400, "Bad Request: bad webhook: invalid URL")
        self.webhook_url = url
        secret = params.get("secret_token")
        self.webhook_secret = secret if isinstance(secret, str) else ""
        return True

    async def _get_webhook_info(self, params: dict[str, Any]) -> Any:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    async def _send_message(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat_id(params)
        text = params.get("text")
        if not isinstance(text, str) or not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        markup = _markup(params)
        message: Json = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chat(chat_id),
            "from": self._bot_user(),
            "text": text,
        }
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._messages[(chat_id, message["message_id"])] = message
        parse_mode = params.get("parse_mode")
        self.sent.append(
            SentMessage(
                message_id=message["message_id"],
                chat_id=chat_id,
                text=text,
                reply_markup=markup,
                disable_notification=bool(params.get("disable_notification", False)),
                parse_mode=parse_mode if isinstance(parse_mode, str) else None,
            )
        )
        return message

    async def _send_photo(self, params: dict[str, Any]) -> Any:
        """As the Bot API documents it: ``photo`` is a file_id or URL (refused here: this server
        stores no files and fetches nothing), a file posted as multipart/form-data in the ``photo``
        field, or ``attach://<name>`` naming another file part of the same upload; at most 10 MB,
        width + height at most 10000; an optional ``caption`` of at most 1024 characters."""
        chat_id = self._chat_id(params)
        files: dict[str, tuple[str | None, bytes]] = params.get(_FILES, {})
        photo = params.get("photo")
        if isinstance(photo, str) and photo.startswith("attach://"):
            upload = files.get(photo.removeprefix("attach://"))
        elif photo is None:
            upload = files.get("photo")
        else:
            raise _ApiError(400, "Bad Request: wrong remote file identifier specified")
        if upload is None:
            raise _ApiError(400, "Bad Request: there is no photo in the request")
        filename, data = upload
        if len(data) > 10 * 1024 * 1024:
            raise _ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
        size = _image_size(data)
        if size is None:
            raise _ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
        width, height = size
        if width + height > 10000:
            raise _ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
        caption = params.get("caption")
        if caption is not None and (not isinstance(caption, str) or len(caption) > 1024):
            raise _ApiError(400, "Bad Request: message caption is too long")
        message_id = next(self._message_ids)
        message: Json = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self._chat(chat_id),
            "from": self._bot_user(),
            "photo": [
                {
                    "file_id": f"photo-{message_id}",
                    "file_unique_id": f"u-photo-{message_id}",
                    "width": width,
                    "height": height,
                    "file_size": len(data),
                }
            ],
        }
        if caption:
            message["caption"] = caption
        self.photos.append(SentPhoto(message_id, chat_id, data, filename, caption, width, height))
        return message

    async def _edit_message_text(self, params: dict[str, Any]) -> Any:
        text = params.get("text")
        if not isinstance(text, str) or not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        return self._edit(params, text, _markup(params))

    async def _edit_message_reply_markup(self, params: dict[str, Any]) -> Any:
        return self._edit(params, None, _markup(params))

    def _edit(self, params: dict[str, Any], text: str | None, markup: Json | None) -> Json:
        chat_id = self._chat_id(params)
        message_id = _int(params, "message_id", 0)
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        new_text = message["text"] if text is None else text
        keyboard = markup if markup is not None and "inline_keyboard" in markup else None
        if new_text == message["text"] and keyboard == message.get("reply_markup"):
            raise _ApiError(400, NOT_MODIFIED)
        edited: Json = {**message, "text": new_text, "edit_date": int(time.time())}
        edited.pop("reply_markup", None)
        if keyboard is not None:
            edited["reply_markup"] = keyboard
        self._messages[(chat_id, message_id)] = edited
        self.edits.append(EditedMessage(chat_id, message_id, new_text, markup))
        return edited

    async def _answer_callback_query(self, params: dict[str, Any]) -> Any:
        query_id = params.get("callback_query_id")
        if not isinstance(query_id, str) or query_id not in self._open_callbacks:
            raise _ApiError(400, QUERY_INVALID)
        self._open_callbacks.discard(query_id)
        text = params.get("text")
        self.answered.append(
            AnsweredCallback(
                callback_query_id=query_id,
                text=text if isinstance(text, str) else None,
                show_alert=bool(params.get("show_alert", False)),
            )
        )
        return True

    async def _set_my_commands(self, params: dict[str, Any]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: commands must be a JSON array")
        self.commands = commands
        return True

    async def _get_my_commands(self, params: dict[str, Any]) -> Any:
        return self.commands

    async def _delete_my_commands(self, params: dict[str, Any]) -> Any:
        self.commands = []
        return True

    async def _delete_message(self, params: dict[str, Any]) -> Any:
        key = (self._chat_id(params), _int(params, "message_id", 0))
        if self._messages.pop(key, None) is None:
            raise _ApiError(400, "Bad Request: message to delete not found")
        return True

    async def _ok(self, params: dict[str, Any]) -> Any:
        return True

    def _chat_id(self, params: Mapping[str, Any]) -> int:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise _ApiError(400, "Bad Request: chat not found")
        failure = self._failing_chats.get(chat_id)
        if failure is not None:
            raise _ApiError(*failure)
        return chat_id

    _methods: ClassVar[Mapping[str, Callable[[FakeBotApi, dict[str, Any]], Any]]] = {
        "getme": _get_me,
        "getupdates": _get_updates,
        "deletewebhook": _delete_webhook,
        "setwebhook": _set_webhook,
        "getwebhookinfo": _get_webhook_info,
        "sendmessage": _send_message,
        "sendphoto": _send_photo,
        "editmessagetext": _edit_message_text,
        "editmessagereplymarkup": _edit_message_reply_markup,
        "answercallbackquery": _answer_callback_query,
        "setmycommands": _set_my_commands,
        "getmycommands": _get_my_commands,
        "deletemycommands": _delete_my_commands,
        "deletemessage": _delete_message,
        "sendchataction": _ok,
        "close": _ok,
        "logout": _ok,
    }


_FILES = "\0files"
"""Where _params keeps the file parts of a multipart upload (a key no form field can have)."""


def _image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or a baseline/progressive JPEG, else None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data) and data[i] == 0xFF:
            marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
            if marker in (0xC0, 0xC1, 0xC2):
                h = int.from_bytes(data[i + 5 : i + 7], "big")
                w = int.from_bytes(data[i + 7 : i + 9], "big")
                return w, h
            i += 2 + length
    return None


def _int(params: Mapping[str, Any], name: str, default: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _ApiError(400, f"Bad Request: {name} must be an integer")
    return value


def _markup(params: Mapping[str, Any]) -> Json | None:
    markup = params.get("reply_markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _ApiError(400, "Bad Request: reply_markup must be a JSON object")
    return markup
