"""``quant-scalper montecarlo`` refuses what it cannot use in one line: an empty or malformed trades
file (named with its line, exit 3), options out of place or out of range (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoints.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, main

HEADER = "seq,side,exit_time,net_pnl_usd\n"
ROWS = [
    "1,LONG,2024-03-04T15:00:00Z,12.50\n",
    "2,SHORT,2024-03-04T16:00:00Z,-6.24\n",
    "3,LONG,2024-03-05T15:00:00Z,3.76\n",
    "4,LONG,2024-03-06T15:00:00Z,-30.00\n",
]


def _run(tmp_path: Path, text: str, *options: str) -> tuple[int, str]:
    path = tmp_path / "trades.csv"
    path.write_text(text)
    code = main(["montecarlo", "--trades", str(path), "--paths", "100", *options])
    return code, str(path)


def _errors(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty: no header row, no round trips"),
        ("\n\n", "empty: no header row, no round trips"),
        (HEADER, "no round trips (only a header row)"),
        ("seq,exit_time\n1,2024-03-04T15:00:00Z\n", "line 1: missing column net_pnl_usd"),
        ("a,b\n1,2\n", "line 1: missing columns exit_time, net_pnl_usd"),
        (
            HEADER + ROWS[0] + "2,LONG,2024-03-04T16:00:00Z,abc\n",
            "line 3: net_pnl_usd 'abc' is not",
        ),
        (HEADER + ROWS[0] + ROWS[1] + "3,LONG,2024-03-05T15:00:00Z,NaN\n", "line 4: net_pnl_usd"),
        (HEADER + "1,LONG,2024-03-04 15:00:00,1\n", "line 2: exit_time '2024-03-04 15:00:00' is"),
        (HEADER + "1,LONG,yesterday,1\n", "line 2: exit_time 'yesterday' is not an ISO-8601"),
        (HEADER + ROWS[0] + "2,LONG,1\n", "line 3: 3 fields, the header has 4"),
        (HEADER + "1,LONG,2024-03-04T15:00:00Z,0.0000001\n", "more than 6 decimal places"),
    ],
)
def test_a_bad_trades_file_is_named_with_its_line_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    code, path = _run(tmp_path, text)
    assert code == EXIT_BAD_INPUT
    errors = _errors(capsys)
    assert len(errors) == 1
    assert errors[0].startswith(f"error: {path}: ")
    assert message in errors[0]


def test_a_missing_file_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.csv"
    assert main(["montecarlo", "--trades", str(missing)]) == EXIT_BAD_INPUT
    assert _errors(capsys) == [f"error: {missing}: cannot read: No such file or directory"]


def test_a_good_file_writes_its_json_next_to_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Out of closing order in the file: read in closing order.
    code, _ = _run(tmp_path, HEADER + ROWS[1] + ROWS[0] + ROWS[2] + ROWS[3])
    assert code == EXIT_OK
    out = capsys.readouterr().out
    assert "observed: net P&L -19.98, max drawdown 32.48, longest losing streak 1" in out
    assert (tmp_path / "montecarlo.json").is_file()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--block", "4"), "--block 4: longer than the 3 trade days the round trips of "),
        (("--start", "2024-03-04"), "--start and --end apply to --from-db only"),
    ],
)
def test_options_that_cannot_apply_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: tuple[str, ...], message: str
) -> None:
    code, _ = _run(tmp_path, HEADER + "".join(ROWS), *options)
    assert code == EXIT_USAGE
    errors = _errors(capsys)
    assert len(errors) == 1
    assert message in errors[0]


def test_an_unwritable_out_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    code, _ = _run(tmp_path, HEADER + "".join(ROWS), "--out", str(blocker))
    assert code == EXIT_USAGE
    assert _errors(capsys)[0].startswith(f"error: --out {blocker}: cannot write: ")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--paths", "0", "--paths must be a whole number of at least 1, got '0'"),
        ("--block", "x", "--block must be a whole number of at least 1, got 'x'"),
        ("--seed", "-2", "--seed must be a whole number >= 0, got '-2'"),
    ],
)
def test_out_of_range_numbers_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["montecarlo", "--trades", str(tmp_path / "t.csv"), option, value])
    assert exited.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_one_source_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["montecarlo"])
    assert exited.value.code == EXIT_USAGE
    assert "one of the arguments --trades --from-db is required" in capsys.readouterr().err
