"""``SqlJournal.close`` has a deadline, and what a hung database did not take by then is not lost:
it goes to the spool and lands at the next start."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from adapters.sql import migrate, schema
from adapters.sql.database import create_engine
from adapters.sql.journal import SqlJournal
from adapters.sql.spool import Spool
from tests.support.builders import T0, bar
from tests.support.postgres import create_database, drop_database


async def test_close_gives_up_on_a_hung_database_and_spools_the_rest(
    postgres_url: str, tmp_path: Path
) -> None:
    url = create_database(postgres_url, "qs_close")
    migrate.upgrade(url)
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    engine = create_engine(url)
    spool = tmp_path / "journal.spool"
    bars = [bar(T0 + timedelta(seconds=5 * i), 5000.0, seconds=5) for i in range(100)]
    try:
        with psycopg.connect(libpq) as blocker:
            # Every insert into bars now waits for this transaction: the database hangs.
            blocker.execute("LOCK TABLE bars IN ACCESS EXCLUSIVE MODE")
            journal = SqlJournal(engine, Spool(spool), write_timeout_s=120)
            await journal.start()
            for b in bars:
                journal.append_bar("MESZ5", b)
            loop = asyncio.get_running_loop()
            started = loop.time()
            async with asyncio.timeout(60):
                await journal.close(timeout=1.0)
            assert loop.time() - started < 30
            blocker.rollback()
        assert len(spool.read_text().splitlines()) == len(bars)
        again = SqlJournal(engine, Spool(spool))
        await again.start()
        await again.flush()
        await again.close()
        async with engine.connect() as conn:
            count = await conn.scalar(select(func.count()).select_from(schema.bars))
        assert count == len(bars)
    finally:
        await engine.dispose()
        drop_database(postgres_url, url)
