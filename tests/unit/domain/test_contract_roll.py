"""MES quarterly contracts, third Fridays and the Monday-of-expiry-week roll rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.contract import (
    FutureContract,
    front_month,
    in_roll_week,
    quarterly_contracts,
    roll_date,
    roll_start,
    third_friday,
    trading_stops,
)
from domain.errors import DomainError

ET = ZoneInfo("America/New_York")
ONE_SECOND = timedelta(seconds=1)

Z6 = FutureContract("MES", date(2026, 12, 18), "MESZ6")
H7 = FutureContract("MES", date(2027, 3, 19), "MESH7")
M7 = FutureContract("MES", date(2027, 6, 18), "MESM7")


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [
        (2026, 3, date(2026, 3, 20)),
        (2026, 12, date(2026, 12, 18)),
        (2027, 3, date(2027, 3, 19)),
        (2027, 6, date(2027, 6, 18)),
        (2027, 9, date(2027, 9, 17)),
        (2027, 1, date(2027, 1, 15)),  # month starting on a Friday
        (2026, 8, date(2026, 8, 21)),  # month starting on a Saturday
        (2026, 5, date(2026, 5, 15)),  # month starting on a Friday (earliest possible: 15th)
        (2025, 10, date(2025, 10, 17)),  # month starting on a Wednesday
    ],
)
def test_third_friday(year: int, month: int, expected: date) -> None:
    got = third_friday(year, month)
    assert got == expected
    assert got.weekday() == 4
    assert 15 <= got.day <= 21


@pytest.mark.parametrize("month", [0, 13])
def test_third_friday_refuses_a_bad_month(month: int) -> None:
    with pytest.raises(ValueError, match=r"month must be 1\.\.12"):
        third_friday(2026, month)


def test_quarterly_contracts_lists_hmuz_in_order() -> None:
    got = quarterly_contracts("MES", date(2026, 11, 24), date(2027, 12, 31))
    assert [(c.local_symbol, c.expiry, c.contract_month) for c in got] == [
        ("MESZ6", date(2026, 12, 18), "202612"),
        ("MESH7", date(2027, 3, 19), "202703"),
        ("MESM7", date(2027, 6, 18), "202706"),
        ("MESU7", date(2027, 9, 17), "202709"),
        ("MESZ7", date(2027, 12, 17), "202712"),
    ]
    assert all(c.symbol == "MES" and c.con_id is None for c in got)


def test_quarterly_contracts_bounds_are_inclusive() -> None:
    assert quarterly_contracts("MES", date(2026, 12, 18), date(2026, 12, 18)) == [Z6]
    assert quarterly_contracts("MES", date(2026, 12, 19), date(2027, 3, 18)) == []


def test_quarterly_contracts_refuses_reversed_range_or_empty_symbol() -> None:
    with pytest.raises(ValueError, match="after end"):
        quarterly_contracts("MES", date(2027, 1, 1), date(2026, 1, 1))
    with pytest.raises(ValueError, match="symbol is required"):
        quarterly_contracts("", date(2026, 1, 1), date(2027, 1, 1))


@pytest.mark.parametrize(
    ("expiry", "expected_roll"),
    [
        (date(2026, 3, 20), date(2026, 3, 16)),  # CME's own example, mes-facts [S5]
        (date(2026, 12, 18), date(2026, 12, 14)),
        (date(2027, 3, 19), date(2027, 3, 15)),
        (date(2027, 6, 18), date(2027, 6, 14)),
        (date(2027, 9, 17), date(2027, 9, 13)),
        (date(2027, 6, 17), date(2027, 6, 14)),  # a holiday-moved Thursday expiry: same Monday
    ],
)
def test_roll_date_is_the_monday_of_expiry_week(expiry: date, expected_roll: date) -> None:
    assert roll_date(expiry) == expected_roll
    assert roll_date(expiry).weekday() == 0


@pytest.mark.parametrize(
    ("expiry", "expected_utc"),
    [
        # Sunday 2026-12-13 18:00 EST.
        (date(2026, 12, 18), datetime(2026, 12, 13, 23, tzinfo=UTC)),
        # Sunday 2027-03-14 18:00 EDT: DST began that very morning.
        (date(2027, 3, 19), datetime(2027, 3, 14, 22, tzinfo=UTC)),
        (date(2027, 9, 17), datetime(2027, 9, 12, 22, tzinfo=UTC)),
    ],
)
def test_roll_starts_at_the_sunday_globex_open(expiry: date, expected_utc: datetime) -> None:
    start = roll_start(expiry)
    assert start == expected_utc
    assert start.tzinfo is UTC
    assert start.astimezone(ET).strftime("%a %H:%M") == "Sun 18:00"


def test_trading_stops_at_09_30_et_on_expiry() -> None:
    assert trading_stops(date(2026, 12, 18)) == datetime(2026, 12, 18, 14, 30, tzinfo=UTC)
    assert trading_stops(date(2027, 6, 18)) == datetime(2027, 6, 18, 13, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2026, 11, 24, 12, tzinfo=UTC), Z6),
        (roll_start(Z6.expiry) - ONE_SECOND, Z6),
        (roll_start(Z6.expiry), H7),
        (roll_start(Z6.expiry) + ONE_SECOND, H7),
        (trading_stops(Z6.expiry), H7),
        (roll_start(H7.expiry) - ONE_SECOND, H7),
        (roll_start(H7.expiry), M7),
    ],
)
def test_front_month_switches_at_roll_start(at: datetime, expected: FutureContract) -> None:
    assert front_month([M7, Z6, H7], at) == expected


def test_front_month_accepts_any_aware_zone() -> None:
    just_before = datetime(2026, 12, 13, 17, 59, 59, tzinfo=ET)
    assert front_month([Z6, H7], just_before) == Z6
    assert front_month([Z6, H7], just_before + ONE_SECOND) == H7


def test_front_month_refuses_when_every_roll_has_started() -> None:
    with pytest.raises(ValueError, match="no contract whose roll starts after"):
        front_month([Z6, H7], roll_start(H7.expiry))
    with pytest.raises(ValueError, match="listed: none"):
        front_month([], datetime(2026, 11, 24, tzinfo=UTC))


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (roll_start(Z6.expiry) - ONE_SECOND, False),
        (roll_start(Z6.expiry), True),
        (datetime(2026, 12, 16, 12, tzinfo=UTC), True),
        (trading_stops(Z6.expiry) - ONE_SECOND, True),
        (trading_stops(Z6.expiry), False),
        (datetime(2026, 12, 18, 20, tzinfo=UTC), False),
    ],
)
def test_in_roll_week_from_roll_start_until_trading_stops(at: datetime, expected: bool) -> None:
    assert in_roll_week(Z6, at) is expected


@pytest.mark.parametrize(
    "call",
    [
        lambda at: front_month([Z6], at),
        lambda at: in_roll_week(Z6, at),
    ],
)
def test_roll_functions_refuse_naive_datetimes(call: Callable[[datetime], object]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call(datetime(2026, 12, 14, 12))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"symbol": "", "expiry": date(2026, 12, 18), "local_symbol": "MESZ6"}, "required"),
        ({"symbol": "MES", "expiry": date(2026, 12, 18), "local_symbol": ""}, "required"),
        (
            {"symbol": "MES", "expiry": date(2026, 12, 18), "local_symbol": "MESZ6", "con_id": 0},
            "con_id must be positive",
        ),
    ],
)
def test_future_contract_refuses_bad_fields(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DomainError, match=message):
        FutureContract(**kwargs)  # type: ignore[arg-type]
