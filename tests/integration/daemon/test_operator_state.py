"""An operator's pause survives a restart of the simulated daemon, even between two checkpoints;
a graceful stop waits for the next checkpoint, so a flatten before it is kept too."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from domain.engine import EngineState
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
    # Killed before the next strategy-bar checkpoint could save the pause (a graceful stop would
    # wait for that checkpoint): only the journal knows of it.
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first

    restarted: list[DaemonHandle] = []
    second = await run_daemon(
        settings, RunOptions(speed=None, exit_at_end=True), on_ready=restarted.append
    )
    assert second.resumed_from is not None
    assert restarted[0].console.status().paused
    assert restarted[0].service.engine.paused


async def test_a_graceful_stop_keeps_a_flatten_given_just_before_it(tmp_path: Path) -> None:
    settings = load_settings(CONFIG, {"QS_DATABASE__DATA_DIR": str(tmp_path)})
    handles: list[DaemonHandle] = []
    first = asyncio.get_running_loop().create_task(
        run_daemon(settings, RunOptions(speed=6000.0), on_ready=handles.append)
    )
    while not handles or handles[0].service.engine.position.is_flat:
        await asyncio.sleep(0.005)
        assert not first.done()
    handle = handles[0]
    await handle.console.flatten("telegram:111", pause=True)
    while not handle.service.engine.position.is_flat:
        await asyncio.sleep(0.005)
    handle.stop.set()
    stopped = await asyncio.wait_for(first, 30)
    assert (stopped.stopped_by, stopped.position) == ("signal", 0)

    restarted: list[DaemonHandle] = []
    await run_daemon(settings, RunOptions(speed=None, exit_at_end=True), on_ready=restarted.append)
    status = restarted[0].console.status()
    assert status.paused  # the flatten's pause came back with the checkpoint


async def test_a_signal_with_a_position_open_flattens_before_stopping(tmp_path: Path) -> None:
    settings = load_settings(CONFIG, {"QS_DATABASE__DATA_DIR": str(tmp_path)})
    assert settings.shutdown.flatten  # the default
    handles: list[DaemonHandle] = []
    stop = asyncio.Event()
    run = asyncio.get_running_loop().create_task(
        run_daemon(settings, RunOptions(speed=6000.0), stop=stop, on_ready=handles.append)
    )
    while not handles or handles[0].service.engine.position.is_flat:
        await asyncio.sleep(0.005)
        assert not run.done()
    stop.set()  # what SIGTERM does
    stopped = await asyncio.wait_for(run, 30)
    assert (stopped.stopped_by, stopped.position) == ("signal", 0)
    assert handles[0].service.engine.position.is_flat


async def test_a_signal_while_an_entry_works_cancels_it_before_stopping(tmp_path: Path) -> None:
    settings = load_settings(CONFIG, {"QS_DATABASE__DATA_DIR": str(tmp_path)})
    entering = (EngineState.ENTERING_LONG, EngineState.ENTERING_SHORT)
    handles: list[DaemonHandle] = []
    stop = asyncio.Event()
    run = asyncio.get_running_loop().create_task(
        run_daemon(settings, RunOptions(speed=6000.0), stop=stop, on_ready=handles.append)
    )
    while not handles or handles[0].service.engine.state not in entering:
        await asyncio.sleep(0)
        assert not run.done()
    stop.set()
    stopped = await asyncio.wait_for(run, 30)
    assert stopped.position == 0
    assert handles[0].service.engine.state is EngineState.IDLE
    assert handles[0].service.engine.working_orders == {}
