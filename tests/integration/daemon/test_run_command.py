"""``quant-scalper run`` on its simulated default: a first run, a graceful stop and a resume, a store
whose schema is not the code's; and, on both venues, the journal gate while the database is away."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from adapters.sql import migrate
from adapters.sql.database import create_engine
from entrypoints import logs
from entrypoints.cli import EXIT_USAGE, main
from entrypoints.daemon import RunOptions, run_daemon
from entrypoints.settings import load_settings
from tests.support.polling import eventually
from tests.support.postgres import TcpProxy, create_database, drop_database
from tests.support.venues import DaemonVenue

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config" / "sample.yaml"


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "QS_DATABASE__DATA_DIR": str(data_dir), "QS_LOGGING__LEVEL": "INFO"}


def test_a_fresh_machine_creates_the_embedded_journal_and_trades_the_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QS_DATABASE__DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("QS_LOGGING__DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("QS_LOGGING__FORMAT", "json")
    try:
        code = main(["run", "--config", str(CONFIG), "--speed", "max", "--exit-at-end"])
    finally:
        logs.uninstall()  # leave no handler (and no open log file) to the tests after this one
    assert code == 0
    out = capsys.readouterr().out
    assert "stopped (end of feed): 8198 bars played, position -1" in out
    lines = [
        json.loads(line) for line in (tmp_path / "logs" / logs.LOG_FILE).read_text().splitlines()
    ]
    entries = [d for d in lines if "[entry_filled]" in d["message"]]
    assert len(entries) == 71  # 70 closed round trips and the position still open
    assert {d["state"] for d in entries} <= {"LONG", "SHORT"}
    assert entries[0]["session"] == "2013-10-07"
    with sqlite3.connect(tmp_path / "var" / "quant_scalper.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM round_trips").fetchone() == (70,)
        assert conn.execute("SELECT count(*) FROM bars").fetchone() == (8198,)


def test_sigterm_stops_it_cleanly_and_the_next_run_resumes_where_it_stopped(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "var"
    args = [sys.executable, "-m", "entrypoints.cli", "run", "--config", str(CONFIG)]
    # Kept open positions stay open (shutdown.flatten false): the resumed run must then end exactly
    # like an uninterrupted one. (A stop that flattens is tested in test_live_process.py.)
    env = {**_env(data_dir), "QS_SHUTDOWN__FLATTEN": "false"}
    proc = subprocess.Popen(
        [*args, "--speed", "3000"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    db = data_dir / "quant_scalper.sqlite3"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                if conn.execute("SELECT count(*) FROM engine_snapshots").fetchone()[0] >= 5:
                    break
        except sqlite3.OperationalError:
            pass
        assert proc.poll() is None, proc.communicate()[1].decode()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert "stopped (signal)" in out.decode()

    resumed = subprocess.run(
        [*args, "--speed", "max", "--exit-at-end"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert re.search(
        r"played from the checkpoint at 2013-10-\d\d \d\d:\d\d:\d\d UTC", resumed.stdout.decode()
    )
    assert "epoch" not in resumed.stdout.decode() + resumed.stderr.decode()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM round_trips").fetchone() == (70,)
        assert conn.execute("SELECT count(*) FROM bars").fetchone() == (8198,)


def test_a_postgresql_store_without_its_schema_is_refused(
    postgres_database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate.upgrade(postgres_database)
    migrate.downgrade(postgres_database, "base")
    monkeypatch.setenv("QS_DATABASE__URL", postgres_database)
    assert main(["run", "--config", str(CONFIG), "--exit-at-end"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "has no schema" in err
    assert "quant-scalper db upgrade" in err


async def test_the_daemon_journals_to_postgresql_like_to_sqlite(
    postgres_database: str, tmp_path: Path
) -> None:
    migrate.upgrade(postgres_database)
    settings = load_settings(
        CONFIG,
        {"QS_DATABASE__URL": postgres_database, "QS_DATABASE__DATA_DIR": str(tmp_path)},
    )
    result = await run_daemon(settings, RunOptions(speed=None, exit_at_end=True))
    assert (result.bars, result.strategy_bars, result.position) == (8198, 1656, -1)


@pytest.mark.slow
async def test_postgresql_gone_mid_run_gates_entries_and_every_row_lands_after(
    venue: DaemonVenue, postgres_url: str, tmp_path: Path
) -> None:
    """On both venues (issue 13): the simulated feed played to its end; on IB Gateway, bars pushed
    while the database is away and after it is back."""
    url = create_database(postgres_url, "qs_daemon_outage")
    migrate.upgrade(url)
    parsed = make_url(url)
    proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    await proxy.restore()
    try:
        settings = venue.settings(tmp_path, QS_DATABASE__URL=proxy.url_for(url))
        async with venue.run(settings, speed=60000.0, exit_at_end=True) as daemon:
            trading = daemon.handle.service.engine
            await daemon.strategy_bars(40 if venue.gateway is None else 5)  # it trades
            await proxy.cut()
            if venue.gateway is not None:  # a bar to journal while the database is away
                await daemon.strategy_bars(6)
            await eventually(
                lambda: "journal" in trading.entry_gates,
                "the journal gate to close while the database is away",
                unless_done=daemon.task,
            )
            await proxy.restore()
            if venue.gateway is not None:
                await daemon.strategy_bars(8)
                await eventually(
                    lambda: "journal" not in trading.entry_gates,
                    "the journal gate to open again",
                    unless_done=daemon.task,
                )
                result = await daemon.stop()
                expected_bars = 8 * 12  # 5-second bars
            else:
                result = await asyncio.wait_for(daemon.task, 120)
                expected_bars = 8198
        assert result.bars == expected_bars
    finally:
        await proxy.cut()
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            bars = await conn.scalar(text("SELECT count(*) FROM bars"))
            journal_gates = [
                row.detail
                for row in await conn.execute(
                    text(
                        "SELECT detail FROM order_events WHERE status = 'entry_gate' "
                        "AND detail LIKE 'journal:%' ORDER BY ts"
                    )
                )
            ]
    finally:
        await engine.dispose()
        drop_database(postgres_url, url)
    assert bars == expected_bars  # nothing lost while the database was away, nothing doubled
    assert journal_gates == ["journal: the journal database is unreachable", "journal: open"]
