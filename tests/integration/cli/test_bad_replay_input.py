"""Bad replay input through the installed command: each case is one line on standard error, a
documented exit code, and no traceback (issue 12 item 6). Unreadable files: see
:mod:`tests.integration.cli.command` (the command runs as ``nobody`` on a real chmod 000 file).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrypoints.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE
from tests.integration.cli.command import nobody_env, shared_directory
from tests.integration.cli.command import run_command as _cli

pytestmark = pytest.mark.timeout(300)

HEADER = "ts,open,high,low,close,volume\n"
ROWS = "".join(
    f"2025-03-04T15:{minute:02d}:00Z,5000,5000.25,4999.75,5000,10\n" for minute in range(10)
)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    with shared_directory() as path:
        yield path


def _nobody_env(home: Path) -> dict[str, str]:
    return nobody_env(home)


def test_a_row_dated_9999_12_31_is_refused_as_from_the_future(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(HEADER + ROWS + "9999-12-31T23:59:00Z,5000,5000.25,4999.75,5000,10\n")
    assert _cli("replay", str(path), "--no-progress") == (EXIT_OK, [])
    only = tmp_path / "only.csv"
    only.write_text(HEADER + "9999-12-31T23:58:00Z,5000,5000,5000,5000,1\n" * 1)
    code, errors = _cli("replay", str(only), "--no-progress", "--bar-seconds", "60")
    assert code == EXIT_BAD_INPUT
    assert errors == [f"error: {only}: no usable bar: all 1 rows refused (future 1)"]


def test_a_ten_megabyte_field_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(
        HEADER + ROWS + "2025-03-04T15:10:00Z,5000," + "5" * 10_000_000 + ",4999,5000,1\n"
    )
    code, errors = _cli("replay", str(path), "--no-progress")
    assert code == EXIT_BAD_INPUT
    assert len(errors) == 1
    assert errors[0].startswith(f"error: {path}:12: not a valid CSV row: field larger than")


def test_a_volume_beyond_int64_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(
        HEADER + ROWS + "2025-03-04T15:10:00Z,5000,5000,5000,5000,99999999999999999999\n"
    )
    assert _cli("replay", str(path), "--no-progress") == (
        EXIT_BAD_INPUT,
        [f"error: {path}:12: volume 99999999999999999999 does not fit a 64-bit integer"],
    )


def test_a_huge_bar_seconds_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(HEADER + ROWS)
    code, errors = _cli("replay", str(path), "--bar-seconds", "99999999999999999999")
    assert code == EXIT_USAGE
    assert len(errors) == 1
    assert "--bar-seconds must be a whole number of seconds from 1 to 3600" in errors[0]


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(HEADER + ROWS, encoding="utf-8-sig")
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    assert _cli("replay", str(path), "--no-progress") == (EXIT_OK, [])


def test_a_directory_or_a_fifo_says_what_it_is(tmp_path: Path) -> None:
    directory = tmp_path / "bars.csv"
    directory.mkdir()
    assert _cli("replay", str(directory)) == (
        EXIT_BAD_INPUT,
        [f"error: {directory}: is a directory, not a bar file"],
    )
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    code, errors = _cli("replay", str(fifo))
    assert code == EXIT_BAD_INPUT
    assert errors == [
        f"error: {fifo}: is a FIFO (named pipe), not a regular file: a bar file is read more "
        "than once"
    ]


def test_an_unreadable_file_is_one_line_as_replay_input(shared_dir: Path) -> None:
    path = shared_dir / "bars.csv"
    path.write_text(HEADER + ROWS)
    path.chmod(0o000)
    code, errors = _cli("replay", str(path), env=_nobody_env(shared_dir), as_nobody=True)
    assert code == EXIT_BAD_INPUT
    assert errors == [f"error: {path}: permission denied: this user cannot read the file"]


def test_an_unreadable_file_is_one_line_as_the_daemon_feed(shared_dir: Path) -> None:
    path = shared_dir / "feed.csv"
    path.write_text(HEADER + ROWS)
    path.chmod(0o000)
    env = {
        **_nobody_env(shared_dir),
        "QS_DAEMON__FEED": str(path),
        "QS_DATABASE__DATA_DIR": str(shared_dir / "var"),
        "QS_LOGGING__DIR": str(shared_dir / "logs"),
    }
    code, errors = _cli("run", "--exit-at-end", env=env, as_nobody=True)
    assert code == EXIT_BAD_INPUT
    assert errors == [f"error: {path}: permission denied: this user cannot read the file"]
