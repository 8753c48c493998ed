"""Timing a synchronous call that must never stall the event loop (e.g. ``Notifier.notify``)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class StallMeter:
    """Times each call, minus the garbage-collection pauses that happened to land inside it.

    A collection runs in whichever code allocates when a threshold is crossed, so its pause is the
    process's cost, not the call's; the meter subtracts it. What is left is the call's own wall
    time (scheduler jitter included) and CPU time.
    """

    def __init__(self) -> None:
        self.walls: list[float] = []
        self.cpus: list[float] = []
        self._gc_total = 0.0
        self._gc_started = 0.0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self._gc_total += time.perf_counter() - self._gc_started

    @contextmanager
    def installed(self) -> Iterator[StallMeter]:
        gc.callbacks.append(self._on_gc)
        try:
            yield self
        finally:
            gc.callbacks.remove(self._on_gc)

    def call(self, fn: Callable[[], object]) -> None:
        gc_before = self._gc_total
        wall, cpu = time.perf_counter(), time.thread_time()
        fn()
        cpu_used, wall_used = time.thread_time() - cpu, time.perf_counter() - wall
        in_gc = self._gc_total - gc_before
        self.cpus.append(max(cpu_used - in_gc, 0.0))
        self.walls.append(max(wall_used - in_gc, 0.0))

    def assert_under(self, limit_s: float = 0.001) -> None:
        """Every call used under ``limit_s`` of CPU; wall time, which includes the scheduler's
        jitter on a shared runner, stayed under ``limit_s`` at the 99.9th percentile and under
        20 ms at worst (a call that waited on I/O would take far longer)."""
        assert self.walls, "no call was timed"
        walls = sorted(self.walls)
        p999 = walls[int(len(walls) * 0.999)]
        assert max(self.cpus) < limit_s, f"a call used {max(self.cpus) * 1e3:.2f} ms of CPU"
        assert p999 < limit_s, f"99.9th percentile wall time {p999 * 1e3:.2f} ms"
        assert walls[-1] < 0.02, f"a call took {walls[-1] * 1e3:.1f} ms"

    @property
    def slowest_cpu(self) -> float:
        return max(self.cpus)
