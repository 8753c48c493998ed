"""A replay pauses the cyclic collector; the replay command's, last in its process, freezes what it
built instead of having the collector walk it afterwards."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from entrypoints.replay import load_series, run_replay
from entrypoints.settings import load_settings

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "es_1min_20131006_20131014.csv"


def test_only_a_replay_last_in_its_process_freezes_its_heap() -> None:
    settings = load_settings(None, {})
    series = load_series(settings, SAMPLE)
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    again = asyncio.run(run_replay(settings, series))
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
    try:
        last = asyncio.run(run_replay(settings, series, last_in_process=True))
        assert gc.isenabled()
        assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()
    assert last.summary == again.summary
