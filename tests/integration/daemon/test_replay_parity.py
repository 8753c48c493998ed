"""Issue 4's parity test: a daemon session on a recorded feed, then a replay of the bars that session
recorded in the journal, make the identical list of signals (and the same trades)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from adapters.sql.database import create_engine
from adapters.sql.queries import SqlJournalReader
from domain.commands import RoundTripRecord, SignalRecord
from entrypoints.container.store import store_url
from entrypoints.daemon import RunOptions, run_daemon
from entrypoints.replay import load_store_series, run_replay
from entrypoints.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config" / "sample.yaml"


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


async def test_a_replay_of_the_recorded_bars_makes_the_daemon_s_signals(tmp_path: Path) -> None:
    settings = load_settings(CONFIG, {"QS_DATABASE__DATA_DIR": str(tmp_path)})
    ran = await run_daemon(settings, RunOptions(speed=None, exit_at_end=True))
    assert ran.bars == 8198

    engine = create_engine(store_url(settings))
    try:
        reader = SqlJournalReader(engine)
        daemon_signals = await reader.records_of(SignalRecord, None, None)
        daemon_trips = [r.trip for r in await reader.records_of(RoundTripRecord)]
        series = await load_store_series(
            settings,
            reader,
            datetime(2013, 10, 1, tzinfo=UTC),
            datetime(2013, 10, 20, tzinfo=UTC),
        )
    finally:
        await engine.dispose()

    replayed = await run_replay(settings, series)
    assert len(series) == 8198
    replay_signals = replayed.journal.signals()
    assert len(daemon_signals) == 143
    assert [_key(s) for s in replay_signals] == [_key(s) for s in daemon_signals]
    assert replayed.round_trips == daemon_trips
    assert len(daemon_trips) == 70
