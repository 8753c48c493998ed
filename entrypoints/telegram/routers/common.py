"""Helpers the routers share: replies cut to Telegram's size, argument checks."""

from __future__ import annotations

from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from magic_filter import MagicFilter

from entrypoints.telegram.catalog import CommandSpec
from entrypoints.telegram.formatting import chunks
from entrypoints.telegram.middlewares import Audit


async def reply(message: Message, text: str) -> None:
    """Answer in the chat the command came from, as plain text, in as many messages as needed."""
    for piece in chunks(text):
        await message.answer(piece)


async def refuse_arguments(
    message: Message, command: CommandObject, spec: CommandSpec, audit: Audit
) -> bool:
    """For commands that take none: True (after one clear line) when arguments were given."""
    if not command.args:
        return False
    audit.outcome = "bad arguments"
    await reply(message, f"{spec.usage} takes no arguments.")
    return True


def is_reset(args: str | None) -> bool:
    """Whether ``/breaker``'s arguments ask for a reset."""
    return args is not None and args.strip().lower() == "reset"


def command_filter(*names: str, magic: MagicFilter | None = None) -> Command:
    """aiogram's Command filter for ``names``, case-insensitive (``/Status`` is ``/status``)."""
    return Command(*names, ignore_case=True, magic=magic)
