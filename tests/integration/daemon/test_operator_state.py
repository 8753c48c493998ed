"""What the operator did, and the stop steps, on both venues (issue 13): a pause survives a crash
and a restart, even given between two checkpoints; a graceful stop keeps a flatten given just before
it (the simulated daemon waits for the next checkpoint); a stop flattens an open position and
cancels a working entry — on IB Gateway, at the gateway too."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.engine import EngineState
from tests.support.polling import eventually
from tests.support.venues import DaemonVenue, IbkrDaemon

pytestmark = pytest.mark.timeout(120)


async def test_a_pause_given_after_the_last_checkpoint_survives_a_restart(
    venue: DaemonVenue, tmp_path: Path
) -> None:
    settings = venue.settings(tmp_path)
    async with venue.run(settings, speed=6000.0) as daemon:
        await daemon.strategy_bars(20 if venue.gateway is None else 5)
        handle = daemon.handle
        await handle.console.pause("telegram:111")
        assert handle.console.status().paused
        # Killed before the next strategy-bar checkpoint could save the pause (a graceful stop
        # would wait for that checkpoint): on the simulated venue only the journal knows of it.
        await daemon.kill()

    second, restarted = await venue.restart(settings)
    assert second.resumed_from is not None
    assert restarted.console.status().paused
    assert restarted.service.engine.paused


async def test_a_graceful_stop_keeps_a_flatten_given_just_before_it(
    venue: DaemonVenue, tmp_path: Path
) -> None:
    settings = venue.settings(tmp_path)
    async with venue.run(settings, speed=6000.0) as daemon:
        await daemon.open_position()
        engine = daemon.handle.service.engine
        await daemon.handle.console.flatten("telegram:111", pause=True)
        await eventually(
            lambda: engine.position.is_flat, "the flatten", every_s=0.005, unless_done=daemon.task
        )
        stopped = await daemon.stop()
    assert (stopped.stopped_by, stopped.position) == ("signal", 0)
    if isinstance(daemon, IbkrDaemon):
        gateway = daemon.live.gateway
        assert gateway.position(daemon.live.con_id) == 0
        assert [o for o in gateway.orders if o.is_working] == []

    _, restarted = await venue.restart(settings)
    status = restarted.console.status()
    assert status.paused  # the flatten's pause came back with the checkpoint


async def test_a_signal_with_a_position_open_flattens_before_stopping(
    venue: DaemonVenue, tmp_path: Path
) -> None:
    settings = venue.settings(tmp_path)
    assert settings.shutdown.flatten  # the default
    async with venue.run(settings, speed=6000.0) as daemon:
        await daemon.open_position()
        stopped = await daemon.stop()  # what SIGTERM does
    assert (stopped.stopped_by, stopped.position) == ("signal", 0)
    assert daemon.handle.service.engine.position.is_flat
    if isinstance(daemon, IbkrDaemon):
        gateway = daemon.live.gateway
        assert gateway.position(daemon.live.con_id) == 0
        assert [o for o in gateway.orders if o.is_working] == []  # nor any leg


async def test_a_signal_while_an_entry_works_cancels_it_before_stopping(
    venue: DaemonVenue, tmp_path: Path
) -> None:
    settings = venue.settings(tmp_path)
    async with venue.run(settings, speed=6000.0) as daemon:
        await daemon.entry_working()
        stopped = await daemon.stop()
    engine = daemon.handle.service.engine
    assert stopped.position == 0
    assert engine.state is EngineState.IDLE
    assert engine.working_orders == {}
    if isinstance(daemon, IbkrDaemon):
        gateway = daemon.live.gateway
        [entry] = [o for o in gateway.orders if o.order_type == "MKT"]
        assert (entry.status, entry.filled) == ("Cancelled", 0)
        assert [o for o in gateway.orders if o.is_working] == []  # the legs with it
        assert gateway.position(daemon.live.con_id) == 0
