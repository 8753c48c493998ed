"""Trading sessions: the CME Globex equity-index calendar (MES, ES) and a continuous stand-in.

Model (``reference/mes-facts.md`` §1). The session of CME trade date D opens at 18:00
America/New_York on the evening before (Sunday for a Monday) and runs to the day's close; trade
dates are Monday to Friday. Days that differ from the template are listed one by one in
:data:`CME_EQUITY_EXCEPTIONS`, a dated table read from CME's published schedules; nothing is
derived from holiday rules. The template itself changed over the years (:data:`CME_EQUITY_REGIMES`):

* trade dates up to 2012-11-16: 18:00 → 16:15 ET, and a second segment 16:30-17:30 ET that CME
  booked to the *next* trade date (its trade date changed at 15:15 CT), maintenance 17:30-18:00;
  Friday closed at 16:15 ET;
* 2012-11-19 … 2015-09-18: 18:00 → 17:15 ET with a 16:15-16:30 ET trading halt (Fridays too);
* 2015-09-21 … 2021-06-25: 18:00 → 17:00 ET, the 16:15-16:30 ET halt kept;
* from 2021-06-28: 18:00 → 17:00 ET, no halt.

A session is one contiguous segment ``[open, close)``; a trade date may have several (the halt
splits one, a holiday morning joins the next trade date's). Every segment's close is a close for
the engine's rules (no entries just before it, flatten before it).

Coverage (fail closed). :class:`CmeGlobexEquityCalendar` answers for instants t in
``[2009-12-31 18:00 ET, 2027-12-31 18:00 ET)``, i.e. exactly the instants whose 18:00-rule day
(ET date of t + 6 h) is one of the table's calendar days 2010-01-01 … 2027-12-31. Outside the
window, and for ``next_session``/``trade_date`` after the last close, it raises
:class:`CalendarCoverageError`.

Trade dates of holiday halts. On MLK, Presidents', Memorial, Juneteenth, Independence, Labor Day and
Thanksgiving, CME halts at 13:00 ET (11:30 ET up to Presidents' Day 2014) and reopens at 18:00 ET,
and it clears the holiday's trades under the *next* business day's trade date (its notices say e.g.
Sunday open "for trade date of Sept. 2" for Labor Day 2011). So does this calendar: the holiday
morning is a session segment of its own (the halt is a close for flattening and no-entry windows),
but its ``trade_date`` is the next session's, so the session P&L and the circuit breaker run from
the last regular 18:00 ET open through the holiday to the next regular close, as the broker's
statements do.

Sources. 2025-2027 is the reviewed table (CME's published 2025 and 2026 schedules, 2027 projected),
authoritative where other sources differ. 2010-2024 comes from CME notices and press releases
(the 2012-11-18 and 2015-09-21 hours changes, the holiday notices of 2006-2007 and 2013 that give
the 10:30 CT holiday halt, the Hurricane Sandy and 2018 mourning-day notices), contemporaneous
newswire reports of each payrolls Good Friday (2010, 2012, 2015, 2021, 2023: open until 08:15 CT;
every other Good Friday closed, 2024 included), pandas_market_calendars' "CME Globex Equity" and
QuantConnect Lean's CME equity-index holiday list where they agree, and the pandas_market_calendars
notes on the 2021-06-28 end of the halt. Checked against real recorded bars (ES 2013 and 2015, NQ
2023 and 2026, MES 2026, ES regular hours 2025): ``tests/unit/domain/test_calendar_real_bars.py``.

Entries to verify against CME's published schedule before money depends on them (their notes say
"verify"): Good Friday 2025-04-18 and 2027-03-26 (closed: no payrolls release that day; pmc says
09:15 ET); 2026-07-02 and 2027-07-02 (regular, no pre-Independence-Day early close); 2027-06-18
(Juneteenth observed, 13:00 ET; it is also MESM7's computed expiry); 2027-07-05 (Independence Day
observed); 2027-12-23 (regular), 2027-12-24 (closed, Christmas observed) and 2027-12-31 (regular,
New Year 2028 falls on a Saturday and is not observed on the Friday). Every 2027 entry is projected
from the pattern: CME publishes its holiday hours about a year ahead. Not confirmed by any source
found, and modelled as the template: the 16:30-17:30 segment on the evening before a holiday or
Good Friday before 2012-11-19, the Tuesday-evening reopen after Hurricane Sandy (2012-10-30), and
the trade date of the abbreviated Good Friday and Sandy mornings (their own date here).
"""

from __future__ import annotations

import functools
import itertools
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Protocol
from zoneinfo import ZoneInfo

from domain.errors import CalendarCoverageError, DomainError

ET = ZoneInfo("America/New_York")

SESSION_OPEN_ET = time(18, 0)
_OPEN_SECS = 18 * 3600
REGULAR_CLOSE_ET = time(17, 0)
HOLIDAY_HALT_ET = time(13, 0)
EARLY_CLOSE_ET = time(13, 15)
GOOD_FRIDAY_CLOSE_ET = time(9, 15)
_HALT_1130 = time(11, 30)
"""The holiday halt up to Presidents' Day 2014 (10:30 CT)."""

_ONE_DAY = timedelta(days=1)
# The 18:00 ET rule: t belongs to the day that starts at 18:00 ET the evening before, which is the
# ET date of t + 6 h (no DST switch falls between 18:00 and midnight, so this is exact).
_TRADE_DAY_SHIFT = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class Session:
    """One Globex session ``[open, close)`` of a CME trade date; the bounds also as epoch ints."""

    trade_date: date
    open: datetime
    close: datetime
    open_epoch: int
    close_epoch: int

    def __post_init__(self) -> None:
        for label, value in (("open", self.open), ("close", self.close)):
            if value.utcoffset() != timedelta(0):
                raise DomainError(f"session {self.trade_date}: {label} {value!r} must be aware UTC")
        if not self.open < self.close:
            raise DomainError(
                f"session {self.trade_date}: open {self.open.isoformat()} must precede "
                f"close {self.close.isoformat()}"
            )
        if self.open_epoch != int(self.open.timestamp()) or self.close_epoch != int(
            self.close.timestamp()
        ):
            raise DomainError(f"session {self.trade_date}: epoch bounds disagree with open/close")

    def contains(self, t: int) -> bool:
        """Whether epoch second ``t`` falls in ``[open, close)``."""
        return self.open_epoch <= t < self.close_epoch


def make_session(trade_date: date, open_et: datetime, close_et: datetime) -> Session:
    """A :class:`Session` from two aware instants (any zone), normalised to UTC."""
    open_utc = open_et.astimezone(UTC)
    close_utc = close_et.astimezone(UTC)
    return Session(
        trade_date=trade_date,
        open=open_utc,
        close=close_utc,
        open_epoch=int(open_utc.timestamp()),
        close_epoch=int(close_utc.timestamp()),
    )


class SessionCalendar(Protocol):
    """When the market is open. ``t`` is epoch seconds UTC throughout."""

    name: str

    def session_at(self, t: int) -> Session | None:
        """The session open at ``t``; None while the market is closed (halt, weekend, holiday).

        Raises :class:`CalendarCoverageError` if ``t`` is outside the calendar's coverage.
        """
        ...

    def next_session(self, t: int) -> Session:
        """The session open at ``t``, else the next one to open."""
        ...

    def trade_date(self, t: int) -> date:
        """The trade date of ``session_at(t)``, else of ``next_session(t)``."""
        ...


class ExceptionKind(Enum):
    """How a trade date differs from the regular 18:00 → 17:00 ET session."""

    CLOSED = "closed"  # no session for the trade date
    HOLIDAY_HALT = "holiday halt 13:00 ET"
    EARLY_CLOSE = "early close 13:15 ET"
    ABBREVIATED = "abbreviated (Good Friday on a payrolls day)"
    AD_HOC = "ad hoc closure"
    # Listed only so that a deliberate "no change" decision is visible and reviewable.
    REGULAR = "regular hours, listed on purpose"


@dataclass(frozen=True, slots=True)
class SessionException:
    """One dated entry of the exception table. ``close_et`` is None for a full closure."""

    trade_date: date
    kind: ExceptionKind
    close_et: time | None
    note: str

    def __post_init__(self) -> None:
        if self.trade_date.weekday() >= 5:
            raise DomainError(f"exception {self.trade_date}: trade dates are Monday to Friday")
        if (self.kind is ExceptionKind.CLOSED) != (self.close_et is None):
            raise DomainError(
                f"exception {self.trade_date}: a close time is required unless the day is CLOSED"
            )
        if self.close_et is not None and not time(0, 0) < self.close_et <= REGULAR_CLOSE_ET:
            raise DomainError(
                f"exception {self.trade_date}: close {self.close_et} must be in (00:00, 17:00] ET"
            )
        if not self.note:
            raise DomainError(f"exception {self.trade_date}: a note (source) is required")


def _closed(d: date, note: str) -> SessionException:
    return SessionException(d, ExceptionKind.CLOSED, None, note)


def _halt(d: date, note: str, at: time = HOLIDAY_HALT_ET) -> SessionException:
    return SessionException(d, ExceptionKind.HOLIDAY_HALT, at, note)


def _early(d: date, note: str) -> SessionException:
    return SessionException(d, ExceptionKind.EARLY_CLOSE, EARLY_CLOSE_ET, note)


def _good_friday(d: date, note: str) -> SessionException:
    return SessionException(d, ExceptionKind.ABBREVIATED, GOOD_FRIDAY_CLOSE_ET, note)


def _ad_hoc(d: date, close_et: time, note: str) -> SessionException:
    return SessionException(d, ExceptionKind.AD_HOC, close_et, note)


def _regular(d: date, note: str) -> SessionException:
    return SessionException(d, ExceptionKind.REGULAR, REGULAR_CLOSE_ET, note)


@dataclass(frozen=True, slots=True)
class DailyRegime:
    """The weekly template of the trade dates from ``first_trade_date`` on (until the next regime).

    The session of a regular trade date D runs from 18:00 ET on the evening before to ``close_et``,
    less ``pause`` (a halt inside the session, same trade date). ``evening`` is a segment after the
    close, Monday to Thursday, that CME booked to the *next* trade date; there is none on a day that
    closes early or not at all.
    """

    first_trade_date: date
    close_et: time
    pause: tuple[time, time] | None
    evening: tuple[time, time] | None
    note: str

    def __post_init__(self) -> None:
        for span in (self.pause, self.evening):
            if span is not None and not span[0] < span[1]:
                raise DomainError(f"regime from {self.first_trade_date}: {span} is not a span")
        if self.pause is not None and not self.pause[1] < self.close_et:
            raise DomainError(f"regime from {self.first_trade_date}: pause must end before close")
        if self.evening is not None and not (self.close_et < self.evening[0] < SESSION_OPEN_ET):
            raise DomainError(f"regime from {self.first_trade_date}: evening segment out of place")


CME_EQUITY_REGIMES: tuple[DailyRegime, ...] = (
    DailyRegime(
        date.min,
        time(16, 15),
        None,
        (time(16, 30), time(17, 30)),
        "Mon-Thu 17:00-15:15 CT and 15:30-16:30 CT for the next trade date; Friday to 15:15 CT",
    ),
    DailyRegime(
        date(2012, 11, 19),
        time(17, 15),
        (time(16, 15), time(16, 30)),
        None,
        "CME notice, effective Sunday 2012-11-18: close 16:15 CT, halt 15:15-15:30 CT",
    ),
    DailyRegime(
        date(2015, 9, 21),
        time(17, 0),
        (time(16, 15), time(16, 30)),
        None,
        "from Monday 2015-09-21 the close moves to 16:00 CT; the 15:15-15:30 CT halt stays",
    ),
    DailyRegime(
        date(2021, 6, 28),
        REGULAR_CLOSE_ET,
        None,
        None,
        "CME Globex notice of 2021-06-21: no 15:15-15:30 CT pause from trade date 2021-06-28",
    ),
)


# Rules and their sources (see the module docstring): full closures [CME notices, pmc, Lean, xc];
# holiday halts 10:30 CT (11:30 ET) through 2014-02-17, 12:00 CT (13:00 ET) from 2014-05-26
# [CME 2006-2007 and 2013 holiday notices, Lean, pmc]; early closes 12:15 CT [CME July 4 2013
# notice, Lean, pmc]; payrolls Good Fridays to 08:15 CT [newswire reports of the day: PH2010 Press
# Herald/Bloomberg, BB2012 Bloomberg, MW2015/MW2021/MW2023 MarketWatch]; [SANDY] CME notice via PR
# Newswire 2012-10-29; [BUSH] CME press release 2018-12-02.
CME_EQUITY_HISTORY: tuple[SessionException, ...] = (
    # ---- 2010
    _closed(date(2010, 1, 1), "New Year's Day"),
    _halt(date(2010, 1, 18), "Martin Luther King Jr. Day", _HALT_1130),
    _halt(date(2010, 2, 15), "Presidents' Day", _HALT_1130),
    _good_friday(date(2010, 4, 2), "payrolls day [PH2010]"),
    _halt(date(2010, 5, 31), "Memorial Day", _HALT_1130),
    _halt(date(2010, 7, 5), "Independence Day observed", _HALT_1130),
    _halt(date(2010, 9, 6), "Labor Day", _HALT_1130),
    _halt(date(2010, 11, 25), "Thanksgiving", _HALT_1130),
    _early(date(2010, 11, 26), "day after Thanksgiving"),
    _closed(date(2010, 12, 24), "Christmas Day observed"),
    # ---- 2011
    _halt(date(2011, 1, 17), "Martin Luther King Jr. Day", _HALT_1130),
    _halt(date(2011, 2, 21), "Presidents' Day", _HALT_1130),
    _closed(date(2011, 4, 22), "Good Friday (not a payrolls day)"),
    _halt(date(2011, 5, 30), "Memorial Day", _HALT_1130),
    _halt(date(2011, 7, 4), "Independence Day", _HALT_1130),
    _halt(date(2011, 9, 5), "Labor Day", _HALT_1130),
    _halt(date(2011, 11, 24), "Thanksgiving", _HALT_1130),
    _early(date(2011, 11, 25), "day after Thanksgiving"),
    _closed(date(2011, 12, 26), "Christmas Day observed"),
    # ---- 2012
    _closed(date(2012, 1, 2), "New Year's Day observed"),
    _halt(date(2012, 1, 16), "Martin Luther King Jr. Day", _HALT_1130),
    _halt(date(2012, 2, 20), "Presidents' Day", _HALT_1130),
    _good_friday(date(2012, 4, 6), "payrolls day [BB2012]"),
    _halt(date(2012, 5, 28), "Memorial Day", _HALT_1130),
    _early(date(2012, 7, 3), "weekday before Independence Day"),
    _halt(date(2012, 7, 4), "Independence Day", _HALT_1130),
    _halt(date(2012, 9, 3), "Labor Day", _HALT_1130),
    _ad_hoc(date(2012, 10, 29), time(9, 15), "Hurricane Sandy: equity halt 08:15 CT [SANDY]"),
    _ad_hoc(date(2012, 10, 30), time(9, 15), "Hurricane Sandy: equity halt 08:15 CT [SANDY]"),
    _halt(date(2012, 11, 22), "Thanksgiving", _HALT_1130),
    _early(date(2012, 11, 23), "day after Thanksgiving"),
    _early(date(2012, 12, 24), "Christmas Eve"),
    _closed(date(2012, 12, 25), "Christmas Day"),
    # ---- 2013
    _closed(date(2013, 1, 1), "New Year's Day"),
    _halt(date(2013, 1, 21), "Martin Luther King Jr. Day", _HALT_1130),
    _halt(date(2013, 2, 18), "Presidents' Day", _HALT_1130),
    _closed(date(2013, 3, 29), "Good Friday (not a payrolls day)"),
    _halt(date(2013, 5, 27), "Memorial Day", _HALT_1130),
    _early(date(2013, 7, 3), "weekday before Independence Day"),
    _halt(date(2013, 7, 4), "Independence Day", _HALT_1130),
    _halt(date(2013, 9, 2), "Labor Day", _HALT_1130),
    _halt(date(2013, 11, 28), "Thanksgiving", _HALT_1130),
    _early(date(2013, 11, 29), "day after Thanksgiving"),
    _early(date(2013, 12, 24), "Christmas Eve"),
    _closed(date(2013, 12, 25), "Christmas Day"),
    # ---- 2014
    _closed(date(2014, 1, 1), "New Year's Day"),
    _halt(date(2014, 1, 20), "Martin Luther King Jr. Day", _HALT_1130),
    _halt(date(2014, 2, 17), "Presidents' Day", _HALT_1130),
    _closed(date(2014, 4, 18), "Good Friday (not a payrolls day)"),
    _halt(date(2014, 5, 26), "Memorial Day"),
    _early(date(2014, 7, 3), "weekday before Independence Day"),
    _halt(date(2014, 7, 4), "Independence Day"),
    _halt(date(2014, 9, 1), "Labor Day"),
    _halt(date(2014, 11, 27), "Thanksgiving"),
    _early(date(2014, 11, 28), "day after Thanksgiving"),
    _early(date(2014, 12, 24), "Christmas Eve"),
    _closed(date(2014, 12, 25), "Christmas Day"),
    # ---- 2015
    _closed(date(2015, 1, 1), "New Year's Day"),
    _halt(date(2015, 1, 19), "Martin Luther King Jr. Day"),
    _halt(date(2015, 2, 16), "Presidents' Day"),
    _good_friday(date(2015, 4, 3), "payrolls day [MW2015]"),
    _halt(date(2015, 5, 25), "Memorial Day"),
    _halt(date(2015, 7, 3), "Independence Day observed"),
    _halt(date(2015, 9, 7), "Labor Day"),
    _halt(date(2015, 11, 26), "Thanksgiving"),
    _early(date(2015, 11, 27), "day after Thanksgiving"),
    _early(date(2015, 12, 24), "Christmas Eve"),
    _closed(date(2015, 12, 25), "Christmas Day"),
    # ---- 2016
    _closed(date(2016, 1, 1), "New Year's Day"),
    _halt(date(2016, 1, 18), "Martin Luther King Jr. Day"),
    _halt(date(2016, 2, 15), "Presidents' Day"),
    _closed(date(2016, 3, 25), "Good Friday (not a payrolls day)"),
    _halt(date(2016, 5, 30), "Memorial Day"),
    _halt(date(2016, 7, 4), "Independence Day"),
    _halt(date(2016, 9, 5), "Labor Day"),
    _halt(date(2016, 11, 24), "Thanksgiving"),
    _early(date(2016, 11, 25), "day after Thanksgiving"),
    _closed(date(2016, 12, 26), "Christmas Day observed"),
    # ---- 2017
    _closed(date(2017, 1, 2), "New Year's Day observed"),
    _halt(date(2017, 1, 16), "Martin Luther King Jr. Day"),
    _halt(date(2017, 2, 20), "Presidents' Day"),
    _closed(date(2017, 4, 14), "Good Friday (not a payrolls day)"),
    _halt(date(2017, 5, 29), "Memorial Day"),
    _early(date(2017, 7, 3), "weekday before Independence Day"),
    _halt(date(2017, 7, 4), "Independence Day"),
    _halt(date(2017, 9, 4), "Labor Day"),
    _halt(date(2017, 11, 23), "Thanksgiving"),
    _early(date(2017, 11, 24), "day after Thanksgiving"),
    _closed(date(2017, 12, 25), "Christmas Day"),
    # ---- 2018
    _closed(date(2018, 1, 1), "New Year's Day"),
    _halt(date(2018, 1, 15), "Martin Luther King Jr. Day"),
    _halt(date(2018, 2, 19), "Presidents' Day"),
    _closed(date(2018, 3, 30), "Good Friday (not a payrolls day)"),
    _halt(date(2018, 5, 28), "Memorial Day"),
    _early(date(2018, 7, 3), "weekday before Independence Day"),
    _halt(date(2018, 7, 4), "Independence Day"),
    _halt(date(2018, 9, 3), "Labor Day"),
    _halt(date(2018, 11, 22), "Thanksgiving"),
    _early(date(2018, 11, 23), "day after Thanksgiving"),
    _ad_hoc(date(2018, 12, 5), time(9, 30), "Day of Mourning (G.H.W. Bush): halt 08:30 CT [BUSH]"),
    _early(date(2018, 12, 24), "Christmas Eve"),
    _closed(date(2018, 12, 25), "Christmas Day"),
    # ---- 2019
    _closed(date(2019, 1, 1), "New Year's Day"),
    _halt(date(2019, 1, 21), "Martin Luther King Jr. Day"),
    _halt(date(2019, 2, 18), "Presidents' Day"),
    _closed(date(2019, 4, 19), "Good Friday (not a payrolls day)"),
    _halt(date(2019, 5, 27), "Memorial Day"),
    _early(date(2019, 7, 3), "weekday before Independence Day"),
    _halt(date(2019, 7, 4), "Independence Day"),
    _halt(date(2019, 9, 2), "Labor Day"),
    _halt(date(2019, 11, 28), "Thanksgiving"),
    _early(date(2019, 11, 29), "day after Thanksgiving"),
    _early(date(2019, 12, 24), "Christmas Eve"),
    _closed(date(2019, 12, 25), "Christmas Day"),
    # ---- 2020
    _closed(date(2020, 1, 1), "New Year's Day"),
    _halt(date(2020, 1, 20), "Martin Luther King Jr. Day"),
    _halt(date(2020, 2, 17), "Presidents' Day"),
    _closed(date(2020, 4, 10), "Good Friday (not a payrolls day)"),
    _halt(date(2020, 5, 25), "Memorial Day"),
    _halt(date(2020, 7, 3), "Independence Day observed"),
    _halt(date(2020, 9, 7), "Labor Day"),
    _halt(date(2020, 11, 26), "Thanksgiving"),
    _early(date(2020, 11, 27), "day after Thanksgiving"),
    _early(date(2020, 12, 24), "Christmas Eve"),
    _closed(date(2020, 12, 25), "Christmas Day"),
    # ---- 2021
    _closed(date(2021, 1, 1), "New Year's Day"),
    _halt(date(2021, 1, 18), "Martin Luther King Jr. Day"),
    _halt(date(2021, 2, 15), "Presidents' Day"),
    _good_friday(date(2021, 4, 2), "payrolls day [MW2021]"),
    _halt(date(2021, 5, 31), "Memorial Day"),
    _halt(date(2021, 7, 5), "Independence Day observed"),
    _halt(date(2021, 9, 6), "Labor Day"),
    _halt(date(2021, 11, 25), "Thanksgiving"),
    _early(date(2021, 11, 26), "day after Thanksgiving"),
    _closed(date(2021, 12, 24), "Christmas Day observed"),
    # ---- 2022
    _halt(date(2022, 1, 17), "Martin Luther King Jr. Day"),
    _halt(date(2022, 2, 21), "Presidents' Day"),
    _closed(date(2022, 4, 15), "Good Friday (not a payrolls day)"),
    _halt(date(2022, 5, 30), "Memorial Day"),
    _halt(date(2022, 6, 20), "Juneteenth observed"),
    _halt(date(2022, 7, 4), "Independence Day"),
    _halt(date(2022, 9, 5), "Labor Day"),
    _halt(date(2022, 11, 24), "Thanksgiving"),
    _early(date(2022, 11, 25), "day after Thanksgiving"),
    _closed(date(2022, 12, 26), "Christmas Day observed"),
    # ---- 2023
    _closed(date(2023, 1, 2), "New Year's Day observed"),
    _halt(date(2023, 1, 16), "Martin Luther King Jr. Day"),
    _halt(date(2023, 2, 20), "Presidents' Day"),
    _good_friday(date(2023, 4, 7), "payrolls day [MW2023]"),
    _halt(date(2023, 5, 29), "Memorial Day"),
    _halt(date(2023, 6, 19), "Juneteenth"),
    _early(date(2023, 7, 3), "weekday before Independence Day"),
    _halt(date(2023, 7, 4), "Independence Day"),
    _halt(date(2023, 9, 4), "Labor Day"),
    _halt(date(2023, 11, 23), "Thanksgiving"),
    _early(date(2023, 11, 24), "day after Thanksgiving"),
    _closed(date(2023, 12, 25), "Christmas Day"),
    # ---- 2024
    _closed(date(2024, 1, 1), "New Year's Day"),
    _halt(date(2024, 1, 15), "Martin Luther King Jr. Day"),
    _halt(date(2024, 2, 19), "Presidents' Day"),
    _closed(date(2024, 3, 29), "Good Friday (not a payrolls day)"),
    _halt(date(2024, 5, 27), "Memorial Day"),
    _halt(date(2024, 6, 19), "Juneteenth"),
    _early(date(2024, 7, 3), "weekday before Independence Day"),
    _halt(date(2024, 7, 4), "Independence Day"),
    _halt(date(2024, 9, 2), "Labor Day"),
    _halt(date(2024, 11, 28), "Thanksgiving"),
    _early(date(2024, 11, 29), "day after Thanksgiving"),
    _early(date(2024, 12, 24), "Christmas Eve"),
    _closed(date(2024, 12, 25), "Christmas Day"),
)
"""2010-2024, from published schedules (sources above); every row checked against at least two."""

# Sources are those of reference/mes-facts.md: [S12] DTN July 4 schedule, [S11]/[S13] Thanksgiving,
# [S14]/[L4] Good Friday, [S15] the 2025-01-09 mourning day, [L3] pmc #464 (CME's 2026 schedule).
CME_EQUITY_REVIEWED: tuple[SessionException, ...] = (
    # ---- 2025
    _closed(date(2025, 1, 1), "New Year's Day"),
    SessionException(
        date(2025, 1, 9),
        ExceptionKind.AD_HOC,
        time(9, 30),
        "National Day of Mourning (President Carter): equity halt 08:30 CT [S15]",
    ),
    _halt(date(2025, 1, 20), "Martin Luther King Jr. Day"),
    _halt(date(2025, 2, 17), "Presidents' Day"),
    _closed(date(2025, 4, 18), "Good Friday, no payrolls that day; pmc says 09:15 ET: verify"),
    _halt(date(2025, 5, 26), "Memorial Day"),
    _halt(date(2025, 6, 19), "Juneteenth"),
    _early(date(2025, 7, 3), "weekday before Independence Day [S12 pattern]"),
    _halt(date(2025, 7, 4), "Independence Day"),
    _halt(date(2025, 9, 1), "Labor Day"),
    _halt(date(2025, 11, 27), "Thanksgiving [S13]"),
    _early(date(2025, 11, 28), "day after Thanksgiving [S13]"),
    _early(date(2025, 12, 24), "Christmas Eve"),
    _closed(date(2025, 12, 25), "Christmas Day"),
    # ---- 2026
    _closed(date(2026, 1, 1), "New Year's Day"),
    _halt(date(2026, 1, 19), "Martin Luther King Jr. Day"),
    _halt(date(2026, 2, 16), "Presidents' Day"),
    SessionException(
        date(2026, 4, 3),
        ExceptionKind.ABBREVIATED,
        time(9, 15),
        "Good Friday on a payrolls day: close 08:15 CT [L4]",
    ),
    _halt(date(2026, 5, 25), "Memorial Day"),
    _halt(date(2026, 6, 19), "Juneteenth, CME 2026 schedule [L3]"),
    _regular(date(2026, 7, 2), "Thursday before observed Independence Day: no early close, verify"),
    _halt(date(2026, 7, 3), "Independence Day observed (July 4 is a Saturday), CME 2026 [L3]"),
    _halt(date(2026, 9, 7), "Labor Day"),
    _halt(date(2026, 11, 26), "Thanksgiving"),
    _early(date(2026, 11, 27), "day after Thanksgiving, CME 2026 schedule [L3]"),
    _early(date(2026, 12, 24), "Christmas Eve"),
    _closed(date(2026, 12, 25), "Christmas Day"),
    # ---- 2027 (projected from the pattern)
    _closed(date(2027, 1, 1), "New Year's Day"),
    _halt(date(2027, 1, 18), "Martin Luther King Jr. Day"),
    _halt(date(2027, 2, 15), "Presidents' Day"),
    _closed(date(2027, 3, 26), "Good Friday, payrolls due 2027-04-02; pmc says 09:15 ET: verify"),
    _halt(date(2027, 5, 31), "Memorial Day"),
    _halt(date(2027, 6, 18), "Juneteenth observed (June 19 is a Saturday): verify"),
    _regular(date(2027, 7, 2), "Friday before observed Independence Day: no early close, verify"),
    _halt(date(2027, 7, 5), "Independence Day observed (July 4 is a Sunday): verify"),
    _halt(date(2027, 9, 6), "Labor Day"),
    _halt(date(2027, 11, 25), "Thanksgiving"),
    _early(date(2027, 11, 26), "day after Thanksgiving"),
    _regular(date(2027, 12, 23), "Thursday before observed Christmas: no early close, verify"),
    _closed(date(2027, 12, 24), "Christmas observed (December 25 is a Saturday): verify"),
    _regular(date(2027, 12, 31), "New Year 2028 is a Saturday, not observed on Friday: verify"),
)
"""2025-2027: the reviewed table, authoritative."""

CME_EQUITY_EXCEPTIONS: tuple[SessionException, ...] = CME_EQUITY_HISTORY + CME_EQUITY_REVIEWED
CME_TABLE_FIRST_DAY = date(2010, 1, 1)
CME_TABLE_LAST_DAY = date(2027, 12, 31)


def _et_instant(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=ET)


def _epoch_to_et(t: int) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC).astimezone(ET)


def _describe(t: int) -> str:
    return f"{_epoch_to_et(t):%Y-%m-%d %H:%M} New York"


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_NOON = time(12, 0)


def _day_base(day: date) -> int:
    """Epoch second of New York midnight on ``day`` as if the day's noon offset held all day:
    plus a wall time's seconds after 03:00 (never inside a DST switch), the exact epoch."""
    offset = datetime.combine(day, _NOON, tzinfo=ET).utcoffset()
    assert offset is not None
    return (day.toordinal() - _EPOCH_ORDINAL) * 86_400 - int(offset.total_seconds())


def _noon_offset(day: date) -> int:
    offset = datetime.combine(day, _NOON, tzinfo=ET).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


_STRIDE = 7
"""Days between the noon offsets :func:`_day_bases` looks up: New York's offset never changes
twice within a week (its summer and winter times each last months)."""


def _day_bases(first: date, count: int) -> list[int]:
    """:func:`_day_base` of ``count`` days from ``first``, with the time-zone database asked about
    one day a week (and a few more around each change) instead of every day: the same values,
    for a calendar table of 18 years built in a fraction of the time (a replay's start-up)."""
    if count <= 0:
        return []
    offsets = [0] * count  # every entry is set below
    probes = list(range(0, count, _STRIDE))
    if probes[-1] != count - 1:
        probes.append(count - 1)
    for k in probes:
        offsets[k] = _noon_offset(first + timedelta(days=k))
    for lo, hi in itertools.pairwise(probes):
        a, b = offsets[lo], offsets[hi]
        if a == b:
            for k in range(lo + 1, hi):
                offsets[k] = a
            continue
        # One change within (lo, hi]: bisect for the first day with the new offset.
        left, right = lo, hi
        while right - left > 1:
            mid = (left + right) // 2
            if _noon_offset(first + timedelta(days=mid)) == a:
                left = mid
            else:
                right = mid
        for k in range(lo + 1, hi):
            offsets[k] = a if k <= left else b
    base = first.toordinal() - _EPOCH_ORDINAL
    return [(base + k) * 86_400 - o for k, o in enumerate(offsets)]


def _secs(at: time) -> int:
    return at.hour * 3600 + at.minute * 60 + at.second


def _et_epoch(day: date, at: time) -> int:
    """Epoch second of the New York wall time ``at`` (after 03:00) on ``day``."""
    return _day_base(day) + _secs(at)


def _segments(
    base: int, eve_base: int, weekday: int, regime: DailyRegime, entry: SessionException | None
) -> list[tuple[int, int, bool]]:
    """Segments ``(open, close, next_trade_date)`` of a calendar day that trades (``base`` and
    ``eve_base``: :func:`_day_base` of the day and of the day before), in time order: those of
    the day's own trade date, then an evening segment booked to the next."""
    if entry is None or entry.kind is ExceptionKind.REGULAR:
        close_at = regime.close_et
    else:
        assert entry.close_et is not None
        close_at = entry.close_et
    rolls = entry is not None and entry.kind is ExceptionKind.HOLIDAY_HALT
    opens = eve_base + _OPEN_SECS
    closes = base + _secs(close_at)
    out: list[tuple[int, int, bool]] = []
    pause = regime.pause
    if pause is not None and close_at > pause[0]:
        out.append((opens, base + _secs(pause[0]), rolls))
        if close_at > pause[1]:
            out.append((base + _secs(pause[1]), closes, rolls))
    else:
        out.append((opens, closes, rolls))
    if regime.evening is not None and close_at == regime.close_et and weekday < 4:
        start, end = regime.evening
        out.append((base + _secs(start), base + _secs(end), True))
    return out


@functools.lru_cache(maxsize=4)
def _session_table(
    exceptions: tuple[SessionException, ...],
    first_day: date,
    last_day: date,
    regimes: tuple[DailyRegime, ...],
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[date, ...]]:
    """The sessions' opens, closes and trade dates, in time order, of a calendar table (validated).

    Kept for the process (the table is immutable): every calendar built from the same table
    shares it. A sweep builds one calendar per trial, and the 18 years of the default table cost
    ~18 ms to lay out, a sixth of a short trial."""
    if first_day > last_day:
        raise DomainError(f"calendar table: first day {first_day} is after last day {last_day}")
    starts = [r.first_trade_date for r in regimes]
    if not regimes or starts != sorted(set(starts)) or starts[0] > first_day:
        raise DomainError("calendar regimes must be ordered and cover the table's first day")
    by_date: dict[date, SessionException] = {}
    for listed in exceptions:
        if not first_day <= listed.trade_date <= last_day:
            raise DomainError(
                f"exception {listed.trade_date} lies outside the table {first_day}…{last_day}"
            )
        if listed.trade_date in by_date:
            raise DomainError(f"exception {listed.trade_date} is listed twice")
        by_date[listed.trade_date] = listed

    # (open, close, trade date, belongs to the next segment's trade date)
    segments: list[tuple[int, int, date, bool]] = []
    day = first_day
    # The day before the first, then every day of the table.
    bases = iter(_day_bases(first_day - _ONE_DAY, (last_day - first_day).days + 2))
    eve_base = next(bases)
    while day <= last_day:
        base = next(bases)
        entry = by_date.get(day)
        weekday = day.weekday()
        if weekday < 5 and (entry is None or entry.kind is not ExceptionKind.CLOSED):
            regime = regimes[bisect_right(starts, day) - 1]
            segments.extend(
                (o, c, day, r) for o, c, r in _segments(base, eve_base, weekday, regime, entry)
            )
        eve_base = base
        day += _ONE_DAY
    if not segments:
        raise DomainError(f"calendar table {first_day}…{last_day} has no session")
    # A holiday morning (and an evening booked ahead) clears under the next segment's date.
    dates = [d for _, _, d, _ in segments]
    for i in range(len(segments) - 2, -1, -1):
        if segments[i][3]:
            dates[i] = dates[i + 1]
    return (
        tuple(o for o, _, _, _ in segments),
        tuple(c for _, c, _, _ in segments),
        tuple(dates),
    )


class CmeGlobexEquityCalendar:
    """CME Globex equity-index sessions (MES) from the regimes' templates and the exception table."""

    __slots__ = (
        "_built",
        "_closes",
        "_coverage_end",
        "_coverage_start",
        "_dates",
        "_last",
        "_opens",
    )

    name: str = "cme_globex_equity"

    def __init__(
        self,
        exceptions: tuple[SessionException, ...] = CME_EQUITY_EXCEPTIONS,
        first_day: date = CME_TABLE_FIRST_DAY,
        last_day: date = CME_TABLE_LAST_DAY,
        regimes: tuple[DailyRegime, ...] = CME_EQUITY_REGIMES,
    ) -> None:
        self._opens, self._closes, self._dates = _session_table(
            exceptions, first_day, last_day, regimes
        )
        # Session objects are built when first asked for: a replay needs a few weeks of 18 years.
        self._built: dict[int, Session] = {}
        self._coverage_start = _et_epoch(first_day - _ONE_DAY, SESSION_OPEN_ET)
        self._coverage_end = _et_epoch(last_day, SESSION_OPEN_ET)
        self._last: Session = self._session(0)

    def _session(self, i: int) -> Session:
        found = self._built.get(i)
        if found is None:
            o, c = self._opens[i], self._closes[i]
            found = Session(
                trade_date=self._dates[i],
                open=datetime.fromtimestamp(o, UTC),
                close=datetime.fromtimestamp(c, UTC),
                open_epoch=o,
                close_epoch=c,
            )
            self._built[i] = found
        return found

    @property
    def sessions(self) -> tuple[Session, ...]:
        """Every session of the table, in order."""
        return tuple(self._session(i) for i in range(len(self._opens)))

    @property
    def coverage(self) -> tuple[int, int]:
        """The epoch-second window ``[start, end)`` the calendar answers for."""
        return self._coverage_start, self._coverage_end

    def session_at(self, t: int) -> Session | None:
        last = self._last
        if last.open_epoch <= t < last.close_epoch:
            return last
        self._check_covered(t)
        i = bisect_right(self._opens, t) - 1
        if i >= 0 and t < self._closes[i]:
            found = self._session(i)
            self._last = found
            return found
        return None

    def next_session(self, t: int) -> Session:
        last = self._last
        if last.open_epoch <= t < last.close_epoch:
            return last
        self._check_covered(t)
        i = bisect_right(self._opens, t) - 1
        if i >= 0 and t < self._closes[i]:
            return self._session(i)
        if i + 1 >= len(self._opens):
            raise CalendarCoverageError(
                f"{self.name}: no session after {_describe(t)} within the table "
                f"(last trade date {self._dates[-1]}); extend the exception table"
            )
        return self._session(i + 1)

    def trade_date(self, t: int) -> date:
        return self.next_session(t).trade_date

    def _check_covered(self, t: int) -> None:
        if not self._coverage_start <= t < self._coverage_end:
            raise CalendarCoverageError(
                f"{self.name} covers {_describe(self._coverage_start)} to "
                f"{_describe(self._coverage_end)}, not {_describe(t)}"
            )


class ContinuousCalendar:
    """Always open: one session per calendar day D, ``[D-1 18:00 ET, D 18:00 ET)``, weekends too.

    For data or venues without halts; breaker resets still happen at 18:00 ET. Never None, no limit.
    """

    __slots__ = ("_last",)

    name: str = "none"

    def __init__(self) -> None:
        self._last: Session | None = None

    def session_at(self, t: int) -> Session:
        last = self._last
        if last is not None and last.open_epoch <= t < last.close_epoch:
            return last
        day = (datetime.fromtimestamp(t, tz=UTC) + _TRADE_DAY_SHIFT).astimezone(ET).date()
        found = make_session(day, _evening_open(day - _ONE_DAY), _evening_open(day))
        self._last = found
        return found

    def next_session(self, t: int) -> Session:
        return self.session_at(t)

    def trade_date(self, t: int) -> date:
        return self.session_at(t).trade_date


CALENDAR_NAMES = (CmeGlobexEquityCalendar.name, ContinuousCalendar.name)


def build_calendar(name: str) -> SessionCalendar:
    """The calendar called ``name``: ``"cme_globex_equity"`` or ``"none"``."""
    if name == CmeGlobexEquityCalendar.name:
        return CmeGlobexEquityCalendar()
    if name == ContinuousCalendar.name:
        return ContinuousCalendar()
    raise DomainError(f"unknown session calendar {name!r}; expected one of {CALENDAR_NAMES}")


# -- the 18:00 New York rule, once ---------------------------------------------------------------
#
# Two instants are called "the start of trade date D" and both are right for their use:
#
# * :func:`trade_date_window` is the accounting window, what :func:`cme_trade_date` maps to D. It
#   starts at 18:00 on the *trading* day before D (Friday for a Monday), so the windows of
#   consecutive trade dates tile time and every record (a Friday-evening fill or round trip, a
#   weekend one) lands in exactly one session. Session reports and P&L by trade date want this.
# * :func:`globex_open` is when trade date D's Globex session opens: 18:00 on the *calendar* day
#   before D (Sunday for a Monday). That is what a trader means by "the session opened": the
#   roll's start, and the start of /pnl's today, week and month. A Monday's window and its open
#   differ by the weekend, during which CME is closed.
#
# No module other than this one computes 18:00 New York itself.


def _require_trade_date(trade_date: date, caller: str) -> None:
    if trade_date.weekday() >= 5:
        raise DomainError(
            f"{caller}: {trade_date.isoformat()} is a {trade_date.strftime('%A')}, "
            "not a CME trade date"
        )


def _evening_open(day: date) -> datetime:
    """18:00 New York on calendar day ``day``, as aware UTC."""
    return _et_instant(day, SESSION_OPEN_ET).astimezone(UTC)


def trade_date_window(trade_date: date) -> tuple[datetime, datetime]:
    """The accounting window ``[start, end)`` of CME trade date ``trade_date`` (Monday to Friday),
    aware UTC: from 18:00 New York on the trading day before it (Friday for a Monday) to 18:00 on
    the day. Exactly the instants :func:`cme_trade_date` maps to ``trade_date``.

    For reports by trade date (the journal's session report): consecutive windows tile time, so
    every record lands in one. Not the Globex open: see :func:`globex_open`.
    """
    _require_trade_date(trade_date, "trade_date_window")
    before = trade_date - timedelta(days=3 if trade_date.weekday() == 0 else 1)
    return _evening_open(before), _evening_open(trade_date)


def globex_open(trade_date: date) -> datetime:
    """When the Globex session of CME trade date ``trade_date`` (Monday to Friday) opens, aware
    UTC: 18:00 New York on the calendar day before it (Sunday for a Monday).

    For "since the session opened": the roll's start (:func:`domain.contract.roll_start`) and the
    operator's /pnl periods. Regular hours only: holiday and early-close exceptions are the
    :class:`SessionCalendar`'s. Not the accounting window: see :func:`trade_date_window`.
    """
    _require_trade_date(trade_date, "globex_open")
    return _evening_open(trade_date - _ONE_DAY)


def cme_trade_date(t: datetime) -> date:
    """CME trade date of instant ``t`` by the 18:00 ET rule; Saturday and Sunday map to Monday.

    For reports: it ignores holidays and halts (use a :class:`SessionCalendar` for those).
    """
    if t.utcoffset() is None:
        raise DomainError(f"cme_trade_date needs a timezone-aware instant, got naive {t!r}")
    day = (t.astimezone(UTC) + _TRADE_DAY_SHIFT).astimezone(ET).date()
    weekday = day.weekday()
    if weekday >= 5:
        day += timedelta(days=7 - weekday)
    return day
