"""``sweep`` and ``walkforward`` stop the same way on the same failure: one line on standard error
and the exit code README gives (2 usage, 3 bad bars, 4 a cluster out of reach)."""

from __future__ import annotations

import argparse
import errno
from pathlib import Path

import pytest

from application.bar_series import BarFileError, BarSizeError
from application.research.grid import GridError
from domain.errors import DomainError
from entrypoints.cli import main
from entrypoints.research.executors import ExecutorUnavailable, MissingExtra
from entrypoints.research.failure import failed
from entrypoints.research.results import ResultsFileError

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"
SAMPLE_CONFIG = ROOT / "config" / "sample.yaml"
ARGS = argparse.Namespace(path=Path("bars.csv"), out=Path("out"))


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (GridError(["strategy.lookbak: unknown key"], "g.yaml"), 2, "g.yaml"),
        (
            BarSizeError(Path("bars.csv"), "1-minute bars, not 5"),
            2,
            "error: bars.csv: 1-minute bars",
        ),
        (BarFileError(Path("bars.csv"), "no close", 2), 3, "error: bars.csv:2: no close"),
        (
            DomainError("input bars of 120s cannot build 300s bars"),
            3,
            "error: bars.csv: input bars",
        ),
        (MissingExtra("dask", "dask"), 2, "error: --executor dask needs the dask extra"),
        (ExecutorUnavailable("--address x: no Ray cluster"), 4, "error: --address x: no Ray"),
        (ResultsFileError("out/results.jsonl: line 1 is not"), 2, "error: out/results.jsonl: line"),
        (OSError(errno.ENOSPC, "No space left on device"), 2, "error: --out out: cannot write: No"),
        (
            OSError(errno.EACCES, "Permission denied", "out/results.csv"),
            2,
            "error: --out out: cannot write: Permission denied",
        ),
        (  # not the results folder's: named as it is, not blamed on --out
            OSError(errno.EACCES, "Permission denied", "/tmp/dask-scratch/lock"),
            4,
            "error: /tmp/dask-scratch/lock: Permission denied",
        ),
    ],
)
def test_each_failure_is_one_line_and_its_exit_code(
    exc: Exception, code: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert failed(exc, ARGS) == code
    err = capsys.readouterr().err
    assert err.startswith(line)
    if not isinstance(exc, GridError):  # a grid's report lists each of its problems
        assert err.count("\n") == 1


def test_anything_else_is_not_swallowed() -> None:
    with pytest.raises(KeyError):
        failed(KeyError("a bug"), ARGS)


@pytest.mark.parametrize("command", ["sweep", "walkforward"])
def test_a_results_file_that_is_not_one_stops_both_commands_alike(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text("strategy.lookback_period: [10, 20]\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text("not json\n")
    argv = [command, str(SAMPLE), "--config", str(SAMPLE_CONFIG), "--grid", str(grid)]
    spans = ["--train", "3d", "--test", "1d"] if command == "walkforward" else []
    assert main([*argv, *spans, "--out", str(out), "--no-progress"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: {out / 'results.jsonl'}: line 1 is not a trial record")
