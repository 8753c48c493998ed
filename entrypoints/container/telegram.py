"""The Telegram bot as one of the daemon's channels: alerts to the configured chats, commands by
long polling or on a webhook, in the daemon's event loop.

The bot (its HTTP session) is the container's Resource, :func:`open_telegram_bot`: closed by
``shutdown_resources()`` whatever ended the run. The channel starts serving when the daemon does
(after the venue connected: a second poller on the token is then exit 4); until then the daemon's
alerts are held and logged (:class:`HeldNotifier`), and sent once the bot is up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from adapters.clock import SystemClock
from adapters.fanout import FanoutNotifier
from adapters.log_notifier import HeldNotifier, LogNotifier
from adapters.telegram.notifier import TelegramNotifier
from application.operator import OperatorConsole
from entrypoints.observability import check_port, port_error
from entrypoints.settings import TelegramSettings
from entrypoints.telegram.dispatcher import (
    build_bot,
    build_dispatcher,
    check_single_poller,
    mask_token_in_logs,
)


async def open_telegram_bot(settings: TelegramSettings) -> AsyncIterator[Bot]:
    """The daemon's Telegram bot, for the container's Resource (made only with Telegram on); its
    token is masked in every log line from here on."""
    bot = build_bot(settings)
    if settings.token is not None:
        mask_token_in_logs(settings.token.get_secret_value())
    try:
        yield bot
    finally:
        await bot.session.close()


class TelegramChannel:
    """:class:`application.daemon.Channel` over aiogram (with Telegram off the container gives
    a log-only channel instead)."""

    def __init__(self, settings: TelegramSettings, alerts: HeldNotifier, bot: Bot) -> None:
        self._settings = settings
        self._alerts = alerts
        self._resource = bot
        self._bot: Bot | None = None  # while serving
        self._telegram: TelegramNotifier | None = None
        self._polling: asyncio.Task[None] | None = None
        self._webhook: web.AppRunner | None = None

    async def check(self) -> None:
        """Another process polling this token, or the webhook's port in use: found before the
        daemon connects to the broker."""
        config = self._settings
        if config.webhook_url is None:  # a webhook replaces any poller when it is set
            await check_single_poller(self._resource)
        else:
            await check_port(
                config.webhook_listen, config.webhook_port, "telegram.webhook_port", "listen"
            )

    async def serve(self, console: OperatorConsole) -> None:
        config, bot = self._settings, self._resource
        self._bot = bot
        if config.chat_ids:
            self._telegram = TelegramNotifier(
                bot,
                config.chat_ids,
                clock=SystemClock(),
                modes=config.alerts,
                rate_limit_per_minute=config.rate_limit_per_minute,
                queue_size=config.queue_size,
                dedup_window_s=config.dedup_window_s,
            )
            self._telegram.start()
            self._alerts.attach(FanoutNotifier(LogNotifier(), self._telegram))
        else:
            self._alerts.attach(None)
        await self._answer_commands(bot, console)

    async def _answer_commands(self, bot: Bot, console: OperatorConsole) -> None:
        """Answer commands in the daemon's event loop: by long polling, or on a webhook."""
        dispatcher = build_dispatcher(console, self._settings, clock=SystemClock())
        url = self._settings.webhook_url
        if url is None:
            self._polling = asyncio.get_running_loop().create_task(
                dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False),
                name="telegram polling",
            )
            return
        secret = self._settings.webhook_secret
        token = secret.get_secret_value() if secret is not None else None
        app = web.Application()
        SimpleRequestHandler(dispatcher=dispatcher, bot=bot, secret_token=token).register(
            app, path=urlsplit(url).path or "/"
        )
        setup_application(app, dispatcher, bot=bot)
        self._webhook = web.AppRunner(app, access_log=None)
        await self._webhook.setup()
        listen, port = self._settings.webhook_listen, self._settings.webhook_port
        try:
            await web.TCPSite(self._webhook, listen, port).start()
        except OSError as exc:  # never let it pass for a database error (issue 12 item 7)
            runner, self._webhook = self._webhook, None  # no webhook was set: none to delete
            await runner.cleanup()
            raise port_error(exc, listen, port, "telegram.webhook_port", "listen") from None
        await bot.set_webhook(url, secret_token=token)

    def backlog(self) -> int:
        return self._telegram.backlog if self._telegram is not None else 0

    async def close(self, timeout: float = 5.0) -> None:
        """Stop taking commands and send the alerts still queued (``timeout`` at most); the bot's
        session is the Resource's to close. Closing twice is closing once."""
        bot, self._bot = self._bot, None
        if bot is None:
            return
        if self._webhook is not None:
            with contextlib.suppress(TelegramAPIError):
                await bot.delete_webhook()
            await self._webhook.cleanup()
            self._webhook = None
        if self._polling is not None:
            self._polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._polling
            self._polling = None
        if self._telegram is not None:
            await self._telegram.close(timeout=timeout)
