"""An operator's pause survives a restart of the simulated daemon, even between two checkpoints."""

from __future__ import annotations

import asyncio
from pathlib import Path

from entrypoints.daemon import DaemonHandle, RunOptions, run_daemon
from entrypoints.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config" / "sample.yaml"


async def test_a_pause_given_after_the_last_checkpoint_survives_a_restart(tmp_path: Path) -> None:
    settings = load_settings(CONFIG, {"QS_DATABASE__DATA_DIR": str(tmp_path)})
    handles: list[DaemonHandle] = []
    first = asyncio.get_running_loop().create_task(
        run_daemon(settings, RunOptions(speed=6000.0), on_ready=handles.append)
    )
    while not handles or handles[0].service.counters.strategy_bars < 20:
        await asyncio.sleep(0.01)
        assert not first.done()
    handle = handles[0]
    await handle.console.pause("telegram:111")
    assert handle.console.status().paused
    handle.stop.set()  # stopped before the next strategy-bar checkpoint could save the pause
    await asyncio.wait_for(first, 30)

    restarted: list[DaemonHandle] = []
    second = await run_daemon(
        settings, RunOptions(speed=None, exit_at_end=True), on_ready=restarted.append
    )
    assert second.resumed_from is not None
    assert restarted[0].console.status().paused
    assert restarted[0].service.engine.paused
