"""The daily summary alert: a losing session is a warning, a winning one information; sent once
when the session timer and a bar both see the close."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import cast

import pytest

from adapters.simulated.clock import ManualClock
from adapters.simulated.notifier import RecordingNotifier
from adapters.simulated.repositories import InMemoryJournal
from adapters.sql.journal import SqlJournal
from adapters.sql.queries import SqlJournalReader
from application.daemon import SessionSummaries
from application.queries import SessionPnl
from domain.commands import AlertKind, RoundTripRecord, Severity
from domain.position import ExitReason, RoundTrip
from domain.values import Side
from tests.support.polling import eventually

EXIT = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)  # trade date 2025-03-04


class _Flushed:
    """The journal's flush, which the summary awaits first: here everything is written already."""

    async def flush_within(self, timeout: float | None) -> bool:
        return True


@pytest.mark.parametrize(
    ("ticks", "severity", "net"),
    [(-800, Severity.WARNING, "net -1,001.24 USD"), (8, Severity.INFO, "net +8.76 USD")],
)
async def test_a_losing_session_is_a_warning(ticks: int, severity: Severity, net: str) -> None:
    journal = InMemoryJournal()
    journal.append(
        RoundTripRecord(
            RoundTrip(
                1,
                Side.LONG,
                1,
                EXIT - timedelta(minutes=10),
                Decimal(5000),
                EXIT,
                Decimal(5000) + Decimal("0.25") * ticks,
                ExitReason.SIGNAL,
                ticks,
                Decimal("1.25") * ticks,
                Decimal("1.24"),
            )
        )
    )
    notifier = RecordingNotifier()
    summaries = SessionSummaries(
        cast(SqlJournalReader, journal), notifier, ManualClock(EXIT), cast(SqlJournal, _Flushed())
    )
    await summaries.send(date(2025, 3, 4))
    [alert] = notifier.of_kind(AlertKind.DAILY_SUMMARY)
    assert alert.severity is severity
    assert net in alert.text


class _SlowReader:
    """The journal's reader on a database under load: a session's read waits until released."""

    def __init__(self, journal: InMemoryJournal) -> None:
        self._journal = journal
        self.release = asyncio.Event()
        self.reads = 0

    async def session_pnl(self, trade_date: date) -> SessionPnl:
        self.reads += 1
        await self.release.wait()
        return await self._journal.session_pnl(trade_date)


async def test_a_bar_while_the_close_s_summary_is_read_neither_fails_nor_sends_it_twice() -> None:
    # At 17:00 the session timer sends the summary (its read takes a while) and the bar that ends
    # the session reaches its checkpoint meanwhile: the checkpoint must neither wait for the read
    # nor send the summary a second time (two senders popped one owed date twice: IndexError in the
    # trading loop, and the daemon stopped at the close).
    reader = _SlowReader(InMemoryJournal())
    notifier = RecordingNotifier()
    summaries = SessionSummaries(
        cast(SqlJournalReader, reader), notifier, ManualClock(EXIT), cast(SqlJournal, _Flushed())
    )
    close = int(EXIT.timestamp())
    await summaries.at(close - 60)  # the session's bars, trade date 2025-03-04
    timer = asyncio.create_task(summaries.send(date(2025, 3, 4)))
    await eventually(lambda: reader.reads == 1, "the timer's read")
    bar = asyncio.create_task(summaries.at(close))  # the same trade date: nothing new owed
    await eventually(lambda: bar.done() or reader.reads > 1, "the bar's checkpoint")
    assert bar.done()  # it did not wait for the read under way
    reader.release.set()
    await asyncio.gather(timer, bar)
    assert reader.reads == 1
    assert len(notifier.of_kind(AlertKind.DAILY_SUMMARY)) == 1
