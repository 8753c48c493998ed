"""MES quarterly contracts and the roll rule (``reference/mes-facts.md`` §1).

Contracts are listed in March, June, September and December (H/M/U/Z) and stop trading at 09:30 ET
on their last trading day, the third Friday of the contract month. Since trade date 2022-06-13 CME
rolls the lead month on the Monday of expiration week; the bot treats the roll as starting at that
trade date's Globex open, the Sunday 18:00 ET before it, and from then on trades the next contract.

Computed expiries are a fallback: take the real one from the broker (IB's
``lastTradeDateOrContractMonth``). They differ when the third Friday is an exchange holiday: the
last trading day then moves to the business day before. The first such case in reach is MESM7,
whose third Friday 2027-06-18 is Juneteenth observed (verify: likely last trading day 2027-06-17).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from domain.calendar import ET, globex_open
from domain.errors import DomainError

_QUARTER_CODES = {3: "H", 6: "M", 9: "U", 12: "Z"}
_FRIDAY = 4
_TRADING_STOPS_ET = time(9, 30)


@dataclass(frozen=True, slots=True)
class FutureContract:
    """One dated futures contract; ``expiry`` is its last trading day."""

    symbol: str
    expiry: date
    local_symbol: str
    con_id: int | None = None

    def __post_init__(self) -> None:
        if not self.symbol or not self.local_symbol:
            raise DomainError(
                f"contract {self.symbol!r}/{self.local_symbol!r}: "
                "symbol and local symbol are required"
            )
        if self.con_id is not None and self.con_id <= 0:
            raise DomainError(
                f"contract {self.local_symbol}: con_id must be positive, got {self.con_id}"
            )

    @property
    def contract_month(self) -> str:
        """``YYYYMM`` of the expiry."""
        return f"{self.expiry.year:04d}{self.expiry.month:02d}"


def third_friday(year: int, month: int) -> date:
    """The third Friday of ``month`` in ``year``."""
    if not 1 <= month <= 12:
        raise DomainError(f"month must be 1..12, got {month}")
    first = date(year, month, 1)
    return first + timedelta(days=(_FRIDAY - first.weekday()) % 7 + 14)


def quarterly_contracts(symbol: str, start: date, end: date) -> list[FutureContract]:
    """The H/M/U/Z contracts of ``symbol`` with computed expiry in ``[start, end]``, in order."""
    if not symbol:
        raise DomainError("quarterly_contracts: symbol is required")
    if start > end:
        raise DomainError(f"quarterly_contracts: start {start} is after end {end}")
    found: list[FutureContract] = []
    for year in range(start.year, end.year + 1):
        for month, code in _QUARTER_CODES.items():
            expiry = third_friday(year, month)
            if start <= expiry <= end:
                found.append(FutureContract(symbol, expiry, f"{symbol}{code}{year % 10}"))
    return found


def roll_date(expiry: date) -> date:
    """The roll trade date: the Monday of the expiry's week."""
    return expiry - timedelta(days=expiry.weekday())


def roll_start(expiry: date) -> datetime:
    """The instant (aware UTC) the roll begins: Globex open of :func:`roll_date`'s trade date."""
    return globex_open(roll_date(expiry))


def trading_stops(expiry: date) -> datetime:
    """The instant (aware UTC) the contract stops trading: 09:30 ET on its last trading day."""
    return datetime.combine(expiry, _TRADING_STOPS_ET, tzinfo=ET).astimezone(UTC)


def front_month(contracts: Sequence[FutureContract], at: datetime) -> FutureContract:
    """The contract to trade at ``at``: the first, by expiry, whose roll has not started yet."""
    _require_aware(at, "front_month")
    for contract in sorted(contracts, key=lambda c: c.expiry):
        if roll_start(contract.expiry) > at:
            return contract
    listed = ", ".join(c.local_symbol for c in contracts) or "none"
    raise DomainError(
        f"front_month: no contract whose roll starts after {at.isoformat()} (listed: {listed})"
    )


def in_roll_week(contract: FutureContract, at: datetime) -> bool:
    """Whether ``at`` lies between the contract's roll start and the moment it stops trading."""
    _require_aware(at, "in_roll_week")
    return roll_start(contract.expiry) <= at < trading_stops(contract.expiry)


def _require_aware(at: datetime, where: str) -> None:
    if at.utcoffset() is None:
        raise DomainError(f"{where}: needs a timezone-aware instant, got naive {at!r}")
