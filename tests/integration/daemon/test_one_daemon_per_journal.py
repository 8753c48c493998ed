"""One daemon per journal, enforced by the database: a second daemon on the same journal (from
another working directory, so another ``data_dir``) refuses to start, in one line and exit code 5,
on SQLite and on PostgreSQL, on both venues; and a running daemon notices when another one took its
journal."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from adapters.simulated.clock import ManualClock
from adapters.sql import migrate, schema
from adapters.sql.database import create_engine, database_url
from adapters.sql.ownership import JournalInUseError, JournalOwnership
from application.services import EventInbox
from entrypoints.cli import EXIT_IN_USE
from entrypoints.container.runtime import gated_journal
from entrypoints.startup import StartupError
from tests.support.postgres import create_database, drop_database
from tests.support.tws import TwsGateway
from tests.support.venues import DaemonVenue

START_API = 71
"""The client's startApi message id (TWS API)."""

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config" / "sample.yaml"


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One journal database, named by an explicit URL that both daemons are given."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shared' / 'journal.sqlite3'}"
        migrate.upgrade(database_url(url, tmp_path))
        yield url
        return
    server = request.getfixturevalue("postgres_url")
    url = create_database(server, "qs_owner")
    migrate.upgrade(url)
    try:
        yield url
    finally:
        drop_database(server, url)


def _daemon(url: str, home: Path, venue: DaemonVenue) -> subprocess.Popen[str]:
    """``quant-scalper run`` in its own working directory (its data_dir is the relative default)."""
    home.mkdir(parents=True)
    env = {
        **os.environ,
        **venue.command_env(),
        "QS_DATABASE__URL": url,
        "QS_LOGGING__LEVEL": "INFO",
        "QS_DAEMON__FEED": str(ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"),
    }
    env.pop("QS_DATABASE__DATA_DIR", None)
    return subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli", "run", "--config", str(CONFIG), "--speed", "600"],
        cwd=home,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def _bars(url: str) -> int:
    engine = create_engine(database_url(url, Path(".")))
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(schema.bars)) or 0)
    except Exception:
        return 0
    finally:
        await engine.dispose()


def _start_apis(gateway: TwsGateway) -> int:
    """How many clients have asked IB Gateway to start its API (connected as a client id)."""
    return sum(1 for msg_id, _ in gateway.received if msg_id == START_API)


async def test_a_second_daemon_on_the_same_journal_refuses_in_one_line(
    venue: DaemonVenue, journal_url: str, tmp_path: Path
) -> None:
    """On both venues (issue 13); on IB Gateway the second daemon is refused before it connects:
    it never reconciles (nor cancels) the first one's orders."""
    gateway = venue.gateway
    first = _daemon(journal_url, tmp_path / "one", venue)
    try:
        async with asyncio.timeout(120):
            # Running, past its start-up: the simulated feed's bars recorded; IB's bars asked for.
            while (
                not gateway.realtime_subscriptions
                if gateway is not None
                else await _bars(journal_url) < 20
            ):
                assert first.poll() is None, first.communicate()[1]
                await asyncio.sleep(0.1)
        second = _daemon(journal_url, tmp_path / "two", venue)
        _, err = await asyncio.to_thread(second.communicate, timeout=120)
        assert second.returncode == EXIT_IN_USE, err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, err
        assert errors[0].startswith("error: another quant-scalper daemon"), errors
        assert "Traceback" not in err
        assert not (tmp_path / "two" / "var" / "journal.spool").exists()
        assert first.poll() is None, "the first daemon trades on"
        if gateway is not None:
            assert _start_apis(gateway) == 1  # the first daemon's only
            assert gateway.connections == 1
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(first.communicate, timeout=120)
    assert first.returncode == 0, err
    # The daemon says where its data directory is, as an absolute path.
    assert f"data_dir {(tmp_path / 'one' / 'var').resolve()}" in err


async def test_a_running_daemon_notices_its_journal_taken_while_its_lock_was_lost(
    postgres_url: str,
) -> None:
    url = create_database(postgres_url, "qs_owner")
    sa_url = database_url(url, Path("."))
    first, second = JournalOwnership(sa_url), JournalOwnership(sa_url)
    try:
        await first.acquire()
        assert await first.check() is None
        with pytest.raises(JournalInUseError):
            await second.acquire()
        # The server ends the first one's session (a restart, a network cut): its lock goes ...
        libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(libpq, autocommit=True) as conn:
            ended = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            ).fetchall()
        assert ended == [(True,)]
        await second.acquire()  # ... and another daemon takes the journal meanwhile.
        problem = await first.check()
        assert problem is not None
        assert "another daemon took the journal" in problem
        await second.release()
        assert await first.check() is None  # free again: the first takes it back
        with pytest.raises(JournalInUseError):
            await second.acquire()
    finally:
        await first.release()
        await second.release()
        drop_database(postgres_url, url)


def test_sqlite_ownership_is_a_lock_beside_the_database_file(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite3"
    sqlite3.connect(db).close()

    async def both() -> None:
        url = database_url(f"sqlite:///{db}", tmp_path)
        first, second = JournalOwnership(url), JournalOwnership(url)
        await first.acquire()
        try:
            with pytest.raises(JournalInUseError, match=f"pid {os.getpid()}"):
                await second.acquire()
        finally:
            await first.release()
        await second.acquire()
        await second.release()

    asyncio.run(both())
    assert (tmp_path / "journal.sqlite3-owner").stat().st_mode & 0o777 == 0o600


async def test_a_second_daemon_on_the_same_data_dir_is_refused_with_the_same_code(
    tmp_path: Path,
) -> None:
    """Two journals (two databases) but one data_dir: the spool there is the first one's."""
    clock = ManualClock()
    engines = [create_engine(database_url(None, tmp_path / name)) for name in ("a", "b")]
    try:
        async with gated_journal(engines[0], tmp_path / "shared", EventInbox(), clock):
            with pytest.raises(StartupError) as caught:
                async with gated_journal(engines[1], tmp_path / "shared", EventInbox(), clock):
                    pass
        assert caught.value.exit_code == EXIT_IN_USE
        assert "in use by another journal" in str(caught.value)
    finally:
        for engine in engines:
            await engine.dispose()
