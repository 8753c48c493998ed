"""A minimal progress bar for long replays: stderr, only on a terminal, at most ~10 redraws a second."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(
        self, total: int, label: str, stream: TextIO | None = None, width: int = 30
    ) -> None:
        self._total = max(total, 1)
        self._label = label
        self._stream = stream if stream is not None else sys.stderr
        self._width = width
        self._last = 0.0
        self._started = time.monotonic()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if done < self._total and now - self._last < 0.1:
            return
        self._last = now
        frac = min(done / self._total, 1.0)
        filled = int(frac * self._width)
        rate = done / max(now - self._started, 1e-9)
        self._stream.write(
            f"\r{self._label} [{'#' * filled}{'.' * (self._width - filled)}] "
            f"{frac:6.1%} {done:,}/{self._total:,} ({rate:,.0f}/s)"
        )
        if done >= self._total:
            self._stream.write("\n")
        self._stream.flush()
