"""The executors: the bars reach each worker once, in memory (the file is never read again), and a
trial's record is the same line whether it ran in a worker or here, on all the bars or on a
walk-forward window's rows of them."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from application.research.grid import parse_grid
from entrypoints.replay import load_series
from entrypoints.research.executors import ExecutorName, Job, open_runner
from entrypoints.research.plan import data_hash, plan
from entrypoints.research.window import trade_date_ordinals, window_rows, window_series
from entrypoints.research.worker import run_trial
from entrypoints.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"
SAMPLE_CONFIG = ROOT / "config" / "sample.yaml"


def test_workers_run_trials_on_the_bars_they_were_given_once(tmp_path: Path) -> None:
    settings = load_settings(SAMPLE_CONFIG, {})
    copy = tmp_path / "bars.csv"
    shutil.copy(SAMPLE, copy)
    series = load_series(settings, copy)
    copy.unlink()  # a worker that re-read the file would fail now
    grid = parse_grid({"strategy.lookback_period": [10, 20, 40]})
    planned = plan(settings, grid.points(), data_hash(series))
    jobs = [Job(p.trial.key, p.settings) for p in planned]
    with open_runner("local", series, workers=2, address=None) as runner:
        assert runner.workers == 2
        lines = sorted(runner.run(jobs))
    assert lines == sorted(run_trial(job.key, job.settings, series) for job in jobs)
    assert len(set(lines)) == 3


@pytest.mark.timeout(300)
@pytest.mark.parametrize("executor", ["local", "dask", "ray"])
def test_one_runner_serves_the_trials_of_every_window(executor: ExecutorName) -> None:
    # A walk-forward ships the whole series once; each trial names its window's rows, and its
    # record is the line a replay of that window alone gives.
    pytest.importorskip({"local": "concurrent", "dask": "distributed", "ray": "ray"}[executor])
    settings = load_settings(SAMPLE_CONFIG, {})
    series = load_series(settings, SAMPLE)
    ordinals = trade_date_ordinals(series.epochs)
    days = sorted({date.fromordinal(int(d)) for d in ordinals})
    windows = [(days[0], days[2]), (days[3], days[3]), (days[4], days[6])]
    grid = parse_grid({"strategy.lookback_period": [10, 20]})
    jobs = []
    expected = []
    for first, last in windows:
        rows = window_rows(ordinals, first, last)
        alone = window_series(series, ordinals, first, last)
        for p in plan(settings, grid.points(), data_hash(alone), rows=rows):
            jobs.append(Job(p.trial.key, p.settings, p.rows))
            expected.append(run_trial(p.trial.key, p.settings, alone))
    with open_runner(executor, series, workers=2, address=None) as runner:
        lines = sorted(runner.run(jobs))
    assert lines == sorted(expected)
    assert len(set(lines)) == 6


@pytest.mark.timeout(300)
def test_the_local_dask_cluster_runs_its_workers_quiet() -> None:
    # The settings reach the worker processes themselves (each reads its own config): a worker
    # that still sampled the replay's stack every 10 ms would cost every trial ~10%.
    pytest.importorskip("distributed")
    import dask

    from entrypoints.research.executors import QUIET_DASK_WORKERS

    here_before = {name: dask.config.get(name) for name in QUIET_DASK_WORKERS}

    settings = load_settings(SAMPLE_CONFIG, {})
    series = load_series(settings, SAMPLE)

    def worker_config() -> dict[str, object]:
        import dask

        return {name: dask.config.get(name) for name in QUIET_DASK_WORKERS}

    with open_runner("dask", series, workers=2, address=None) as runner:
        seen = runner.client.run(worker_config)  # type: ignore[attr-defined]
    assert len(seen) == 2
    assert all(config == QUIET_DASK_WORKERS for config in seen.values())
    # ...and only there: this process's own settings are left as they were.
    assert {name: dask.config.get(name) for name in QUIET_DASK_WORKERS} == here_before
