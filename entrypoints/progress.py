"""A minimal progress bar for long replays and sweeps: stderr, only on a terminal (or when asked),
at most ~10 redraws a second; with ``eta`` it also says how long the rest should take."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(
        self,
        total: int,
        label: str,
        stream: TextIO | None = None,
        width: int = 30,
        *,
        eta: bool = False,
    ) -> None:
        self._total = max(total, 1)
        self._label = label
        self._stream = stream if stream is not None else sys.stderr
        self._width = width
        self._last = 0.0
        self._started = time.monotonic()
        self._eta = eta

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if done < self._total and now - self._last < 0.1:
            return
        self._last = now
        frac = min(done / self._total, 1.0)
        filled = int(frac * self._width)
        rate = done / max(now - self._started, 1e-9)
        line = (
            f"\r{self._label} [{'#' * filled}{'.' * (self._width - filled)}] "
            f"{frac:6.1%} {done:,}/{self._total:,} ({rate:,.{2 if self._eta else 0}f}/s)"
        )
        if self._eta:
            left = (self._total - done) / rate if done else None
            line += f" ETA {_clock(left)}"
        self._stream.write(line)
        if done >= self._total:
            self._stream.write("\n")
        self._stream.flush()


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
