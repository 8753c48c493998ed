"""The MES quarterly futures the TWS test gateway lists, and their IB session strings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

# CME quarterly cycle: month -> IB/CME month code.
QUARTERLY_CODES = {3: "H", 6: "M", 9: "U", 12: "Z"}
CON_ID_BASE = 700_000_000


@dataclass(frozen=True)
class ListedFuture:
    """One listed futures contract as IB describes it."""

    con_id: int
    local_symbol: str  # e.g. "MESZ6"
    # 3rd Friday; reported as lastTradeDateOrContractMonth YYYYMMDD and realExpirationDate.
    last_trade_date: date
    symbol: str = "MES"
    exchange: str = "CME"
    currency: str = "USD"
    multiplier: str = "5"
    min_tick: float = 0.25
    trading_class: str = "MES"
    sec_type: str = "FUT"
    long_name: str = "Micro E-Mini S&P 500 Stock Price Index"
    time_zone_id: str = "US/Central"

    @property
    def contract_month(self) -> str:
        """YYYYMM of the contract month."""
        return self.last_trade_date.strftime("%Y%m")

    @property
    def last_trade_date_ib(self) -> str:
        """YYYYMMDD, the way IB reports lastTradeDateOrContractMonth."""
        return self.last_trade_date.strftime("%Y%m%d")


def third_friday(year: int, month: int) -> date:
    """The third Friday of a month (MES last trading day)."""
    first = date(year, month, 1)
    first_friday = first + timedelta(days=(4 - first.weekday()) % 7)
    return first_friday + timedelta(days=14)


def mes_future(year: int, month: int) -> ListedFuture:
    """The MES quarterly of that month, with a deterministic conId (700000000 + yyyymm)."""
    if month not in QUARTERLY_CODES:
        raise ValueError(f"MES lists only March/June/September/December, not month {month}")
    return ListedFuture(
        con_id=CON_ID_BASE + year * 100 + month,
        local_symbol=f"MES{QUARTERLY_CODES[month]}{year % 10}",
        last_trade_date=third_friday(year, month),
    )


def mes_quarterlies(today: date, count: int = 5) -> list[ListedFuture]:
    """The next `count` quarterlies whose last trade date is on or after `today`, nearest first."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    listed: list[ListedFuture] = []
    year, month = today.year, today.month
    month = ((month - 1) // 3) * 3 + 3  # the quarter month of today's quarter
    while len(listed) < count:
        future = mes_future(year, month)
        if future.last_trade_date >= today:
            listed.append(future)
        month += 3
        if month > 12:
            year, month = year + 1, 3
    return listed


def trading_hours(start: date, days: int = 7) -> str:
    """IB's tradingHours string for the Globex weekly template in US/Central (no holidays).

    Sessions are listed by their start date: Sunday to Thursday 17:00 to the next day 16:00;
    Saturday is CLOSED; Friday has no session of its own (Thursday's runs into it).
    """
    parts: list[str] = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        weekday = day.weekday()
        if weekday == 5:
            parts.append(f"{day:%Y%m%d}:CLOSED")
        elif weekday != 4:
            parts.append(f"{day:%Y%m%d}:1700-{day + timedelta(days=1):%Y%m%d}:1600")
    return ";".join(parts)


def liquid_hours(start: date, days: int = 7) -> str:
    """IB's liquidHours string: regular hours 08:30-15:00 US/Central on weekdays."""
    parts: list[str] = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        if day.weekday() >= 5:
            parts.append(f"{day:%Y%m%d}:CLOSED")
        else:
            parts.append(f"{day:%Y%m%d}:0830-{day:%Y%m%d}:1500")
    return ";".join(parts)
