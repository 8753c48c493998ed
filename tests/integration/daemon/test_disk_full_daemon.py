"""The simulated daemon with its data directory (SQLite journal, spool, snapshots) on a full disk:
bars go on, entries are gated with the reason, /healthz is degraded saying so, and a stop ends
within the shutdown budget."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from entrypoints.daemon import DaemonHandle, RunOptions, run_daemon
from entrypoints.settings import load_settings
from tests.support.small_disk import fill, small_disk

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config" / "sample.yaml"


async def _eventually(condition: Callable[[], bool], timeout_s: float = 90.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


async def test_a_full_disk_gates_entries_keeps_bars_going_and_a_stop_still_ends(
    tmp_path: Path,
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        settings = load_settings(CONFIG, {"QS_DATABASE__DATA_DIR": str(disk)})
        handles: list[DaemonHandle] = []
        stop = asyncio.Event()
        daemon = asyncio.get_running_loop().create_task(
            run_daemon(settings, RunOptions(speed=600.0), stop=stop, on_ready=handles.append)
        )
        try:
            await _eventually(lambda: bool(handles) or daemon.done())
            assert not daemon.done(), daemon
            handle = handles[0]
            await _eventually(lambda: handle.service.counters.strategy_bars >= 3)
            fill(disk)

            def full() -> bool:
                return any("disk full" in p for p in handle.console.health().problems)

            await _eventually(full)
            health = handle.console.health()
            assert health.status == "degraded"
            assert any(p.startswith("entries blocked: journal: disk full") for p in health.problems)
            # The bar loop goes on (the position is managed; the broker holds its bracket).
            seen = handle.service.counters.strategy_bars
            await _eventually(lambda: handle.service.counters.strategy_bars >= seen + 3)
            assert full()
            loop = asyncio.get_running_loop()
            started = loop.time()
            stop.set()
            async with asyncio.timeout(120):
                await asyncio.wait({daemon})
            elapsed = loop.time() - started
            assert elapsed < settings.shutdown.timeout_s, f"stopped after {elapsed:.1f} s"
            daemon.result()
        finally:
            if not daemon.done():
                daemon.cancel()
                await asyncio.gather(daemon, return_exceptions=True)
