"""The journal through a PostgreSQL outage: records spool to local disk, nothing blocks, and when the
database returns every record is there exactly once, as in a run without the outage."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql import migrate, schema
from adapters.sql.database import create_engine
from adapters.sql.journal import SqlJournal
from adapters.sql.queries import SqlJournalReader
from adapters.sql.serialization import RecordedBar, item_to_json
from adapters.sql.spool import Spool, SpoolInUseError
from adapters.sql.state_store import SqlStateStore, StoreUnavailableError
from application.queries import RECORD_KINDS
from domain.calendar import ContinuousCalendar
from domain.commands import JournalRecord, OperatorRecord, PlaceBracket
from domain.engine import EngineSnapshot
from domain.events import OrderFilled
from domain.values import Action
from entrypoints.replay import load_series, run_replay
from entrypoints.settings import load_settings
from tests.support.builders import T0, bar, engine, fill, z
from tests.support.postgres import (
    LocalCluster,
    PostgresServer,
    TcpProxy,
    create_database,
    drop_database,
)

ROOT = Path(__file__).resolve().parents[3]
Item = JournalRecord | RecordedBar


class Opener(Protocol):
    def __call__(self, url: str, spool: str | None = None) -> Awaitable[Run]: ...


@pytest.fixture(scope="module")
def stream() -> list[Item]:
    """What a session journals: the sample replay's records, with recorded bars interleaved."""
    settings = load_settings(ROOT / "config" / "sample.yaml")
    series = load_series(settings, ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv")
    records = asyncio.run(run_replay(settings, series)).journal.records
    bars = [RecordedBar("ESZ3", b) for b in series.bars()[: len(records)]]
    items: list[Item] = []
    for r, b in zip(records, bars, strict=False):
        items += [b, r]
    return items


@pytest.fixture
def database(postgres_url: str) -> Iterator[Callable[[], str]]:
    """Makes fresh, migrated databases on the session's server; drops them after the test."""
    made: list[str] = []

    def make() -> str:
        url = create_database(postgres_url, "qs_spool")
        migrate.upgrade(url)
        made.append(url)
        return url

    yield make
    for url in made:
        drop_database(postgres_url, url)


@dataclass
class Run:
    journal: SqlJournal
    engine: AsyncEngine
    availability: list[bool] = field(default_factory=list)


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[Opener]:
    runs: list[Run] = []

    async def open_(url: str, spool: str | None = None) -> Run:
        engine = create_engine(url, connect_timeout_s=2)
        availability: list[bool] = []
        journal = SqlJournal(
            engine,
            Spool(tmp_path / (spool or f"journal-{len(runs)}.spool")),
            batch_size=200,
            retry_interval_s=0.02,
            max_retry_interval_s=0.2,
            ping_interval_s=0.2,
            on_availability=availability.append,
        )
        await journal.start()
        run = Run(journal, engine, availability)
        runs.append(run)
        return run

    yield open_
    for run in runs:
        await run.journal.close()
        await run.engine.dispose()


async def _close(run: Run) -> None:
    await run.journal.close()
    await run.engine.dispose()


def _append(journal: SqlJournal, items: list[Item]) -> None:
    for item in items:
        if isinstance(item, RecordedBar):
            journal.append_bar(item.contract, item.bar)
        else:
            journal.append(item)


async def _eventually(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)


async def _contents(url: str) -> tuple[dict[str, int], dict[str, list[JournalRecord]], int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            counts = {
                t.name: int(await conn.scalar(select(func.count()).select_from(t)) or 0)
                for t in schema.JOURNAL_TABLES
            }
        reader = SqlJournalReader(engine)
        records = {k.__name__: list(await reader.records_of(k)) for k in RECORD_KINDS}
        n_bars = len(await reader.bars("ESZ3"))
    finally:
        await engine.dispose()
    return counts, records, n_bars


async def _uninterrupted(
    url: str, stream: list[Item], open_: Opener
) -> tuple[dict[str, int], dict[str, list[JournalRecord]], int]:
    run = await open_(url)
    _append(run.journal, stream)
    await run.journal.flush()
    await _close(run)
    return await _contents(url)


@dataclass
class Outage:
    """Makes the database unreachable and reachable again; ``url`` is how the journal reaches it."""

    url: str
    cut: Callable[[], Awaitable[None]]
    restore: Callable[[], Awaitable[None]]


@pytest.fixture
def stoppable_server(postgres_server: PostgresServer) -> Iterator[PostgresServer]:
    """A server that ``pg_ctl`` may stop: the session's own throwaway cluster, else one just for this
    test (errors, rather than skips, if this machine has no PostgreSQL binaries)."""
    if postgres_server.cluster is not None:
        yield postgres_server
        return
    cluster = LocalCluster().up()
    try:
        yield PostgresServer(cluster.url, "local cluster", cluster.started_in_s, cluster)
    finally:
        cluster.destroy()


@pytest.fixture(params=["network drops", "server stops"])
async def outage(
    request: pytest.FixtureRequest, database: Callable[[], str]
) -> AsyncIterator[Outage]:
    if request.param == "network drops":
        url = database()
        parsed = make_url(url)
        proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
        await proxy.restore()
        try:
            yield Outage(proxy.url_for(url), proxy.cut, proxy.restore)
        finally:
            await proxy.cut()
        return
    server: PostgresServer = request.getfixturevalue("stoppable_server")
    assert server.cluster is not None
    url = create_database(server.url, "qs_stop")
    migrate.upgrade(url)
    cluster = server.cluster
    try:
        yield Outage(
            url, lambda: asyncio.to_thread(cluster.stop), lambda: asyncio.to_thread(cluster.start)
        )
    finally:
        if not await asyncio.to_thread(_reachable, cluster.port):
            await asyncio.to_thread(cluster.start)
        drop_database(server.url, url)


def _reachable(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


async def test_an_outage_spools_and_the_database_ends_with_every_record_once(
    outage: Outage,
    database: Callable[[], str],
    stream: list[Item],
    opened: Opener,
    tmp_path: Path,
) -> None:
    reference = await _uninterrupted(database(), stream, opened)
    third = len(stream) // 3

    run = await opened(outage.url, "outage.spool")
    journal = run.journal
    _append(journal, stream[:third])
    await journal.flush()
    assert journal.backlog == 0
    assert journal.available

    await outage.cut()
    _append(journal, stream[third : 2 * third])
    # Nothing waits on the database: flush returns once the records are fsync'd in the spool.
    await asyncio.wait_for(journal.flush(), 10)
    assert not journal.available
    assert run.availability == [False]
    assert journal.backlog == third
    assert (tmp_path / "outage.spool").stat().st_size > 0
    _append(journal, stream[2 * third :])  # more while it is down, the writer retrying meanwhile
    await asyncio.wait_for(journal.flush(), 10)
    assert journal.backlog == len(stream) - third

    await outage.restore()
    await _eventually(lambda: journal.available and journal.backlog == 0)
    assert run.availability == [False, True]
    assert not (tmp_path / "outage.spool").exists()
    assert journal.rejected == 0
    assert await _contents(outage.url) == reference
    counts, _, _ = reference
    assert sum(counts.values()) == len(stream)


async def test_a_spool_left_by_an_earlier_run_is_replayed_first(
    database: Callable[[], str],
    stream: list[Item],
    opened: Opener,
    tmp_path: Path,
) -> None:
    url = database()
    reference = await _uninterrupted(database(), stream, opened)
    half = len(stream) // 2
    # The earlier run: half its records reached the database, the rest only the spool, and its
    # last spool write was cut short by the crash.
    first = await opened(url, "journal.spool")
    _append(first.journal, stream[:half])
    await first.journal.flush()
    await _close(first)  # the crash: its lock on the spool goes with the process
    lines = [item_to_json(i) for i in stream[half:]]
    Spool(tmp_path / "journal.spool").append(lines[:-1])
    with (tmp_path / "journal.spool").open("a") as f:
        f.write(lines[-1][:20])

    run = await opened(url, "journal.spool")  # picks up the spool
    _append(run.journal, [stream[-1]])  # the torn record, journaled again by the new run
    await run.journal.flush()
    assert run.journal.backlog == 0
    assert await _contents(url) == reference


async def test_a_record_the_database_refuses_is_set_aside_and_the_rest_written(
    database: Callable[[], str], opened: Opener, tmp_path: Path
) -> None:
    url = database()
    run = await opened(url, "journal.spool")
    good = [OperatorRecord("pause", "op", T0, "paused"), OperatorRecord("resume", "op", T0, "ok")]
    bad = OperatorRecord("stop", "op", T0, "PostgreSQL text cannot hold a NUL: \x00")
    run.journal.append(good[0])
    run.journal.append(bad)
    run.journal.append(good[1])
    run.journal.append_bar("MESH5", bar(T0))
    await run.journal.flush()
    assert run.journal.rejected == 1
    assert run.journal.available
    _, records, n_bars = await _contents(url)
    assert records["OperatorRecord"] == good
    assert n_bars == 0  # the bar is another contract
    text = (tmp_path / "journal.spool.rejected").read_text()
    rejected = [json.loads(line) for line in text.splitlines()]
    assert len(rejected) == 1
    assert "NUL" in rejected[0]["reason"]
    assert '"stop"' in rejected[0]["line"]


def _mid_trade_snapshot() -> EngineSnapshot:
    eng = engine(calendar=ContinuousCalendar())
    placed = [c for c in eng.on_bar(bar(T0), z(-2.5)) if isinstance(c, PlaceBracket)]
    eng.handle(OrderFilled(fill(placed[0].entry_key, Action.BUY, "5000.25")))
    return eng.snapshot()


async def test_snapshots_survive_an_outage_through_the_fallback_file(
    database: Callable[[], str], tmp_path: Path
) -> None:
    url = database()
    parsed = make_url(url)
    proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    await proxy.restore()
    engine_ = create_engine(proxy.url_for(url), connect_timeout_s=2)
    fallback = tmp_path / "snapshot.json"
    store = SqlStateStore(engine_, fallback=fallback, keep=2)
    try:
        first = _mid_trade_snapshot()
        await store.save(first)
        await proxy.cut()
        newer = replace(first, key_seq=99)
        await store.save(newer)
        assert fallback.exists()
        assert await store.load_resume() == (newer, None)  # from the file: the database is away
        await proxy.restore()
        assert await store.load_resume() == (newer, None)  # the file is newer than the database's
        for n in (100, 101, 102):
            await store.save(replace(newer, key_seq=n))
        assert not fallback.exists()
        assert await store.count() == 2
        assert await store.load_resume() == (replace(newer, key_seq=102), None)
    finally:
        await proxy.cut()
        await engine_.dispose()


async def test_snapshots_saved_at_once_during_an_outage_all_land_in_the_fallback_file(
    database: Callable[[], str], tmp_path: Path
) -> None:
    # The live daemon saves at a checkpoint and after a fill; both may write the file at once.
    url = database()
    parsed = make_url(url)
    proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    engine_ = create_engine(proxy.url_for(url), connect_timeout_s=2)
    fallback = tmp_path / "snapshot.json"
    store = SqlStateStore(engine_, fallback=fallback)
    base = _mid_trade_snapshot()
    try:
        for round_ in range(10):
            saves = [store.save(replace(base, key_seq=round_ * 10 + i)) for i in range(4)]
            await asyncio.gather(*saves)
        loaded = await store.load_resume()
        assert loaded is not None
        assert loaded[0].key_seq in range(90, 94)
        assert [p.name for p in tmp_path.iterdir()] == ["snapshot.json"]  # no temp file left
    finally:
        await engine_.dispose()


async def test_without_a_fallback_file_a_snapshot_in_an_outage_is_an_error(
    database: Callable[[], str],
) -> None:
    url = database()
    parsed = make_url(url)
    proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    engine_ = create_engine(proxy.url_for(url), connect_timeout_s=2)
    try:
        with pytest.raises(StoreUnavailableError, match="cannot save the engine snapshot"):
            await SqlStateStore(engine_).save(_mid_trade_snapshot())
        with pytest.raises(StoreUnavailableError, match="cannot load the engine snapshot"):
            await SqlStateStore(engine_).load_resume()
    finally:
        await engine_.dispose()


async def test_a_second_journal_on_the_same_spool_is_refused(
    database: Callable[[], str], opened: Opener
) -> None:
    url = database()
    await opened(url, "journal.spool")
    with pytest.raises(SpoolInUseError, match="in use by another journal"):
        await opened(url, "journal.spool")


async def test_a_journal_started_while_the_database_is_down_says_so_and_catches_up(
    database: Callable[[], str], opened: Opener, stream: list[Item]
) -> None:
    url = database()
    parsed = make_url(url)
    proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    run = await opened(proxy.url_for(url), "journal.spool")
    await _eventually(lambda: not run.journal.available)
    assert run.availability == [False]
    _append(run.journal, stream[:100])
    await asyncio.wait_for(run.journal.flush(), 10)
    assert run.journal.backlog == 100
    await proxy.restore()
    try:
        await _eventually(lambda: run.journal.available and run.journal.backlog == 0)
        counts, _, _ = await _contents(url)
        assert sum(counts.values()) == 100
    finally:
        await proxy.cut()


async def test_an_idle_journal_notices_an_outage_and_the_return_by_itself(
    database: Callable[[], str], opened: Opener
) -> None:
    url = database()
    parsed = make_url(url)
    proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    await proxy.restore()
    run = await opened(proxy.url_for(url), "journal.spool")
    try:
        await proxy.cut()
        await _eventually(lambda: not run.journal.available)
        await proxy.restore()
        await _eventually(lambda: run.journal.available)
        assert run.availability == [False, True]
    finally:
        await proxy.cut()


async def test_spooled_lines_that_cannot_be_written_are_set_aside_in_the_replay(
    database: Callable[[], str], opened: Opener, tmp_path: Path
) -> None:
    url = database()
    good = [OperatorRecord("pause", "op", T0, "paused"), OperatorRecord("resume", "op", T0, "ok")]
    bad = OperatorRecord("stop", "op", T0, "NUL: \x00")
    Spool(tmp_path / "journal.spool").append(
        [item_to_json(good[0]), "{not json", item_to_json(bad), item_to_json(good[1])]
    )
    run = await opened(url, "journal.spool")
    await _eventually(lambda: run.journal.backlog == 0)
    assert run.journal.rejected == 2
    _, records, _ = await _contents(url)
    assert records["OperatorRecord"] == good
    reasons = [
        json.loads(line)["reason"]
        for line in (tmp_path / "journal.spool.rejected").read_text().splitlines()
    ]
    assert reasons[0].startswith("not JSON")
    assert "NUL" in reasons[1]
