"""The daemon with its data directory (SQLite journal, spool, snapshots) on a full disk, on both
venues (issue 13): bars go on, entries are gated with the reason, /healthz is degraded saying so,
and a stop ends within the shutdown budget."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.polling import eventually
from tests.support.small_disk import fill, small_disk
from tests.support.venues import DaemonVenue

pytestmark = pytest.mark.timeout(300)


async def test_a_full_disk_gates_entries_keeps_bars_going_and_a_stop_still_ends(
    venue: DaemonVenue, tmp_path: Path
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        settings = venue.settings(disk)
        async with venue.run(settings, speed=600.0) as daemon:
            handle = daemon.handle
            await daemon.strategy_bars(3)
            fill(disk)

            def full() -> bool:
                return any("disk full" in p for p in handle.console.health().problems)

            if venue.gateway is not None:  # IB's bars come as pushed: one makes a journal write
                await daemon.strategy_bars(handle.service.counters.strategy_bars + 1)
            await eventually(full, "the disk full named", timeout_s=90, unless_done=daemon.task)
            health = handle.console.health()
            assert health.status == "degraded"
            assert any(p.startswith("entries blocked: journal: disk full") for p in health.problems)
            # The bar loop goes on (the position is managed; the broker holds its bracket).
            seen = handle.service.counters.strategy_bars
            await daemon.strategy_bars(seen + 3)
            assert full()
            loop = asyncio.get_running_loop()
            started = loop.time()
            handle.stop.set()
            async with asyncio.timeout(120):
                await asyncio.wait({daemon.task})
            elapsed = loop.time() - started
            assert elapsed < settings.shutdown.timeout_s, f"stopped after {elapsed:.1f} s"
            daemon.task.result()
