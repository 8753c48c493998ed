"""Issue 4's parity test, on both venues (issue 13): a daemon session (on a recorded feed; on IB
Gateway, on the bars IB streamed), then a replay of the bars that session recorded in the journal,
make the identical list of signals (and, on the simulated exchange, the same trades)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.sql.database import create_engine
from adapters.sql.queries import SqlJournalReader
from domain.commands import RoundTripRecord, SignalAction, SignalRecord
from domain.engine import EngineState
from domain.position import ExitReason
from domain.values import Side
from entrypoints.container.store import store_url
from entrypoints.daemon import RunOptions, run_daemon
from entrypoints.replay import load_store_series, run_replay
from tests.support.live_bot import START
from tests.support.venues import DaemonVenue, IbkrDaemonVenue


def _key(signal: SignalRecord) -> tuple[object, ...]:
    return (
        signal.ts,
        signal.bar_start,
        signal.close,
        signal.z,
        signal.action,
        signal.side,
        signal.detail,
    )


async def test_a_replay_of_the_recorded_bars_makes_the_daemon_s_signals(
    venue: DaemonVenue, tmp_path: Path
) -> None:
    settings = venue.settings(tmp_path)
    if isinstance(venue, IbkrDaemonVenue):
        # IB's bars as the test streams them: a LONG signal, then a minute back at 5000 exits,
        # and a last one for the replay's fill model (the next bar's open) to fill the exit in.
        async with venue.run(settings) as daemon:
            await daemon.open_position()
            live = daemon.live
            t = await live.push_minutes(["5000"], at=daemon.at)
            await live.wait_for(lambda: live.engine.state is EngineState.IDLE, "the exit")
            await live.push_minutes(["5000"], at=t)
            ran = await daemon.stop()
        window = (START - timedelta(days=1), START + timedelta(days=1))
        assert ran.bars == live.pushed == 13 * 12
    else:
        ran = await run_daemon(settings, RunOptions(speed=None, exit_at_end=True))
        window = (datetime(2013, 10, 1, tzinfo=UTC), datetime(2013, 10, 20, tzinfo=UTC))
        assert ran.bars == 8198

    engine = create_engine(store_url(settings))
    try:
        reader = SqlJournalReader(engine)
        daemon_signals = await reader.records_of(SignalRecord, None, None)
        daemon_trips = [r.trip for r in await reader.records_of(RoundTripRecord)]
        assert ran.round_trips == len(daemon_trips)
        series = await load_store_series(settings, reader, *window)
    finally:
        await engine.dispose()

    replayed = await run_replay(settings, series)
    assert len(series) == ran.bars
    replay_signals = replayed.journal.signals()
    assert [_key(s) for s in replay_signals] == [_key(s) for s in daemon_signals]
    if isinstance(venue, IbkrDaemonVenue):
        # The entry and the exit; IB filled at the bar's close, the replay at the next open.
        assert [(s.action, s.side) for s in daemon_signals] == [
            (SignalAction.ENTER, Side.LONG),
            (SignalAction.EXIT, Side.LONG),
        ]
        assert [t.exit_reason for t in daemon_trips] == [ExitReason.SIGNAL]
        assert [t.exit_reason for t in replayed.round_trips] == [ExitReason.SIGNAL]
    else:
        assert len(daemon_signals) == 143
        assert replayed.round_trips == daemon_trips
        assert len(daemon_trips) == 70
