"""Issue 4's acceptance test: ``kill -9`` the simulated daemon at random points, restart it each time,
and it ends with exactly the round trips, fills and breaker events of an uninterrupted run.

Both runs play the shipped sample (8,198 one-minute ES bars, 70 round trips) as fast as they can,
each into its own embedded SQLite journal. The interrupted run is killed at least three times, once
while a position is open; the kill points are random (the seed is in the test id).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config" / "sample.yaml"
DB = "quant_scalper.sqlite3"
SEED = int(os.environ.get("QS_KILL_SEED", "20261125"))


def _start(data_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "QS_DATABASE__DATA_DIR": str(data_dir), "QS_LOGGING__LEVEL": "WARNING"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "entrypoints.cli",
            "run",
            "--config",
            str(CONFIG),
            "--speed",
            "max",
            "--exit-at-end",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _query(data_dir: Path, sql: str) -> list[tuple[object, ...]]:
    path = data_dir / DB
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return list(conn.execute(sql))
    except sqlite3.OperationalError:
        return []  # the schema is still being created


def _bars(data_dir: Path) -> int:
    rows = _query(data_dir, "SELECT count(*) FROM bars")
    return int(rows[0][0]) if rows else 0  # type: ignore[call-overload]


def _holding(data_dir: Path) -> bool:
    rows = _query(data_dir, "SELECT state FROM engine_snapshots ORDER BY id DESC LIMIT 1")
    return bool(rows) and rows[0][0] in ("LONG", "SHORT")


def _wait_exit(proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()


def _kill_when(proc: subprocess.Popen[bytes], ready: object, timeout: float = 120) -> bool:
    """SIGKILL ``proc`` as soon as ``ready()`` holds; False if it finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            proc.communicate()
            return False
        if callable(ready) and ready():
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            return True
        time.sleep(0.005)
    proc.kill()
    proc.communicate()
    raise AssertionError("the daemon made no progress")


def _outcome(data_dir: Path) -> dict[str, list[tuple[object, ...]]]:
    return {
        "round_trips": _query(
            data_dir,
            "SELECT seq, side, qty, entry_ts, entry_price, exit_ts, exit_price, exit_reason, "
            "pnl_ticks, gross_pnl, commissions, net_pnl, trade_date FROM round_trips "
            "ORDER BY exit_ts, seq",
        ),
        "fills": _query(
            data_dir,
            "SELECT exec_id, order_key, role, action, qty, price, ts, commission FROM fills "
            "ORDER BY ts, exec_id",
        ),
        "breaker_events": _query(
            data_dir,
            "SELECT kind, cause, ts, detail, until FROM breaker_events ORDER BY ts, kind, cause",
        ),
        "order_intents": _query(data_dir, 'SELECT "key" FROM order_intents ORDER BY "key"'),
    }


@pytest.mark.parametrize("seed", [SEED], ids=lambda s: f"seed={s}")
def test_kill_nine_at_random_points_loses_and_repeats_nothing(tmp_path: Path, seed: int) -> None:
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    _wait_exit(_start(clean))
    expected = _outcome(clean)
    assert len(expected["round_trips"]) == 70
    assert len(_query(clean, "SELECT 1 FROM bars")) == 8198

    rng = random.Random(seed)
    total = 8198
    points = sorted(rng.sample(range(300, total - 300), 3))
    kills = 0
    killed_holding = False
    for i, point in enumerate(points):
        proc = _start(killed)
        if i == 1:
            # This one dies while a position is open (after its random point has passed).
            if _kill_when(proc, lambda p=point: _bars(killed) >= p and _holding(killed)):
                kills += 1
                killed_holding = True
        elif _kill_when(proc, lambda p=point: _bars(killed) >= p):
            kills += 1
    _wait_exit(_start(killed))

    assert kills >= 3
    assert killed_holding
    got = _outcome(killed)
    for table, rows in expected.items():
        assert got[table] == rows, f"{table} differs after {kills} kills (seed {seed})"
    # Every market bar was recorded once, and the engine ended where the clean run did.
    assert _query(killed, "SELECT count(*) FROM bars") == [(total,)]
    assert _holding(killed) == _holding(clean)
