"""The live daemon's wall-clock schedule: session boundaries, IB Gateway's restart window, roll week.

Pure answers to "what happens next after this instant"; ``application/session_timer.py`` sleeps
between them. Instants are aware UTC (datetimes) or epoch seconds (ints, for the calendar);
America/New_York appears only through the calendar and :mod:`zoneinfo`.

Boundaries are totally ordered by ``(epoch, kind)`` with FLATTEN before CLOSE before OPEN at the
same epoch: on the continuous calendar a session closes at the very second the next one opens, and
the engine must see the CLOSE first so that the OPEN leaves it open for entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.calendar import Session, SessionCalendar
from domain.contract import (
    FutureContract,
    in_roll_week,
    quarterly_contracts,
    roll_start,
    trading_stops,
)
from domain.errors import CalendarCoverageError, DomainError
from domain.events import BoundaryKind, SessionBoundary
from domain.record import record

_ET = ZoneInfo("America/New_York")
_RANK = {BoundaryKind.FLATTEN: 0, BoundaryKind.CLOSE: 1, BoundaryKind.OPEN: 2}
_ONE_DAY = timedelta(days=1)
# Daily restarts are at least 23 h apart (DST); windows of +-block must not overlap.
_MAX_RESTART_BLOCK = timedelta(hours=11, minutes=30)
# A roll start lies at most 6 days before its expiry; quarterly expiries are at most 14 weeks apart.
_ROLL_LOOKBACK = timedelta(days=7)
_ROLL_LOOKAHEAD = timedelta(days=120)


@record
class Boundary:
    """A session boundary at epoch second ``epoch``; ``trade_date`` is its session's.

    ``ends_trade_date`` is set on a CLOSE after which the next session has another trade date. It is
    False at a holiday halt (13:00 ET), whose morning clears under the next session's trade date, so
    a daily summary there would be premature.
    """

    kind: BoundaryKind
    epoch: int
    trade_date: date
    ends_trade_date: bool = False

    @property
    def ts(self) -> datetime:
        return datetime.fromtimestamp(self.epoch, tz=UTC)

    @property
    def order(self) -> tuple[int, int]:
        """Sort key: epoch, then FLATTEN < CLOSE < OPEN."""
        return self.epoch, _RANK[self.kind]

    def event(self) -> SessionBoundary:
        """The engine's event for this boundary."""
        return SessionBoundary(self.kind, self.ts, self.trade_date)


@record
class GateEdge:
    """The next change of an entry gate: from ``ts`` (aware UTC) on, entries are ``blocked`` or not."""

    ts: datetime
    blocked: bool


# ------------------------------------------------------------------ session boundaries


def next_boundary(
    calendar: SessionCalendar,
    flatten_before_close: timedelta | None,
    after: int | Boundary,
) -> Boundary:
    """The first session boundary after ``after``.

    ``after`` as an epoch second: the first boundary with a strictly later epoch. As a
    :class:`Boundary`: the one that follows it in the ``(epoch, kind)`` order, which includes an
    OPEN at the same epoch as a CLOSE. The candidates are FLATTEN at ``close - flatten_before_close``
    (only when that lies strictly inside the session; None or zero: no FLATTEN, the CLOSE does the
    same), CLOSE at the close, and OPEN at the next session's open.

    Raises :class:`CalendarCoverageError` when the calendar cannot answer (the caller alerts and
    stops scheduling).
    """
    flatten = _flatten_seconds(flatten_before_close)
    if isinstance(after, Boundary):
        if after.kind is BoundaryKind.CLOSE:
            return _open(calendar.next_session(after.epoch))
        after = after.epoch
    session = calendar.session_at(after)
    if session is None:
        return _open(calendar.next_session(after))
    if flatten is not None:
        at = session.close_epoch - flatten
        if after < at and session.open_epoch < at:
            return Boundary(BoundaryKind.FLATTEN, at, session.trade_date)
    return Boundary(
        BoundaryKind.CLOSE,
        session.close_epoch,
        session.trade_date,
        ends_trade_date=_ends_trade_date(calendar, session),
    )


def collapse_missed(missed: Sequence[Boundary]) -> tuple[Boundary, ...]:
    """Of boundaries that all passed unseen (a late wake), the last one of each kind, in order.

    The engine's end state depends only on these: the last FLATTEN/CLOSE closes any position, the
    last OPEN starts the current trade date's counters. At most three boundaries remain.
    """
    last: dict[BoundaryKind, Boundary] = {}
    for boundary in sorted(missed, key=lambda b: b.order):
        last[boundary.kind] = boundary
    return tuple(sorted(last.values(), key=lambda b: b.order))


def _open(session: Session) -> Boundary:
    return Boundary(BoundaryKind.OPEN, session.open_epoch, session.trade_date)


def _ends_trade_date(calendar: SessionCalendar, session: Session) -> bool:
    try:
        following = calendar.next_session(session.close_epoch)
    except CalendarCoverageError:
        return True  # the table ends with this session: whatever follows has a later trade date
    return following.trade_date != session.trade_date


def _flatten_seconds(flatten_before_close: timedelta | None) -> int | None:
    if flatten_before_close is None:
        return None
    if flatten_before_close < timedelta(0):
        raise DomainError(f"flatten_before_close must not be negative, got {flatten_before_close}")
    seconds = int(flatten_before_close.total_seconds())
    return seconds if seconds > 0 else None


# ------------------------------------------------------------------ IB Gateway's daily restart


def restart_window(at: datetime, restart_et: time, block: timedelta) -> tuple[datetime, datetime]:
    """The restart window ``[start, end)`` (aware UTC) that contains ``at``, else the next one.

    IB Gateway restarts every day at ``restart_et`` New York wall time; entries are blocked
    ``block`` either side of it. DST-correct: each day's restart is placed in that day's offset. A
    wall time the spring switch skips is read with the offset before the switch (zoneinfo's
    ``fold=0``): 02:30 on 2026-03-08 is 03:30 EDT.
    """
    _require_aware(at, "restart_window")
    check_restart_window(restart_et, block)
    at_utc = at.astimezone(UTC)
    day = at_utc.astimezone(_ET).date()
    for offset in (-1, 0, 1):
        restart = datetime.combine(day + offset * _ONE_DAY, restart_et, tzinfo=_ET).astimezone(UTC)
        if at_utc < restart + block:
            return restart - block, restart + block
    raise AssertionError("unreachable: tomorrow's restart window always ends after today")


def next_restart_edge(at: datetime, restart_et: time, block: timedelta) -> GateEdge:
    """The next edge of the restart window strictly after ``at``."""
    start, end = restart_window(at, restart_et, block)
    if start <= at:
        return GateEdge(end, blocked=False)
    return GateEdge(start, blocked=True)


def restart_reason(restart_et: time, window: tuple[datetime, datetime]) -> str:
    """The gate reason while ``window`` blocks entries."""
    start, end = (edge.astimezone(_ET) for edge in window)
    return (
        f"IB Gateway restarts at {restart_et:%H:%M} New York time: "
        f"no entries {start:%H:%M}-{end:%H:%M}"
    )


def check_restart_window(restart_et: time, block: timedelta) -> None:
    """Raise :class:`DomainError` unless ``restart_et`` is a naive wall time and ``block`` fits."""
    if restart_et.tzinfo is not None:
        raise DomainError(
            f"restart time {restart_et} must be a naive New York wall time, not tz-aware"
        )
    if not timedelta(0) < block < _MAX_RESTART_BLOCK:
        raise DomainError(
            f"restart block {block} must be positive and under {_MAX_RESTART_BLOCK} "
            "so that daily windows do not overlap"
        )


def next_weekly(at: datetime, weekday: int, wall_et: time) -> datetime:
    """The first ``weekday`` (Monday 0) at ``wall_et`` New York time strictly after ``at``, aware
    UTC (each week's instant in that day's offset: DST-correct)."""
    _require_aware(at, "next_weekly")
    at_utc = at.astimezone(UTC)
    day = at_utc.astimezone(_ET).date()
    day += timedelta(days=(weekday - day.weekday()) % 7)
    for week in range(3):
        moment = datetime.combine(day + timedelta(weeks=week), wall_et, tzinfo=_ET).astimezone(UTC)
        if moment > at_utc:
            return moment
    raise AssertionError("unreachable: next week's instant is always after this week's")


# ------------------------------------------------------------------ roll week


def roll_block(symbol: str, at: datetime) -> FutureContract | None:
    """The quarterly contract of ``symbol`` in its roll week at ``at``, if any.

    Computed expiries (third Fridays): a contract whose real last trading day differs (an exchange
    holiday) is blocked by its computed one.
    """
    _require_aware(at, "roll_block")
    for contract in _contracts_near(symbol, at):
        if in_roll_week(contract, at):
            return contract
    return None


def next_roll_edge(symbol: str, at: datetime) -> GateEdge:
    """The next roll start (blocks) or trading stop (unblocks) of ``symbol`` strictly after ``at``."""
    _require_aware(at, "next_roll_edge")
    edges = [
        edge
        for contract in _contracts_near(symbol, at)
        for edge in (
            GateEdge(roll_start(contract.expiry), blocked=True),
            GateEdge(trading_stops(contract.expiry), blocked=False),
        )
        if edge.ts > at
    ]
    return min(edges, key=lambda edge: edge.ts)


def roll_reason(contract: FutureContract) -> str:
    """The gate reason while ``contract`` is in its roll week."""
    stops = trading_stops(contract.expiry).astimezone(_ET)
    return (
        f"roll week of {contract.local_symbol}: no entries until it stops trading "
        f"{stops:%Y-%m-%d %H:%M} ET"
    )


def _contracts_near(symbol: str, at: datetime) -> list[FutureContract]:
    day = at.astimezone(UTC).date()
    return quarterly_contracts(symbol, day - _ROLL_LOOKBACK, day + _ROLL_LOOKAHEAD)


def _require_aware(at: datetime, where: str) -> None:
    if at.utcoffset() is None:
        raise DomainError(f"{where}: needs a timezone-aware instant, got naive {at!r}")
