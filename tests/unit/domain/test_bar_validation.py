"""Bar: every invalid field is refused with InvalidBar; epochs, end, equality, hash and at_epoch."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from domain.bar import Bar
from domain.errors import DomainError, InvalidBar

T = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)
EPOCH = int(T.timestamp())
ET = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")

VALID: dict[str, Any] = {
    "ts": T,
    "seconds": 60,
    "open": 5000.25,
    "high": 5001.0,
    "low": 4999.5,
    "close": 5000.75,
    "volume": 10,
}


def make(**changes: Any) -> Bar:
    fields = {**VALID, **changes}
    return Bar(**fields)


INVALID = [
    ("naive ts", {"ts": datetime(2025, 3, 4, 15, 0)}, "timezone-aware UTC"),
    ("New York ts", {"ts": datetime(2025, 3, 4, 10, 0, tzinfo=ET)}, "timezone-aware UTC"),
    ("UTC+1 ts", {"ts": datetime(2025, 3, 4, 16, 0, tzinfo=timezone(timedelta(hours=1)))}, "UTC"),
    ("sub-second ts", {"ts": T.replace(microsecond=1)}, "whole second"),
    ("half-second ts", {"ts": T.replace(microsecond=500_000)}, "whole second"),
    ("zero seconds", {"seconds": 0}, "duration must be positive"),
    ("negative seconds", {"seconds": -5}, "duration must be positive"),
    ("NaN open", {"open": math.nan}, "finite"),
    ("NaN high", {"high": math.nan}, "finite"),
    ("NaN low", {"low": math.nan}, "finite"),
    ("NaN close", {"close": math.nan}, "finite"),
    ("inf high", {"high": math.inf}, "finite"),
    ("inf everywhere", {"open": math.inf, "high": math.inf, "close": math.inf}, "finite"),
    ("-inf low", {"low": -math.inf}, "positive"),
    ("zero low", {"low": 0.0}, "positive"),
    ("all zero", {"open": 0.0, "high": 0.0, "low": 0.0, "close": 0.0}, "positive"),
    ("negative prices", {"open": -2.0, "high": -1.0, "low": -3.0, "close": -2.0}, "positive"),
    ("low above open", {"low": 5000.5}, "low <= open"),
    ("low above close", {"low": 5000.5, "close": 5000.25, "open": 5000.75}, "low <= open"),
    ("high below open", {"high": 5000.0}, "close <= high"),
    ("high below close", {"high": 5000.5, "open": 5000.0}, "close <= high"),
    ("low above high", {"low": 5002.0, "high": 5001.0}, "low <= open"),
    ("negative volume", {"volume": -1}, "negative volume -1"),
]


@pytest.mark.parametrize(
    ("changes", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_an_invalid_bar_is_refused_with_a_message_naming_the_problem(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidBar, match=message):
        make(**changes)


def test_invalid_bar_is_a_domain_error() -> None:
    with pytest.raises(DomainError):
        make(volume=-1)


EDGE_VALID = [
    ("flat bar", {"open": 5000.0, "high": 5000.0, "low": 5000.0, "close": 5000.0}),
    ("open at the low, close at the high", {"open": 4999.5, "close": 5001.0}),
    ("open at the high, close at the low", {"open": 5001.0, "close": 4999.5}),
    ("zero volume", {"volume": 0}),
    ("one second", {"seconds": 1}),
    ("tiny positive price", {"open": 1e-300, "high": 1e-300, "low": 1e-300, "close": 1e-300}),
    ("largest finite", {"high": 1.7976931348623157e308}),
    ("fixed +00:00 zone", {"ts": datetime(2025, 3, 4, 15, 0, tzinfo=timezone(timedelta(0)))}),
    ("London in winter (UTC+0)", {"ts": datetime(2025, 3, 4, 15, 0, tzinfo=LONDON)}),
]


@pytest.mark.parametrize("changes", [c[1] for c in EDGE_VALID], ids=[c[0] for c in EDGE_VALID])
def test_a_bar_on_the_edge_of_the_rules_is_accepted(changes: dict[str, Any]) -> None:
    bar = make(**changes)
    for name, value in changes.items():
        if name != "ts":
            assert getattr(bar, name) == value


def test_epoch_end_epoch_and_end_describe_the_interval() -> None:
    bar = make(seconds=300)
    assert bar.epoch == EPOCH == 1741100400
    assert bar.end_epoch == EPOCH + 300
    assert bar.end == datetime(2025, 3, 4, 15, 5, tzinfo=UTC)
    assert bar.ts == T
    assert bar.ts.tzinfo is UTC
    assert bar.end.tzinfo is UTC


def test_a_zero_offset_zone_is_kept_as_utc_so_end_is_right_across_its_dst_switch() -> None:
    # 01:30 UTC on 2025-10-26 is 01:30 GMT (second fold) in London; a minute later in London
    # wall-clock arithmetic would be 01:31 BST = 00:31 UTC, an hour before the bar's own start.
    ts = datetime(2025, 10, 26, 1, 30, tzinfo=UTC).astimezone(LONDON)
    assert ts.utcoffset() == timedelta(0)
    bar = Bar(ts, 60, 1.0, 1.0, 1.0, 1.0, 0)
    assert bar.ts.tzinfo is UTC
    assert bar.ts == datetime(2025, 10, 26, 1, 30, tzinfo=UTC)
    assert bar.end == datetime(2025, 10, 26, 1, 31, tzinfo=UTC)
    assert int(bar.end.timestamp()) == bar.end_epoch


def test_at_epoch_builds_the_same_bar_as_the_datetime_constructor() -> None:
    by_epoch = Bar.at_epoch(EPOCH, 60, 5000.25, 5001.0, 4999.5, 5000.75, 10)
    assert by_epoch == make()
    assert by_epoch.ts == T
    assert by_epoch.ts.tzinfo is UTC
    assert (by_epoch.epoch, by_epoch.end_epoch) == (EPOCH, EPOCH + 60)


def test_at_epoch_validates_like_the_constructor() -> None:
    with pytest.raises(InvalidBar, match="low <= open"):
        Bar.at_epoch(EPOCH, 60, 1.0, 2.0, 1.5, 1.5, 1)
    with pytest.raises(InvalidBar, match="duration"):
        Bar.at_epoch(EPOCH, 0, 1.0, 1.0, 1.0, 1.0, 1)


FIELD_CHANGES = [
    {"ts": T + timedelta(seconds=1)},
    {"seconds": 120},
    {"open": 5000.5},
    {"high": 5001.25},
    {"low": 4999.25},
    {"close": 5000.5},
    {"volume": 11},
]


@pytest.mark.parametrize("changes", FIELD_CHANGES, ids=lambda c: next(iter(c)))
def test_bars_differing_in_any_field_are_unequal(changes: dict[str, Any]) -> None:
    assert make() != make(**changes)


def test_equal_bars_hash_alike_and_deduplicate_in_a_set() -> None:
    a = make()
    b = make(ts=datetime(2025, 3, 4, 15, 0, tzinfo=timezone(timedelta(0))))
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b, make(volume=11)}) == 2


def test_a_bar_is_not_equal_to_other_types() -> None:
    bar = make()
    assert bar != (bar.epoch, bar.seconds, bar.open, bar.high, bar.low, bar.close, bar.volume)
    assert bar.__eq__(object()) is NotImplemented


def test_repr_names_time_size_and_prices() -> None:
    text = repr(make())
    assert text == "Bar(2025-03-04T15:00:00+00:00, 60s, o=5000.25 h=5001.0 l=4999.5 c=5000.75 v=10)"


prices = st.floats(min_value=0.25, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(
    epoch=st.integers(min_value=0, max_value=4_000_000_000),
    seconds=st.integers(min_value=1, max_value=86_400),
    a=prices,
    b=prices,
    c=prices,
    d=prices,
    volume=st.integers(min_value=0, max_value=10**9),
)
def test_any_consistent_bar_is_accepted_and_keeps_its_fields(
    epoch: int, seconds: int, a: float, b: float, c: float, d: float, volume: int
) -> None:
    low, open_, close, high = sorted((a, b, c, d))
    bar = Bar.at_epoch(epoch, seconds, open_, high, low, close, volume)
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (open_, high, low, close, volume)
    assert bar.end_epoch - bar.epoch == seconds
    assert int(bar.end.timestamp()) == bar.end_epoch


@given(a=prices, b=prices)
def test_any_bar_with_open_or_close_outside_low_high_is_refused(a: float, b: float) -> None:
    assume(a != b)
    low, high = min(a, b), max(a, b)
    with pytest.raises(InvalidBar):
        Bar(T, 60, high * 2, high, low, low, 1)  # open above the high
    with pytest.raises(InvalidBar):
        Bar(T, 60, low, high, low, low / 2, 1)  # close below the low
    with pytest.raises(InvalidBar):
        Bar(T, 60, low, low, high, low, 1)  # low above the high
