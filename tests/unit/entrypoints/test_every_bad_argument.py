"""A command line with several bad values names every one of them, in one error (argparse alone
stops at the first, so a user would fix them one run at a time); one bad value reads as argparse
says it; an unknown command is refused before anything after it is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoints.cli import EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The error lines of a command line refused as a usage error."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if not line.startswith(("usage:", " " * 10))]


def test_every_bad_value_of_a_sweep_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _refused(
        [
            "sweep", str(SAMPLE), "--grid", str(tmp_path / "g.yaml"),
            "--workers", "0", "--executor", "spark", "--trials", "-1", "--top", "x",
            "--seed", "-3", "--out", str(tmp_path / "out"),
        ],
        capsys,
    )  # fmt: skip
    # (How argparse lists the choices differs between Python versions.)
    assert lines[2].startswith("  argument --executor: invalid choice: 'spark' (choose from ")
    lines[2] = "  argument --executor: ..."
    assert lines == [
        "quant-scalper sweep: error: 5 bad arguments:",
        "  argument --workers: --workers must be a whole number of at least 1, got '0'",
        "  argument --executor: ...",
        "  argument --trials: --trials must be a whole number of at least 1, got '-1'",
        "  argument --top: --top must be a whole number of at least 1, got 'x'",
        "  argument --seed: --seed must be a whole number >= 0, got '-3'",
    ]
    assert not (tmp_path / "out").exists()


def test_walkforward_and_montecarlo_name_them_all_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = str(tmp_path / "g.yaml")
    walk = _refused(
        ["walkforward", str(SAMPLE), "--grid", grid, "--train", "0d", "--test", "5x"], capsys
    )
    assert walk[0] == "quant-scalper walkforward: error: 2 bad arguments:"
    assert walk[1].startswith("  argument --train: --train must be a number of trade days")
    assert walk[2].startswith("  argument --test: --test must be a number of trade days")
    monte = _refused(
        ["montecarlo", "--trades", str(tmp_path / "t.csv"), "--paths", "0", "--block", "-2"],
        capsys,
    )
    assert monte == [
        "quant-scalper montecarlo: error: 2 bad arguments:",
        "  argument --paths: --paths must be a whole number of at least 1, got '0'",
        "  argument --block: --block must be a whole number of at least 1, got '-2'",
    ]


def test_argparse_s_own_errors_come_with_the_bad_values_before_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A missing option is found at the end of the parse; an option without its value mid-way.
    missing = _refused(["sweep", str(SAMPLE), "--workers", "0", "--top", "x"], capsys)
    assert missing == [
        "quant-scalper sweep: error: 3 bad arguments:",
        "  argument --workers: --workers must be a whole number of at least 1, got '0'",
        "  argument --top: --top must be a whole number of at least 1, got 'x'",
        "  the following arguments are required: --grid",
    ]
    cut = _refused(["sweep", str(SAMPLE), "--grid", "g", "--workers", "0", "--top"], capsys)
    assert cut == [
        "quant-scalper sweep: error: 2 bad arguments:",
        "  argument --workers: --workers must be a whole number of at least 1, got '0'",
        "  argument --top: expected one argument",
    ]


def test_one_bad_value_reads_as_argparse_says_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert _refused(["replay", str(SAMPLE), "--bar-seconds", "0"], capsys) == [
        "quant-scalper replay: error: argument --bar-seconds: --bar-seconds must be a whole number "
        "of seconds from 1 to 3600, got '0'"
    ]


def test_an_unknown_command_is_refused_before_its_arguments(
    capsys: pytest.CaptureFixture[str],
) -> None:
    [line] = _refused(["sweeep", "--workers", "0"], capsys)
    assert line.startswith("quant-scalper: error: argument COMMAND: invalid choice: 'sweeep'")


def test_a_good_command_line_still_parses(tmp_path: Path) -> None:
    from entrypoints.cli import _parser

    args = _parser("sweep").parse_args(
        ["sweep", str(SAMPLE), "--grid", "g.yaml", "--workers", "2", "--executor", "dask"]
    )
    assert (args.workers, args.executor, args.path) == (2, "dask", SAMPLE)
