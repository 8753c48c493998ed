"""``trades export``: journaled round trips come back as the replay report's trades.csv, byte for
byte, whole or by exit-time window; on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.sql.database import database_url
from application.report import TradeDetail
from entrypoints.cli import EXIT_OK, EXIT_USAGE, main
from entrypoints.report_output import trades_csv
from tests.integration.cli.journal_store import (
    SAMPLE,
    SAMPLE_CONFIG,
    Store,
    error_lines,
    sample_replay,
    write_config,
)


def journal_details() -> list[TradeDetail]:
    """The replay's trade details as a journal without bars gives them: entry z and bracket prices
    from the journaled signals and intents, no MAE/MFE."""
    return [replace(d, mae_usd=None, mfe_usd=None) for d in sample_replay().summary.trades]


@pytest.fixture(scope="module")
def replay_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report folder of ``quant-scalper replay`` on the shipped sample."""
    folder = tmp_path_factory.mktemp("replay") / "report"
    argv = ["replay", str(SAMPLE), "--config", str(SAMPLE_CONFIG), "--report", str(folder)]
    assert main([*argv, "--no-progress"]) == EXIT_OK
    return folder


def test_exported_trades_equal_the_replay_reports_trades_csv(
    store: Store, replay_report: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = sample_replay()
    # Every record of the replay and the bars it read, as the daemon journals them (the bars give
    # each trade's MAE and MFE).
    store.journal(result.journal.records, [("ESZ3", bar) for bar in result.series.bars()])
    capsys.readouterr()
    out = tmp_path / "exported.csv"
    assert main(["trades", "export", "--csv", str(out), "--config", str(store.config)]) == EXIT_OK
    trips = len(result.round_trips)
    assert trips == 70
    assert capsys.readouterr().out == f"{trips} round trips written to {out}\n"
    assert out.read_bytes() == (replay_report / "trades.csv").read_bytes()


EARLY = datetime(2000, 1, 1, tzinfo=UTC)
LATE = datetime(2100, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "lo", "hi"),
    [
        (
            "2013-10-08",
            "2013-10-10T14:30:00Z",
            datetime(2013, 10, 8, tzinfo=UTC),
            datetime(2013, 10, 10, 14, 30, tzinfo=UTC),
        ),
        ("2013-10-09T09:30:00-04:00", None, datetime(2013, 10, 9, 13, 30, tzinfo=UTC), LATE),
        (None, "2013-10-08", EARLY, datetime(2013, 10, 8, tzinfo=UTC)),
    ],
)
def test_a_window_exports_the_trips_that_exit_in_it(
    store: Store,
    start: str | None,
    end: str | None,
    lo: datetime,
    hi: datetime,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    trips = sample_replay().round_trips
    store.journal(sample_replay().journal.records)
    expected = [t for t in trips if lo <= t.exit_ts < hi]
    assert 0 < len(expected) < len(trips)
    out = tmp_path / "window.csv"
    window = [*(["--start", start] if start else []), *(["--end", end] if end else [])]
    argv = ["trades", "export", "--csv", str(out), *window, "--config", str(store.config)]
    capsys.readouterr()
    assert main(argv) == EXIT_OK
    assert capsys.readouterr().out == f"{len(expected)} round trips written to {out}\n"
    assert out.read_text(encoding="utf-8") == trades_csv(expected, journal_details())


def test_an_unwritable_csv_file_is_one_line(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "a-file" / "trades.csv"  # a regular file as the directory: never writable
    argv = ["trades", "export", "--csv", str(out), "--config", str(store.config)]
    assert main(argv) == EXIT_USAGE
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert lines[0].startswith(f"error: --csv {out}: cannot write: ")


def test_the_installed_command_migrates_and_exports_to_stdout(tmp_path: Path) -> None:
    """As a user runs it: a real process, the embedded store in a fresh data directory."""
    data_dir = tmp_path / "data"
    config = write_config(tmp_path / "config.yaml", data_dir, None, SAMPLE_CONFIG)

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "entrypoints.cli", *argv, "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    refused = cli("trades", "export", "--csv", "-")
    assert refused.returncode == EXIT_USAGE
    assert error_lines(refused.stderr) == [
        f"error: database {database_url(None, data_dir)} does not exist yet (no schema; the code "
        f"needs 0002): run `quant-scalper db upgrade --config {config}`"
    ]
    upgraded = cli("db", "upgrade")
    assert upgraded.returncode == EXIT_OK, upgraded.stderr
    assert upgraded.stdout == f"database at 0002 ({database_url(None, data_dir)})\n"
    assert error_lines(upgraded.stderr) == []

    store = Store("sqlite", database_url(None, data_dir), config, data_dir)
    result = sample_replay()
    store.journal(result.journal.records)
    exported = cli("trades", "export", "--csv", "-", "--end", "2013-10-09")
    assert exported.returncode == EXIT_OK, exported.stderr
    expected = [t for t in result.round_trips if t.exit_ts < datetime(2013, 10, 9, tzinfo=UTC)]
    assert exported.stdout == trades_csv(expected, journal_details())
    assert error_lines(exported.stderr) == [f"{len(expected)} round trips written"]
