"""Building the bot: the aiogram Dispatcher with its routers and gates, the Bot, the start check.

The daemon runs it in its own event loop::

    bot = build_bot(settings.telegram)
    await check_single_poller(bot)            # BotTokenInUse: say so and do not start the bot
    dp = build_dispatcher(console, settings.telegram, clock=clock)
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False))
    ...
    await dp.stop_polling()                   # closes the bot's session too

Handlers get what they need as the Dispatcher's workflow data (``console``, ``confirmations``,
``masked_values``) and, from the access gate, ``role`` and ``by``.
"""

from __future__ import annotations

import logging
from typing import Final

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.exceptions import TelegramAPIError, TelegramConflictError
from aiogram.types import BotCommand
from aiogram.utils.token import TokenValidationError

from application.operator import OperatorConsole
from application.ports import Clock
from entrypoints.settings import TelegramSettings
from entrypoints.telegram import catalog
from entrypoints.telegram.confirmations import ConfirmationBook
from entrypoints.telegram.formatting import MASK
from entrypoints.telegram.middlewares import AccessGate, RoleGate
from entrypoints.telegram.routers import (
    confirm_router,
    control_router,
    fallback_router,
    read_router,
)

log = logging.getLogger("quant_scalper.telegram")

ANOTHER_POLLER: Final = (
    "another process is already polling this bot token (Telegram answered 409 Conflict): "
    "stop the other bot instance, or give this one its own token"
)
WEBHOOK_SET: Final = (
    "a webhook is set for this bot token (Telegram answered 409 Conflict): polling cannot start "
    "while it is; delete it (Bot API deleteWebhook) or give this bot its own token"
)

_MASKED_LOGGERS: Final = (
    "quant_scalper.telegram",
    "aiogram.dispatcher",
    "aiogram.event",
    "aiogram.middlewares",
    "aiogram.webhook",
    "aiogram.scene",
)


class BotTokenInUse(RuntimeError):
    """Another consumer (a poller or a webhook) already takes this token's updates."""


def build_dispatcher(
    console: OperatorConsole, settings: TelegramSettings, *, clock: Clock
) -> Dispatcher:
    """The dispatcher: access gate, role gate, the command routers and the confirmation buttons.

    ``clock`` times the confirmation buttons (``settings.confirm_timeout_s``).
    """
    token = settings.token.get_secret_value() if settings.token is not None else ""
    dp = Dispatcher(
        name="quant-scalper",
        disable_fsm=True,
        console=console,
        confirmations=ConfirmationBook(clock, settings.confirm_timeout_s),
        masked_values=(token,) if token else (),
    )
    gate = AccessGate(settings.users, console, group_chats=settings.group_chats)
    dp.message.outer_middleware(gate)
    dp.callback_query.outer_middleware(gate)
    roles = RoleGate(console)
    dp.message.middleware(roles)
    dp.callback_query.middleware(roles)
    dp.include_routers(read_router(), control_router(), confirm_router(), fallback_router())
    dp.startup.register(publish_commands)
    return dp


async def publish_commands(bot: Bot) -> None:
    """Fill the client's command menu (a startup hook: a failure here must not stop the bot)."""
    commands = [BotCommand(command=name, description=text) for name, text in catalog.menu()]
    try:
        await bot.set_my_commands(commands)
    except TelegramAPIError as exc:
        log.warning("could not publish the command menu: %s", exc)


def build_bot(settings: TelegramSettings) -> Bot:
    """A Bot on aiogram's aiohttp session, at ``settings.api_base_url`` when one is set.

    Replies are plain text (no parse mode). The token is masked in aiogram's log records.
    """
    if settings.token is None:
        raise ValueError("telegram.token is not set: the bot needs its token from @BotFather")
    token = settings.token.get_secret_value()
    api = (
        TelegramAPIServer.from_base(settings.api_base_url)
        if settings.api_base_url is not None
        else PRODUCTION
    )
    try:
        bot = Bot(
            token,
            session=AiohttpSession(api=api),
            default=DefaultBotProperties(parse_mode=None, link_preview_is_disabled=True),
        )
    except TokenValidationError:
        # aiogram's own message is fine, but say which setting, and never echo the value.
        raise ValueError(
            "telegram.token is not a bot token (expected <bot id>:<secret> from @BotFather)"
        ) from None
    mask_token_in_logs(token)
    return bot


async def check_single_poller(bot: Bot) -> None:
    """Raise :class:`BotTokenInUse` when another process takes this token's updates.

    One ``getUpdates`` with timeout 0 and no offset: it confirms (and so loses) no update.
    """
    try:
        await bot.get_updates(timeout=0, limit=1)
    except TelegramConflictError as exc:
        reason = WEBHOOK_SET if "webhook" in exc.message.lower() else ANOTHER_POLLER
        raise BotTokenInUse(reason) from exc


class TokenMask(logging.Filter):
    """Replaces a secret in log records (message, arguments and traceback) by ``**********``."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg = message.replace(self.secret, MASK)
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self.secret in record.exc_text:
            record.exc_text = record.exc_text.replace(self.secret, MASK)
        return True


def mask_token_in_logs(token: str) -> None:
    """Install a :class:`TokenMask` for ``token`` on aiogram's loggers and ours (once per token).

    aiogram itself logs the bot id only, but a network error's text may carry the request URL,
    which holds the token.
    """
    for name in _MASKED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenMask) and f.secret == token for f in logger.filters):
            logger.addFilter(TokenMask(token))
