"""What the daemon writes (the SQLite journal and its -wal/-shm, the spool, the snapshot fallback,
the owner lock, the logs) is its user's alone: files 0600, the directories it creates 0700, whatever
the umask."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.sql.database import create_engine
from adapters.sql.spool import Spool
from adapters.sql.state_store import SqlStateStore
from entrypoints import logs
from entrypoints.cli import main
from tests.support.builders import engine

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config" / "sample.yaml"


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The umask most machines have (022): the bot must not rely on a tighter one."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _modes(root: Path) -> dict[str, int]:
    return {
        str(path.relative_to(root)): stat.S_IMODE(path.stat().st_mode)
        for path in [root, *root.rglob("*")]
    }


def _loose(modes: dict[str, int]) -> dict[str, str]:
    return {name: oct(mode) for name, mode in modes.items() if mode & 0o077}


def test_the_daemon_writes_its_journal_and_logs_private(
    tmp_path: Path, open_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "state" / "var"
    log_dir = tmp_path / "state" / "logs"
    monkeypatch.setenv("QS_DATABASE__DATA_DIR", str(data_dir))
    monkeypatch.setenv("QS_LOGGING__DIR", str(log_dir))
    try:
        code = main(["run", "--config", str(CONFIG), "--speed", "max", "--exit-at-end"])
    finally:
        logs.uninstall()
    assert code == 0
    state = _modes(tmp_path / "state")
    assert "var/quant_scalper.sqlite3" in state
    assert "var/quant_scalper.sqlite3-owner" in state
    assert "logs/quant-scalper.log" in state
    assert _loose(state) == {}
    assert state["."] == 0o700  # made by the daemon, as the parent of var/ and logs/


async def test_the_spool_and_the_snapshot_fallback_are_private(
    tmp_path: Path, open_umask: None
) -> None:
    spool = Spool(tmp_path / "var" / "journal.spool")
    spool.open()
    try:
        spool.append(['{"line": 1}'])
        spool.reject('{"line": 2}', "refused")
    finally:
        spool.close()
    # PostgreSQL nowhere to be found: the snapshot goes to the fallback file.
    db = create_engine("postgresql+psycopg://nobody:x@127.0.0.1:9/none", connect_timeout_s=1)
    try:
        store = SqlStateStore(db, fallback=tmp_path / "var" / "snapshot.fallback.json")
        await asyncio.wait_for(store.save(engine().snapshot()), 60)
    finally:
        await db.dispose()
    modes = _modes(tmp_path / "var")
    assert {"journal.spool", "journal.spool.rejected", "journal.spool.lock"} <= set(modes)
    assert "snapshot.fallback.json" in modes
    assert _loose(modes) == {}
    assert modes["."] == 0o700
