"""Cross-check of our CME session table with pandas_market_calendars' "CME Globex Equity" schedule.

From trade date 2021-06-28 on, where pmc's template (17:00-16:00 CT, no halt) holds; before it pmc
ignores the 15:15-15:30 CT halt and the older closes, which our regimes model. Every known
disagreement is listed with its reason, so the test fails when either side changes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from domain.calendar import CmeGlobexEquityCalendar

ET = ZoneInfo("America/New_York")

# (trade date, ours, pmc, why they differ)
EXPECTED_DISAGREEMENTS = [
    (
        "2024-03-29",
        "closed",
        "03-28 18:00 -> 03-29 09:15",
        "pmc abbreviates every post-2022 Good Friday; 2024 was no payrolls day and equity futures "
        "were closed (ForexLive 2024-03-28)",
    ),
    (
        "2025-01-09",
        "01-08 18:00 -> 01-09 09:30",
        "01-08 18:00 -> 01-09 17:00",
        "ad hoc closure (National Day of Mourning, CME halt 08:30 CT) that pmc lacks",
    ),
    (
        "2025-04-18",
        "closed",
        "04-17 18:00 -> 04-18 09:15",
        "pmc abbreviates every post-2022 Good Friday; no payrolls that day, so closed (verify)",
    ),
    (
        "2027-03-26",
        "closed",
        "03-25 18:00 -> 03-26 09:15",
        "pmc abbreviates every post-2022 Good Friday; payrolls due 2027-04-02 (verify)",
    ),
]


def _show(bounds: tuple[datetime, datetime] | None) -> str:
    if bounds is None:
        return "closed"
    open_et, close_et = (b.astimezone(ET) for b in bounds)
    return f"{open_et:%m-%d %H:%M} -> {close_et:%m-%d %H:%M}"


@pytest.mark.dev
def test_session_table_matches_pmc_except_for_listed_days() -> None:
    mcal = pytest.importorskip("pandas_market_calendars")
    ours_cal = CmeGlobexEquityCalendar()
    first, last = date(2021, 6, 28), ours_cal.sessions[-1].trade_date
    assert last == date(2027, 12, 31)

    schedule = mcal.get_calendar("CME Globex Equity").schedule(first.isoformat(), last.isoformat())
    theirs: dict[date, tuple[datetime, datetime]] = {
        day.date(): (
            row.market_open.to_pydatetime().astimezone(UTC),
            row.market_close.to_pydatetime().astimezone(UTC),
        )
        for day, row in schedule.iterrows()
    }
    # pmc keys a holiday morning by the holiday; we clear it under the next trade date (as CME
    # does), so compare segments by the ET day they close on.
    ours = {
        s.close.astimezone(ET).date(): (s.open, s.close)
        for s in ours_cal.sessions
        if s.trade_date >= first
    }
    assert len(ours) > 1600
    assert len(theirs) > 1600

    disagreements = [
        (day.isoformat(), _show(ours.get(day)), _show(theirs.get(day)))
        for day in sorted(ours.keys() | theirs.keys())
        if ours.get(day) != theirs.get(day)
    ]
    assert disagreements == [row[:3] for row in EXPECTED_DISAGREEMENTS]
