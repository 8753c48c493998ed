"""What a newcomer meets first: ``quant-scalper run --config config/config.yaml.example`` (the
simulated broker on the shipped 2013 feed) trades under the live session rules, says on its
console why entries are refused when a reason lasts, shows it is alive, and keeps the libraries'
chatter in the log file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config" / "config.yaml.example"
FAST = ("--speed", "max", "--exit-at-end")


def test_the_example_config_daemon_trades_and_says_why_it_refuses(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "QS_DATABASE__DATA_DIR": str(tmp_path / "var"),
        "QS_LOGGING__DIR": str(tmp_path / "logs"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "run", "--config", str(EXAMPLE), *FAST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "var" / "quant_scalper.sqlite3") as conn:
        trips = conn.execute("SELECT count(*) FROM round_trips").fetchone()[0]
    assert trips == 70
    console = done.stderr.splitlines()
    # The losing streak of 2013-10-10 pauses entries for 30 minutes: said when it starts and ends.
    started = [
        line for line in console if "entries blocked: circuit breaker consecutive_losses" in line
    ]
    ended = [line for line in console if "entries no longer blocked by circuit breaker" in line]
    assert len(started) == 1, console
    assert "until 2013-10-10T06:10:00+00:00" in started[0]
    assert len(ended) == 1, console
    assert console.index(started[0]) < console.index(ended[0])
    # Alive: a heartbeat line per strategy bar of market time, at most one a second of wall time.
    assert any(" alive at 2013-10-" in line for line in console)
    # alembic's migration chatter (INFO) goes to the log file only.
    assert not [line for line in console if "alembic" in line]
    assert "alembic" in (tmp_path / "logs" / "quant-scalper.log").read_text()
