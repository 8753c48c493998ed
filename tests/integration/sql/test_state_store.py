"""The SQL state store beyond the StateStore contract: how many snapshots it keeps, and the run log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql import migrate, schema
from adapters.sql.database import create_engine, database_url
from adapters.sql.state_store import SqlStateStore
from domain.engine import EngineState
from tests.support.builders import T0, engine
from tests.support.postgres import create_database, drop_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        url, server = database_url(None, tmp_path), None
    else:
        server = request.getfixturevalue("postgres_url")
        url = create_database(server, "qs_state")
    migrate.upgrade(url)
    eng = create_engine(url)
    try:
        yield eng
    finally:
        await eng.dispose()
        if server is not None:
            drop_database(server, url)


async def test_only_the_newest_snapshots_are_kept(db: AsyncEngine) -> None:
    store = SqlStateStore(db, keep=3)
    base = engine().snapshot()
    for n in range(7):
        await store.save(replace(base, key_seq=n, last_bar_end=1_741_100_400 + 300 * n))
    assert await store.count() == 3
    loaded = await store.load_resume()
    assert loaded is not None
    assert loaded[0].key_seq == 6
    async with db.connect() as conn:
        rows = (await conn.execute(select(schema.engine_snapshots))).mappings().all()
    assert [r["last_bar_end"] for r in rows] == [1_741_100_400 + 300 * n for n in (4, 5, 6)]
    assert {r["state"] for r in rows} == {EngineState.IDLE.value}


async def test_the_run_log_records_each_run_once_with_how_it_ended(db: AsyncEngine) -> None:
    store = SqlStateStore(db)
    await store.begin_session("run-1", "simulated", T0, "MESH5")
    await store.begin_session("run-1", "simulated", T0 + timedelta(seconds=1), "MESH5")
    await store.begin_session("run-2", "live", T0 + timedelta(hours=1), None)
    await store.end_session("run-1", T0 + timedelta(minutes=30), True, "SIGTERM: flattened")
    async with db.connect() as conn:
        rows = (
            (await conn.execute(select(schema.sessions).order_by(schema.sessions.c.id)))
            .mappings()
            .all()
        )
    assert [dict(r) for r in rows] == [
        {
            "id": "run-1",
            "mode": "simulated",
            "started_at": T0,
            "ended_at": T0 + timedelta(minutes=30),
            "contract": "MESH5",
            "clean_exit": True,
            "outcome": "SIGTERM: flattened",
        },
        {
            "id": "run-2",
            "mode": "live",
            "started_at": T0 + timedelta(hours=1),
            "ended_at": None,
            "contract": None,
            "clean_exit": None,
            "outcome": None,
        },
    ]
