"""A negative --seed is a usage error when the command line is read, not a crash after every
trial has run (numpy's generators and the bootstrap take seeds >= 0 only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoints.cli import EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"


@pytest.mark.parametrize("command", [["sweep"], ["walkforward", "--train", "2d", "--test", "1d"]])
def test_a_negative_seed_is_refused_before_any_replay(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text("strategy.lookback_period: [10, 20]\n")
    out = tmp_path / "out"
    argv = [command[0], str(SAMPLE), "--grid", str(grid), *command[1:], "--out", str(out)]
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--seed", "-1", "--no-progress"])
    assert exited.value.code == EXIT_USAGE
    assert "--seed must be a whole number >= 0, got '-1'" in capsys.readouterr().err
    assert not out.exists()
