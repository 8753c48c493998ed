"""The journal commands' arguments: times and dates as documented, and every bad value refused in one
line naming the option, before anything is read or written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from entrypoints.cli import EXIT_USAGE, main
from entrypoints.journal_cli import parse_time
from tests.integration.cli.journal_store import SAMPLE, error_lines, write_config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-04", datetime(2025, 3, 4, tzinfo=UTC)),
        ("2025-03-04T15:00:00Z", datetime(2025, 3, 4, 15, tzinfo=UTC)),
        ("2025-03-04T10:00:00-05:00", datetime(2025, 3, 4, 15, tzinfo=UTC)),
        ("2025-03-04T16:00:00.5+01:00", datetime(2025, 3, 4, 15, 0, 0, 500000, tzinfo=UTC)),
        (" 2025-03-04T15:00Z ", datetime(2025, 3, 4, 15, tzinfo=UTC)),
    ],
)
def test_a_time_is_iso_8601_with_a_zone_or_a_date_at_midnight_utc(
    text: str, expected: datetime
) -> None:
    parsed = parse_time(text, "--start")
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2025-13-01"], "--start '2025-13-01': not a valid date"),
        (["--end", "yesterday"], "--end 'yesterday': not an ISO-8601 time with a zone"),
        (["--start", "2025-03-04T10:00"], "--start '2025-03-04T10:00' has no time zone"),
        (["--start", "03/04/2025"], "--start '03/04/2025': not an ISO-8601 time"),
        (
            ["--start", "2025-03-05", "--end", "2025-03-04T23:00:00-01:00"],
            "--start 2025-03-05T00:00:00Z is not before --end 2025-03-05T00:00:00Z",
        ),
    ],
)
def test_a_bad_time_is_refused_in_one_line_naming_the_option(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "config.yaml", tmp_path / "var", None)
    for command in (
        ["trades", "export", "--csv", str(tmp_path / "t.csv")],
        ["replay", "--from-db", "--start", "2025-03-01", "--end", "2025-03-02"],
    ):
        assert main([*command, *args, "--config", str(config)]) == EXIT_USAGE
        captured = capsys.readouterr()
        lines = error_lines(captured.err)
        assert len(lines) == 1, captured.err
        assert lines[0].startswith(f"error: {message}")
    assert not (tmp_path / "t.csv").exists()
    assert not (tmp_path / "var").exists()


@pytest.mark.parametrize(
    ("session", "message"),
    [
        ("2025-3-4", "--session '2025-3-4': not a date YYYY-MM-DD"),
        ("2025-02-30", "--session '2025-02-30': not a date YYYY-MM-DD"),
        (
            "2025-03-08",
            "--session 2025-03-08 is a Saturday, not a CME trade date "
            "(weekend trading belongs to Monday 2025-03-10)",
        ),
        (
            "2025-03-09",
            "--session 2025-03-09 is a Sunday, not a CME trade date "
            "(weekend trading belongs to Monday 2025-03-10)",
        ),
    ],
)
def test_a_session_must_be_a_weekday_date(
    session: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "config.yaml", tmp_path / "var", None)
    assert main(["report", "--session", session, "--config", str(config)]) == EXIT_USAGE
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {message}")


def test_replay_takes_a_file_or_the_store_never_both_nor_neither(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv, message in (
        (
            ["replay", str(SAMPLE), "--from-db"],
            "argument --from-db: not allowed with argument path",
        ),
        (["replay", "--no-progress"], "one of the arguments path --from-db is required"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == EXIT_USAGE
        assert message in capsys.readouterr().err


def test_store_options_on_a_file_replay_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(SAMPLE), "--contract", "ESZ3"]) == EXIT_USAGE
    lines = error_lines(capsys.readouterr().err)
    assert lines == ["error: --start, --end and --contract apply to --from-db only"]


def test_replay_from_the_store_needs_a_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "config.yaml", tmp_path / "var", None)
    assert main(["replay", "--from-db", "--start", "2025-03-04", "--config", str(config)]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert lines == ["error: replay --from-db needs both --start and --end"]
