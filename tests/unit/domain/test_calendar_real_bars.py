"""The CME calendar against real recorded bars: no real bar may fall where the calendar says the
market was closed, and the silences the recordings show at halts are closures in the calendar.

Two kinds of evidence:

* whole files we ship (Apache-2.0): the ES 1-minute sample (October 2013, the 17:15 ET close with
  the 16:15-16:30 halt) and the SPY 5-second week (regular hours lie inside ES sessions);
* facts read off recordings we may not redistribute (licences of FirstRate, TickData, TradingView,
  an MIT repository of unknown vendor): only the timestamps of the bars at session edges, each with
  its repository and path. A bar there says the market traded then; the hour-long silence after
  the last bar before a halt says it did not.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.calendar import CmeGlobexEquityCalendar

REPO = Path(__file__).resolve().parents[3]
ES_SAMPLE = REPO / "data" / "sample" / "es_1min_20131006_20131014.csv"
SPY_5S = REPO / "tests" / "support" / "data" / "spy_5s_20131007_20131011.csv"


@pytest.fixture(scope="module")
def cal() -> CmeGlobexEquityCalendar:
    return CmeGlobexEquityCalendar()


def _epoch(ts: str) -> int:
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp())


def _bars_outside(cal: CmeGlobexEquityCalendar, starts: list[int], seconds: int) -> list[str]:
    """Bars (as ISO start times) not wholly inside one session."""
    bad = []
    for start in starts:
        session = cal.session_at(start)
        if session is None or start + seconds > session.close_epoch:
            bad.append(datetime.fromtimestamp(start, UTC).isoformat())
    return bad


def test_every_bar_of_the_es_sample_lies_inside_a_session(cal: CmeGlobexEquityCalendar) -> None:
    with ES_SAMPLE.open() as handle:
        starts = [_epoch(row["ts"]) for row in csv.DictReader(handle)]
    assert len(starts) == 8198
    assert _bars_outside(cal, starts, 60) == []


def test_the_es_sample_is_silent_at_each_halt_the_calendar_claims(
    cal: CmeGlobexEquityCalendar,
) -> None:
    """Each closure inside the sample's span (16:15-16:30, 17:15-18:00, the weekend) is a gap in the
    recording: the calendar claims no halt the market did not have either."""
    with ES_SAMPLE.open() as handle:
        starts = sorted(_epoch(row["ts"]) for row in csv.DictReader(handle))
    first, last = starts[0], starts[-1]
    closures = []
    t = first
    while t < last:
        session = cal.session_at(t)
        if session is None:
            following = cal.next_session(t)
            closures.append((t, following.open_epoch))
            t = following.open_epoch
        else:
            t = session.close_epoch
    # Two halts a day (16:15 ET, 17:15 ET) from Monday to Friday, then the weekend.
    assert len(closures) >= 10
    for begin, end in closures:
        assert not any(begin <= s < end for s in starts), datetime.fromtimestamp(begin, UTC)


def test_regular_hours_of_the_spy_week_lie_inside_es_sessions(cal: CmeGlobexEquityCalendar) -> None:
    with SPY_5S.open() as handle:
        starts = [_epoch(row["ts"]) for row in csv.DictReader(handle)]
    regular = [
        s
        for s in starts
        if timedelta(hours=13, minutes=30) <= timedelta(seconds=s % 86_400) < timedelta(hours=20)
    ]
    assert len(regular) > 20_000
    assert _bars_outside(cal, regular, 5) == []


# (first instant of a real bar, bar seconds, source): the market traded in [start, start + seconds).
# Sources (repository / path, read 2026-12):
#   FR-NQ23  ChenLiangChong/back-test-python futures_NQ/NQ_1min_sample.csv (FirstRateData, ET, start)
#   FR-NQ26  nq-lang/Term data/NQ_1min_sample.csv (FirstRateData layout, ET, start stamps)
#   FR-ES23  edisoniver/trading-deliberate-practice ES_1min_sample.csv (FirstRateData, ET, start)
#   MES26    s-k-28/nq-es-trader-5k-payout data/MES_1min.csv (UTC, start stamps)
#   TV-ES25  Mohamed-albadri-1995/Tade-desk-server "CME_MINI_ES1!, 5.csv" (regular hours, start)
#   TD-ES15  hudson-and-thames/mlfinlab dollar_bar_sample.csv (TickData; stamp = a trade's time)
TRADED = [
    # 2015, the 17:15 ET close with the 16:15-16:30 halt; holiday halt at 13:00 ET from 2014.
    ("2015-01-01T23:00:23Z", 1, "TD-ES15 New Year's evening reopen"),
    ("2015-01-04T23:20:12Z", 1, "TD-ES15 Sunday evening"),
    ("2015-01-16T21:14:21Z", 1, "TD-ES15 Friday 16:14 ET, before the halt"),
    ("2015-01-19T15:55:30Z", 1, "TD-ES15 MLK morning"),
    ("2015-01-20T01:13:35Z", 1, "TD-ES15 MLK evening after the 18:00 reopen"),
    ("2015-01-27T21:30:13Z", 1, "TD-ES15 16:30 ET, after the halt"),
    ("2015-01-14T22:11:34Z", 1, "TD-ES15 17:11 ET, in the 16:30-17:15 segment"),
    ("2015-01-28T23:04:27Z", 1, "TD-ES15 18:04 ET, evening session"),
    # 2023
    ("2023-03-10T21:59:00Z", 60, "FR-ES23 Friday's last minute (17:00 ET close)"),
    ("2023-03-12T22:00:00Z", 60, "FR-ES23 first Sunday open after the DST switch"),
    ("2023-11-19T23:00:00Z", 60, "FR-NQ23 Sunday open"),
    ("2023-11-23T17:59:00Z", 60, "FR-NQ23 Thanksgiving's last minute before 13:00 ET"),
    ("2023-11-23T23:00:00Z", 60, "FR-NQ23 Thanksgiving evening reopen"),
    ("2023-11-24T18:14:00Z", 60, "FR-NQ23 Black Friday's last minute before 13:15 ET"),
    ("2023-11-26T23:00:00Z", 60, "FR-NQ23 Sunday open"),
    # 2025, regular hours only
    ("2025-01-08T21:10:00Z", 300, "TV-ES25 the day before the mourning day"),
    ("2025-01-10T14:30:00Z", 300, "TV-ES25 the day after"),
    ("2025-11-28T18:10:00Z", 300, "TV-ES25 Black Friday's last bar"),
    ("2025-12-24T18:10:00Z", 300, "TV-ES25 Christmas Eve's last bar"),
    ("2025-12-26T14:30:00Z", 300, "TV-ES25 after Christmas"),
    # 2026
    ("2026-03-15T22:00:00Z", 60, "MES26 Sunday open"),
    ("2026-04-03T13:14:00Z", 60, "MES26 Good Friday on a payrolls day, last minute"),
    ("2026-04-05T22:00:00Z", 60, "MES26 Sunday open after Good Friday"),
    ("2026-04-06T20:59:00Z", 60, "MES26 last minute before the 17:00 ET close"),
    ("2026-04-06T22:00:00Z", 60, "MES26 18:00 ET reopen"),
    ("2026-05-25T16:59:00Z", 60, "FR-NQ26 Memorial Day's last minute before 13:00 ET"),
    ("2026-05-25T22:00:00Z", 60, "FR-NQ26 Memorial Day evening reopen"),
]

# Silences right after a last bar above: the recording stops for an hour or more here, and so does
# the calendar.
SILENT = [
    ("2015-01-19T18:30:00Z", "TD-ES15 MLK 13:30 ET (bars resume 20:13 ET)"),
    ("2023-03-10T22:00:00Z", "FR-ES23 Friday after the close"),
    ("2023-11-23T18:00:00Z", "FR-NQ23 Thanksgiving after 13:00 ET"),
    ("2023-11-24T18:15:00Z", "FR-NQ23 Black Friday after 13:15 ET"),
    ("2025-01-09T15:00:00Z", "TV-ES25 mourning day, no regular hours"),
    ("2025-11-27T18:30:00Z", "TV-ES25 Thanksgiving after the 13:00 ET halt"),
    ("2025-12-25T16:00:00Z", "TV-ES25 Christmas"),
    ("2026-04-03T13:15:00Z", "MES26 Good Friday after 09:15 ET"),
    ("2026-04-06T21:30:00Z", "MES26 the daily 17:00-18:00 ET halt"),
    ("2026-05-25T17:00:00Z", "FR-NQ26 Memorial Day after 13:00 ET"),
]


@pytest.mark.parametrize(("ts", "seconds", "source"), TRADED, ids=[t[2] for t in TRADED])
def test_a_real_bar_at_a_session_edge_lies_inside_a_session(
    cal: CmeGlobexEquityCalendar, ts: str, seconds: int, source: str
) -> None:
    assert _bars_outside(cal, [_epoch(ts)], seconds) == [], source


@pytest.mark.parametrize(("ts", "source"), SILENT, ids=[s[1] for s in SILENT])
def test_a_silence_in_the_recordings_is_a_closure(
    cal: CmeGlobexEquityCalendar, ts: str, source: str
) -> None:
    assert cal.session_at(_epoch(ts)) is None, source
