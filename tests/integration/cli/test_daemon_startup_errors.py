"""The daemon's start-up through the installed command: a logging directory it cannot use, a
read-only SQLite journal, an observability port in use are each one line naming the real reason and
a documented exit code, never a traceback or another component's error (issue 12 item 7)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from entrypoints.cli import EXIT_UNAVAILABLE, EXIT_USAGE
from tests.integration.cli.command import (
    NOBODY,
    ROOT,
    nobody_env,
    run_command,
    shared_directory,
)

pytestmark = pytest.mark.timeout(300)

CONFIG = str(ROOT / "config" / "sample.yaml")
RUN = ("run", "--config", CONFIG, "--exit-at-end", "--speed", "max")


def _env(base: Path, **settings: str) -> dict[str, str]:
    return nobody_env(
        base,
        QS_DATABASE__DATA_DIR=str(base / "var"),
        QS_LOGGING__DIR=str(base / "logs"),
        **settings,
    )


def test_a_file_where_the_logging_directory_belongs(tmp_path: Path) -> None:
    (tmp_path / "logs").write_text("not a directory")
    code, errors = run_command(*RUN, env=_env(tmp_path))
    assert code == EXIT_USAGE
    assert errors == [
        f"error: logging.dir {tmp_path / 'logs'}: a file is in the way (a directory is needed "
        "for the logs)"
    ]


def test_a_logging_directory_this_user_cannot_write() -> None:
    with shared_directory() as base:
        (base / "logs").mkdir(mode=0o555)
        (base / "logs").chmod(0o555)
        code, errors = run_command(*RUN, env=_env(base), as_nobody=True)
    assert code == EXIT_USAGE
    assert len(errors) == 1
    assert errors[0].startswith(f"error: logging.dir {base / 'logs'}: not writable by this user")


def test_a_read_only_sqlite_journal() -> None:
    with shared_directory() as base:
        env = _env(base)
        assert run_command("db", "upgrade", "--config", CONFIG, env=env)[0] == 0
        db = base / "var" / "quant_scalper.sqlite3"
        if os.geteuid() == 0:  # the journal is nobody's own file, and still read-only
            for path in (base / "var", db):
                os.chown(path, NOBODY, NOBODY)
        db.chmod(0o444)
        code, errors = run_command(*RUN, env=env, as_nobody=True)
    assert code == EXIT_USAGE
    assert len(errors) == 1
    assert errors[0].startswith(f"error: database file {db} is not writable by this user")


def test_an_observability_port_in_use_is_not_called_a_database_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, errors = run_command(*RUN, env=_env(tmp_path, QS_OBSERVABILITY__PORT=str(port)))
    assert code == EXIT_UNAVAILABLE
    assert errors == [
        f"error: observability.port {port}: cannot serve /healthz on 127.0.0.1:{port}: the port "
        "is in use (another daemon, or another program)"
    ]


def test_a_telegram_webhook_port_in_use_is_not_called_a_database_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _env(
            tmp_path,
            QS_TELEGRAM__ENABLED="true",
            QS_TELEGRAM__TOKEN="123456:not-a-real-token",
            QS_TELEGRAM__WEBHOOK_URL="https://bot.example.invalid/hook",
            QS_TELEGRAM__WEBHOOK_PORT=str(port),
        )
        code, errors = run_command(*RUN, env=env)
    assert code == EXIT_UNAVAILABLE
    assert len(errors) == 1
    assert errors[0].startswith(
        f"error: telegram.webhook_port {port}: cannot listen on 127.0.0.1:{port}: "
    )
    assert "database" not in errors[0]
