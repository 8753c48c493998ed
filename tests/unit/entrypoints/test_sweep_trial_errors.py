"""A trial that fails on Ray or Dask fails in the sweep as it does in a local worker: the exception
the replay raised, so its message is the one line the command prints (not the cluster's remote
traceback). Dask's worker traceback goes to the log file only (Ray keeps it in its own logs)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from domain.errors import DomainError
from entrypoints import logs
from entrypoints.replay import load_series
from entrypoints.research.executors import ExecutorName, Job, open_runner
from entrypoints.settings import load_settings, settings_with

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"
SAMPLE_CONFIG = ROOT / "config" / "sample.yaml"


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("executor", "module"), [("ray", "ray"), ("dask", "distributed")])
def test_a_domain_error_in_a_trial_reaches_the_sweep_as_itself(
    executor: ExecutorName, module: str, tmp_path: Path
) -> None:
    pytest.importorskip(module)
    base = load_settings(SAMPLE_CONFIG, {})
    series = load_series(base, SAMPLE)
    # Two-minute bars cannot build the 5-minute strategy bar: the replay's domain rule refuses.
    n = 400
    two_minute = replace(
        series,
        bar_seconds=120,
        epochs=series.epochs[0] + 120 * np.arange(n, dtype=np.int64),
        opens=series.opens[:n],
        highs=series.highs[:n],
        lows=series.lows[:n],
        closes=series.closes[:n],
        volumes=series.volumes[:n],
        rows_read=n,
    )
    settings = settings_with(base, {"strategy.bar_minutes": 5})
    logs.configure(level="INFO", fmt="text", directory=tmp_path)
    try:
        with (
            open_runner(executor, two_minute, workers=1, address=None) as runner,
            pytest.raises(DomainError) as raised,
        ):
            list(runner.run([Job("k", settings)]))
    finally:
        logs.uninstall()
    message = str(raised.value)
    assert message == "input bars of 120s cannot build 300s bars (the size must divide it)"
    if executor == "dask":
        kept = (tmp_path / logs.LOG_FILE).read_text(encoding="utf-8")
        assert "a trial failed on a Dask worker: DomainError: input bars of 120s" in kept
        assert "Traceback (most recent call last)" in kept
        assert "in run_trial" in kept
