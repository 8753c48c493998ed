"""Commands the bot does not have: one line pointing at /help (registered last)."""

from __future__ import annotations

import re

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from entrypoints.telegram import catalog
from entrypoints.telegram.middlewares import Audit, command_text
from entrypoints.telegram.routers.common import reply


async def unknown_command(message: Message, audit: Audit) -> None:
    audit.outcome = "unknown command"
    name = (command_text(message.text) or "/").split()[0]
    await reply(message, f"Unknown command {name}: /help lists the commands.")


def fallback_router() -> Router:
    """Answers any other command meant for this bot; plain chatter, and commands addressed to
    another bot in a group (``/status@other_bot``), are left alone."""
    router = Router(name="fallback")
    router.message.register(unknown_command, Command(re.compile(".*")), flags=catalog.UNKNOWN.flags)
    return router
