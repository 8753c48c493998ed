"""A recording cannot hold the future: rows stamped after the wall clock's now are refused and
counted as ``future`` by the replay and the simulated daemon's feed (issue 12 item 14)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from entrypoints.cli import EXIT_OK, main
from entrypoints.replay import load_series
from entrypoints.settings import load_settings

HEADER = "ts,open,high,low,close,volume\n"


def _rows(start: datetime, n: int) -> str:
    return "".join(
        f"{(start + timedelta(minutes=i)).strftime('%Y-%m-%dT%H:%M:%SZ')},5000,5000.25,4999.75,"
        f"5000,10\n"
        for i in range(n)
    )


def test_a_row_from_the_future_is_refused_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
    path = tmp_path / "bars.csv"
    path.write_text(HEADER + _rows(datetime(2025, 3, 4, 15, tzinfo=UTC), 30) + _rows(tomorrow, 1))
    report = tmp_path / "out"

    assert main(["replay", str(path), "--report", str(report)]) == EXIT_OK
    summary = json.loads((report / "summary.json").read_text())
    assert summary["rows_refused"] == {"future": 1}
    assert summary["bars_in"] == 30
    capsys.readouterr()


def test_the_daemon_feed_refuses_them_too(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_text(
        HEADER
        + _rows(datetime(2025, 3, 4, 15, tzinfo=UTC), 5)
        + _rows(datetime(9999, 12, 31, 23, 0, tzinfo=UTC), 1)
    )
    series = load_series(load_settings(None, {}), path)
    assert series.refused == {"future": 1}
    assert len(series) == 5
