"""The daemon's start-up through the installed command, on both venues (issue 13): a logging
directory it cannot use, a read-only SQLite journal, a store without the schema, an observability or
webhook port in use are each one line naming the real reason and a documented exit code, never a
traceback or another component's error (issue 12 item 7).

The order is the documented one (``entrypoints/daemon.py``): the logging directory and the store are
checked before the venue is touched, so IB Gateway is never asked anything then; the endpoints are
served once the venue is connected, and a port in use then leaves no connection and no order behind.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
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
from tests.support.venues import DaemonVenue

pytestmark = pytest.mark.timeout(300)

CONFIG = str(ROOT / "config" / "sample.yaml")
RUN = ("run", "--config", CONFIG, "--exit-at-end", "--speed", "max")


def _env(base: Path, venue: DaemonVenue, **settings: str) -> dict[str, str]:
    return nobody_env(
        base,
        QS_DATABASE__DATA_DIR=str(base / "var"),
        QS_LOGGING__DIR=str(base / "logs"),
        **venue.command_env(),
        **settings,
    )


async def _run(env: dict[str, str], *, as_nobody: bool = False) -> tuple[int, list[str]]:
    """The command in a thread: the TWS test gateway answers in this event loop meanwhile."""
    return await asyncio.to_thread(run_command, *RUN, env=env, as_nobody=as_nobody)


def _venue_untouched(venue: DaemonVenue) -> None:
    """The error came before the venue: IB Gateway was never asked anything."""
    if venue.gateway is not None:
        assert venue.gateway.received == []


async def test_a_file_where_the_logging_directory_belongs(
    venue: DaemonVenue, tmp_path: Path
) -> None:
    (tmp_path / "logs").write_text("not a directory")
    code, errors = await _run(_env(tmp_path, venue))
    _venue_untouched(venue)
    assert code == EXIT_USAGE
    assert errors == [
        f"error: logging.dir {tmp_path / 'logs'}: a file is in the way (a directory is needed "
        "for the logs)"
    ]


async def test_a_logging_directory_this_user_cannot_write(venue: DaemonVenue) -> None:
    with shared_directory() as base:
        (base / "logs").mkdir(mode=0o555)
        (base / "logs").chmod(0o555)
        code, errors = await _run(_env(base, venue), as_nobody=True)
    _venue_untouched(venue)
    assert code == EXIT_USAGE
    assert len(errors) == 1
    assert errors[0].startswith(f"error: logging.dir {base / 'logs'}: not writable by this user")


async def test_a_read_only_sqlite_journal(venue: DaemonVenue) -> None:
    with shared_directory() as base:
        env = _env(base, venue)
        upgrade = ("db", "upgrade", "--config", CONFIG)
        assert (await asyncio.to_thread(run_command, *upgrade, env=env))[0] == 0
        db = base / "var" / "quant_scalper.sqlite3"
        if os.geteuid() == 0:  # the journal is nobody's own file, and still read-only
            for path in (base / "var", db):
                os.chown(path, NOBODY, NOBODY)
        db.chmod(0o444)
        code, errors = await _run(env, as_nobody=True)
    _venue_untouched(venue)
    assert code == EXIT_USAGE
    assert len(errors) == 1
    assert errors[0].startswith(f"error: database file {db} is not writable by this user")


async def test_an_observability_port_in_use_is_not_called_a_database_error(
    venue: DaemonVenue, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, errors = await _run(_env(tmp_path, venue, QS_OBSERVABILITY__PORT=str(port)))
    _venue_untouched(venue)  # found before the daemon connects to the broker
    assert code == EXIT_UNAVAILABLE
    assert errors == [
        f"error: observability.port {port}: cannot serve /healthz on 127.0.0.1:{port}: the port "
        "is in use (another daemon, or another program)"
    ]


async def test_a_telegram_webhook_port_in_use_is_not_called_a_database_error(
    venue: DaemonVenue, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _env(
            tmp_path,
            venue,
            QS_TELEGRAM__ENABLED="true",
            QS_TELEGRAM__TOKEN="123456:not-a-real-token",
            QS_TELEGRAM__WEBHOOK_URL="https://bot.example.invalid/hook",
            QS_TELEGRAM__WEBHOOK_PORT=str(port),
        )
        code, errors = await _run(env)
    _venue_untouched(venue)  # found before the daemon connects to the broker
    assert code == EXIT_UNAVAILABLE
    assert len(errors) == 1
    assert errors[0].startswith(
        f"error: telegram.webhook_port {port}: cannot listen on 127.0.0.1:{port}: "
    )
    assert "database" not in errors[0]


async def test_a_store_without_the_schema_is_refused_with_the_command_to_run(
    venue: DaemonVenue, tmp_path: Path
) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    sqlite3.connect(data_dir / "quant_scalper.sqlite3").close()  # exists, but no schema
    code, errors = await _run(_env(tmp_path, venue))
    _venue_untouched(venue)
    assert code == EXIT_USAGE
    assert len(errors) == 1
    assert "has no schema" in errors[0]
    assert f"quant-scalper db upgrade --config {CONFIG}" in errors[0]
