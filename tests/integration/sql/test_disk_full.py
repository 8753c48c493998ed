"""The journal on a full disk (a real 2 MB tmpfs holding the SQLite file and the spool): writes, not
pings, decide that it is available; a full disk is its own state; flush and close have deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.sql import migrate, schema
from adapters.sql.database import create_engine, database_url
from adapters.sql.journal import DISK_FULL, SqlJournal
from adapters.sql.spool import Spool
from tests.support.builders import T0, bar
from tests.support.small_disk import fill, small_disk

pytestmark = pytest.mark.timeout(300)


async def _eventually(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
async def disk(tmp_path: Path) -> AsyncIterator[Path]:
    with small_disk(tmp_path / "disk") as mounted:
        yield mounted


async def test_a_full_disk_gates_until_a_write_succeeds_and_flush_and_close_end(
    disk: Path,
) -> None:
    url = database_url(None, disk)
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(url, connect_timeout_s=2)
    availability: list[bool] = []
    problems: list[str | None] = []
    journal = SqlJournal(
        engine,
        Spool(disk / "journal.spool"),
        batch_size=50,
        retry_interval_s=0.02,
        max_retry_interval_s=0.1,
        ping_interval_s=0.05,
        on_availability=availability.append,
        on_problem=problems.append,
    )
    await journal.start()
    try:
        bars = [bar(T0 + timedelta(seconds=5 * i), 5000.0, seconds=5) for i in range(4000)]
        for b in bars[:10]:
            journal.append_bar("MESZ5", b)
        assert await journal.flush_within(30)
        filler = fill(disk)
        sent = 10
        # Bars keep coming, as they do in the daemon, until the database and the spool refuse.
        while "the spool" not in (journal.problem or "") and sent < len(bars):
            journal.append_bar("MESZ5", bars[sent])
            sent += 1
            await asyncio.sleep(0.005)
        assert journal.problem is not None
        assert journal.problem.startswith(DISK_FULL), problems
        assert problems[-1] is not None
        assert problems[-1].startswith(DISK_FULL)
        more = fill(disk, "filler-2")  # whatever SQLite gave back on the way
        # Nothing durable can be promised: flush says so at once instead of hanging the caller.
        journal.append_bar("MESZ5", bars[sent])
        sent += 1
        async with asyncio.timeout(5):
            assert await journal.flush_within(60) is False
        # The database answers a SELECT 1 all along; only a write may reopen the journal (a ping
        # did, at every try: the gate flipped 59 times in 30 s).
        tried = journal.recoveries_tried
        await _eventually(lambda: journal.recoveries_tried >= tried + 5)
        assert availability.count(True) == 0, availability
        more.unlink()
        filler.unlink()
        await _eventually(lambda: journal.available and journal.backlog == 0)
        assert availability == [False, True]
        assert problems[-1] is None
        assert await journal.flush_within(30)
    finally:
        async with asyncio.timeout(30):
            await journal.close(timeout=10)
    async with engine.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(schema.bars))
    await engine.dispose()
    assert count == sent


async def test_close_on_a_full_disk_gives_up_at_its_deadline(disk: Path) -> None:
    url = database_url(None, disk)
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(url, connect_timeout_s=2)
    journal = SqlJournal(engine, Spool(disk / "journal.spool"), retry_interval_s=0.02)
    await journal.start()
    fill(disk)
    for i in range(2000):
        journal.append_bar("MESZ5", bar(T0 + timedelta(seconds=5 * i), 5000.0, seconds=5))
    await _eventually(lambda: journal.problem is not None)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(60):
        await journal.close(timeout=2)
    assert loop.time() - started < 30
    await engine.dispose()
