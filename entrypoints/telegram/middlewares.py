"""Who may do what, and the journal line every command leaves.

Two middlewares, registered by :func:`entrypoints.telegram.dispatcher.build_dispatcher` on the
dispatcher's ``message`` and ``callback_query`` observers:

* :class:`AccessGate` (outer: before any filter) denies by default. A user id not in
  ``telegram.users`` gets one short "Not authorised." for the life of the process and nothing after
  that; group chatter (a non-command message) from a stranger is ignored without a word. Every
  command or button press a stranger sends is still journaled as refused. Allowed users pass on,
  with ``role`` and ``by`` (``telegram:<user id>``) in the handler data, in a private chat or in a
  group listed in ``telegram.group_chats``; anywhere else the bot answers nothing (what it would
  say is the account's business, not the group's), and the command is journaled as refused.
* :class:`RoleGate` (inner: once a handler matched) reads the handler's :class:`CommandSpec` flag:
  a viewer asking for an operator command is refused with one line; otherwise the handler runs with
  an :class:`Audit` that it fills in, and the audit is journaled when the handler is done (or
  failed: then the user is told in one line, and the error goes on to aiogram, which logs it).

Journal lines name the command as typed (``/pnl week``, ``/breaker reset``) or the button pressed
(``/flatten confirm``), so they never collide with the records the engine and the console write
for the same act under its bare name (``pause``, ``flatten``, ``stop``).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

from aiogram import BaseMiddleware
from aiogram.dispatcher.flags import get_flag
from aiogram.exceptions import TelegramAPIError
from aiogram.types import CallbackQuery, Chat, Message, TelegramObject

from application.operator import OperatorConsole
from entrypoints.settings import Role
from entrypoints.telegram.catalog import CommandSpec, may
from entrypoints.telegram.formatting import MAX_MESSAGE

NOT_AUTHORISED: Final = "Not authorised."
MAX_JOURNALED: Final = 64
"""Longest command text journaled: what a stranger types is not kept in full."""

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def operator_id(user_id: int) -> str:
    """How a Telegram user appears as ``by`` in the journal and in engine events."""
    return f"telegram:{user_id}"


def command_text(text: str | None) -> str | None:
    """A command as the journal keeps it: ``/Status@qs_bot  Week`` is ``/status Week``; None when
    ``text`` is not a command. Cut to :data:`MAX_JOURNALED` characters."""
    if not text or not text.startswith("/"):
        return None
    head, *rest = text.split(maxsplit=1)
    name = head[1:].split("@", 1)[0].lower()
    line = f"/{name} {rest[0].strip()}" if rest else f"/{name}"
    return line if len(line) <= MAX_JOURNALED else line[: MAX_JOURNALED - 1] + "…"


class Audit:
    """One command's journal line: who, what, allowed or refused, and what came of it.

    Written once: by the role gate when the handler returns or raises, or earlier by a handler that
    must have it on record before it acts (``/stop``, which may end the process).
    """

    def __init__(self, console: OperatorConsole, by: str, command: str) -> None:
        self._console = console
        self.by = by
        self.command = command
        self.allowed = True
        self.outcome = ""
        self.written = False

    def refuse(self, outcome: str) -> None:
        self.allowed = False
        self.outcome = outcome

    def write(self, error: BaseException | None = None) -> None:
        if self.written:
            return
        self.written = True
        outcome = self.outcome
        if error is not None:
            failure = f"failed: {type(error).__name__}: {error}"
            outcome = f"{outcome}; {failure}" if outcome else failure
        self._console.record_command(self.command, self.by, allowed=self.allowed, outcome=outcome)


class AccessGate(BaseMiddleware):
    """Outer middleware: only user ids in ``users`` get past; see the module docstring."""

    def __init__(
        self,
        users: Mapping[int, Role],
        console: OperatorConsole,
        *,
        group_chats: Iterable[int] = (),
        remember: int = 10_000,
    ) -> None:
        self._users = dict(users)
        self._groups = frozenset(group_chats)
        self._console = console
        self._remember = remember
        self._refused: OrderedDict[int, None] = OrderedDict()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user = getattr(event, "from_user", None)
        if user is None:  # nobody to hold to account (service messages and the like)
            return None
        role = self._users.get(user.id)
        if role is not None:
            chat = _chat_of(event)
            if chat is not None and chat.type != "private" and chat.id not in self._groups:
                await self._refuse_in_group(event, data, user.id, chat.id)
                return None
            data["role"] = role
            data["by"] = operator_id(user.id)
            return await handler(event, data)
        if isinstance(event, Message):
            await self._stranger_message(event, user.id)
        elif isinstance(event, CallbackQuery):
            await self._stranger_press(event, user.id)
        return None

    async def _refuse_in_group(
        self, event: TelegramObject, data: dict[str, Any], user_id: int, chat_id: int
    ) -> None:
        """An allowed user in a chat not allowed: no answer there; journaled if it was a command
        to this bot."""
        if isinstance(event, Message):
            command = command_text(event.text)
            if command is None or not await _addressed_to_us(event, data):
                return  # group chatter, or a command for another bot
        else:
            command = "button"
        self._console.record_command(
            command,
            operator_id(user_id),
            allowed=False,
            outcome=f"group chat {chat_id} not in telegram.group_chats: not answered",
        )

    def _first_refusal(self, user_id: int) -> bool:
        """True the first time ``user_id`` is refused (the memory is bounded: oldest forgotten)."""
        if user_id in self._refused:
            return False
        self._refused[user_id] = None
        while len(self._refused) > self._remember:
            self._refused.popitem(last=False)
        return True

    async def _stranger_message(self, message: Message, user_id: int) -> None:
        command = command_text(message.text)
        if command is not None:
            self._console.record_command(
                command, operator_id(user_id), allowed=False, outcome="not authorised"
            )
        addressed = command is not None or message.chat.type == "private"
        if addressed and self._first_refusal(user_id):
            await message.answer(NOT_AUTHORISED)

    async def _stranger_press(self, query: CallbackQuery, user_id: int) -> None:
        self._console.record_command(
            "button", operator_id(user_id), allowed=False, outcome="not authorised"
        )
        # A press must be answered or the client spins; only the first answer says why.
        await query.answer(NOT_AUTHORISED if self._first_refusal(user_id) else None)


class RoleGate(BaseMiddleware):
    """Inner middleware: the handler's role check and its journal line."""

    def __init__(self, console: OperatorConsole) -> None:
        self._console = console

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        spec = get_flag(data, "command")
        if not isinstance(spec, CommandSpec):
            return await handler(event, data)
        role: Role = data["role"]
        typed = command_text(event.text) if isinstance(event, Message) else None
        audit = Audit(self._console, data["by"], typed if typed is not None else spec.usage)
        if not may(role, spec.role):
            audit.refuse(f"needs the {spec.role} role; user is a {role}")
            audit.write()
            if isinstance(event, Message):
                await event.answer(f"{spec.usage} needs the {spec.role} role; you are a {role}.")
            elif isinstance(event, CallbackQuery):
                await event.answer(f"Only an {spec.role} can answer this.", show_alert=True)
            return None
        data["audit"] = audit
        try:
            result = await handler(event, data)
        except Exception as error:
            audit.write(error)
            await _tell_failure(event, f"{spec.usage} failed: {type(error).__name__}: {error}")
            raise  # aiogram logs it; the journal has it too
        audit.write()
        return result


async def _addressed_to_us(message: Message, data: dict[str, Any]) -> bool:
    """Whether a command names no bot (``/status``) or this one (``/status@our_bot``)."""
    head = (message.text or "").split(maxsplit=1)[0]
    _, at, name = head.partition("@")
    if not at:
        return True
    bot = data.get("bot")
    if bot is None:
        return True
    me = await bot.me()
    return bool(me.username) and name.lower() == me.username.lower()


def _chat_of(event: TelegramObject) -> Chat | None:
    """The chat a message came from, or the chat of the message a button belongs to."""
    if isinstance(event, Message):
        return event.chat
    if isinstance(event, CallbackQuery) and isinstance(event.message, Message):
        return event.message.chat
    return None


async def _tell_failure(event: TelegramObject, text: str) -> None:
    """Best effort: when the failure was Telegram itself, this fails too, and is let go."""
    with contextlib.suppress(TelegramAPIError):
        if isinstance(event, Message):
            await event.answer(text[:MAX_MESSAGE])
        elif isinstance(event, CallbackQuery):
            await event.answer(text[:200], show_alert=True)
