"""Issue 5's acceptance, on both venues (issue 13): the daemon, with ``telegram.api_base_url`` at a
local Bot API server, answers an operator, refuses a stranger and a viewer, and sends its alerts;
on IB Gateway an operator's confirmed /flatten closes the position at the gateway."""

from __future__ import annotations

import asyncio
import socket
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from domain.commands import AlertKind
from domain.engine import EngineState
from entrypoints.daemon import RunOptions, run_daemon
from entrypoints.telegram.dispatcher import BotTokenInUse
from tests.support.bot_api import FakeBotApi, SentMessage
from tests.support.polling import DEADLINE_S
from tests.support.venues import DaemonVenue, IbkrDaemon

pytestmark = pytest.mark.timeout(120)

OPERATOR, VIEWER, STRANGER = 111, 222, 999


def _telegram(api: FakeBotApi) -> dict[str, str]:
    return {
        "QS_TELEGRAM__ENABLED": "true",
        "QS_TELEGRAM__TOKEN": api.token,
        "QS_TELEGRAM__API_BASE_URL": api.base_url,
        "QS_TELEGRAM__USERS": f'{{"{OPERATOR}": "operator", "{VIEWER}": "viewer"}}',
        "QS_TELEGRAM__CHAT_IDS": f"[{OPERATOR}]",
    }


def _to(api: FakeBotApi, chat_id: int, containing: str) -> list[SentMessage]:
    return [m for m in api.sent if m.chat_id == chat_id and containing in m.text]


async def _sent(api: FakeBotApi, chat_id: int, containing: str, what: str) -> SentMessage:
    """The first message to ``chat_id`` that contains ``containing``, once it is sent."""
    await api.wait_for(lambda: bool(_to(api, chat_id, containing)), DEADLINE_S, what=what)
    return _to(api, chat_id, containing)[0]


def _button(prompt: SentMessage, label: str) -> str:
    assert prompt.reply_markup is not None, prompt.text
    [data] = [
        b["callback_data"]
        for row in prompt.reply_markup["inline_keyboard"]
        for b in row
        if b["text"] == label
    ]
    assert isinstance(data, str)
    return data


async def test_the_daemon_answers_an_operator_and_refuses_a_stranger(
    venue: DaemonVenue, tmp_path: Path
) -> None:
    async with FakeBotApi() as api:
        settings = venue.settings(tmp_path, **_telegram(api))
        async with venue.run(settings, speed=3000.0) as daemon:
            await _sent(api, OPERATOR, "started", "the start alert")
            if isinstance(daemon, IbkrDaemon):
                await daemon.open_position()  # something a stranger's /flatten could close

            api.push_message(OPERATOR, "/status")
            await _sent(api, OPERATOR, "State", "the /status answer")
            api.push_message(STRANGER, "/status")
            await api.wait_for(
                lambda: any(m.chat_id == STRANGER for m in api.sent), DEADLINE_S, what="refusal"
            )
            api.push_message(STRANGER, "/flatten")
            api.push_message(VIEWER, "/pause")
            await api.wait_for(
                lambda: any(m.chat_id == VIEWER for m in api.sent),
                DEADLINE_S,
                what="the viewer's refusal",
            )
            # /config names the settings the daemon runs with: the simulated feed's speed as
            # given (--speed), not the file's daemon.speed; IB Gateway where it is.
            api.push_message(OPERATOR, "/config")
            if isinstance(daemon, IbkrDaemon):
                config = await _sent(api, OPERATOR, "broker: ibkr", "the /config answer")
                assert f"port: {daemon.live.gateway.port}" in config.text
            else:
                await _sent(api, OPERATOR, "speed: 3000.0", "the /config answer with the speed")
            # /chart answers with today's equity as a photo, uploaded through real aiogram.
            api.push_message(OPERATOR, "/chart")
            await api.wait_for(
                lambda: any(
                    p.chat_id == OPERATOR and p.caption and "Equity today" in p.caption
                    for p in api.photos
                ),
                DEADLINE_S,
                what="the /chart equity photo",
            )
            status = daemon.handle.console.status()
            assert not status.paused  # the viewer could not pause
            stranger = [m.text for m in api.sent if m.chat_id == STRANGER]
            assert stranger == ["Not authorised."]  # one short refusal, then silence
            if isinstance(daemon, IbkrDaemon):
                await _flatten_at_ib(api, daemon)

            result = await daemon.stop()
        assert result.stopped_by == "signal"
        assert _to(api, OPERATOR, "stopped")


async def _flatten_at_ib(api: FakeBotApi, daemon: IbkrDaemon) -> None:
    """The operator's /flatten, confirmed with the button, closes the position at IB Gateway."""
    gateway, live = daemon.live.gateway, daemon.live
    con_id = live.con_id
    assert gateway.position(con_id) == 1  # the stranger's /flatten did nothing
    api.push_message(OPERATOR, "/flatten")
    prompt = await _sent(api, OPERATOR, "Flatten:", "the /flatten question")
    assert "close the long 1" in prompt.text
    assert gateway.position(con_id) == 1  # nothing before the confirmation
    api.push_callback(OPERATOR, _button(prompt, "Confirm"), message_id=prompt.message_id)
    await live.wait_for(lambda: gateway.position(con_id) == 0, "the flatten at IB")
    await live.wait_for(lambda: live.engine.state is EngineState.IDLE, "the engine flat")
    assert [o for o in gateway.orders if o.is_working] == []  # the bracket's legs went too
    [exit_order] = [o for o in gateway.orders if o.action == "SELL" and o.order_type == "MKT"]
    assert (exit_order.filled, exit_order.avg_fill_price) == (1, Decimal("4990"))
    status = daemon.handle.console.status()
    assert (status.paused, status.position) == (True, None)


async def test_a_second_poller_on_the_same_token_stops_the_daemon_with_one_line(
    venue: DaemonVenue, tmp_path: Path
) -> None:
    async with FakeBotApi() as api:
        api.conflict(True)
        with pytest.raises(BotTokenInUse, match="already") as caught:
            await run_daemon(venue.settings(tmp_path, **_telegram(api)), RunOptions(speed=None))
    assert "\n" not in str(caught.value)
    if venue.gateway is not None:  # found before the daemon connected to IB Gateway
        assert venue.gateway.received == []
        assert venue.gateway.connections == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_in_webhook_mode_telegram_posts_updates_and_the_secret_is_checked(
    venue: DaemonVenue, tmp_path: Path
) -> None:
    async with FakeBotApi() as api:
        port = _free_port()
        settings = venue.settings(
            tmp_path,
            QS_TELEGRAM__ENABLED="true",
            QS_TELEGRAM__TOKEN=api.token,
            QS_TELEGRAM__API_BASE_URL=api.base_url,
            QS_TELEGRAM__USERS=f'{{"{OPERATOR}": "operator"}}',
            QS_TELEGRAM__WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram",
            QS_TELEGRAM__WEBHOOK_PORT=str(port),
            QS_TELEGRAM__WEBHOOK_SECRET="s3cret-header",
        )
        async with venue.run(settings, speed=3000.0) as daemon:
            assert api.webhook_url == f"http://127.0.0.1:{port}/telegram"
            api.push_message(OPERATOR, "/status")
            await _sent(api, OPERATOR, "State", "the /status answer through the webhook")
            api.push_message(STRANGER, "/status")
            await api.wait_for(
                lambda: any(m.chat_id == STRANGER for m in api.sent), DEADLINE_S, what="refusal"
            )
            # A forged update without Telegram's secret header is turned away.
            async with aiohttp.ClientSession() as client:
                forged = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "/stop"}}
                async with client.post(
                    f"http://127.0.0.1:{port}/telegram", json=forged
                ) as response:
                    assert response.status == 401
            await daemon.stop()
        assert api.webhook_url == ""  # removed on the way out


async def test_an_operator_s_stop_that_keeps_the_bracket_leaves_the_position_at_the_broker(
    venue: DaemonVenue, tmp_path: Path
) -> None:
    async with FakeBotApi() as api:
        # The daemon's own alerts only: the simulated feed's hundreds of fills would be batched
        # behind the rate limit past the stop's budget.
        quiet = ", ".join(f'"{k.value}": "off"' for k in AlertKind if k is not AlertKind.LIFECYCLE)
        settings = venue.settings(  # shutdown.flatten: true
            tmp_path, **_telegram(api), QS_TELEGRAM__ALERTS=f"{{{quiet}}}"
        )
        async with venue.run(settings, speed=None) as daemon:
            held = await daemon.hold_position()
            api.push_message(OPERATOR, "/stop")
            prompt = await _sent(api, OPERATOR, "Stop the daemon?", "the /stop question")
            assert "A position is open" in prompt.text
            api.push_callback(
                OPERATOR, _button(prompt, "Stop, keep the bracket"), message_id=prompt.message_id
            )
            result = await asyncio.wait_for(daemon.task, DEADLINE_S)
        assert (result.stopped_by, result.position) == ("operator", held)
        assert "flattened" not in result.shutdown
        await api.wait_for(lambda: bool(api.edits), DEADLINE_S, what="the answer on the question")
        assert [e.text for e in api.edits] == [
            "Stopping the daemon: the position stays, its bracket working at the broker."
        ]
        assert _to(api, OPERATOR, f"stopped (operator), position {held:+d}")
        if isinstance(daemon, IbkrDaemon):  # IB Gateway still holds it, protected
            gateway = daemon.live.gateway
            assert gateway.position(daemon.live.con_id) == 1
            assert sorted(o.order_type for o in gateway.orders if o.is_working) == ["LMT", "STP"]
