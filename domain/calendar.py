"""Trading sessions: the CME Globex equity-index calendar (MES) and a continuous stand-in.

Model (``reference/mes-facts.md`` §1): the session for CME trade date D opens at 18:00
America/New_York on calendar day D-1 and closes at 17:00 ET on D. Trade dates are Monday to Friday,
so Monday's session opens on Sunday at 18:00, the daily 17:00-18:00 ET halt falls between two
sessions, and the week ends at Friday 17:00 ET. Days that differ are listed one by one in
:data:`CME_EQUITY_EXCEPTIONS`, a dated table meant to be read and refreshed each year from CME's
holiday page. The table covers calendar days 2025-01-01 … 2027-12-31; nothing is derived from
holiday rules.

Coverage (fail closed). :class:`CmeGlobexEquityCalendar` answers for instants t in
``[2024-12-31 18:00 ET, 2027-12-31 18:00 ET)`` = ``[2024-12-31T23:00Z, 2027-12-31T23:00Z)``, i.e.
exactly the instants whose 18:00-rule day (ET date of t + 6 h) is one of the table's calendar
days. Its sessions are those of trade dates 2025-01-02 … 2027-12-31 (2025-01-01 is closed): the
first opens 2025-01-01 18:00 ET (23:00Z), the last closes 2027-12-31 17:00 ET (22:00Z). Outside the
window, and for ``next_session``/``trade_date`` after the last close, it raises
:class:`CalendarCoverageError`.

Trade dates of holiday halts. On MLK, Presidents', Memorial, Juneteenth, Independence, Labor Day and
Thanksgiving, CME halts at 13:00 ET and reopens at 18:00 ET, and it clears the holiday's trades under
the *next* business day's trade date (its notices say e.g. Sunday open "for trade date of Sept. 2"
for Labor Day 2011). So does this calendar: the holiday morning is a session segment of its own
(the 13:00 halt is a close for flattening and no-entry windows), but its ``trade_date`` is the next
session's, so the session P&L and the circuit breaker run from the last regular 18:00 ET open through
the holiday to the next regular close, as the broker's statements do.

Entries to verify against CME's published schedule before money depends on them (their notes say
"verify"): Good Friday 2025-04-18 and 2027-03-26 (closed: no payrolls release that day; pmc says
09:15 ET); 2026-07-02 and 2027-07-02 (regular, no pre-Independence-Day early close); 2027-06-18
(Juneteenth observed, 13:00 ET; it is also MESM7's computed expiry); 2027-07-05 (Independence Day
observed); 2027-12-23 (regular), 2027-12-24 (closed, Christmas observed) and 2027-12-31 (regular,
New Year 2028 falls on a Saturday and is not observed on the Friday). Every 2027 entry is projected
from the pattern: CME publishes its holiday hours about a year ahead.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Protocol
from zoneinfo import ZoneInfo

from domain.errors import CalendarCoverageError, DomainError

ET = ZoneInfo("America/New_York")

SESSION_OPEN_ET = time(18, 0)
REGULAR_CLOSE_ET = time(17, 0)
HOLIDAY_HALT_ET = time(13, 0)
EARLY_CLOSE_ET = time(13, 15)

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


def _halt(d: date, note: str) -> SessionException:
    return SessionException(d, ExceptionKind.HOLIDAY_HALT, HOLIDAY_HALT_ET, note)


def _early(d: date, note: str) -> SessionException:
    return SessionException(d, ExceptionKind.EARLY_CLOSE, EARLY_CLOSE_ET, note)


def _regular(d: date, note: str) -> SessionException:
    return SessionException(d, ExceptionKind.REGULAR, REGULAR_CLOSE_ET, note)


# Sources are those of reference/mes-facts.md: [S12] DTN July 4 schedule, [S11]/[S13] Thanksgiving,
# [S14]/[L4] Good Friday, [S15] the 2025-01-09 mourning day, [L3] pmc #464 (CME's 2026 schedule).
CME_EQUITY_EXCEPTIONS: tuple[SessionException, ...] = (
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
CME_TABLE_FIRST_DAY = date(2025, 1, 1)
CME_TABLE_LAST_DAY = date(2027, 12, 31)


def _et_instant(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=ET)


def _epoch_to_et(t: int) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC).astimezone(ET)


def _describe(t: int) -> str:
    return f"{t} ({_epoch_to_et(t).isoformat()})"


class CmeGlobexEquityCalendar:
    """CME Globex equity-index sessions (MES) from the weekly template and the exception table."""

    __slots__ = ("_closes", "_coverage_end", "_coverage_start", "_last", "_opens", "_sessions")

    name: str = "cme_globex_equity"

    def __init__(
        self,
        exceptions: tuple[SessionException, ...] = CME_EQUITY_EXCEPTIONS,
        first_day: date = CME_TABLE_FIRST_DAY,
        last_day: date = CME_TABLE_LAST_DAY,
    ) -> None:
        if first_day > last_day:
            raise DomainError(f"calendar table: first day {first_day} is after last day {last_day}")
        by_date: dict[date, SessionException] = {}
        for listed in exceptions:
            if not first_day <= listed.trade_date <= last_day:
                raise DomainError(
                    f"exception {listed.trade_date} lies outside the table {first_day}…{last_day}"
                )
            if listed.trade_date in by_date:
                raise DomainError(f"exception {listed.trade_date} is listed twice")
            by_date[listed.trade_date] = listed

        sessions: list[Session] = []
        day = first_day
        while day <= last_day:
            entry = by_date.get(day)
            close_et = REGULAR_CLOSE_ET if entry is None else entry.close_et
            if day.weekday() < 5 and close_et is not None:
                sessions.append(
                    make_session(
                        day,
                        _et_instant(day - _ONE_DAY, SESSION_OPEN_ET),
                        _et_instant(day, close_et),
                    )
                )
            day += _ONE_DAY
        if not sessions:
            raise DomainError(f"calendar table {first_day}…{last_day} has no session")
        # A holiday morning clears under the next session's trade date (see the module docstring).
        for i in range(len(sessions) - 2, -1, -1):
            entry = by_date.get(sessions[i].trade_date)
            if entry is not None and entry.kind is ExceptionKind.HOLIDAY_HALT:
                sessions[i] = replace(sessions[i], trade_date=sessions[i + 1].trade_date)

        self._sessions: tuple[Session, ...] = tuple(sessions)
        self._opens: list[int] = [s.open_epoch for s in sessions]
        self._closes: list[int] = [s.close_epoch for s in sessions]
        self._coverage_start = int(_et_instant(first_day - _ONE_DAY, SESSION_OPEN_ET).timestamp())
        self._coverage_end = int(_et_instant(last_day, SESSION_OPEN_ET).timestamp())
        self._last: Session = sessions[0]

    @property
    def sessions(self) -> tuple[Session, ...]:
        """Every session of the table, in order."""
        return self._sessions

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
            found = self._sessions[i]
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
            return self._sessions[i]
        if i + 1 >= len(self._sessions):
            raise CalendarCoverageError(
                f"{self.name}: no session after {_describe(t)} within the table "
                f"(last trade date {self._sessions[-1].trade_date}); extend the exception table"
            )
        return self._sessions[i + 1]

    def trade_date(self, t: int) -> date:
        return self.next_session(t).trade_date

    def _check_covered(self, t: int) -> None:
        if not self._coverage_start <= t < self._coverage_end:
            raise CalendarCoverageError(
                f"{self.name}: {_describe(t)} is outside the covered window "
                f"[{_describe(self._coverage_start)}, {_describe(self._coverage_end)}); "
                "refusing to guess the session"
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
        found = make_session(
            day, _et_instant(day - _ONE_DAY, SESSION_OPEN_ET), _et_instant(day, SESSION_OPEN_ET)
        )
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
