"""``quant-scalper sweep`` as a user runs it, on the shipped sample: every executor gives the same
files, a repeated sweep computes nothing, an interrupted one computes only the rest."""

from __future__ import annotations

import csv
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from tests.integration.cli.journal_store import (
    SAMPLE,
    SAMPLE_CONFIG,
    sample_replay,
    two_minute_bars,
)
from tests.support.postgres import create_database, drop_database

ROOT = Path(__file__).resolve().parents[3]
COMMAND = str(Path(sys.executable).parent / "quant-scalper")
GRID = "strategy.lookback_period: [10, 20]\nstrategy.z_threshold_entry: [2.0, 2.5]\n"


def sweep(
    out: Path, grid: Path, *extra: str, env: dict[str, str] | None = None, data: Path = SAMPLE
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [
            COMMAND,
            "sweep",
            str(data),
            "--config",
            str(SAMPLE_CONFIG),
            "--grid",
            str(grid),
            "--out",
            str(out),
            *extra,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def errors(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("error")]


@pytest.fixture
def grid(tmp_path: Path) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(GRID)
    return path


def rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_executor_gives_byte_identical_results(tmp_path: Path, grid: Path) -> None:
    outs = {}
    for executor in ("local", "dask", "ray"):
        out = tmp_path / executor
        done = sweep(out, grid, "--executor", executor, "--workers", "2")
        assert done.returncode == 0, done.stderr
        assert f"4 trials, 4 computed on {executor} with 2 workers" in done.stdout
        outs[executor] = out
    local = outs["local"]
    for name in ("results.csv", "results.parquet"):
        data = (local / name).read_bytes()
        assert (outs["dask"] / name).read_bytes() == data, name
        assert (outs["ray"] / name).read_bytes() == data, name
    lines = sorted((local / "results.jsonl").read_text().splitlines())
    for executor in ("dask", "ray"):
        assert sorted((outs[executor] / "results.jsonl").read_text().splitlines()) == lines
    table = rows(local)
    assert [(r["strategy.lookback_period"], r["strategy.z_threshold_entry"]) for r in table] == [
        ("10", "2.0"),
        ("10", "2.5"),
        ("20", "2.0"),
        ("20", "2.5"),
    ]
    # The trial with the sample config's own values is the sample replay.
    replay = sample_replay().summary
    same = table[2]
    assert Decimal(same["net_pnl_usd"]) == replay.net_pnl_usd
    assert int(same["round_trips"]) == replay.round_trips
    assert (local / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The overfitting guard speaks about the best trial.
    verdict = [line for line in done.stdout.splitlines() if line.startswith("best trial ")]
    assert len(verdict) == 1
    assert re.search(r"\b(NOT SIGNIFICANT|SIGNIFICANT): ", verdict[0]), verdict[0]
    # The sample's best trial is luck (bootstrap interval spans 0, deflated Sharpe below 0.95).
    assert "NOT SIGNIFICANT: " in verdict[0]
    assert "deflated Sharpe ratio" in done.stdout


def test_the_parquet_table_holds_the_csv_rows_with_exact_money(tmp_path: Path, grid: Path) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "out"
    assert sweep(out, grid, "--workers", "2").returncode == 0
    table = pq.read_table(out / "results.parquet")
    csv_rows = rows(out)
    assert table.num_rows == len(csv_rows) == 4
    assert table.column_names == list(csv_rows[0])
    nets = table.column("net_pnl_usd").to_pylist()
    assert nets == [Decimal(r["net_pnl_usd"]) for r in csv_rows]
    assert table.column("round_trips").to_pylist() == [int(r["round_trips"]) for r in csv_rows]


def test_a_repeated_sweep_computes_nothing_and_a_cut_one_only_the_rest(
    tmp_path: Path, grid: Path
) -> None:
    out = tmp_path / "out"
    first = sweep(out, grid, "--workers", "2")
    assert first.returncode == 0, first.stderr
    table = (out / "results.csv").read_bytes()
    again = sweep(out, grid, "--workers", "2")
    assert "4 trials, 0 computed, 4 already in" in again.stdout
    assert (out / "results.csv").read_bytes() == table
    # Keep one finished trial and half of the next line, as a kill mid-write leaves it.
    results = out / "results.jsonl"
    lines = results.read_text().splitlines()
    results.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    resumed = sweep(out, grid, "--workers", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "4 trials, 3 computed on local with 2 workers, 1 already in" in resumed.stdout
    assert (out / "results.csv").read_bytes() == table
    assert len(results.read_text().splitlines()) == 4


def test_a_killed_sweep_resumes_with_the_trials_it_had_not_finished(tmp_path: Path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text("strategy.lookback_period: [10, 15, 20, 25, 30, 35, 40, 45]\n")
    out = tmp_path / "out"
    out.mkdir()
    results = out / "results.jsonl"
    process = subprocess.Popen(
        [
            COMMAND,
            "sweep",
            str(SAMPLE),
            "--config",
            str(SAMPLE_CONFIG),
            "--grid",
            str(grid),
            "--out",
            str(out),
            "--workers",
            "1",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            if results.exists() and results.read_text().count("\n") >= 1:
                break
            time.sleep(0.05)
        else:
            pytest.fail("no trial finished within 180 s")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finished = results.read_text().count("\n")
    assert finished >= 1
    resumed = sweep(out, grid, "--workers", "1")
    assert resumed.returncode == 0, resumed.stderr
    computed = 8 - finished
    assert f"8 trials, {computed} computed" in resumed.stdout
    assert f"{finished} already in" in resumed.stdout
    assert len(rows(out)) == 8


def test_a_random_search_is_a_seeded_sample_of_the_grid(tmp_path: Path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        "strategy.lookback_period: {from: 10, to: 40, step: 5}\n"
        "strategy.z_threshold_entry: {from: 1.5, to: 3.0, step: 0.25}\n"
    )
    one = sweep(tmp_path / "a", grid, "--search", "random", "--trials", "3", "--seed", "4")
    two = sweep(tmp_path / "b", grid, "--search", "random", "--trials", "3", "--seed", "4")
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert (tmp_path / "a" / "results.csv").read_bytes() == (
        tmp_path / "b" / "results.csv"
    ).read_bytes()
    assert len(rows(tmp_path / "a")) == 3


def test_optuna_search_is_seeded_and_keeps_its_study_in_sqlite(tmp_path: Path, grid: Path) -> None:
    runs = []
    for name in ("a", "b"):
        storage = f"sqlite:///{tmp_path / name}.db"
        done = sweep(
            tmp_path / name,
            grid,
            "--search",
            "optuna",
            "--trials",
            "4",
            "--workers",
            "2",
            "--seed",
            "3",
            "--storage",
            storage,
            "--study",
            "s",
        )
        assert done.returncode == 0, done.stderr
        runs.append((tmp_path / name / "results.csv").read_bytes())
        with closing(sqlite3.connect(tmp_path / f"{name}.db")) as db:
            states = db.execute("SELECT state FROM trials").fetchall()
        assert states == [("COMPLETE",)] * 4
    assert runs[0] == runs[1]


def test_optuna_study_lives_in_postgresql(tmp_path: Path, grid: Path, postgres_url: str) -> None:
    url = create_database(postgres_url, "qs_optuna")
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        done = sweep(
            tmp_path / "pg",
            grid,
            "--search",
            "optuna",
            "--trials",
            "3",
            "--workers",
            "1",
            "--storage",
            url,
            "--study",
            "shared",
        )
        assert done.returncode == 0, done.stderr
        # A second machine joining the study adds its trials to the same study (given the plain
        # postgresql:// URL, which runs on psycopg 3 too).
        more = sweep(
            tmp_path / "pg2",
            grid,
            "--search",
            "optuna",
            "--trials",
            "2",
            "--workers",
            "1",
            "--storage",
            plain,
            "--study",
            "shared",
            "--seed",
            "9",
        )
        assert more.returncode == 0, more.stderr
        with psycopg.connect(plain) as db:
            states = db.execute(
                "SELECT t.state FROM trials t JOIN studies s USING (study_id) "
                "WHERE s.study_name = 'shared'"
            ).fetchall()
        assert states == [("COMPLETE",)] * 5
    finally:
        drop_database(postgres_url, url)


def test_bad_grid_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        "strategy.lookback_period: [1, 20]\n"
        "strategy.lookbak: [3]\n"
        "session.calendar: [none]\n"
        "strategy.z_threshold_entry: {from: 2, to: 1, step: 0.5}\n"
    )
    done = sweep(tmp_path / "out", grid)
    assert done.returncode == 2
    assert "4 grid problems" in done.stderr
    assert "session.calendar: only strategy, risk, execution settings can be swept" in done.stderr
    assert "strategy.z_threshold_entry: range to (1) is below from (2)" in done.stderr
    assert "strategy.lookback_period = 1:" in done.stderr
    assert "unknown key (did you mean 'lookback_period'?)" in done.stderr


def test_bad_data_exits_3(tmp_path: Path, grid: Path) -> None:
    bad = tmp_path / "bars.csv"
    bad.write_text("ts,open,high,low,close,volume\nnot a time,1,1,1,1,1\n")
    done = subprocess.run(
        [COMMAND, "sweep", str(bad), "--grid", str(grid), "--out", str(tmp_path / "o")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert len(errors(done)) == 1


def test_arguments_that_do_not_fit_exit_2(tmp_path: Path, grid: Path) -> None:
    for extra, message in (
        (("--search", "random"), "--search random needs --trials N"),
        (("--address", "tcp://h:1"), "--address applies to --executor dask or ray"),
        (("--objective", "luck"), "--objective 'luck': choose one of net_pnl"),
    ):
        done = sweep(tmp_path / "o", grid, *extra)
        assert done.returncode == 2, extra
        assert any(message in line for line in errors(done)), done.stderr


@pytest.mark.parametrize(
    ("module", "argv", "extra"),
    [
        ("distributed", ("--executor", "dask"), "dask"),
        ("ray", ("--executor", "ray"), "ray"),
        ("optuna", ("--search", "optuna", "--trials", "2"), "optuna"),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(
    tmp_path: Path, grid: Path, module: str, argv: tuple[str, ...], extra: str
) -> None:
    # A package of that name that cannot be imported, ahead of the installed one on the path.
    fake = tmp_path / "fake" / module
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(f'raise ImportError("No module named {module}")\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "fake")}
    done = sweep(tmp_path / "o", grid, *argv, env=env)
    assert done.returncode == 2, done.stderr
    assert errors(done) == [
        f"error: {_what(argv)} needs the {extra} extra: pip install 'quant-scalper[{extra}]'"
    ]


def _what(argv: tuple[str, ...]) -> str:
    return f"{argv[0]} {argv[1]}"


def test_progress_bar_shows_trials_rate_and_eta_when_asked(tmp_path: Path, grid: Path) -> None:
    done = sweep(tmp_path / "o", grid, "--progress", "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "sweep [" in done.stderr
    assert "4/4" in done.stderr
    assert "ETA" in done.stderr
    quiet = sweep(tmp_path / "q", grid, "--workers", "2")
    assert "sweep [" not in quiet.stderr


def test_a_dask_scheduler_that_does_not_answer_is_one_line_and_exit_4(
    tmp_path: Path, grid: Path
) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = sweep(tmp_path / "o", grid, "--executor", "dask", "--address", f"tcp://127.0.0.1:{port}")
    assert done.returncode == 4, done.stderr
    [line] = errors(done)
    # Refused at once (a Dask client would wait out its 15 s timeout, then say it timed out).
    assert line.startswith(
        f"error: --address tcp://127.0.0.1:{port}: no Dask scheduler: cannot connect: "
    )


def test_a_study_database_that_does_not_answer_is_one_line_and_exit_4(
    tmp_path: Path, grid: Path
) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    storage = f"postgresql://nobody:secret@127.0.0.1:{port}/none"
    done = sweep(tmp_path / "o", grid, "--search", "optuna", "--trials", "2", "--storage", storage)
    assert done.returncode == 4, done.stderr
    [line] = errors(done)
    assert line.startswith("error: --storage: cannot open study")
    assert "secret" not in done.stderr


def test_a_study_of_another_search_is_refused_not_joined(tmp_path: Path, grid: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    common = ("--search", "optuna", "--trials", "1", "--workers", "1", "--storage", storage)
    first = sweep(tmp_path / "a", grid, *common, "--study", "s")
    assert first.returncode == 0, first.stderr
    # The same study minimising drawdown: TPE would steer by figures of the wrong sense.
    flipped = sweep(tmp_path / "b", grid, *common, "--study", "s", "--objective", "max_drawdown")
    assert flipped.returncode == 2, flipped.stderr
    [line] = errors(flipped)
    assert line.startswith("error: --study 's': it maximizes, --objective max_drawdown needs")
    # Another grid: the study's parameter indexes would name other values.
    other = tmp_path / "other.yaml"
    other.write_text("strategy.lookback_period: [10, 20, 40, 80]\n")
    moved = sweep(tmp_path / "c", other, *common, "--study", "s")
    assert moved.returncode == 2, moved.stderr
    [line] = errors(moved)
    assert line.startswith("error: --study 's': it is a search of another grid, data or objective")
    with closing(sqlite3.connect(tmp_path / "study.db")) as db:
        assert db.execute("SELECT count(*) FROM trials").fetchone() == (1,)


@pytest.mark.parametrize("executor", ["local", "dask", "ray"])
def test_a_trial_that_fails_is_one_line_on_every_executor(tmp_path: Path, executor: str) -> None:
    # Two-minute bars cannot build the 5-minute strategy bar: the replay's domain rule refuses,
    # in a worker. A Dask worker of a local cluster shares our stderr and used to log the failed
    # task there, traceback and all, before the command's one line.
    bars = two_minute_bars(tmp_path / "bars2m.csv")
    grid = tmp_path / "grid.yaml"
    grid.write_text("strategy.bar_minutes: [5]\n")
    done = sweep(tmp_path / "o", grid, "--executor", executor, "--workers", "1", data=bars)
    assert done.returncode == 3, done.stderr
    assert errors(done) == [
        f"error: {bars}: input bars of 120s cannot build 300s bars (the size must divide it)"
    ]
    # Nothing of the worker's failure but that line (Ray may add its start-up notices); sweep()
    # checks that no traceback reached stderr.
    assert "120s" not in done.stderr.replace(errors(done)[0], "")
