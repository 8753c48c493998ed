"""The daemon's own alerts: start and stop, a daily summary at each session close, errors (an error
and the start and stop on both venues, issue 13).

What is checked is what the operator receives: the alerts as they arrive at a local Bot API server
through real aiogram (the daemon's Telegram side), not the daemon's log lines.
"""

from __future__ import annotations

import asyncio
import gc
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.calendar import cme_trade_date
from domain.commands import AlertKind
from entrypoints.daemon import RunOptions, run_daemon
from entrypoints.settings import Settings, load_settings
from tests.support.bot_api import FakeBotApi
from tests.support.polling import eventually
from tests.support.venues import DaemonVenue

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config" / "sample.yaml"
CHAT = 111
SUMMARY = re.compile(
    r"daily_summary: session (\S+) closed: (\d+) trades \((\d+) won, (\d+) lost.*net ([+-][\d.,]+) USD"
)
# The daemon's own alerts, not the trades': the sample's hundreds of fills would only be batched.
KEPT = {AlertKind.LIFECYCLE, AlertKind.DAILY_SUMMARY, AlertKind.ERROR}


def _telegram(api: FakeBotApi) -> dict[str, str]:
    modes = ", ".join(f'"{kind.value}": "off"' for kind in AlertKind if kind not in KEPT)
    return {
        "QS_TELEGRAM__ENABLED": "true",
        "QS_TELEGRAM__TOKEN": api.token,
        "QS_TELEGRAM__API_BASE_URL": api.base_url,
        "QS_TELEGRAM__USERS": f'{{"{CHAT}": "operator"}}',
        "QS_TELEGRAM__CHAT_IDS": f"[{CHAT}]",
        "QS_TELEGRAM__ALERTS": f"{{{modes}}}",
        "QS_TELEGRAM__RATE_LIMIT_PER_MINUTE": "600",
    }


def _settings(api: FakeBotApi, data_dir: Path) -> Settings:
    return load_settings(CONFIG, {"QS_DATABASE__DATA_DIR": str(data_dir), **_telegram(api)})


def _lines(api: FakeBotApi) -> list[str]:
    """Every alert line the chat received (a backlog arrives batched, one alert a line)."""
    return [line for m in api.sent if m.chat_id == CHAT for line in m.text.splitlines()]


async def test_every_closed_session_is_summarised_from_the_journal(tmp_path: Path) -> None:
    async with FakeBotApi() as api:
        result = await run_daemon(
            _settings(api, tmp_path), RunOptions(speed=None, exit_at_end=True)
        )
        assert result.stopped_by == "end of feed"
        lines = _lines(api)
    summaries = [m.groups() for m in map(SUMMARY.search, lines) if m]
    with sqlite3.connect(tmp_path / "quant_scalper.sqlite3") as conn:
        rows = conn.execute("SELECT exit_ts, net_pnl FROM round_trips").fetchall()
    by_date: dict[str, list[float]] = {}
    for exit_ts, net in rows:
        at = datetime.fromisoformat(exit_ts)
        day = cme_trade_date(at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()
        by_date.setdefault(day, []).append(float(net))
    dates = [s[0] for s in summaries]
    assert dates == sorted(by_date)[:-1]  # every session but the last, still open at the end
    for day, trades, _won, _lost, net in summaries:
        assert int(trades) == len(by_date[day])
        assert float(net.replace(",", "")) == pytest.approx(sum(by_date[day]), abs=0.005)
    assert any("lifecycle: started: " in x and "simulated broker" in x for x in lines), lines
    assert any("lifecycle: stopped (end of feed), position -1" in line for line in lines)


async def test_an_error_nobody_awaited_becomes_an_alert(venue: DaemonVenue, tmp_path: Path) -> None:
    async with FakeBotApi() as api:
        async with venue.run(venue.settings(tmp_path, **_telegram(api)), speed=2000.0) as daemon:

            async def broken() -> None:
                raise RuntimeError("boom in a forgotten task")

            task = asyncio.get_running_loop().create_task(broken())
            await eventually(task.done, "the forgotten task to fail")
            del task  # never awaited: the loop's exception handler reports it when it is collected
            gc.collect()
            expected = "error: unhandled: RuntimeError: boom in a forgotten task"
            await api.wait_for(
                lambda: any(expected in line for line in _lines(api)), 60.0, what="the error alert"
            )
            result = await daemon.stop()
        assert result.stopped_by == "signal"
        lines = _lines(api)
    where = "simulated broker" if venue.gateway is None else "on IB Gateway 127.0.0.1:"
    assert any("lifecycle: started: " in x and where in x for x in lines), lines
    assert any("lifecycle: stopped (signal), position +0" in x for x in lines), lines
