"""A z-score engine that remembers its window, so a restarted daemon can refill it exactly."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from application.ports import ZScoreBatch, ZScoreEngine
from domain.zscore import ZScore


class RememberingZScoreEngine:
    """Wraps a z-score engine and keeps the last ``window`` closes it was given."""

    def __init__(self, inner: ZScoreEngine, window: int) -> None:
        self._inner = inner
        self._closes: deque[float] = deque(maxlen=window)

    def update(self, close: float) -> ZScore | None:
        self._closes.append(close)
        return self._inner.update(close)

    def update_many(self, closes: npt.NDArray[np.float64]) -> ZScoreBatch:
        self._closes.extend(float(c) for c in closes[-(self._closes.maxlen or 0) :])
        return self._inner.update_many(closes)

    def reset(self) -> None:
        self._closes.clear()
        self._inner.reset()

    @property
    def closes(self) -> tuple[float, ...]:
        """The window's closes, oldest first."""
        return tuple(self._closes)

    def refill(self, closes: Iterable[float]) -> None:
        """Start over from these closes (oldest first), as if they had just been seen."""
        self.reset()
        for close in closes:
            self.update(close)
