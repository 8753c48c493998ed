"""The command line: bad input is named precisely, exits non-zero, and never shows a traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from entrypoints.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, main
from entrypoints.progress import ProgressBar

HEADER = "ts,open,high,low,close,volume\n"
GOOD = "2025-03-04T15:00:00Z,5000,5001,4999,5000.5,10\n"


def _write(tmp_path: Path, body: str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("2025-03-04T15:01:00Z,5000,5001,4999\n", "expected 6 fields, found 4"),
        ("2025-03-04T15:01:00Z,5000,abc,4999,5000,1\n", "high 'abc' is not a number"),
        ("2025-03-04T15:01:00,5000,5001,4999,5000,1\n", "has no time zone"),
        ("2025-03-04T15:01:00Z,5000,5001,4999,5000,1.5\n", "volume '1.5' is not a whole number"),
        ("yesterday,5000,5001,4999,5000,1\n", "is not an ISO-8601 timestamp"),
        ("2025-03-04T15:01:00Z,,5001,4999,5000,1\n", "open '' is not a number"),
    ],
)
def test_a_malformed_row_names_the_file_and_line_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], row: str, message: str
) -> None:
    path = _write(tmp_path, GOOD + GOOD.replace("15:00", "14:55") + row)
    assert main(["replay", str(path), "--bar-seconds", "60"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert f"{path}:4: " in err
    assert message in err
    assert "Traceback" not in err


def test_impossible_values_are_refused_with_a_count_and_the_rest_is_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        "2025-03-04T15:00:00Z,5000,5001,4999,5000,10\n",
        "2025-03-04T15:01:00Z,nan,5001,4999,5000,10\n",  # NaN
        "2025-03-04T15:02:00Z,-5000,5001,-5001,5000,10\n",  # negative price
        "2025-03-04T15:03:00Z,5000,4990,4999,5000,10\n",  # high below open
        "2025-03-04T15:04:00Z,5000,5001,4999,5000.1,10\n",  # off the 0.25 grid
        "2025-03-04T15:05:00Z,5000,5001,4999,5000,10\n",
    ]
    path = _write(tmp_path, "".join(rows))
    report = tmp_path / "out"
    code = main(["replay", str(path), "--bar-seconds", "60", "--report", str(report)])
    assert code == EXIT_OK
    out = capsys.readouterr().out
    assert "Refused input rows: 4" in out
    summary = (report / "summary.json").read_text()
    assert '"bars_in": 2' in summary
    for reason in ("nan", "non_positive_price", "ohlc", "off_tick"):
        assert f'"{reason}": 1' in summary


def test_a_config_with_several_mistakes_names_every_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "strategy:\n  bar_minutes: 7\n  lookbak_period: 20\n"
        "risk:\n  max_daily_loss: -5\n"
        "execution:\n  fill_model: next_bar\n"
        "zscore:\n  engine: fortran\n"
    )
    assert main(["replay", "nothing.csv", "--config", str(config)]) == EXIT_USAGE
    err = capsys.readouterr().err
    for path in (
        "strategy.bar_minutes",
        "strategy.lookbak_period",
        "risk.max_daily_loss",
        "execution.fill_model",
        "zscore.engine",
    ):
        assert path in err
    assert "5 configuration problems" in err
    assert "Traceback" not in err


def test_a_missing_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.csv"
    assert main(["replay", str(missing)]) == EXIT_BAD_INPUT
    assert f"{missing}: no such file" in capsys.readouterr().err


def test_config_command_validates_and_warns(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = Path(__file__).resolve().parents[3]
    assert main(["config", "--config", str(root / "config" / "sample.yaml")]) == EXIT_OK
    captured = capsys.readouterr()
    assert "OK" in captured.out
    assert captured.err == ""
    no_rules = tmp_path / "no_rules.yaml"
    no_rules.write_text("session:\n  calendar: none\n")
    assert main(["config", "--config", str(no_rules)]) == EXIT_OK
    assert "no session rules" in capsys.readouterr().err


def test_the_console_script_is_installed_and_runs() -> None:
    script = shutil.which("quant-scalper", path=str(Path(sys.executable).parent))
    assert script is not None
    done = subprocess.run([script, "version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("quant-scalper ")


def test_the_progress_bar_draws_in_place_and_finishes_the_line() -> None:
    import io

    stream = io.StringIO()
    bar = ProgressBar(1000, "replay", stream=stream)
    bar(10)
    bar(1000)
    text = stream.getvalue()
    assert text.startswith("\rreplay [")
    assert "100.0%" in text
    assert text.endswith("\n")


def test_bars_coarser_than_the_strategy_bar_are_refused_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = "".join(
        f"2025-03-04T{15 + h}:00:00Z,5000,5001,4999,5000,10\n" for h in range(3)
    )  # hourly bars cannot make 5-minute bars
    path = _write(tmp_path, rows)
    assert main(["replay", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "cannot build 300s bars" in err
    assert "Traceback" not in err


def test_version_is_an_option_too(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("quant-scalper ")


def _minute_rows(count: int, price: str = "5000", first: int = 0) -> str:
    start = 1741100400  # 2025-03-04T15:00:00Z, a Tuesday in session
    return "".join(
        f"{datetime.fromtimestamp(start + 60 * i, UTC):%Y-%m-%dT%H:%M:%SZ},"
        f"{price},{price},{price},{price},1\n"
        for i in range(first, first + count)
    )


def test_bar_seconds_that_disagree_with_the_rows_are_refused_as_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, _minute_rows(30))
    assert main(["replay", str(path), "--bar-seconds", "300"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--bar-seconds 300 disagrees with the file: its rows are 60 s apart" in err
    assert main(["replay", str(path), "--bar-seconds", "60", "--no-progress"]) == EXIT_OK


@pytest.mark.parametrize("value", ["0", "-5", "abc", "1.5", "99999999999999999999", "7200"])
def test_a_bad_bar_seconds_value_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    path = _write(tmp_path, _minute_rows(3))
    with pytest.raises(SystemExit) as exited:
        main(["replay", str(path), "--bar-seconds", value])
    assert exited.value.code == EXIT_USAGE
    assert "--bar-seconds must be a whole number of seconds" in capsys.readouterr().err


def test_a_bar_size_that_cannot_build_the_strategy_bar_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, _minute_rows(3))
    assert main(["replay", str(path), "--bar-seconds", "7"]) == EXIT_USAGE
    assert "does not divide the strategy bar (300 s)" in capsys.readouterr().err


def test_input_with_no_usable_bar_exits_3_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A 6E-like file: prices off the MES 0.25 grid, every row refused.
    path = _write(tmp_path, _minute_rows(20, price="1.0835"))
    report = tmp_path / "out"
    assert main(["replay", str(path), "--report", str(report)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err == f"error: {path}: no usable bar: all 20 rows refused (off_tick 20)\n"
    assert not report.exists()


def test_most_rows_refused_is_warned_with_the_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, _minute_rows(6) + _minute_rows(10, price="5000.1", first=6))
    assert main(["replay", str(path), "--no-progress"]) == EXIT_OK
    err = capsys.readouterr().err
    assert "warning:" in err
    assert "rows refused (off_tick" in err
    assert "replaying the 6 that are left" in err


def test_a_replay_outside_every_calendar_says_the_calendar_is_why_nothing_traded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The shipped sample moved back to 2008, before the calendar's first year.
    sample = (
        Path(__file__).resolve().parents[3] / "data" / "sample" / "es_1min_20131006_20131014.csv"
    )
    lines = sample.read_text().splitlines()
    shifted = [lines[0]]
    for line in lines[1:]:
        ts, rest = line.split(",", 1)
        moved = datetime.fromisoformat(ts.replace("Z", "+00:00")) - timedelta(weeks=270)
        shifted.append(f"{moved:%Y-%m-%dT%H:%M:%SZ},{rest}")
    path = tmp_path / "es_2008.csv"
    path.write_text("\n".join(shifted) + "\n")
    report = tmp_path / "out"
    assert main(["replay", str(path), "--no-progress", "--report", str(report)]) == EXIT_OK
    captured = capsys.readouterr()
    assert "Round trips                                          0" in captured.out
    assert "calendar does not cover the date" in captured.out
    assert "8,198 of 8,198 bars are on dates the session calendar does not cover" in captured.err
    assert "cme_globex_equity covers 2009-12-31 18:00 New York" in captured.err
    summary = json.loads((report / "summary.json").read_text())
    assert summary["round_trips"] == 0
    assert summary["signals_blocked"] == {"calendar does not cover the date": 210}
