"""A negative --seed is a usage error when the command line is read, not a crash after every
trial has run (numpy's generators and the bootstrap take seeds >= 0 only); the options the
research commands share (entrypoints/options.py) are refused alike by each of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoints.cli import EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"


COMMANDS = [["sweep"], ["walkforward", "--train", "2d", "--test", "1d"]]


def _argv(command: list[str], tmp_path: Path) -> list[str]:
    grid = tmp_path / "grid.yaml"
    grid.write_text("strategy.lookback_period: [10, 20]\n")
    out = tmp_path / "out"
    return [command[0], str(SAMPLE), "--grid", str(grid), *command[1:], "--out", str(out)]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_negative_seed_is_refused_before_any_replay(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*_argv(command, tmp_path), "--seed", "-1", "--no-progress"])
    assert exited.value.code == EXIT_USAGE
    assert "--seed must be a whole number >= 0, got '-1'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_montecarlo_refuses_a_negative_seed_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["montecarlo", "--trades", str(tmp_path / "trades.csv"), "--seed", "-1"])
    assert exited.value.code == EXIT_USAGE
    assert "--seed must be a whole number >= 0, got '-1'" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--workers", "0"), "--workers must be a whole number of at least 1, got '0'"),
        (("--executor", "spark"), "argument --executor: invalid choice: 'spark'"),
    ],
)
def test_executor_options_are_refused_alike(
    command: list[str],
    option: tuple[str, str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*_argv(command, tmp_path), *option, "--no-progress"])
    assert exited.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
