"""The ``ZScoreEngine`` port over either rolling z-score core (Rust or the Python reference).

Both cores have the same API; this wraps one, turning its exact ``(value, num, var)`` triples into
domain ``ZScore`` values, and computes whole batches at once for the fast replay.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt

from domain.zscore import ZScore


class RollingCore(Protocol):
    """What both native_core.RollingZScore and the reference RollingZScore provide."""

    def update_exact(self, x: float) -> tuple[float, int, int] | None: ...

    def update_many(self, xs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...

    def reset(self) -> None: ...


CoreFactory = Callable[[int], RollingCore]


class ZScoreBatch:
    """The z-scores of a batch of closes: all values at once, exact terms on demand."""

    __slots__ = ("_core", "_history", "_make", "_offset", "_window", "values")

    def __init__(
        self,
        make: CoreFactory,
        window: int,
        values: npt.NDArray[np.float64],
        history: npt.NDArray[np.float64],
    ) -> None:
        self.values = values
        self._make = make
        self._window = window
        self._history = history  # the window-1 closes before the batch, then the batch
        self._offset = len(history) - len(values)
        self._core: RollingCore | None = None  # one core for every at(), reset in between

    def at(self, i: int) -> ZScore | None:
        """The z-score of close ``i`` as a domain value (None where undefined)."""
        if math.isnan(self.values[i]):
            return None
        end = self._offset + i + 1
        history = self._history
        core = self._core
        if core is None:
            core = self._core = self._make(self._window)
        else:
            core.reset()  # the state of a new core, without building one
        core.update_many(history[end - self._window : end - 1])
        r = core.update_exact(float(history[end - 1]))
        assert r is not None  # defined in the batch, so defined over the same window
        return ZScore(r[1], r[2], r[0])


class CoreZScoreEngine:
    """Exact rolling z-score over a core; each defined update becomes a domain ``ZScore``."""

    __slots__ = ("_core", "_make", "_tail", "_update_exact", "_window")

    def __init__(self, make: CoreFactory, window: int) -> None:
        self._make = make
        self._window = window
        self._core = make(window)
        # Bound once: this runs on every bar.
        self._update_exact = self._core.update_exact
        self._tail: list[float] = []

    def update(self, close: float) -> ZScore | None:
        tail = self._tail
        tail.append(close)
        if len(tail) >= 2 * self._window:
            del tail[: -self._window]
        r = self._update_exact(close)
        return None if r is None else ZScore(r[1], r[2], r[0])

    def update_many(self, closes: npt.NDArray[np.float64]) -> ZScoreBatch:
        """Advance over a whole batch; same results as calling :meth:`update` on each close."""
        keep = self._window - 1
        history = np.concatenate(
            (np.asarray(self._tail[-keep:] if keep else [], dtype=np.float64), closes)
        )
        values = self._core.update_many(closes)
        self._tail = history[-self._window :].tolist()
        return ZScoreBatch(self._make, self._window, values, history)

    def reset(self) -> None:
        self._core.reset()
        self._tail = []
