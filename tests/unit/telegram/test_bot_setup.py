"""Building the Bot from settings, and keeping its token out of log records."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from pydantic import SecretStr

from entrypoints.settings import TelegramSettings
from entrypoints.telegram import build_bot
from entrypoints.telegram.dispatcher import TokenMask

TOKEN = "123456:AAE-secret-part"
MASKED_LOGGERS = [
    logging.getLogger(name)
    for name in (
        "quant_scalper.telegram",
        "aiogram.dispatcher",
        "aiogram.event",
        "aiogram.middlewares",
        "aiogram.webhook",
        "aiogram.scene",
    )
]


@pytest.fixture(autouse=True)
def _logger_filters_restored() -> Iterator[None]:
    """build_bot installs a token mask on aiogram's (process-wide) loggers: take it off again."""
    before = {logger.name: list(logger.filters) for logger in MASKED_LOGGERS}
    yield
    for logger in MASKED_LOGGERS:
        logger.filters[:] = before[logger.name]


@pytest.mark.parametrize(
    ("base_url", "api"),
    [
        ("http://127.0.0.1:8081/", TelegramAPIServer.from_base("http://127.0.0.1:8081")),
        (None, PRODUCTION),
    ],
)
async def test_the_bot_talks_to_the_configured_bot_api_server(
    base_url: str | None, api: TelegramAPIServer
) -> None:
    bot = build_bot(TelegramSettings(enabled=True, token=SecretStr(TOKEN), api_base_url=base_url))
    try:
        assert bot.session.api == api
        assert bot.token == TOKEN
        assert bot.default.parse_mode is None
    finally:
        await bot.session.close()


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "telegram.token is not set"),
        ("not a token", "telegram.token is not a bot token"),
        ("123456:", "telegram.token is not a bot token"),
    ],
)
def test_a_missing_or_malformed_token_is_named_but_never_shown(
    token: str | None, message: str
) -> None:
    secret = SecretStr(token) if token is not None else None
    with pytest.raises(ValueError, match=message) as raised:
        build_bot(TelegramSettings(token=secret))
    if token is not None:
        assert token not in str(raised.value)


def test_the_token_mask_hides_the_token_in_message_arguments_and_traceback() -> None:
    try:
        raise ConnectionError(f"cannot reach http://127.0.0.1/bot{TOKEN}/getUpdates")
    except ConnectionError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "aiogram.dispatcher",
        logging.ERROR,
        __file__,
        1,
        "Failed to fetch updates - %s: %s",
        ("TelegramNetworkError", f"url .../bot{TOKEN}/getUpdates"),
        exc_info,
    )

    assert TokenMask(TOKEN).filter(record) is True

    assert record.getMessage() == (
        "Failed to fetch updates - TelegramNetworkError: url .../bot**********/getUpdates"
    )
    assert record.exc_text is not None
    assert "ConnectionError: cannot reach http://127.0.0.1/bot**********/getUpdates" in (
        record.exc_text
    )
    assert TOKEN not in logging.Formatter().format(record)


async def test_build_bot_masks_its_token_in_aiogram_logs_once() -> None:
    for _ in range(2):
        bot = build_bot(TelegramSettings(enabled=True, token=SecretStr(TOKEN)))
        await bot.session.close()

    for logger in MASKED_LOGGERS:
        masks = [f for f in logger.filters if isinstance(f, TokenMask) and f.secret == TOKEN]
        assert len(masks) == 1, logger.name
