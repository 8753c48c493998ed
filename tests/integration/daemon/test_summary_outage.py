"""The daily summary across a PostgreSQL outage at the trade-date change: owed, not fatal, and sent
once the database answers again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from adapters.simulated.clock import ManualClock
from adapters.simulated.notifier import RecordingNotifier
from adapters.sql import migrate
from adapters.sql.database import create_engine
from adapters.sql.journal import SqlJournal
from adapters.sql.queries import SqlJournalReader
from adapters.sql.spool import Spool
from application.daemon import SessionSummaries
from domain.commands import AlertKind
from tests.support.postgres import TcpProxy, create_database, drop_database

pytestmark = pytest.mark.timeout(300)

MONDAY_NOON = datetime(2025, 3, 3, 17, 0, tzinfo=UTC)  # trade date 2025-03-03
MONDAY_EVENING = datetime(2025, 3, 3, 23, 5, tzinfo=UTC)  # 18:05 New York: trade date 2025-03-04


async def test_the_summary_waits_out_an_outage_at_the_date_change(
    postgres_url: str, tmp_path: Path
) -> None:
    url = create_database(postgres_url, "qs_summary")
    migrate.upgrade(url)
    parsed = make_url(url)
    proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    await proxy.restore()
    engine = create_engine(proxy.url_for(url), connect_timeout_s=2)
    journal = SqlJournal(engine, Spool(tmp_path / "journal.spool"), retry_interval_s=0.05)
    await journal.start()
    alerts = RecordingNotifier()
    clock = ManualClock()
    summaries = SessionSummaries(
        SqlJournalReader(engine), alerts, clock, journal, retry_after_s=0.0, read_timeout_s=5.0
    )
    try:
        await summaries.at(int(MONDAY_NOON.timestamp()))
        await proxy.cut()
        # The session closes while PostgreSQL is away: nothing raises into the trading loop.
        await summaries.at(int(MONDAY_EVENING.timestamp()))
        assert alerts.of_kind(AlertKind.DAILY_SUMMARY) == []
        await summaries.at(int((MONDAY_EVENING + timedelta(minutes=5)).timestamp()))
        assert alerts.of_kind(AlertKind.DAILY_SUMMARY) == []
        await proxy.restore()
        later = MONDAY_EVENING + timedelta(minutes=10)
        async with asyncio.timeout(60):
            while not alerts.of_kind(AlertKind.DAILY_SUMMARY):
                later += timedelta(minutes=5)
                await summaries.at(int(later.timestamp()))
                await asyncio.sleep(0.05)
        [summary] = alerts.of_kind(AlertKind.DAILY_SUMMARY)
        assert summary.text.startswith("session 2025-03-03 closed: 0 trades")
    finally:
        await proxy.cut()
        await journal.close(timeout=10)
        await engine.dispose()
        drop_database(postgres_url, url)
