"""Issue 5's acceptance: the daemon on its simulated default, with ``telegram.api_base_url`` at a
local Bot API server, answers /status to an operator, refuses a stranger, and sends its alerts."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest

from entrypoints.daemon import DaemonHandle, RunOptions, run_daemon
from entrypoints.settings import Settings, load_settings
from entrypoints.telegram.dispatcher import BotTokenInUse
from tests.support.bot_api import FakeBotApi

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config" / "sample.yaml"
OPERATOR, VIEWER, STRANGER = 111, 222, 999


def _settings(api: FakeBotApi, data_dir: Path) -> Settings:
    return load_settings(
        CONFIG,
        {
            "QS_DATABASE__DATA_DIR": str(data_dir),
            "QS_TELEGRAM__ENABLED": "true",
            "QS_TELEGRAM__TOKEN": api.token,
            "QS_TELEGRAM__API_BASE_URL": api.base_url,
            "QS_TELEGRAM__USERS": f'{{"{OPERATOR}": "operator", "{VIEWER}": "viewer"}}',
            "QS_TELEGRAM__CHAT_IDS": f"[{OPERATOR}]",
        },
    )


async def test_the_daemon_answers_an_operator_and_refuses_a_stranger(tmp_path: Path) -> None:
    async with FakeBotApi() as api:
        settings = _settings(api, tmp_path)
        handles: list[DaemonHandle] = []
        daemon = asyncio.get_running_loop().create_task(
            run_daemon(settings, RunOptions(speed=3000.0), on_ready=handles.append)
        )
        await api.wait_for(lambda: bool(handles), what="the daemon to start")
        await api.wait_for(
            lambda: any("started" in m.text for m in api.sent), what="the start alert"
        )

        api.push_message(OPERATOR, "/status")
        await api.wait_for(
            lambda: any(m.chat_id == OPERATOR and "State" in m.text for m in api.sent),
            what="the /status answer",
        )
        api.push_message(STRANGER, "/status")
        await api.wait_for(lambda: any(m.chat_id == STRANGER for m in api.sent), what="the refusal")
        api.push_message(STRANGER, "/flatten")
        api.push_message(VIEWER, "/pause")
        await api.wait_for(
            lambda: any(m.chat_id == VIEWER for m in api.sent), what="the viewer's refusal"
        )
        # /config names the speed it runs at (--speed), not the file's daemon.speed.
        api.push_message(OPERATOR, "/config")
        await api.wait_for(
            lambda: any(m.chat_id == OPERATOR and "speed: 3000.0" in m.text for m in api.sent),
            what="the /config answer with the speed the daemon runs at",
        )
        # /chart answers with today's equity as a photo, uploaded through real aiogram.
        api.push_message(OPERATOR, "/chart")
        await api.wait_for(
            lambda: any(
                p.chat_id == OPERATOR and p.caption and "Equity today" in p.caption
                for p in api.photos
            ),
            what="the /chart equity photo",
        )
        status = handles[0].console.status()
        assert not status.paused  # the viewer could not pause
        stranger = [m.text for m in api.sent if m.chat_id == STRANGER]
        assert stranger == ["Not authorised."]  # one short refusal, then silence

        handles[0].stop.set()
        result = await asyncio.wait_for(daemon, 60)
        assert result.stopped_by == "signal"
        assert any("stopped" in m.text for m in api.sent if m.chat_id == OPERATOR)


async def test_a_second_poller_on_the_same_token_stops_the_daemon_with_one_line(
    tmp_path: Path,
) -> None:
    async with FakeBotApi() as api:
        api.conflict(True)
        with pytest.raises(BotTokenInUse, match="already"):
            await run_daemon(_settings(api, tmp_path), RunOptions(speed=None))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_in_webhook_mode_telegram_posts_updates_and_the_secret_is_checked(
    tmp_path: Path,
) -> None:
    async with FakeBotApi() as api:
        port = _free_port()
        settings = load_settings(
            CONFIG,
            {
                "QS_DATABASE__DATA_DIR": str(tmp_path),
                "QS_TELEGRAM__ENABLED": "true",
                "QS_TELEGRAM__TOKEN": api.token,
                "QS_TELEGRAM__API_BASE_URL": api.base_url,
                "QS_TELEGRAM__USERS": f'{{"{OPERATOR}": "operator"}}',
                "QS_TELEGRAM__WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
                "QS_TELEGRAM__WEBHOOK_PORT": str(port),
                "QS_TELEGRAM__WEBHOOK_SECRET": "s3cret-header",
            },
        )
        handles: list[DaemonHandle] = []
        daemon = asyncio.get_running_loop().create_task(
            run_daemon(settings, RunOptions(speed=3000.0), on_ready=handles.append)
        )
        await api.wait_for(lambda: bool(handles), what="the daemon to start")
        assert api.webhook_url == f"http://127.0.0.1:{port}/telegram"
        api.push_message(OPERATOR, "/status")
        await api.wait_for(
            lambda: any(m.chat_id == OPERATOR and "State" in m.text for m in api.sent),
            what="the /status answer through the webhook",
        )
        api.push_message(STRANGER, "/status")
        await api.wait_for(lambda: any(m.chat_id == STRANGER for m in api.sent), what="refusal")
        # A forged update without Telegram's secret header is turned away.
        async with aiohttp.ClientSession() as client:
            forged = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "/stop"}}
            async with client.post(f"http://127.0.0.1:{port}/telegram", json=forged) as response:
                assert response.status == 401
        handles[0].stop.set()
        await asyncio.wait_for(daemon, 60)
        assert api.webhook_url == ""  # removed on the way out
