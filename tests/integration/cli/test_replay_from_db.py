"""``replay --from-db``: bars recorded with ``append_bar`` replay through the same path as a bar file
and give the same summary, trades and printout; which recorded bars a window selects."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from adapters.simulated.market_data import read_bar_file
from adapters.simulated.repositories import InMemoryJournal
from adapters.sql.database import database_url
from domain.bar import Bar
from domain.values import MES
from entrypoints.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, main
from entrypoints.journal_cli import parse_time
from entrypoints.replay import StoreBarsError, load_store_series, series_of_bars
from entrypoints.settings import Settings
from tests.integration.cli.journal_store import (
    SAMPLE,
    SAMPLE_CONFIG,
    Store,
    error_lines,
    sample_replay,
    write_config,
)
from tests.support.builders import T0, bar

WINDOWS = {
    "whole sample": ("2013-10-06", "2013-10-15"),
    "two days": ("2013-10-08T09:30:00-04:00", "2013-10-10"),
}


def _sample_rows(start: datetime, end: datetime) -> str:
    """The sample file's header and its rows whose bar starts in ``[start, end)``."""
    header, *rows = SAMPLE.read_text().splitlines(keepends=True)
    chosen = [r for r in rows if start <= datetime.fromisoformat(r.split(",", 1)[0]) < end]
    return header + "".join(chosen)


def _record_sample(store: Store) -> None:
    store.journal(bars=[("ESZ3", b) for b in sample_replay().series.bars()])


@pytest.mark.parametrize(("start", "end"), WINDOWS.values(), ids=WINDOWS.keys())
def test_recorded_bars_replay_exactly_as_the_same_bars_from_a_file(
    store: Store, start: str, end: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _record_sample(store)
    bar_file = tmp_path / "window.csv"
    bar_file.write_text(_sample_rows(parse_time(start, "start"), parse_time(end, "end")))
    from_file, from_db = tmp_path / "file", tmp_path / "db"
    capsys.readouterr()
    argv = ["replay", str(bar_file), "--config", str(SAMPLE_CONFIG), "--report", str(from_file)]
    assert main([*argv, "--no-progress"]) == EXIT_OK
    file_out = capsys.readouterr().out
    argv = ["replay", "--from-db", "--start", start, "--end", end, "--report", str(from_db)]
    assert main([*argv, "--config", str(store.config), "--no-progress"]) == EXIT_OK
    db_out = capsys.readouterr().out

    for name in ("summary.json", "trades.csv"):
        assert (from_db / name).read_bytes() == (from_file / name).read_bytes(), name
    assert db_out.replace(str(from_db), "REPORT") == file_out.replace(str(from_file), "REPORT")
    assert "Round trips" in db_out


def test_a_window_without_recorded_bars_is_one_line(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    _record_sample(store)
    argv = ["replay", "--from-db", "--start", "2013-10-15", "--end", "2013-10-16T12:00:00+02:00"]
    assert main([*argv, "--contract", "ESZ3", "--config", str(store.config)]) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    assert error_lines(captured.err) == [
        "error: no bars of ESZ3 recorded in the database from 2013-10-15T00:00:00Z "
        "to 2013-10-16T10:00:00Z"
    ]


def test_an_unwritable_report_folder_is_one_line(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store.journal(bars=[("MESM5", b) for b in _bars(T0, 30, 60)])
    (tmp_path / "a-file").write_text("")
    folder = tmp_path / "a-file" / "report"
    argv = ["replay", "--from-db", "--start", "2025-03-04", "--end", "2025-03-05"]
    assert main([*argv, "--report", str(folder), "--config", str(store.config)]) == EXIT_USAGE
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert lines[0].startswith(f"error: --report {folder}: cannot write: ")


def test_the_installed_command_replays_from_the_store(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    config = write_config(tmp_path / "config.yaml", data_dir, None, SAMPLE_CONFIG)
    store = Store("sqlite", database_url(None, data_dir), config, data_dir)
    store.upgrade()
    _record_sample(store)
    _header, *rows = _sample_rows(
        parse_time("2013-10-07", "start"), parse_time("2013-10-09", "end")
    ).splitlines()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "entrypoints.cli",
            "replay",
            "--from-db",
            "--start",
            "2013-10-07",
            "--end",
            "2013-10-09",
            "--config",
            str(store.config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == EXIT_OK, done.stderr
    assert done.stdout.startswith("Replay summary\n")
    shown = re.search(r"^  Input bars +([\d,]+)$", done.stdout, re.MULTILINE)
    assert shown is not None
    assert shown.group(1) == f"{len(rows):,}"
    assert error_lines(done.stderr) == []


# ---------------------------------------------------------------- which bars a window selects

START = T0 - timedelta(hours=1)
END = T0 + timedelta(hours=1)


def _bars(first: datetime, n: int, seconds: int, close: float = 5000.0) -> list[Bar]:
    return [bar(first + timedelta(seconds=seconds * i), close, seconds=seconds) for i in range(n)]


async def test_one_contract_is_chosen_when_two_overlap() -> None:
    journal = InMemoryJournal()
    for b in _bars(T0, 12, 5, 5000.0):
        journal.append_bar("MESH5", b)
    for b in _bars(T0, 12, 5, 5010.0):
        journal.append_bar("MESM5", b)
    with pytest.raises(StoreBarsError) as refused:
        await load_store_series(Settings(), journal, START, END)
    assert str(refused.value) == (
        "recorded bars of more than one contract overlap at 2025-03-04T15:00:00Z in the journal: "
        "choose one with --contract"
    )
    series = await load_store_series(Settings(), journal, START, END, contract="MESM5")
    assert len(series) == 12
    assert set(series.closes.tolist()) == {5010.0}


async def test_contracts_one_after_the_other_replay_as_one_series() -> None:
    journal = InMemoryJournal()
    for b in _bars(T0, 6, 5, 5000.0):
        journal.append_bar("MESH5", b)
    for b in _bars(T0 + timedelta(seconds=30), 6, 5, 5010.0):
        journal.append_bar("MESM5", b)  # the roll: the new contract's bars after the old one's
    series = await load_store_series(Settings(), journal, START, END)
    assert len(series) == 12
    assert series.bar_seconds == 5
    assert np.all(np.diff(series.epochs) == 5)


async def test_bars_of_several_sizes_need_a_choice() -> None:
    journal = InMemoryJournal()
    for b in [*_bars(T0, 12, 5), *_bars(T0, 2, 60)]:
        journal.append_bar("MESM5", b)
    with pytest.raises(StoreBarsError) as refused:
        await load_store_series(Settings(), journal, START, END)
    assert "bars of several sizes (5s, 60s)" in str(refused.value)
    assert str(refused.value).endswith("choose one with --bar-seconds")
    series = await load_store_series(Settings(), journal, START, END, bar_seconds=60)
    assert (len(series), series.bar_seconds) == (2, 60)
    with pytest.raises(StoreBarsError) as none:
        await load_store_series(Settings(), journal, START, END, bar_seconds=300)
    assert str(none.value) == (
        "no 300s bars recorded in the journal from 2025-03-04T14:00:00Z to 2025-03-04T16:00:00Z "
        "(recorded: 5s, 60s)"
    )


async def test_the_window_is_half_open_on_bar_start() -> None:
    journal = InMemoryJournal()
    for b in _bars(START - timedelta(minutes=1), 122, 60):
        journal.append_bar("MESM5", b)  # 14:59 .. 17:00 bar starts
    series = await load_store_series(Settings(), journal, START, END)
    assert len(series) == 120
    assert series.epochs[0] == int(START.timestamp())
    assert series.epochs[-1] == int(END.timestamp()) - 60


def test_bars_off_the_tick_grid_are_refused_as_from_a_file(tmp_path: Path) -> None:
    bars = [*_bars(T0, 3, 60, 5000.25), bar(T0 + timedelta(minutes=3), 5000.1, seconds=60)]
    bars.append(bar(T0 + timedelta(minutes=4), 5000.5, seconds=60))
    csv = tmp_path / "bars.csv"
    csv.write_text(
        "ts,open,high,low,close,volume\n"
        + "".join(
            f"{b.ts.isoformat()},{b.open},{b.high},{b.low},{b.close},{b.volume}\n" for b in bars
        )
    )
    from_file = read_bar_file(csv, tick_size=MES.tick_size)
    from_store = series_of_bars(bars, tick_size=MES.tick_size, source=Path("<journal>"))
    assert from_store.refused == from_file.refused == {"off_tick": 1}
    assert from_store.rows_read == from_file.rows_read == 5
    assert from_store.bar_seconds == from_file.bar_seconds == 60
    for column in ("epochs", "opens", "highs", "lows", "closes", "volumes"):
        assert np.array_equal(getattr(from_store, column), getattr(from_file, column)), column
