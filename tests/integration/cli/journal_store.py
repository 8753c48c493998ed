"""Journal stores for the command-line tests: the embedded SQLite file in a temporary data directory,
or a fresh database on the suite's real PostgreSQL; a way to journal records into either."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.sql import migrate
from adapters.sql.database import create_engine, database_url
from adapters.sql.journal import SqlJournal
from adapters.sql.spool import Spool
from domain.bar import Bar
from domain.commands import JournalRecord
from entrypoints.replay import ReplayResult, load_series, run_replay
from entrypoints.settings import load_settings
from tests.support.postgres import create_database, drop_database

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"
SAMPLE_CONFIG = ROOT / "config" / "sample.yaml"


def two_minute_bars(path: Path) -> Path:
    """The sample's bars that start on an even minute, written to ``path``: a strategy bar of 4
    minutes is built from them, one of 5 minutes is not (a domain rule a replay meets)."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    path.write_text(
        "\n".join([lines[0], *(row for row in lines[1:] if int(row[14:16]) % 2 == 0)]) + "\n",
        encoding="utf-8",
    )
    return path


@dataclass
class Store:
    """One journal store and a config file that names it."""

    kind: str
    url: str
    """The async SQLAlchemy URL the commands will resolve the config to."""
    config: Path
    data_dir: Path

    def upgrade(self) -> None:
        migrate.upgrade(self.url)

    def journal(
        self, records: Iterable[JournalRecord] = (), bars: Iterable[tuple[str, Bar]] = ()
    ) -> None:
        """Write through the real SqlJournal and wait until all of it is in the database."""
        asyncio.run(_journal(self.url, self.data_dir / "spool.jsonl", records, bars))


async def _journal(
    url: str, spool: Path, records: Iterable[JournalRecord], bars: Iterable[tuple[str, Bar]]
) -> None:
    engine = create_engine(url)
    journal = SqlJournal(engine, Spool(spool))
    try:
        await journal.start()
        for record in records:
            journal.append(record)
        for contract, bar in bars:
            journal.append_bar(contract, bar)
        await journal.flush()
        assert journal.available
        assert journal.backlog == 0
        assert journal.rejected == 0
    finally:
        await journal.close()
        await engine.dispose()


def write_config(path: Path, data_dir: Path, url: str | None, base: Path | None = None) -> Path:
    """A YAML config: ``base``'s settings (default: none) plus a database section."""
    text = base.read_text() if base is not None else ""
    text += f"\ndatabase:\n  data_dir: {data_dir}\n"
    if url is not None:
        text += f"  url: {url}\n"
    path.write_text(text)
    return path


def error_lines(err: str) -> list[str]:
    """What a command wrote to stderr, without the configuration's safety warnings."""
    return [line for line in err.splitlines() if line and not line.startswith("warning: ")]


def make_store(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, base: Path | None
) -> Iterator[Store]:
    """A store of ``kind`` configured by ``tmp_path/config.yaml`` (``base`` plus the database)."""
    data_dir = tmp_path / "var"
    if kind == "sqlite":
        config = write_config(tmp_path / "config.yaml", data_dir, None, base)
        yield Store(kind, database_url(None, data_dir), config, data_dir)
        return
    server = request.getfixturevalue("postgres_url")
    url = create_database(server, "qs_cli")
    try:
        config = write_config(tmp_path / "config.yaml", data_dir, url, base)
        yield Store(kind, url, config, data_dir)
    finally:
        drop_database(server, url)


@functools.cache
def sample_replay() -> ReplayResult:
    """The shipped sample replayed with config/sample.yaml (once per test process)."""
    settings = load_settings(SAMPLE_CONFIG, {})
    return asyncio.run(run_replay(settings, load_series(settings, SAMPLE)))
