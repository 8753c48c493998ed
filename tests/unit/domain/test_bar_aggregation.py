"""BarAggregator: clock-aligned strategy bars from finer bars, checked against a plain reference.

The reference groups clean, sorted input by ``floor(epoch / N)`` (cut at the session bounds when a
calendar is given) and takes first open, max high, min low, last close and summed volume. Real
recorded data drives the main checks: ES 1-minute bars and SPY 5-second bars from October 2013.
"""

from __future__ import annotations

import csv
import itertools
import random
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.aggregation import AggregationStats, BarAggregator
from domain.bar import Bar
from domain.calendar import CmeGlobexEquityCalendar, SessionCalendar
from domain.errors import CalendarCoverageError, DomainError

REPO = Path(__file__).resolve().parents[3]
ES_1MIN = REPO / "data" / "sample" / "es_1min_20131006_20131014.csv"
SPY_5S = REPO / "tests" / "support" / "data" / "spy_5s_20131007_20131011.csv"
ET = ZoneInfo("America/New_York")
FAR_FUTURE = 2**40


def et(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    """Epoch seconds of an America/New_York wall time."""
    return int(datetime(y, mo, d, h, mi, s, tzinfo=ET).timestamp())


def read_bars(path: Path, seconds: int) -> list[Bar]:
    assert path.exists(), f"recorded data {path} is missing"
    with path.open(newline="") as handle:
        return [
            Bar(
                datetime.fromisoformat(row["ts"]),
                seconds,
                float(row["open"]),
                float(row["high"]),
                float(row["low"]),
                float(row["close"]),
                int(row["volume"]),
            )
            for row in csv.DictReader(handle)
        ]


_CACHE: dict[Path, list[Bar]] = {}


def es_bars() -> list[Bar]:
    if ES_1MIN not in _CACHE:
        _CACHE[ES_1MIN] = read_bars(ES_1MIN, 60)
    return _CACHE[ES_1MIN]


def spy_bars() -> list[Bar]:
    if SPY_5S not in _CACHE:
        _CACHE[SPY_5S] = read_bars(SPY_5S, 5)
    return _CACHE[SPY_5S]


# ---------------------------------------------------------------- the reference


def bucket_of(bar: Bar, n: int, calendar: SessionCalendar | None) -> tuple[int, int] | None:
    """The (start, end) of the strategy bar ``bar`` belongs to, or None if it belongs to none."""
    start = bar.epoch - bar.epoch % n
    end = start + n
    if bar.end_epoch > end:
        return None
    if calendar is not None:
        try:
            session = calendar.session_at(bar.epoch)
        except CalendarCoverageError:
            return start, end
        if session is None:
            return None
        start, end = max(start, session.open_epoch), min(end, session.close_epoch)
        if bar.end_epoch > end:
            return None
    return start, end


def reference(bars: Sequence[Bar], n: int, calendar: SessionCalendar | None = None) -> list[Bar]:
    """Strategy bars from clean bars sorted by time, by plain grouping."""
    groups: dict[tuple[int, int], list[Bar]] = {}
    for bar in bars:
        key = bucket_of(bar, n, calendar)
        if key is not None:
            groups.setdefault(key, []).append(bar)
    return [
        Bar.at_epoch(
            start,
            end - start,
            members[0].open,
            max(b.high for b in members),
            min(b.low for b in members),
            members[-1].close,
            sum(b.volume for b in members),
        )
        for (start, end), members in groups.items()
    ]


def count_gaps(bars: Sequence[Bar]) -> int:
    return sum(1 for a, b in itertools.pairwise(bars) if b.epoch > a.end_epoch)


def run(
    agg: BarAggregator, bars: Iterable[Bar], *, with_close_before: bool = False
) -> list[tuple[int, Bar]]:
    """Feed ``bars``; returns (index of the input bar at which it came out, emitted bar)."""
    out: list[tuple[int, Bar]] = []
    for i, bar in enumerate(bars):
        if with_close_before:
            closed = agg.close_before(bar.epoch)
            if closed is not None:
                out.append((i, closed))
        out += [(i, b) for b in agg.add(bar)]
    return out


def emitted(agg: BarAggregator, bars: Iterable[Bar], *, flush: bool = True) -> list[Bar]:
    out = [b for _, b in run(agg, bars)]
    if flush:
        last = agg.close_before(FAR_FUTURE)
        if last is not None:
            out.append(last)
    return out


def minute_bars(start: int, count: int, *, step: int = 60, seconds: int = 60) -> list[Bar]:
    """``count`` bars from epoch ``start``, prices walking on the 0.25 grid, volumes varying."""
    bars = []
    price = 5000.0
    for i in range(count):
        move = ((i * 7) % 5 - 2) * 0.25
        o, c = price, price + move
        bars.append(
            Bar.at_epoch(start + i * step, seconds, o, max(o, c) + 0.25, min(o, c) - 0.5, c, 10 + i)
        )
        price = c
    return bars


# ---------------------------------------------------------------- real data against the reference


@pytest.mark.parametrize("n", [120, 300, 600, 900, 1800, 3600])
def test_es_one_minute_bars_aggregate_to_the_reference(n: int) -> None:
    bars = es_bars()
    assert len(bars) == 8198
    agg = BarAggregator(n)
    out = emitted(agg, bars)
    expected = reference(bars, n)
    assert out == expected
    assert all(b.seconds == n and b.epoch % n == 0 for b in out)
    assert sum(b.volume for b in out) == sum(b.volume for b in bars) == 6_552_028
    assert agg.stats == AggregationStats(
        bars_in=len(bars), bars_out=len(expected), gaps=count_gaps(bars)
    )


def test_es_five_minute_bars_have_known_values() -> None:
    out = emitted(BarAggregator(300), es_bars())
    first = out[0]
    # 2013-10-06T22:00Z .. 22:04Z: the Sunday evening open.
    assert first.ts == datetime.fromisoformat("2013-10-06T22:00:00+00:00")
    assert (first.open, first.seconds) == (1676.75, 300)
    assert out[-1].ts == datetime.fromisoformat("2013-10-14T23:55:00+00:00")
    # The weekend: the last Friday bar and the first Monday bar are consecutive outputs.
    friday = [b for b in out if b.ts.date().isoformat() == "2013-10-11"][-1]
    monday = out[out.index(friday) + 1]
    assert friday.ts.isoformat() == "2013-10-11T21:10:00+00:00"
    assert monday.ts.isoformat() == "2013-10-14T00:00:00+00:00"
    # 21:10..21:14 rows of the file, summed by hand.
    assert (friday.open, friday.high, friday.low, friday.close) == (1700.0, 1700.25, 1699.5, 1700.0)
    assert friday.volume == 114 + 34 + 55 + 44 + 678
    assert (monday.open, monday.high, monday.low, monday.close) == (1688.0, 1688.0, 1686.5, 1686.5)


def test_each_bucket_is_emitted_by_the_bar_that_completes_it_else_by_the_next_bucket() -> None:
    bars = es_bars()
    n = 300
    # Where each bucket must come out: at its completing bar, else at the first bar of a later one.
    due: dict[int, int] = {}
    for i, bar in enumerate(bars):
        start = bar.epoch - bar.epoch % n
        if bar.end_epoch == start + n:
            due[start] = i
        elif i + 1 < len(bars) and bars[i + 1].epoch >= start + n:
            due[start] = i + 1
    timed = run(BarAggregator(n), bars)
    assert {b.epoch: i for i, b in timed} == due
    # The completing bar is the one whose end is the bucket's end.
    completed_on_time = sum(1 for i, b in timed if bars[i].end_epoch == b.end_epoch)
    assert completed_on_time == sum(1 for b in bars if b.end_epoch % n == 0)


def test_close_before_emits_as_soon_as_time_passes_the_bucket() -> None:
    bars = es_bars()
    n = 300
    agg = BarAggregator(n)
    timed = run(agg, bars, with_close_before=True)
    assert [b for _, b in timed] == reference(bars, n)
    for i, b in timed:
        # Never late: either this bar completed it or this bar starts at or after its end.
        assert bars[i].end_epoch == b.end_epoch or bars[i].epoch >= b.end_epoch
        # Never early: no earlier bar had reached its end.
        assert i == 0 or bars[i - 1].end_epoch <= b.end_epoch


def test_close_before_is_exact_at_the_bucket_end() -> None:
    agg = BarAggregator(300)
    start = et(2025, 3, 4, 10, 0)
    assert agg.close_before(FAR_FUTURE) is None  # nothing open
    for bar in minute_bars(start, 3):
        assert agg.add(bar) == ()
    assert agg.close_before(start + 299) is None
    out = agg.close_before(start + 300)
    assert out is not None
    assert (out.epoch, out.seconds, out.volume) == (start, 300, 10 + 11 + 12)
    assert agg.close_before(FAR_FUTURE) is None  # emitted once
    assert agg.stats.bars_out == 1


@pytest.mark.parametrize("n", [60, 300, 600])
def test_spy_five_second_bars_aggregate_to_the_reference(n: int) -> None:
    bars = spy_bars()
    assert len(bars) == 31_457
    agg = BarAggregator(n)
    out = emitted(agg, bars)
    assert out == reference(bars, n)
    assert agg.stats == AggregationStats(
        bars_in=len(bars), bars_out=len(out), gaps=count_gaps(bars)
    )


def test_bars_already_at_the_strategy_size_pass_through_untouched() -> None:
    five = reference(es_bars(), 300)
    agg = BarAggregator(300)
    timed = run(agg, five)
    assert [i for i, _ in timed] == list(range(len(five)))
    assert all(out is bar for (_, out), bar in zip(timed, five, strict=True))
    assert agg.close_before(FAR_FUTURE) is None
    assert agg.stats == AggregationStats(
        bars_in=len(five), bars_out=len(five), gaps=count_gaps(five)
    )


def test_a_pass_through_bar_closes_the_open_finer_bucket_first() -> None:
    start = et(2025, 3, 4, 10, 0)
    agg = BarAggregator(300)
    agg.add(minute_bars(start, 1)[0])
    whole = Bar.at_epoch(start + 300, 300, 5000.0, 5001.0, 4999.0, 5000.5, 7)
    out = agg.add(whole)
    assert [b.epoch for b in out] == [start, start + 300]
    assert out[1] is whole


def test_uncovered_data_with_a_calendar_is_aggregated_without_halts() -> None:
    # The 2013 sample moved back 270 weeks, to October 2008: before the calendar's first year.
    bars = [
        Bar.at_epoch(b.epoch - 270 * 7 * 86_400, 60, b.open, b.high, b.low, b.close, b.volume)
        for b in es_bars()
    ]
    plain = BarAggregator(300)
    with_calendar = BarAggregator(300, CmeGlobexEquityCalendar())
    assert emitted(with_calendar, bars) == emitted(plain, bars)
    expected = plain.stats.as_dict() | {"uncovered": len(bars)}
    assert with_calendar.stats.as_dict() == expected


def test_the_2013_sample_aggregates_under_its_own_calendar_with_nothing_dropped() -> None:
    """October 2013: the 16:15-16:30 ET halt and the 17:15 ET close, both on 5-minute boundaries,
    so no bar is dropped or cut; the halts are not counted as gaps."""
    bars = es_bars()
    plain = BarAggregator(300)
    with_calendar = BarAggregator(300, CmeGlobexEquityCalendar())
    assert emitted(with_calendar, bars) == emitted(plain, bars)
    stats = with_calendar.stats
    assert (stats.uncovered, stats.outside_session_dropped, stats.cut_at_halt) == (0, 0, 0)
    assert stats.gaps < plain.stats.gaps


# ---------------------------------------------------------------- irregular input, counted

START = et(2025, 3, 4, 10, 0)  # a Tuesday 10:00 ET, a 5-minute boundary


def one(offset: int, close: float = 5000.0, *, volume: int = 1, seconds: int = 60) -> Bar:
    return Bar.at_epoch(START + offset, seconds, close, close + 0.5, close - 0.5, close, volume)


def test_a_gap_is_counted_and_the_bucket_built_from_the_bars_that_arrived() -> None:
    agg = BarAggregator(300)
    bars = [one(0, 1.0), one(60, 2.0), one(180, 4.0), one(240, 5.0)]  # 02:00 missing
    out = emitted(agg, bars)
    assert out == [Bar.at_epoch(START, 300, 1.0, 5.5, 0.5, 5.0, 4)]
    assert agg.stats.gaps == 1


def test_a_gap_spanning_buckets_counts_once_and_leaves_no_empty_bar() -> None:
    agg = BarAggregator(300)
    out = emitted(agg, [one(0), one(60), one(1200), one(1260)])
    assert [b.epoch for b in out] == [START, START + 1200]
    assert agg.stats.gaps == 1


def test_an_identical_duplicate_in_the_open_bucket_is_dropped_and_counted() -> None:
    agg = BarAggregator(300)
    out = emitted(agg, [one(0, 1.0), one(60, 2.0), one(60, 2.0), one(0, 1.0), one(120, 3.0)])
    assert out == [Bar.at_epoch(START, 300, 1.0, 3.5, 0.5, 3.0, 3)]
    assert (agg.stats.duplicates, agg.stats.conflicting_duplicates) == (2, 0)
    assert agg.stats.out_of_order_merged == 0


def test_a_conflicting_duplicate_is_counted_and_the_first_version_kept() -> None:
    agg = BarAggregator(300)
    out = emitted(agg, [one(0, 1.0), one(60, 2.0), one(60, 9.0, volume=50), one(120, 3.0)])
    assert out == [Bar.at_epoch(START, 300, 1.0, 3.5, 0.5, 3.0, 3)]
    assert (agg.stats.duplicates, agg.stats.conflicting_duplicates) == (1, 1)


def test_a_duplicate_of_the_bucket_just_emitted_is_a_duplicate_not_a_late_bar() -> None:
    agg = BarAggregator(300)
    first = [one(i * 60, float(i + 1)) for i in range(5)]
    assert len(agg.add(first[0])) == 0
    for bar in first[1:]:
        agg.add(bar)
    assert agg.stats.bars_out == 1  # the 04:00 bar completed it
    assert agg.add(one(240, 5.0)) == ()  # identical, bucket already closed, nothing open
    assert agg.add(one(300, 6.0)) == ()  # opens the next bucket
    assert agg.add(one(60, 7.0)) == ()  # conflicting, of the bucket just before the open one
    assert agg.add(one(0, 1.0)) == ()
    assert (agg.stats.duplicates, agg.stats.conflicting_duplicates) == (3, 1)
    assert agg.stats.late_dropped == 0
    out = agg.close_before(FAR_FUTURE)
    assert out == Bar.at_epoch(START + 300, 300, 6.0, 6.5, 5.5, 6.0, 1)


def test_a_duplicate_of_a_pass_through_bar_is_counted() -> None:
    agg = BarAggregator(300)
    whole = one(0, 1.0, seconds=300)
    assert agg.add(whole) == (whole,)
    assert agg.add(one(0, 1.0, seconds=300)) == ()
    assert agg.add(one(0, 2.0, seconds=300)) == ()
    assert (agg.stats.duplicates, agg.stats.conflicting_duplicates, agg.stats.bars_out) == (2, 1, 1)


def test_out_of_order_bars_in_the_open_bucket_are_merged_in_their_place() -> None:
    agg = BarAggregator(300)
    bars = [
        Bar.at_epoch(START + 120, 60, 3.0, 3.0, 3.0, 3.0, 3),
        Bar.at_epoch(START + 180, 60, 4.0, 9.0, 4.0, 4.0, 4),
        Bar.at_epoch(START + 0, 60, 1.0, 1.0, 0.5, 1.0, 1),  # earliest: gives the open
        Bar.at_epoch(START + 60, 60, 2.0, 2.0, 2.0, 2.0, 2),
        Bar.at_epoch(START + 240, 60, 5.0, 5.5, 5.0, 5.5, 5),  # latest: gives the close
    ]
    timed = run(agg, bars)
    assert timed == [(4, Bar.at_epoch(START, 300, 1.0, 9.0, 0.5, 5.5, 15))]
    assert agg.stats.out_of_order_merged == 2
    assert (agg.stats.late_dropped, agg.stats.duplicates) == (0, 0)


def test_a_bar_for_a_bucket_already_emitted_is_dropped_as_late() -> None:
    agg = BarAggregator(300)
    emitted(agg, [one(0), one(60), one(600)], flush=False)  # bucket 00:00 emitted, 10:00 open
    assert agg.add(one(120)) == ()  # belongs to the emitted bucket, never seen
    assert agg.add(one(360)) == ()  # belongs to 05:00, skipped over (a gap), now too late
    assert agg.stats.late_dropped == 2
    assert agg.stats.duplicates == 0
    out = agg.close_before(FAR_FUTURE)
    assert out == one(600, seconds=300)


def test_a_late_bar_with_nothing_open_is_dropped() -> None:
    agg = BarAggregator(300)
    for i in range(5):
        agg.add(one(i * 60))
    assert agg.add(one(-60)) == ()  # a bucket before the emitted one
    assert agg.stats.late_dropped == 1


def test_the_completing_bar_closes_the_bucket_so_a_bar_after_it_is_late() -> None:
    # Emission as soon as the window is complete has this price: an in-bucket bar that comes after
    # the bar ending the bucket finds the bucket gone.
    agg = BarAggregator(300)
    out = emitted(agg, [one(0, 1.0), one(240, 5.0), one(120, 3.0)])
    assert out == [Bar.at_epoch(START, 300, 1.0, 5.5, 0.5, 5.0, 2)]
    assert agg.stats.late_dropped == 1


MISALIGNED = [
    ("1 min straddling 05:00", 270, 60),
    ("1 min one second past 05:00", 241, 60),
    ("5 s straddling 05:00", 298, 5),
    ("5 min not on the clock", 60, 300),
]


@pytest.mark.parametrize(
    ("offset", "seconds"), [m[1:] for m in MISALIGNED], ids=[m[0] for m in MISALIGNED]
)
def test_a_bar_straddling_a_bucket_boundary_is_dropped_and_counted(
    offset: int, seconds: int
) -> None:
    agg = BarAggregator(300)
    assert agg.add(one(offset, seconds=seconds)) == ()
    assert agg.close_before(FAR_FUTURE) is None
    assert agg.stats.misaligned_dropped == 1
    assert agg.stats.bars_out == 0


def test_a_bar_off_its_own_grid_but_inside_one_bucket_is_merged() -> None:
    agg = BarAggregator(300)
    out = emitted(agg, [one(0), one(90, 2.0), one(240)])
    assert len(out) == 1
    assert out[0].volume == 3
    assert agg.stats.misaligned_dropped == 0


@pytest.mark.parametrize(
    ("n", "seconds"), [(300, 600), (300, 3600), (300, 120), (300, 90), (600, 7), (60, 120)]
)
def test_input_coarser_than_or_not_dividing_the_strategy_size_raises(n: int, seconds: int) -> None:
    agg = BarAggregator(n)
    with pytest.raises(DomainError, match=f"input bars of {seconds}s cannot build {n}s bars"):
        agg.add(Bar.at_epoch(START, seconds, 1.0, 1.0, 1.0, 1.0, 1))


@pytest.mark.parametrize("n", [0, -300, 7 * 60, 7200, 3599, 86_400, 45 * 60])
def test_a_strategy_size_that_does_not_divide_an_hour_raises(n: int) -> None:
    with pytest.raises(DomainError, match=f"strategy bar size {n}s must divide an hour"):
        BarAggregator(n)


@pytest.mark.parametrize("n", [1, 5, 60, 300, 600, 900, 1200, 1800, 3600])
def test_a_strategy_size_dividing_an_hour_is_accepted(n: int) -> None:
    assert BarAggregator(n).bar_seconds == n


# ---------------------------------------------------------------- property: disorder changes counts only


@st.composite
def disordered_feeds(draw: st.DrawFn) -> tuple[int, list[Bar], list[Bar], int]:
    """(n, clean sorted bars, the same with in-bucket shuffles and injected duplicates, injected)."""
    n, s = draw(st.sampled_from([(300, 5), (300, 60), (300, 100), (600, 60), (600, 150), (60, 5)]))
    slots = n // s
    n_buckets = draw(st.integers(min_value=1, max_value=8))
    bucket_ids = sorted(draw(st.sets(st.integers(0, 30), min_size=n_buckets, max_size=n_buckets)))
    base = START - START % n
    clean: list[list[Bar]] = []
    for k in bucket_ids:
        chosen = sorted(
            draw(st.sets(st.integers(0, slots - 1), min_size=1, max_size=min(slots, 8)))
        )
        members = []
        for j in chosen:
            o = 4000 + draw(st.integers(0, 40)) * 0.25
            c = 4000 + draw(st.integers(0, 40)) * 0.25
            hi = max(o, c) + draw(st.integers(0, 4)) * 0.25
            lo = min(o, c) - draw(st.integers(0, 4)) * 0.25
            members.append(
                Bar.at_epoch(base + k * n + j * s, s, o, hi, lo, c, draw(st.integers(0, 9)))
            )
        clean.append(members)
    rnd = random.Random(draw(st.integers(0, 2**32)))
    feed: list[Bar] = []
    for members in clean:
        shuffled = list(members)
        # The bar that ends the bucket closes it at once, so it must stay last (see the test above).
        completing = shuffled.pop() if shuffled[-1].end_epoch % n == 0 else None
        rnd.shuffle(shuffled)
        feed += shuffled + ([completing] if completing is not None else [])
    injected = draw(st.integers(0, 6))
    for _ in range(injected):
        pos = rnd.randrange(len(feed))
        original = feed[pos]
        if rnd.random() < 0.5:
            copy = original
        else:
            copy = Bar.at_epoch(
                original.epoch, original.seconds, 1.0, 2.0, 0.5, 1.5, original.volume + 1
            )
        feed.insert(rnd.randint(pos + 1, len(feed)), copy)
    return n, [b for members in clean for b in members], feed, injected


@settings(max_examples=300)
@given(disordered_feeds())
def test_duplicates_and_in_bucket_shuffles_never_change_the_emitted_bars(
    case: tuple[int, list[Bar], list[Bar], int],
) -> None:
    n, clean, feed, injected = case
    expected = reference(clean, n)
    assert emitted(BarAggregator(n), clean) == expected
    agg = BarAggregator(n)
    assert emitted(agg, feed) == expected
    stats = agg.stats
    assert stats.bars_in == len(feed)
    assert stats.bars_out == len(expected)
    assert stats.duplicates + stats.late_dropped == injected
    assert stats.conflicting_duplicates <= stats.duplicates
    assert stats.misaligned_dropped == stats.outside_session_dropped == 0


# ---------------------------------------------------------------- sessions: never across a halt


@pytest.fixture(scope="module")
def cme() -> CmeGlobexEquityCalendar:
    return CmeGlobexEquityCalendar()


def span(start: int, end: int, *, step: int = 60) -> list[Bar]:
    """Bars of ``step`` seconds covering [start, end)."""
    return minute_bars(start, (end - start) // step, step=step, seconds=step)


def assert_within_sessions(out: Sequence[Bar], calendar: CmeGlobexEquityCalendar) -> None:
    for bar in out:
        session = calendar.session_at(bar.epoch)
        assert session is not None, f"{bar} starts while the market is closed"
        assert bar.end_epoch <= session.close_epoch, f"{bar} runs past the close"


EARLY_CLOSE = et(2025, 11, 28, 13, 15)  # Black Friday 2025: early close at 13:15 ET


def test_a_bucket_is_cut_at_an_early_close_and_emitted_by_the_bar_ending_at_the_close(
    cme: CmeGlobexEquityCalendar,
) -> None:
    before = span(et(2025, 11, 28, 12, 50), EARLY_CLOSE)
    closed = span(EARLY_CLOSE, et(2025, 11, 28, 13, 30))
    sunday = span(et(2025, 11, 30, 18, 0), et(2025, 11, 30, 18, 20))  # weekend, then Sunday open
    bars = before + closed + sunday
    agg = BarAggregator(600, cme)
    timed = run(agg, bars)
    out = [b for _, b in timed]
    assert [(b.epoch, b.seconds) for b in out] == [
        (et(2025, 11, 28, 12, 50), 600),
        (et(2025, 11, 28, 13, 0), 600),
        (et(2025, 11, 28, 13, 10), 300),  # cut at 13:15
        (et(2025, 11, 30, 18, 0), 600),
        (et(2025, 11, 30, 18, 10), 600),
    ]
    cut_at = next(i for i, b in timed if b.seconds == 300)
    assert bars[cut_at].end_epoch == EARLY_CLOSE
    assert out == reference(bars, 600, cme)
    assert_within_sessions(out, cme)
    assert agg.stats == AggregationStats(
        bars_in=len(bars), bars_out=5, outside_session_dropped=len(closed), cut_at_halt=1
    )


def test_a_cut_bucket_missing_its_last_bar_comes_out_at_the_close(
    cme: CmeGlobexEquityCalendar,
) -> None:
    bars = span(et(2025, 11, 28, 13, 10), EARLY_CLOSE - 5, step=5)  # 13:14:55 is missing
    agg = BarAggregator(600, cme)
    assert run(agg, bars) == []
    assert agg.close_before(EARLY_CLOSE - 1) is None
    out = agg.close_before(EARLY_CLOSE)
    assert out is not None
    assert (out.epoch, out.seconds) == (et(2025, 11, 28, 13, 10), 300)
    assert out == reference(bars, 600, cme)[0]


def test_a_twenty_minute_bucket_is_cut_at_an_early_close(cme: CmeGlobexEquityCalendar) -> None:
    bars = span(et(2025, 12, 24, 12, 40), et(2025, 12, 24, 13, 40))  # Christmas Eve 13:15 close
    agg = BarAggregator(1200, cme)
    out = emitted(agg, bars)
    assert [(b.epoch, b.seconds) for b in out] == [
        (et(2025, 12, 24, 12, 40), 1200),
        (et(2025, 12, 24, 13, 0), 900),
    ]
    assert out == reference(bars, 1200, cme)
    assert agg.stats.outside_session_dropped == 25
    assert agg.stats.cut_at_halt == 1


def test_bars_straddling_the_close_are_dropped_even_when_the_bucket_is_not(
    cme: CmeGlobexEquityCalendar,
) -> None:
    agg = BarAggregator(600, cme)
    t = et(2025, 11, 28, 13, 10)
    assert agg.add(Bar.at_epoch(t, 60, 1.0, 1.0, 1.0, 1.0, 1)) == ()
    straddling = Bar.at_epoch(EARLY_CLOSE - 30, 60, 2.0, 2.0, 2.0, 2.0, 1)  # 13:14:30-13:15:30
    assert agg.add(straddling) == ()
    whole = Bar.at_epoch(t, 600, 1.0, 1.0, 1.0, 1.0, 1)  # a 10-minute bar across the close
    assert agg.add(whole) == ()
    assert agg.stats.outside_session_dropped == 2
    out = agg.close_before(EARLY_CLOSE)
    assert out == Bar.at_epoch(t, 300, 1.0, 1.0, 1.0, 1.0, 1)


def test_the_daily_halt_ends_buckets_drops_its_bars_and_is_not_a_gap(
    cme: CmeGlobexEquityCalendar,
) -> None:
    day = (2025, 3, 4)
    before = span(et(*day, 16, 40), et(*day, 16, 57))  # 16:57-17:00 missing: no completing bar
    halt = span(et(*day, 17, 0), et(*day, 18, 0))
    after = span(et(*day, 18, 0), et(*day, 18, 20))
    bars = before + halt + after
    agg = BarAggregator(600, cme)
    timed = run(agg, bars)
    out = [b for _, b in timed]
    assert [(b.epoch, b.seconds) for b in out] == [
        (et(*day, 16, 40), 600),
        (et(*day, 16, 50), 600),
        (et(*day, 18, 0), 600),
        (et(*day, 18, 10), 600),
    ]
    # The 16:50 bucket waited for a later bar; the halt's bars did not close it.
    assert bars[timed[1][0]].epoch == et(*day, 18, 0)
    assert out == reference(bars, 600, cme)[:4]
    assert_within_sessions(out, cme)
    assert agg.stats.outside_session_dropped == 60
    assert agg.stats.gaps == 0
    assert agg.stats.cut_at_halt == 0


def test_a_gap_inside_a_session_counts_but_one_across_a_halt_does_not(
    cme: CmeGlobexEquityCalendar,
) -> None:
    day = (2025, 3, 4)
    bars = [
        *span(et(*day, 16, 50), et(*day, 16, 55)),
        *span(et(*day, 18, 0), et(*day, 18, 2)),  # across the halt: no gap
        *span(et(*day, 18, 4), et(*day, 18, 6)),  # 18:02-18:04 missing: a gap
    ]
    agg = BarAggregator(300, cme)
    emitted(agg, bars)
    assert agg.stats.gaps == 1


def test_a_weekend_is_not_a_gap_and_its_bars_are_dropped(cme: CmeGlobexEquityCalendar) -> None:
    # Friday 2025-03-07 close, Saturday bars (none should exist), Sunday 03-09 open after the DST
    # switch (18:00 EDT).
    friday = span(et(2025, 3, 7, 16, 50), et(2025, 3, 7, 17, 0))
    saturday = span(et(2025, 3, 8, 12, 0), et(2025, 3, 8, 12, 10))
    sunday = span(et(2025, 3, 9, 18, 0), et(2025, 3, 9, 18, 10))
    bars = friday + saturday + sunday
    agg = BarAggregator(300, cme)
    out = emitted(agg, bars)
    assert [b.epoch for b in out] == [
        et(2025, 3, 7, 16, 50),
        et(2025, 3, 7, 16, 55),
        et(2025, 3, 9, 18, 0),
        et(2025, 3, 9, 18, 5),
    ]
    assert out == reference(bars, 300, cme)
    assert agg.stats.outside_session_dropped == len(saturday)
    assert agg.stats.gaps == 0
    assert agg.stats.uncovered == 0


SPECIAL_DAYS = [
    # label, first bar, last bar end (ET), strategy size
    ("holiday halt 13:00, 10 min", (2025, 7, 4, 12, 30), (2025, 7, 4, 13, 30), 600),
    ("early close 13:15, 30 min", (2025, 7, 3, 12, 30), (2025, 7, 3, 18, 40), 1800),
    ("early close 13:15, 1 h", (2025, 11, 28, 11, 0), (2025, 11, 28, 14, 0), 3600),
    ("abbreviated 09:15, 10 min", (2026, 4, 3, 8, 30), (2026, 4, 3, 10, 0), 600),
    ("abbreviated 09:15, 1 h", (2026, 4, 3, 7, 0), (2026, 4, 3, 10, 0), 3600),
    ("mourning-day halt 09:30, 1 h", (2025, 1, 9, 8, 0), (2025, 1, 9, 18, 30), 3600),
    ("Christmas closed, 15 min", (2025, 12, 24, 12, 0), (2025, 12, 25, 19, 0), 900),
    ("daily halt, 20 min", (2026, 11, 17, 16, 0), (2026, 11, 17, 19, 0), 1200),
    ("DST fall-back weekend, 5 min", (2025, 10, 31, 16, 30), (2025, 11, 2, 19, 0), 300),
]


@pytest.mark.parametrize(
    ("first", "last", "n"), [d[1:] for d in SPECIAL_DAYS], ids=[d[0] for d in SPECIAL_DAYS]
)
def test_around_halts_and_closures_the_output_equals_the_session_cut_reference(
    cme: CmeGlobexEquityCalendar,
    first: tuple[int, int, int, int, int],
    last: tuple[int, int, int, int, int],
    n: int,
) -> None:
    bars = span(et(*first), et(*last))
    agg = BarAggregator(n, cme)
    out = emitted(agg, bars)
    expected = reference(bars, n, cme)
    assert out == expected
    assert_within_sessions(out, cme)
    in_session = [b for b in bars if bucket_of(b, n, cme) is not None]
    assert agg.stats.outside_session_dropped == len(bars) - len(in_session)
    assert agg.stats.cut_at_halt == sum(1 for b in expected if b.seconds < n)
    assert agg.stats.gaps == 0
    assert agg.stats.uncovered == 0


def test_the_one_hour_bucket_on_the_mourning_day_is_cut_at_0930(
    cme: CmeGlobexEquityCalendar,
) -> None:
    bars = span(et(2025, 1, 9, 8, 0), et(2025, 1, 9, 10, 0))
    out = emitted(BarAggregator(3600, cme), bars)
    assert [(b.epoch, b.seconds) for b in out] == [
        (et(2025, 1, 9, 8, 0), 3600),
        (et(2025, 1, 9, 9, 0), 1800),
    ]


def test_bars_past_the_calendar_are_aggregated_and_counted_as_uncovered(
    cme: CmeGlobexEquityCalendar,
) -> None:
    covered = span(et(2027, 12, 31, 16, 50), et(2027, 12, 31, 17, 0))
    halt = span(et(2027, 12, 31, 17, 0), et(2027, 12, 31, 17, 10))
    uncovered = span(et(2027, 12, 31, 18, 0), et(2027, 12, 31, 18, 10))
    agg = BarAggregator(300, cme)
    out = emitted(agg, covered + halt + uncovered)
    assert [b.epoch for b in out] == [
        et(2027, 12, 31, 16, 50),
        et(2027, 12, 31, 16, 55),
        et(2027, 12, 31, 18, 0),
        et(2027, 12, 31, 18, 5),
    ]
    assert agg.stats.uncovered == len(uncovered)
    assert agg.stats.outside_session_dropped == len(halt)
    # Without halt knowledge past the table, 17:10-18:00 is an ordinary gap.
    assert agg.stats.gaps == 1


# ------------------------------------------ pass-through: what the fast replay may skip in bulk

# Strategy-sized bars over days holding a weekend, the 2013 16:15-16:30 ET halt, an early close and
# a holiday (2024-07-03/04), and the end of the calendar's table (2027-12-31).
PASS_THROUGH_SPANS = [
    (et(2013, 10, 10, 12, 0), et(2013, 10, 14, 12, 0)),
    (et(2024, 7, 2, 12, 0), et(2024, 7, 6, 12, 0)),
    (et(2027, 12, 30, 12, 0), et(2028, 1, 2, 12, 0)),
]


@settings(max_examples=60, deadline=None)
@given(
    span_index=st.integers(0, len(PASS_THROUGH_SPANS) - 1),
    n=st.sampled_from([300, 900, 1800, 3600]),
    keep=st.floats(0.05, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_pass_through_runs_say_which_bars_the_calendar_lets_through_untouched(
    cme: CmeGlobexEquityCalendar, span_index: int, n: int, keep: float, seed: int
) -> None:
    start, end = PASS_THROUGH_SPANS[span_index]
    rng = random.Random(seed)
    first = start - start % n
    bars = [one(t - first, seconds=n) for t in range(first, end, n) if rng.random() < keep]
    bars = [Bar.at_epoch(b.epoch + first, n, b.open, b.high, b.low, b.close, 1) for b in bars]
    runs = BarAggregator(n, cme).pass_through_runs([b.epoch for b in bars], n)
    # Runs cover the bars in order, and two runs in a row never agree.
    assert [r.start for r in runs] == [0, *(r.stop for r in runs[:-1])]
    assert (runs[-1].stop if runs else 0) == len(bars)
    assert all(a.passes != b.passes for a, b in itertools.pairwise(runs))
    # A bar of a passing run comes out of add() as it went in; any other is dropped or uncovered.
    agg = BarAggregator(n, cme)
    for i, j, passes, sessions in runs:
        # A passing run names the session of each of its bars, from the first on.
        assert not passes or sessions[0][0] == i
        for k, bar in enumerate(bars[i:j], start=i):
            if passes:
                _, open_, close = next(s for s in reversed(sessions) if s[0] <= k)
                assert open_ <= bar.epoch
                assert bar.end_epoch <= close
            uncovered = agg.stats.uncovered
            out = agg.add(bar)
            if passes:
                assert len(out) == 1
                assert out[0] is bar
            else:
                assert out == () or agg.stats.uncovered == uncovered + 1


def test_pass_through_runs_without_a_calendar_are_one_run() -> None:
    assert BarAggregator(300).pass_through_runs([0, 300, 900], 300) == [
        (0, 3, True, ((0, 0, 2**63 - 1),))
    ]
    assert BarAggregator(300).pass_through_runs([], 300) == []


def test_the_pass_through_window_is_the_session_last_entered(
    cme: CmeGlobexEquityCalendar,
) -> None:
    assert BarAggregator(300).pass_through_window() == (0, 2**63 - 1)
    agg = BarAggregator(300, cme)
    start, end = agg.pass_through_window()
    assert end <= start  # no session entered yet: every bar must be added
    agg.add(Bar.at_epoch(et(2024, 7, 2, 10, 0), 300, 5000.0, 5000.0, 5000.0, 5000.0, 1))
    session = cme.session_at(et(2024, 7, 2, 10, 0))
    assert session is not None
    assert agg.pass_through_window() == (session.open_epoch, session.close_epoch)
    agg.add(Bar.at_epoch(et(2024, 7, 2, 17, 15), 300, 5000.0, 5000.0, 5000.0, 5000.0, 1))
    start, end = agg.pass_through_window()
    assert end <= start  # a bar in the daily halt: the market is closed
    finer = BarAggregator(300, cme)
    finer.add(Bar.at_epoch(et(2024, 7, 2, 10, 0), 60, 5000.0, 5000.0, 5000.0, 5000.0, 1))
    start, end = finer.pass_through_window()
    assert end <= start  # a bucket is open


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(3, 60),
    cut=st.data(),
    missing=st.sets(st.integers(0, 59), max_size=20),
)
def test_bars_noted_as_passed_through_leave_the_state_adding_them_would(
    cme: CmeGlobexEquityCalendar, count: int, cut: st.DataObject, missing: set[int]
) -> None:
    open_ = et(2024, 7, 1, 18, 0)  # a session of 23 hours: every bar below lies in it
    bars = [
        Bar.at_epoch(open_ + 300 * k, 300, 5000.0, 5000.25, 4999.75, 5000.0, k)
        for k in range(count)
        if k not in missing or k == 0
    ]
    i = cut.draw(st.integers(1, len(bars)))
    j = cut.draw(st.integers(i, len(bars)))
    every = BarAggregator(300, cme)
    for bar in bars:
        every.add(bar)
    noted = BarAggregator(300, cme)
    for bar in bars[:i]:
        noted.add(bar)
    if j > i:
        start, end = noted.pass_through_window()
        assert start <= bars[i].epoch
        assert bars[j - 1].end_epoch <= end
        assert noted.accepts_pass_through(bars[i].epoch)
        inner_gaps = sum(b.epoch > a.end_epoch for a, b in itertools.pairwise(bars[i:j]))
        noted.note_pass_through(j - i, bars[i].epoch, inner_gaps, bars[j - 1])
    for bar in bars[j:]:
        noted.add(bar)
    assert noted.stats == every.stats
    assert noted.last_end == every.last_end
    # Both now take a duplicate of the last bar, and a late bar, the same way.
    for late in (bars[-1], bars[0]):
        assert noted.add(late) == every.add(late)
    assert noted.stats == every.stats


@pytest.mark.parametrize(
    ("size", "first", "count", "noted", "missing"),
    [
        # 1-minute bars into 5-minute bars, two bars missing inside the noted strategy bars.
        (300, et(2024, 7, 2, 10, 0), 40, (2, 6), {13, 21}),
        # 1-minute bars into 1-hour bars in the 2013 session that reopened at 16:30 ET after the
        # 16:15 halt and closed at 17:15: the noted strategy bar is cut at the close.
        (3600, et(2013, 10, 10, 16, 30), 45, (1, 2), set()),
    ],
)
def test_finer_bars_noted_as_whole_strategy_bars_leave_the_state_adding_them_would(
    cme: CmeGlobexEquityCalendar,
    size: int,
    first: int,
    count: int,
    noted: tuple[int, int],
    missing: set[int],
) -> None:
    bars = [
        Bar.at_epoch(first + 60 * k, 60, 5000.0, 5000.25, 4999.75, 5000.0, k + 1)
        for k in range(count)
        if k not in missing
    ]
    every = BarAggregator(size, cme)
    emitted_bars = [out for bar in bars for out in every.add(bar)]
    buckets = [b.epoch for b in emitted_bars]
    k, j = noted
    session = cme.session_at(first)
    assert session is not None
    bounds = [*buckets, session.close_epoch]
    inside = [b for b in bars if bounds[k] <= b.epoch < bounds[j]]
    before = [b for b in bars if b.epoch < bounds[k]]
    after = [b for b in bars if b.epoch >= bounds[j]]
    noted_agg = BarAggregator(size, cme)
    for bar in before:
        noted_agg.add(bar)
    start, end = noted_agg.pass_through_window()
    assert start <= inside[0].epoch
    assert inside[-1].end_epoch <= end
    assert noted_agg.accepts_pass_through(inside[0].epoch)
    last = [b for b in inside if b.epoch >= bounds[j - 1]]
    cut = sum(e.seconds < size for e in emitted_bars[k:j])
    inner_gaps = sum(b.epoch > a.end_epoch for a, b in itertools.pairwise(inside))
    noted_agg.note_buckets(
        len(inside), inside[0].epoch, inner_gaps, j - k, cut, bounds[j - 1], last
    )
    for bar in after:
        noted_agg.add(bar)
    noted_agg.flush()
    every.flush()
    assert noted_agg.stats == every.stats
    assert (noted_agg.stats.cut_at_halt > 0) == (size == 3600)
    assert noted_agg.stats.gaps == len(missing)
    for late in (last[-1], last[0], bars[0]):  # duplicates of the noted bars, then a late bar
        assert noted_agg.add(late) == every.add(late)
    assert noted_agg.stats == every.stats
