"""The daily summary alert: a losing session is a warning, a winning one information."""

from __future__ import annotations

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
from domain.commands import AlertKind, RoundTripRecord, Severity
from domain.position import ExitReason, RoundTrip
from domain.values import Side

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
