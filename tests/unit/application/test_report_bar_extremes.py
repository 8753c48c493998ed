"""MAE/MFE read the extremes of each round trip's bars from :func:`bar_extremes`, all trips at once
in numpy; they equal a plain per-trip search over the price columns."""

from __future__ import annotations

import bisect
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from application.report import PriceBars, bar_extremes
from domain.position import ExitReason, RoundTrip
from domain.values import Side

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
EPOCH0 = int(T0.timestamp())


def _straightforward(trip: RoundTrip, prices: PriceBars) -> tuple[float, float] | None:
    lo = bisect.bisect_left(prices.starts, math.ceil(trip.entry_ts.timestamp()))
    hi = bisect.bisect_right(prices.starts, math.floor(trip.exit_ts.timestamp()) - prices.seconds)
    if hi <= lo:
        return None
    return min(prices.lows[lo:hi]), max(prices.highs[lo:hi])


def _trip(seq: int, entry: datetime, held: timedelta) -> RoundTrip:
    return RoundTrip(
        seq=seq,
        side=Side.LONG,
        qty=1,
        entry_ts=entry,
        entry_price=Decimal(5000),
        exit_ts=entry + held,
        exit_price=Decimal(5000),
        exit_reason=ExitReason.SIGNAL,
        pnl_ticks=0,
        gross_pnl=Decimal(0),
        commissions=Decimal(0),
    )


@settings(max_examples=300, deadline=None)
@given(
    seconds=st.sampled_from([5, 60, 300]),
    gaps=st.lists(st.integers(1, 4), min_size=0, max_size=60),
    ticks=st.lists(st.tuples(st.integers(-40, 40), st.integers(0, 8)), min_size=60, max_size=60),
    shapes=st.lists(
        st.tuples(
            st.integers(-600, 6000),  # entry, seconds after the first bar (before it too)
            st.integers(0, 3000),  # held, seconds
            st.integers(0, 999_999),  # microseconds: entries and exits off whole seconds
        ),
        max_size=20,
    ),
)
def test_bar_extremes_equal_a_per_trip_search(
    seconds: int,
    gaps: list[int],
    ticks: list[tuple[int, int]],
    shapes: list[tuple[int, int, int]],
) -> None:
    starts, at = [], EPOCH0
    for gap in gaps:  # bars with holes between them, as a session with halts has
        starts.append(at)
        at += gap * seconds
    lows = [5000 + 0.25 * move for move, _ in ticks[: len(starts)]]
    highs = [low + 0.25 * spread for low, (_, spread) in zip(lows, ticks, strict=False)]
    prices = PriceBars(
        starts=starts, seconds=seconds, opens=lows, highs=highs, lows=lows, closes=highs
    )
    trips = [
        _trip(
            seq,
            T0 + timedelta(seconds=start, microseconds=micro if micro % 2 else 0),
            timedelta(seconds=held, microseconds=micro // 3 if micro % 3 else 0),
        )
        for seq, (start, held, micro) in enumerate(shapes, start=1)
    ]
    expected = [_straightforward(t, prices) for t in trips]
    assert bar_extremes(trips, prices) == expected
    # A replay hands over its series' numpy arrays (entrypoints.replay.price_bars).
    arrays = PriceBars(
        starts=np.asarray(starts, dtype=np.int64),
        seconds=seconds,
        opens=np.asarray(lows, dtype=np.float64),
        highs=np.asarray(highs, dtype=np.float64),
        lows=np.asarray(lows, dtype=np.float64),
        closes=np.asarray(highs, dtype=np.float64),
    )
    assert bar_extremes(trips, arrays) == expected


def test_a_trip_holding_the_last_bar_reaches_the_end_of_the_columns() -> None:
    prices = PriceBars(
        starts=[EPOCH0, EPOCH0 + 60, EPOCH0 + 120],
        seconds=60,
        opens=[1.0, 2.0, 3.0],
        highs=[1.5, 2.5, 3.5],
        lows=[0.5, 1.75, 2.5],
        closes=[1.0, 2.0, 3.0],
    )
    trips = [
        _trip(1, T0 + timedelta(seconds=60), timedelta(seconds=120)),
        _trip(2, T0, timedelta()),
    ]
    assert bar_extremes(trips, prices) == [(1.75, 3.5), None]


def test_a_bar_straddling_the_entry_or_the_exit_is_left_out() -> None:
    prices = PriceBars(
        starts=[EPOCH0, EPOCH0 + 60, EPOCH0 + 120, EPOCH0 + 180],
        seconds=60,
        opens=[1.0, 2.0, 3.0, 4.0],
        highs=[1.5, 2.5, 3.5, 4.5],
        lows=[0.5, 1.5, 2.5, 3.5],
        closes=[1.0, 2.0, 3.0, 4.0],
    )
    half = timedelta(milliseconds=500)
    trips = [
        _trip(1, T0 + timedelta(seconds=60) + half, timedelta(seconds=120)),  # 60.5 to 180.5
        _trip(2, T0 + timedelta(seconds=59) + half, timedelta(seconds=121)),  # 59.5 to 180.5
        _trip(3, T0 + timedelta(seconds=60), timedelta(seconds=120) - half),  # 60 to 179.5
    ]
    assert bar_extremes(trips, prices) == [(2.5, 3.5), (1.5, 3.5), (1.5, 2.5)]
