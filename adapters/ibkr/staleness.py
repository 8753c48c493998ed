"""Session-aware watchdog for a bar stream that may stop silently (operations §2 #5).

IB's real-time bars and keepUpToDate streams can stop with no error (server reset, farm flap,
10225 bust). Silence is a fault only while the market is open: weekends, the daily 17:00-18:00 ET
halt and holiday halts are expected. The next bar is due ``bar_seconds`` after the later of the
last bar's end and the latest reopening of the market since then; a silence of more than
``grace_s`` past that is STALE. So just after the Sunday 18:00 ET open, the first bar is due at
``open + bar_seconds`` and Friday's last bar does not make the stream stale.

Before the first bar, watching starts at the first :meth:`StaleBarWatchdog.check`.

UNCOVERED (fail closed): when the calendar does not cover ``now`` the watchdog cannot tell a
weekend from an outage, so it does not answer FRESH either. It reports UNCOVERED, an alarm like
STALE (``alarm`` is True) whose remedy is extending the calendar, not resubscribing; it therefore
does not count as a stale check. The daemon does not trade on uncovered dates anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from domain.calendar import SessionCalendar
from domain.errors import CalendarCoverageError


class Freshness(Enum):
    FRESH = "fresh"  # market open and the next bar is not overdue
    QUIET = "quiet"  # market closed by the calendar: silence expected
    STALE = "stale"  # market open and the next bar overdue by more than the grace
    UNCOVERED = "uncovered"  # the calendar does not cover now: cannot judge, fail closed


@dataclass(frozen=True, slots=True)
class Staleness:
    """One verdict. ``age_s`` is seconds since the last bar ended (since watching began if none)."""

    state: Freshness
    checked_at: int
    last_bar_end: int | None
    age_s: int
    stale_checks: int

    @property
    def alarm(self) -> bool:
        """Whether someone should be told: STALE, or UNCOVERED (fail closed)."""
        return self.state in (Freshness.STALE, Freshness.UNCOVERED)


def _epoch(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"StaleBarWatchdog: {name} must be int epoch seconds, got {value!r}")


class StaleBarWatchdog:
    """Tells FRESH / QUIET / STALE / UNCOVERED for one bar stream; counts consecutive STALE checks.

    ``stale_checks`` goes back to 0 when a newer bar arrives or a check is not STALE, so the caller
    alerts on 1 and resubscribes (with backoff) while it grows.
    """

    def __init__(
        self, calendar: SessionCalendar, *, bar_seconds: int = 5, grace_s: float = 30.0
    ) -> None:
        if isinstance(bar_seconds, bool) or not isinstance(bar_seconds, int) or bar_seconds < 1:
            raise ValueError(
                f"StaleBarWatchdog: bar_seconds must be an int >= 1, got {bar_seconds!r}"
            )
        if not (math.isfinite(grace_s) and grace_s >= 0):
            raise ValueError(f"StaleBarWatchdog: grace_s must be finite and >= 0, got {grace_s!r}")
        self._calendar = calendar
        self._bar_seconds = bar_seconds
        self._grace_s = grace_s
        self._last_bar_end: int | None = None
        self._watch_start: int | None = None
        self._stale_checks = 0

    @property
    def last_bar_end(self) -> int | None:
        return self._last_bar_end

    @property
    def grace_s(self) -> float:
        return self._grace_s

    @property
    def stale_checks(self) -> int:
        """Consecutive STALE checks since the last newer bar or non-STALE check."""
        return self._stale_checks

    def note_bar(self, bar_end_epoch: int) -> None:
        """Record a bar that ended at ``bar_end_epoch``; an older or repeated bar changes nothing."""
        _epoch("bar_end_epoch", bar_end_epoch)
        if self._last_bar_end is None or bar_end_epoch > self._last_bar_end:
            self._last_bar_end = bar_end_epoch
            self._stale_checks = 0

    def check(self, now_epoch: int) -> Staleness:
        """The verdict at ``now_epoch``."""
        _epoch("now_epoch", now_epoch)
        if self._watch_start is None:
            self._watch_start = now_epoch
        since = self._last_bar_end if self._last_bar_end is not None else self._watch_start
        try:
            session = self._calendar.session_at(now_epoch)
        except CalendarCoverageError:
            return self._verdict(Freshness.UNCOVERED, now_epoch, since)
        if session is None:
            return self._verdict(Freshness.QUIET, now_epoch, since)
        due = self._reopened_after(since, session.open_epoch) + self._bar_seconds + self._grace_s
        state = Freshness.STALE if now_epoch > due else Freshness.FRESH
        return self._verdict(state, now_epoch, since)

    def _reopened_after(self, since: int, open_epoch: int) -> int:
        """The latest instant in ``(since, open_epoch]`` at which a closed market reopened, else
        ``since``: walks back over back-to-back sessions (a continuous calendar has no reopening).
        """
        reopen = open_epoch
        while reopen > since:
            try:
                before = self._calendar.session_at(reopen - 1)
            except CalendarCoverageError:
                return since  # unknown before coverage: be strict
            if before is None:
                return reopen
            reopen = before.open_epoch
        return since

    def _verdict(self, state: Freshness, now: int, since: int) -> Staleness:
        self._stale_checks = self._stale_checks + 1 if state is Freshness.STALE else 0
        return Staleness(
            state=state,
            checked_at=now,
            last_bar_end=self._last_bar_end,
            age_s=now - since,
            stale_checks=self._stale_checks,
        )
