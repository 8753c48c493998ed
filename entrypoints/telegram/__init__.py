"""The Telegram bot: operator commands on aiogram 3, allow-listed, role-checked, journaled."""

from entrypoints.telegram.dispatcher import (
    BotTokenInUse,
    build_bot,
    build_dispatcher,
    check_single_poller,
)

__all__ = ["BotTokenInUse", "build_bot", "build_dispatcher", "check_single_poller"]
