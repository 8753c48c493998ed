"""``quant-scalper walkforward`` on the shipped sample (7 trade days): windows cut on CME trade dates,
each window's choice checked against replays run here of its train window, the out-of-sample
trades against a replay of its test window, a re-run computing nothing, the same files on Dask as
on the local pool, and bad arguments refused in one line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from application.bar_series import BarSeries
from application.report import ordered
from application.research.objectives import objective
from domain.calendar import cme_trade_date
from domain.position import RoundTrip
from entrypoints.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, main
from entrypoints.replay import load_series, run_replay
from entrypoints.report_output import utc
from entrypoints.research import run as run_module
from entrypoints.research.executors import ExecutorName, Runner, open_runner
from entrypoints.research.window import trade_date_ordinals, window_series
from entrypoints.settings import load_settings, settings_with
from tests.integration.cli.journal_store import SAMPLE, SAMPLE_CONFIG, two_minute_bars

GRID = "strategy.lookback_period: [10, 20]\nstrategy.z_threshold_entry: [2.0, 2.5]\n"
POINTS = [
    {"strategy.lookback_period": lookback, "strategy.z_threshold_entry": Decimal(entry)}
    for lookback in (10, 20)
    for entry in ("2.0", "2.5")
]


@pytest.fixture
def executors(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What happens to the executors a command opens: ``open N`` (N bars shipped), ``closed``."""
    events: list[str] = []

    @contextmanager
    def recorded(
        name: ExecutorName, series: BarSeries, *, workers: int | None, address: str | None
    ) -> Iterator[Runner]:
        try:
            with open_runner(name, series, workers=workers, address=address) as runner:
                events.append(f"open {len(series)}")
                yield runner
        finally:
            events.append("closed")

    monkeypatch.setattr(run_module, "open_runner", recorded)
    return events


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("grid") / "grid.yaml"
    path.write_text(GRID)
    return path


def _walkforward(grid: Path, out: Path, *options: str) -> int:
    argv = ["walkforward", str(SAMPLE), "--config", str(SAMPLE_CONFIG), "--grid", str(grid)]
    return main([*argv, "--out", str(out), "--no-progress", *options])


def test_bars_are_cut_on_cme_trade_dates() -> None:
    series = load_series(load_settings(SAMPLE_CONFIG, {}), SAMPLE)
    ordinals = trade_date_ordinals(series.epochs)
    expected = [
        cme_trade_date(datetime.fromtimestamp(int(t), UTC)).toordinal() for t in series.epochs
    ]
    assert ordinals.tolist() == expected
    days = sorted({date.fromordinal(int(d)) for d in ordinals})
    assert len(days) == 7
    pieces = [window_series(series, ordinals, day, day) for day in days]
    assert sum(len(p) for p in pieces) == len(series)
    assert np.array_equal(np.concatenate([p.epochs for p in pieces]), series.epochs)
    two = window_series(series, ordinals, days[1], days[2])
    assert len(two) == len(pieces[1]) + len(pieces[2])
    assert two.rows_read == len(two)


def test_a_bar_out_of_time_order_is_cut_with_its_own_trade_date(tmp_path: Path) -> None:
    # A file's rows are replayed in file order (the feed merges a late bar): a window holds the
    # bars of its trade dates wherever they stand in the file.
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    late = len(lines) // 2
    bars = tmp_path / "late.csv"
    bars.write_text("\n".join([lines[0], lines[late], *lines[1:late], *lines[late + 1 :]]) + "\n")
    series = load_series(load_settings(SAMPLE_CONFIG, {}), bars)
    ordinals = trade_date_ordinals(series.epochs)
    days = sorted({date.fromordinal(int(d)) for d in ordinals})
    for day in days:
        piece = window_series(series, ordinals, day, day)
        assert np.array_equal(piece.epochs, series.epochs[ordinals == day.toordinal()]), day


def _trips(settings_overrides: Mapping[str, object], first: date, last: date) -> list[RoundTrip]:
    base = load_settings(SAMPLE_CONFIG, {})
    settings = settings_with(base, settings_overrides)
    series = load_series(base, SAMPLE)
    ordinals = trade_date_ordinals(series.epochs)
    result = asyncio.run(run_replay(settings, window_series(series, ordinals, first, last)))
    return ordered(result.round_trips)


def _net_pnls(settings_overrides: Mapping[str, object], first: date, last: date) -> list[Decimal]:
    return [t.net_pnl for t in _trips(settings_overrides, first, last)]


def test_each_window_trades_the_best_of_its_train_window(
    grid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _walkforward(grid, tmp_path, "--train", "4d", "--test", "1d", "--step", "2d") == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("walkforward: 2 windows x 4 trials, 10 replays computed, 0 already in ")
    document = json.loads((tmp_path / "walkforward.json").read_text())
    assert [(w["train"], w["test"]) for w in document["windows"]] == [
        (["2013-10-07", "2013-10-10"], ["2013-10-11", "2013-10-11"]),
        (["2013-10-09", "2013-10-14"], ["2013-10-15", "2013-10-15"]),
    ]
    assert document["unused_days"] == 0
    net = objective("net_pnl")
    stitched: list[Decimal] = []
    exits: list[str] = []
    for window in document["windows"]:
        first, last = (date.fromisoformat(d) for d in window["train"])
        scores = [net(_net_pnls(point, first, last)) or 0.0 for point in POINTS]
        best = POINTS[scores.index(max(scores))]  # the first of equals, as the command
        chosen = {
            "strategy.lookback_period": window["params"]["strategy.lookback_period"],
            "strategy.z_threshold_entry": Decimal(window["params"]["strategy.z_threshold_entry"]),
        }
        assert chosen == best
        assert window["in_sample"] == pytest.approx(max(scores))
        test_day = date.fromisoformat(window["test"][0])
        trips = _trips(best, test_day, test_day)
        oos = [t.net_pnl for t in trips]
        exits.extend(utc(t.exit_ts) for t in trips)
        assert window["oos_trades"] == len(oos)
        assert Decimal(window["oos_net_pnl_usd"]) == sum(oos, Decimal(0))
        stitched.extend(oos)
    assert document["out_of_sample"]["trades"] == len(stitched)
    assert Decimal(document["out_of_sample"]["net_pnl_usd"]) == sum(stitched, Decimal(0))
    rows = (tmp_path / "oos_trades.csv").read_text().splitlines()
    assert rows[0] == "trade,window,test_first,test_last,exit_time,net_pnl_usd,equity_usd"
    assert [r.split(",")[4] for r in rows[1:]] == exits
    assert [Decimal(r.split(",")[5]) for r in rows[1:]] == stitched
    if stitched:
        assert Decimal(rows[-1].split(",")[6]) == sum(stitched, Decimal(0))
    # The stitched out-of-sample trades feed a Monte Carlo as they are.
    assert main(["montecarlo", "--trades", str(tmp_path / "oos_trades.csv"), "--paths", "200"]) == (
        EXIT_OK
    )
    assert [s["name"] for s in document["stability"]] == [
        "strategy.lookback_period",
        "strategy.z_threshold_entry",
    ]
    assert "walk-forward efficiency" in out
    assert "parameter stability:" in out


def test_one_executor_holding_all_the_bars_serves_every_window(
    grid: Path, tmp_path: Path, executors: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    options = ("--train", "2d", "--test", "1d", "--workers", "2")
    assert _walkforward(grid, tmp_path, *options) == EXIT_OK
    assert "walkforward: 5 windows x 4 trials, 25 replays computed" in capsys.readouterr().out
    bars = len(load_series(load_settings(SAMPLE_CONFIG, {}), SAMPLE))
    assert executors == [f"open {bars}", "closed"]
    # A re-run computes nothing, so it starts no executor.
    assert _walkforward(grid, tmp_path, *options) == EXIT_OK
    assert executors == [f"open {bars}", "closed"]


def test_a_rerun_computes_nothing_and_anchored_windows_grow(
    grid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = ("--train", "3d", "--test", "2d", "--anchored")
    assert _walkforward(grid, tmp_path, *options) == EXIT_OK
    first = (tmp_path / "walkforward.json").read_bytes()
    capsys.readouterr()
    assert _walkforward(grid, tmp_path, *options) == EXIT_OK
    assert "0 replays computed, 10 already in" in capsys.readouterr().out
    assert (tmp_path / "walkforward.json").read_bytes() == first
    document = json.loads(first)
    assert [w["train"][0] for w in document["windows"]] == ["2013-10-07", "2013-10-07"]
    assert [w["train_days"] for w in document["windows"]] == [3, 5]
    assert document["anchored"] is True


def test_dask_gives_the_same_files_as_the_local_pool(grid: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="the dask extra is part of the dev extra")
    options = ("--train", "5d", "--test", "1d")
    assert _walkforward(grid, tmp_path / "local", *options) == EXIT_OK
    # Another Dask cluster holds the scheduler's default HTTP port (8787): it must not matter.
    with socket.socket() as other_cluster:
        with contextlib.suppress(OSError):  # held by someone else already: the same condition
            other_cluster.bind(("0.0.0.0", 8787))
            other_cluster.listen()
        assert _walkforward(grid, tmp_path / "dask", *options, "--executor", "dask") == EXIT_OK
    for name in ("walkforward.json", "oos_trades.csv"):
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ("--train", "6d", "--test", "2d"),
            "a walk-forward of 6 train + 2 test trade days needs at least 8 trade dates; "
            "the data has 7",
        ),
        (
            ("--train", "2d", "--test", "2d", "--step", "1d"),
            "step (1) is shorter than test (2): test windows would overlap",
        ),
        (("--train", "3d", "--test", "1d", "--objective", "pnl"), "--objective 'pnl': choose one"),
        (
            ("--train", "3d", "--test", "1d", "--address", "tcp://127.0.0.1:1"),
            "--address applies to --executor dask or ray",
        ),
    ],
)
def test_impossible_walks_are_usage_errors(
    grid: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: tuple[str, ...],
    message: str,
) -> None:
    assert _walkforward(grid, tmp_path, *options) == EXIT_USAGE
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(errors) == 1
    assert message in errors[0]
    assert not (tmp_path / "results.jsonl").exists()


def test_a_span_that_is_not_trade_days_is_refused(
    grid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        _walkforward(grid, tmp_path, "--train", "3w", "--test", "1d")
    assert exited.value.code == EXIT_USAGE
    assert "--train must be a number of trade days such as 20d" in capsys.readouterr().err


def test_unreadable_bars_are_bad_input(
    grid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = tmp_path / "bars.csv"
    bars.write_text("ts,open,high,low,close,volume\n2013-10-07T14:00:00Z,1,2\n")
    argv = ["walkforward", str(bars), "--grid", str(grid), "--train", "1d", "--test", "1d"]
    assert main([*argv, "--out", str(tmp_path / "wf")]) == EXIT_BAD_INPUT
    assert f"{bars}:2: " in capsys.readouterr().err


def test_bars_a_trial_cannot_build_its_strategy_bars_from_are_bad_input(
    tmp_path: Path, executors: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Two-minute bars: a 4-minute strategy bar is built from them, a 5-minute one is not (a
    # domain rule met only when the trial with it replays).
    bars = two_minute_bars(tmp_path / "bars2m.csv")
    config = tmp_path / "config.yaml"
    config.write_text(
        SAMPLE_CONFIG.read_text(encoding="utf-8").replace("bar_minutes: 5", "bar_minutes: 4"),
        encoding="utf-8",
    )
    grid = tmp_path / "grid.yaml"
    grid.write_text("strategy.bar_minutes: [4, 5]\n")
    argv = ["walkforward", str(bars), "--config", str(config), "--grid", str(grid)]
    options = ["--train", "2d", "--test", "1d", "--workers", "1", "--no-progress"]
    assert main([*argv, *options, "--out", str(tmp_path / "wf")]) == EXIT_BAD_INPUT
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert errors == [
        f"error: {bars}: input bars of 120s cannot build 300s bars (the size must divide it)"
    ]
    # The failing trial stopped the run; the executor was closed all the same.
    assert [e.split()[0] for e in executors] == ["open", "closed"]


_WITH_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("executor", ["local", "dask"])
def test_ctrl_c_stops_the_run_and_closes_its_executor(tmp_path: Path, executor: str) -> None:
    pytest.importorskip("distributed" if executor == "dask" else "concurrent")
    grid = tmp_path / "grid.yaml"
    # 1,400 trials (280 a window), ~17 s on one idle worker: the run is not over by the time
    # Ctrl-C reaches it, however long a busy machine keeps this test from sending it.
    grid.write_text(
        "strategy.lookback_period: [10, 15, 20, 25, 30, 35, 40, 45]\n"
        "strategy.z_threshold_entry: {from: 1.5, to: 3.0, step: 0.25}\n"
        "strategy.z_threshold_exit: [0.0, 0.25, 0.5, 0.75, 1.0]\n"
    )
    out = tmp_path / "out"
    command = str(Path(sys.executable).parent / "quant-scalper")
    process = subprocess.Popen(
        [
            # As from a terminal, Ctrl-C's default action: a suite started in the background by a
            # non-interactive shell (`.ci/run &`) hands every child SIGINT ignored, and a Python
            # started so never turns it into KeyboardInterrupt. Reset, then exec the command.
            *(sys.executable, "-c", _WITH_DEFAULT_SIGINT),
            *(command, "walkforward", str(SAMPLE), "--config", str(SAMPLE_CONFIG)),
            *("--grid", str(grid), "--train", "2d", "--test", "1d", "--out", str(out)),
            *("--executor", executor, "--workers", "1", "--no-progress"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    results = out / "results.jsonl"
    try:
        deadline = time.monotonic() + 180
        while not (results.exists() and results.read_text().count("\n") >= 1):
            assert process.poll() is None, "the walk-forward ended before a trial finished"
            assert time.monotonic() < deadline, "no trial finished within 180 s"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGINT)  # Ctrl-C reaches the command, as from a terminal
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr.splitlines()
    # The executor went with it: nothing of the run's session is left (pool workers, a Dask
    # cluster's nanny and worker processes).
    deadline = time.monotonic() + 30
    while True:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "processes of the run outlived it"
        time.sleep(0.1)
    finished = results.read_text().count("\n")
    assert 1 <= finished < 1400  # what finished is kept; the rest was never run
