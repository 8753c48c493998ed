"""A sweep's plan: grid values checked by the Settings model, trials keyed, results resumable."""

from __future__ import annotations

import dataclasses
import json
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from application.research.grid import GridError, parse_grid
from entrypoints.replay import load_series
from entrypoints.research.plan import check_values, data_hash, plan, read_grid
from entrypoints.research.results import ResultsFile, ResultsFileError
from entrypoints.settings import SettingsError, load_settings, settings_with

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"
SAMPLE_CONFIG = ROOT / "config" / "sample.yaml"


def test_settings_with_overrides_one_setting_and_keeps_the_rest() -> None:
    base = load_settings(SAMPLE_CONFIG, {})
    changed = settings_with(base, {"strategy.lookback_period": 40, "risk.max_daily_loss": None})
    assert changed.strategy.lookback_period == 40
    assert changed.risk.max_daily_loss is None
    assert changed.strategy.z_threshold_entry == base.strategy.z_threshold_entry
    assert changed.session == base.session
    assert settings_with(base, {}) == base


def test_settings_with_names_every_problem() -> None:
    base = load_settings(None, {})
    with pytest.raises(SettingsError) as caught:
        settings_with(
            base,
            {
                "strategy.lookback_period": 1,
                "strategy.lookbak": 3,
                "execution.fill_model": "teleport",
                "strategy.z_threshold_exit": Decimal("3"),
            },
        )
    errors = caught.value.errors
    assert any(e.startswith("strategy.lookback_period:") for e in errors)
    assert any(
        "strategy.lookbak: unknown key (did you mean 'lookback_period'?)" in e for e in errors
    )
    assert any(e.startswith("execution.fill_model:") for e in errors)
    assert any(e.startswith("strategy.z_threshold_exit:") for e in errors)


def test_grid_values_the_settings_refuse_are_all_listed() -> None:
    base = load_settings(None, {})
    grid = parse_grid({"strategy.lookback_period": [1, 20, 0], "execution.slippage_ticks": [-1, 0]})
    with pytest.raises(GridError) as caught:
        check_values(base, grid, "g.yaml")
    text = str(caught.value)
    assert "g.yaml: 3 grid problems" in text
    assert "strategy.lookback_period = 1: strategy.lookback_period:" in text
    assert "strategy.lookback_period = 0:" in text
    assert "execution.slippage_ticks = -1:" in text


def test_a_refusal_every_value_gets_is_said_once() -> None:
    # An unknown setting is one mistake, not one per value; a value's own refusal keeps its value.
    base = load_settings(None, {})
    grid = parse_grid({"strategy.lookbak": [10, 20, 40], "strategy.lookback_period": [1, 0]})
    with pytest.raises(GridError) as caught:
        check_values(base, grid, "g.yaml")
    assert caught.value.errors == [
        "strategy.lookbak: unknown key (did you mean 'lookback_period'?)",
        "strategy.lookback_period = 1: strategy.lookback_period: Input should be greater than or "
        "equal to 2, got 1",
        "strategy.lookback_period = 0: strategy.lookback_period: Input should be greater than or "
        "equal to 2, got 0",
    ]
    single = parse_grid({"strategy.lookbak": [10]})
    with pytest.raises(GridError) as caught:
        check_values(base, single, "g.yaml")
    assert caught.value.errors == [
        "strategy.lookbak = 10: strategy.lookbak: unknown key (did you mean 'lookback_period'?)"
    ]


def test_combinations_refused_by_a_cross_field_rule_are_listed() -> None:
    base = load_settings(None, {})
    grid = parse_grid(
        {
            "strategy.z_threshold_entry": [Decimal("0.25"), Decimal("2.0")],
            "strategy.z_threshold_exit": [Decimal("0.5")],
        }
    )
    check_values(base, grid, "g")  # each value alone is fine with the other's default
    with pytest.raises(
        GridError, match=re.escape("z_threshold_entry=0.25, strategy.z_threshold_exit=0.5")
    ):
        plan(base, grid.points(), "data")


def test_each_trial_is_keyed_by_its_effective_config() -> None:
    base = load_settings(None, {})
    grid = parse_grid({"strategy.lookback_period": [10, 20]})
    first, second = plan(base, grid.points(), "data")
    assert first.trial.key != second.trial.key
    assert first.settings.strategy.lookback_period == 10
    # The default lookback is 20: overriding with the same value is the same trial as no override.
    assert second.trial.key == plan(base, [{}], "data")[0].trial.key
    assert first.trial.key != plan(base, grid.points(), "other data")[0].trial.key


def test_the_data_hash_follows_the_bars(tmp_path: Path) -> None:
    settings = load_settings(SAMPLE_CONFIG, {})
    series = load_series(settings, SAMPLE)
    again = load_series(settings, SAMPLE)
    assert data_hash(series) == data_hash(again)
    closes = again.closes.copy()
    closes[100] += 0.25
    assert data_hash(series) != data_hash(dataclasses.replace(again, closes=closes))
    shorter = SAMPLE.read_text().splitlines()[:-1]
    (tmp_path / "short.csv").write_text("\n".join(shorter) + "\n")
    assert data_hash(load_series(settings, tmp_path / "short.csv")) != data_hash(series)
    assert isinstance(series.closes, np.ndarray)


def test_a_grid_file_keeps_decimals_exact_and_reports_yaml_errors(tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text("strategy.z_threshold_entry: [2.1, 2.20]\n")
    assert [str(v) for v in read_grid(path).axes[0].values] == ["2.1", "2.2"]
    path.write_text("strategy.lookback_period: [10, 20\n")
    with pytest.raises(GridError, match="YAML syntax error"):
        read_grid(path)
    with pytest.raises(GridError, match="grid file not found"):
        read_grid(tmp_path / "missing.yaml")


def test_the_results_file_cuts_a_torn_last_line_and_keeps_the_rest(tmp_path: Path) -> None:
    results = ResultsFile(tmp_path / "results.jsonl")
    assert results.load() == {}
    results.append(json.dumps({"key": "a", "metrics": {}}))
    results.append(json.dumps({"key": "b", "metrics": {}}))
    with results.path.open("a") as handle:
        handle.write('{"key": "c", "metr')  # the write a kill interrupted
    assert set(results.load()) == {"a", "b"}
    results.append(json.dumps({"key": "c", "metrics": {}}))
    assert set(results.load()) == {"a", "b", "c"}
    assert len(results.path.read_text().splitlines()) == 3


def test_a_corrupt_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text('{"key": "a"}\nnot json\n{"key": "b"}\n')
    with pytest.raises(ResultsFileError, match="line 2 is not a trial record"):
        ResultsFile(path).load()
