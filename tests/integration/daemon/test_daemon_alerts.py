"""The daemon's own alerts: start and stop, a daily summary at each session close, errors."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.calendar import cme_trade_date
from entrypoints.daemon import DaemonHandle, RunOptions, run_daemon
from entrypoints.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config" / "sample.yaml"
SUMMARY = re.compile(
    r"\[daily_summary\] session (\S+) closed: (\d+) trades \((\d+) won, (\d+) lost.*net ([+-][\d.,]+) USD"
)


async def test_every_closed_session_is_summarised_from_the_journal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="quant_scalper.alerts")
    settings = load_settings(CONFIG, {"QS_DATABASE__DATA_DIR": str(tmp_path)})
    await run_daemon(settings, RunOptions(speed=None, exit_at_end=True))
    summaries = [m.groups() for m in map(SUMMARY.search, caplog.messages) if m]
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
    assert any("[lifecycle] started: simulated broker" in m for m in caplog.messages)
    assert any("[lifecycle] stopped (end of feed), position -1" in m for m in caplog.messages)


async def test_an_error_nobody_awaited_becomes_an_alert(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = load_settings(CONFIG, {"QS_DATABASE__DATA_DIR": str(tmp_path)})
    handles: list[DaemonHandle] = []
    daemon = asyncio.get_running_loop().create_task(
        run_daemon(settings, RunOptions(speed=2000.0), on_ready=handles.append)
    )
    while not handles:
        await asyncio.sleep(0.01)

    async def broken() -> None:
        raise RuntimeError("boom in a forgotten task")

    task = asyncio.get_running_loop().create_task(broken())
    await asyncio.sleep(0.05)
    del task  # never awaited: the loop's exception handler reports it when it is collected
    gc.collect()
    await asyncio.sleep(0.05)
    handles[0].stop.set()
    await asyncio.wait_for(daemon, 30)
    assert any(
        "[error] unhandled: RuntimeError: boom in a forgotten task" in m for m in caplog.messages
    )
