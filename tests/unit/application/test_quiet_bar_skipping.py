"""Skipping quiet bars (the fast replay) changes nothing: same journal, state and counters as the
plain per-bar path, over random series and configurations (fill models, brackets, every breaker limit)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from adapters.simulated.broker import SimulatedBroker
from adapters.simulated.clock import ManualClock
from adapters.simulated.market_data import BarSeries, ReplayMarketData
from adapters.simulated.notifier import RecordingNotifier
from adapters.simulated.repositories import InMemoryJournal
from adapters.zscore.reference import PythonZScoreEngine
from application.fast_replay import FastReplay
from application.services import EventInbox, TradingService
from domain.aggregation import AggregationStats, BarAggregator
from domain.calendar import ContinuousCalendar, build_calendar
from domain.values import MES
from entrypoints.container import build_container
from entrypoints.settings import load_settings
from tests.support.builders import engine


def _series(
    seed: int,
    bars: int,
    drop: float,
    volatility: float,
    start: int = 1_893_456_000,
    only_in_session: bool = False,
    seconds: int = 300,
) -> BarSeries:
    rng = np.random.default_rng(seed)
    steps = np.round(rng.normal(0.0, volatility, bars) * 4) / 4
    close = 5000.0 + np.cumsum(steps) - 0.02 * np.cumsum(np.cumsum(steps)) / 50
    close = np.round(close * 4) / 4
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) + np.round(np.abs(rng.normal(0, 1, bars)) * 4) / 4
    low = np.minimum(open_, close) - np.round(np.abs(rng.normal(0, 1, bars)) * 4) / 4
    epochs = start + seconds * np.arange(bars, dtype=np.int64)
    keep = rng.random(bars) >= drop  # missing bars make gaps
    if only_in_session:  # as IB records them: no bar while the market is halted or closed
        cme = build_calendar("cme_globex_equity")
        keep &= np.array([cme.session_at(int(t)) is not None for t in epochs], dtype=bool)
    return BarSeries(
        source=Path("synthetic"),
        bar_seconds=seconds,
        epochs=epochs[keep],
        opens=open_[keep],
        highs=high[keep],
        lows=low[keep],
        closes=close[keep],
        volumes=rng.integers(1, 500, bars)[keep],
        rows_read=int(keep.sum()),
    )


async def _run(
    environ: dict[str, str], series: BarSeries, skip: bool, batch_size: int = 4096
) -> tuple[object, ...]:
    cfg = load_settings(None, environ)
    container = build_container(cfg, "simulated", bar_source=series)
    service = container.services.trading()
    feed = ReplayMarketData(series, batch_size=batch_size)
    if skip:
        await container.services.fast_replay().run(feed)
    else:  # the plain path, over the same feed: every bar through the engine
        await service.run(feed, recording=True)
    journal = container.adapters.journal()
    assert isinstance(journal, InMemoryJournal)
    engine = service.engine
    return (
        journal.records,
        engine.state,
        engine.position.snapshot(),
        engine.status(),
        service.aggregator.stats,
        service.counters.bars_in,
        service.counters.strategy_bars,
        list(container.adapters.notifier().alerts),
    )


def _same_on_both_paths(
    environ: dict[str, str], series: BarSeries, batch_size: int = 4096
) -> tuple[object, ...]:
    """Replay ``series`` on both paths; they must end identical. Returns the fast replay's end."""
    batch = asyncio.run(_run(environ, series, skip=True, batch_size=batch_size))
    per_bar = asyncio.run(_run(environ, series, skip=False, batch_size=batch_size))
    assert batch == per_bar
    return batch


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    bars=st.integers(30, 900),
    drop=st.sampled_from([0.0, 0.0, 0.05, 0.3]),
    volatility=st.sampled_from([0.5, 1.5, 4.0]),
    fill_model=st.sampled_from(["next_open", "signal_close"]),
    slippage=st.integers(0, 2),
    stop=st.sampled_from(["null", "10", "40"]),
    target=st.sampled_from(["null", "10", "60"]),
    daily_loss=st.sampled_from(["null", "30", "150"]),
    losses=st.sampled_from(["null", "1", "2"]),
    max_trades=st.sampled_from(["null", "3", "20"]),
    duration=st.sampled_from(["null", "0.25", "2"]),
    lookback=st.sampled_from(["5", "10", "20", "40"]),
    min_volume=st.sampled_from(["0", "200"]),
)
def test_skipping_quiet_bars_changes_no_decision(
    seed: int,
    bars: int,
    drop: float,
    volatility: float,
    fill_model: str,
    slippage: int,
    stop: str,
    target: str,
    daily_loss: str,
    losses: str,
    max_trades: str,
    duration: str,
    lookback: str,
    min_volume: str,
) -> None:
    series = _series(seed, bars, drop, volatility)
    environ = {
        "QS_SESSION__CALENDAR": "none",
        "QS_EXECUTION__FILL_MODEL": fill_model,
        "QS_EXECUTION__SLIPPAGE_TICKS": str(slippage),
        "QS_RISK__STOP_LOSS_DOLLARS": stop,
        "QS_RISK__TAKE_PROFIT_DOLLARS": target,
        "QS_RISK__MAX_DAILY_LOSS": daily_loss,
        "QS_RISK__MAX_CONSECUTIVE_LOSSES": losses,
        "QS_RISK__MAX_TRADES_PER_DAY": max_trades,
        "QS_RISK__MAX_POSITION_DURATION_HOURS": duration,
        "QS_STRATEGY__LOOKBACK_PERIOD": lookback,
        "QS_STRATEGY__MIN_VOLUME": min_volume,
    }
    _same_on_both_paths(environ, series)


# Starts (UTC) whose next days hold what a session calendar changes: a weekend with a DST switch and
# a roll week (2024-03-08), an early close and a holiday (2024-07-03), Thanksgiving (2024-11-27), a
# plain week (2024-05-14), and a 2013 week with the 16:15-16:30 ET halt (2013-10-08).
_CALENDAR_STARTS = [1_709_913_600, 1_720_008_000, 1_732_665_600, 1_715_644_800, 1_381_190_400]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    bars=st.integers(30, 1500),
    start=st.sampled_from(_CALENDAR_STARTS),
    only_in_session=st.booleans(),
    drop=st.sampled_from([0.0, 0.0, 0.05]),
    volatility=st.sampled_from([0.5, 1.5, 4.0]),
    fill_model=st.sampled_from(["next_open", "signal_close"]),
    stop=st.sampled_from(["null", "10", "40"]),
    daily_loss=st.sampled_from(["null", "30", "150"]),
    duration=st.sampled_from(["null", "0.25", "2"]),
    # (no entry, flatten) minutes before a close: flatten never earlier than entries stop.
    near_close=st.sampled_from(
        [("15", "5"), ("60", "30"), ("0", "null"), ("15", "null"), ("5", "0")]
    ),
    roll_week=st.sampled_from(["true", "false"]),
    lookback=st.sampled_from(["5", "10", "20", "40"]),
)
def test_skipping_quiet_bars_under_a_session_calendar_changes_no_decision(
    seed: int,
    bars: int,
    start: int,
    only_in_session: bool,
    drop: float,
    volatility: float,
    fill_model: str,
    stop: str,
    daily_loss: str,
    duration: str,
    near_close: tuple[str, str],
    roll_week: str,
    lookback: str,
) -> None:
    series = _series(seed, bars, drop, volatility, start, only_in_session)
    if len(series) == 0:
        return
    no_entry, flatten = near_close
    environ = {
        "QS_SESSION__CALENDAR": "cme_globex_equity",
        "QS_SESSION__NO_ENTRY_MINUTES_BEFORE_CLOSE": no_entry,
        "QS_SESSION__FLATTEN_MINUTES_BEFORE_CLOSE": flatten,
        "QS_SESSION__NO_ENTRY_IN_ROLL_WEEK": roll_week,
        "QS_EXECUTION__FILL_MODEL": fill_model,
        "QS_RISK__STOP_LOSS_DOLLARS": stop,
        "QS_RISK__TAKE_PROFIT_DOLLARS": stop,
        "QS_RISK__MAX_DAILY_LOSS": daily_loss,
        "QS_RISK__MAX_POSITION_DURATION_HOURS": duration,
        "QS_STRATEGY__LOOKBACK_PERIOD": lookback,
    }
    _same_on_both_paths(environ, series)


# (input bar seconds, strategy bar minutes): finer bars the aggregator builds strategy bars from.
_FINER = [(60, 5), (5, 5), (60, 15), (300, 30), (60, 60), (300, 60)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    bars=st.integers(30, 3000),
    sizes=st.sampled_from(_FINER),
    calendar=st.sampled_from(["none", "cme_globex_equity"]),
    start=st.sampled_from(_CALENDAR_STARTS),
    only_in_session=st.booleans(),
    drop=st.sampled_from([0.0, 0.0, 0.02, 0.3]),
    volatility=st.sampled_from([0.5, 1.5, 4.0]),
    fill_model=st.sampled_from(["next_open", "signal_close"]),
    stop=st.sampled_from(["null", "10", "40"]),
    daily_loss=st.sampled_from(["null", "30", "150"]),
    losses=st.sampled_from(["null", "1"]),
    duration=st.sampled_from(["null", "0.25", "2"]),
    lookback=st.sampled_from(["5", "10", "20", "40"]),
    batch_size=st.sampled_from([1, 7, 11, 100, 4096]),
    glitches=st.lists(st.tuples(st.sampled_from(["dup", "swap"]), st.floats(0.0, 1.0)), max_size=3),
)
# Strategy bars cut where the 2013 session halted at 16:15 ET and reopened at 16:30.
@example(
    1,
    3000,
    (60, 60),
    "cme_globex_equity",
    _CALENDAR_STARTS[4],
    True,
    0.0,
    1.5,
    "next_open",
    "40",
    "null",
    "null",
    "null",
    "20",
    100,
    [],
)
@example(
    2,
    3000,
    (300, 30),
    "cme_globex_equity",
    _CALENDAR_STARTS[4],
    False,
    0.02,
    1.5,
    "signal_close",
    "null",
    "150",
    "1",
    "2",
    "10",
    4096,
    [("dup", 0.5)],
)
# IB's 5-second bars, over a weekend.
@example(
    3,
    3000,
    (5, 5),
    "cme_globex_equity",
    _CALENDAR_STARTS[0],
    True,
    0.0,
    0.5,
    "next_open",
    "10",
    "30",
    "null",
    "0.25",
    "10",
    7,
    [("swap", 0.3)],
)
def test_skipping_quiet_bars_of_finer_input_changes_no_decision(
    seed: int,
    bars: int,
    sizes: tuple[int, int],
    calendar: str,
    start: int,
    only_in_session: bool,
    drop: float,
    volatility: float,
    fill_model: str,
    stop: str,
    daily_loss: str,
    losses: str,
    duration: str,
    lookback: str,
    batch_size: int,
    glitches: list[tuple[str, float]],
) -> None:
    seconds, minutes = sizes
    series = _series(seed, bars, drop, volatility, start, only_in_session, seconds)
    if len(series) < 2:
        return
    series = _glitched(series, glitches)
    environ = {
        "QS_STRATEGY__BAR_MINUTES": str(minutes),
        "QS_SESSION__CALENDAR": calendar,
        "QS_EXECUTION__FILL_MODEL": fill_model,
        "QS_RISK__STOP_LOSS_DOLLARS": stop,
        "QS_RISK__TAKE_PROFIT_DOLLARS": stop,
        "QS_RISK__MAX_DAILY_LOSS": daily_loss,
        "QS_RISK__MAX_CONSECUTIVE_LOSSES": losses,
        "QS_RISK__MAX_POSITION_DURATION_HOURS": duration,
        "QS_STRATEGY__LOOKBACK_PERIOD": lookback,
    }
    _same_on_both_paths(environ, series, batch_size)


def _visits(environ: dict[str, str], series: BarSeries, batch_size: int = 4096) -> tuple[int, int]:
    """How many strategy bars the fast replay handed to the engine, and the round trips made."""
    cfg = load_settings(None, environ)
    container = build_container(cfg, "simulated", bar_source=series)
    service = container.services.trading()
    visited = 0
    real_on_bar = service.engine.on_bar

    def counting(bar, z):
        nonlocal visited
        visited += 1
        return real_on_bar(bar, z)

    service.engine.on_bar = counting
    feed = ReplayMarketData(series, batch_size=batch_size)
    asyncio.run(container.services.fast_replay().run(feed))
    journal = container.adapters.journal()
    assert isinstance(journal, InMemoryJournal)
    return visited, len(journal.round_trips())


@pytest.mark.parametrize(
    ("calendar", "start", "only_in_session", "seconds"),
    [
        ("none", 1_893_456_000, False, 300),
        ("cme_globex_equity", 1_715_644_800, True, 300),  # bars as IB records them, no halt bars
        ("cme_globex_equity", 1_715_644_800, False, 300),  # halt and weekend bars too: dropped
        ("none", 1_893_456_000, False, 60),  # finer bars: 1-minute
        ("cme_globex_equity", 1_715_644_800, True, 60),
        ("cme_globex_equity", 1_715_644_800, True, 5),  # IB's real-time 5-second bars
    ],
)
def test_the_batch_path_really_skips_and_really_trades(
    calendar: str, start: int, only_in_session: bool, seconds: int
) -> None:
    """Guard against a vacuous comparison: the configurations above trade and skip bars."""
    per_strategy_bar = 300 // seconds
    series = _series(
        7,
        3000 * per_strategy_bar,
        0.0,
        1.5 / per_strategy_bar**0.5,
        start,
        only_in_session,
        seconds,
    )
    environ = {"QS_SESSION__CALENDAR": calendar, "QS_EXECUTION__FILL_MODEL": "signal_close"}
    visited, trips = _visits(environ, series)
    assert trips > 20
    assert visited < len(series) / per_strategy_bar / 3  # most strategy bars were skipped


def _plain_service() -> tuple[TradingService, SimulatedBroker]:
    inbox = EventInbox()
    broker = SimulatedBroker(instrument=MES, sink=inbox)
    service = TradingService(
        engine=engine(calendar=ContinuousCalendar()),
        aggregator=BarAggregator(300),
        zscore=PythonZScoreEngine(20),
        broker=broker,
        journal=InMemoryJournal(),
        notifier=RecordingNotifier(),
        inbox=inbox,
        bar_listeners=[broker],
    )
    return service, broker


def test_the_fast_replay_drives_exactly_the_services_own_listeners() -> None:
    service, broker = _plain_service()
    with pytest.raises(ValueError, match="own bar listeners"):
        FastReplay(service=service, listeners=[broker, ManualClock()])
    assert FastReplay(service=service, listeners=[broker]).service is service


def _glitched(series: BarSeries, glitches: list[tuple[str, float]]) -> BarSeries:
    """``series`` with rows recorded twice (``dup``) or swapped with the next (``swap``), at the
    given fractions of its length: input the plain path must handle."""
    rows = np.arange(len(series))
    for kind, where in glitches:
        at = min(int(where * len(rows)), len(rows) - 2)
        if at < 0:
            continue
        if kind == "dup":
            rows = np.insert(rows, at, rows[at])
        else:
            rows[[at, at + 1]] = rows[[at + 1, at]]
    return BarSeries(
        source=series.source,
        bar_seconds=series.bar_seconds,
        epochs=series.epochs[rows],
        opens=series.opens[rows],
        highs=series.highs[rows],
        lows=series.lows[rows],
        closes=series.closes[rows],
        volumes=series.volumes[rows],
        rows_read=len(rows),
    )


def _with_duplicate(series: BarSeries, at: int) -> BarSeries:
    """``series`` with row ``at`` recorded twice."""
    return _glitched(series, [("dup", at / len(series))])


@pytest.mark.parametrize("calendar", ["none", "cme_globex_equity"])
def test_after_a_batch_only_the_plain_path_takes_the_fast_replay_skips_again(calendar: str) -> None:
    """A duplicated 1-minute bar makes its batch go down the plain path, which leaves a strategy
    bar open at the batch's end; the next batches still skip, and nothing changes."""
    clean = _series(7, 15_000, 0.0, 0.7, 1_715_644_800, True, 60)
    series = _with_duplicate(clean, 50)
    environ = {"QS_SESSION__CALENDAR": calendar, "QS_EXECUTION__FILL_MODEL": "signal_close"}
    stats = _same_on_both_paths(environ, series, 1003)[4]
    assert isinstance(stats, AggregationStats)
    assert stats.duplicates == 1
    visited, trips = _visits(environ, series, batch_size=1003)
    visited_clean, trips_clean = _visits(environ, clean, batch_size=1003)
    assert trips == trips_clean > 20
    # Only the first batch (1,003 one-minute bars: 201 strategy bars) went bar by bar.
    assert visited - visited_clean <= 1003 // 5 + 1


def test_a_finer_bar_repeated_across_a_batch_boundary_is_dropped_as_the_plain_path_drops_it() -> (
    None
):
    """A batch the plain path takes (it holds a duplicate) ends with a strategy bar complete; the
    next batch opens with a repeat of that bar's last 1-minute bar, newer than the strategy bar's
    start. The fast replay must not take the repeat for a new strategy bar."""
    base = _series(4, 600, 0.0, 1.5, seconds=60)
    rows = np.array([0, 1, 1, *range(2, 10), 9, *range(10, 600)])
    series = BarSeries(
        source=base.source,
        bar_seconds=60,
        epochs=base.epochs[rows],
        opens=base.opens[rows],
        highs=base.highs[rows],
        lows=base.lows[rows],
        closes=base.closes[rows],
        volumes=base.volumes[rows],
        rows_read=len(rows),
    )
    environ = {"QS_SESSION__CALENDAR": "none", "QS_EXECUTION__FILL_MODEL": "signal_close"}
    stats = _same_on_both_paths(environ, series, 11)[4]
    assert isinstance(stats, AggregationStats)
    assert stats.duplicates == 2
    assert stats.bars_out == 120
