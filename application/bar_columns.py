"""Bars held as columns: a batch a recorded feed can hand over without building a Bar per row.

It is a ``Sequence[Bar]``, so anything that iterates bars works on it unchanged (a Bar is built when
an item is taken); the trading service also reads its columns directly to skip quiet bars.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import overload

import numpy as np
import numpy.typing as npt

from domain.bar import Bar


class BarColumns(Sequence[Bar]):
    """Rows ``[0, len)`` of equal-sized bars, as parallel arrays (epochs are bar starts)."""

    __slots__ = ("closes", "epochs", "highs", "lows", "opens", "seconds", "volumes")

    def __init__(
        self,
        seconds: int,
        epochs: npt.NDArray[np.int64],
        opens: npt.NDArray[np.float64],
        highs: npt.NDArray[np.float64],
        lows: npt.NDArray[np.float64],
        closes: npt.NDArray[np.float64],
        volumes: npt.NDArray[np.int64],
    ) -> None:
        n = len(epochs)
        if not all(len(c) == n for c in (opens, highs, lows, closes, volumes)):
            raise ValueError("bar columns must have equal lengths")
        self.seconds = seconds
        self.epochs = epochs
        self.opens = opens
        self.highs = highs
        self.lows = lows
        self.closes = closes
        self.volumes = volumes

    def __len__(self) -> int:
        return len(self.epochs)

    def joined(self, later: BarColumns) -> BarColumns:
        """These bars, then ``later``'s (bars of the same size)."""
        if later.seconds != self.seconds:
            raise ValueError(f"cannot join {self.seconds}s bars with {later.seconds}s bars")
        return BarColumns(
            self.seconds,
            np.concatenate((self.epochs, later.epochs)),
            np.concatenate((self.opens, later.opens)),
            np.concatenate((self.highs, later.highs)),
            np.concatenate((self.lows, later.lows)),
            np.concatenate((self.closes, later.closes)),
            np.concatenate((self.volumes, later.volumes)),
        )

    @overload
    def __getitem__(self, index: int) -> Bar: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Bar]: ...

    def __getitem__(self, index: int | slice) -> Bar | Sequence[Bar]:
        if isinstance(index, slice):
            return BarColumns(
                self.seconds,
                self.epochs[index],
                self.opens[index],
                self.highs[index],
                self.lows[index],
                self.closes[index],
                self.volumes[index],
            )
        return Bar.at_epoch(
            int(self.epochs[index]),
            self.seconds,
            float(self.opens[index]),
            float(self.highs[index]),
            float(self.lows[index]),
            float(self.closes[index]),
            int(self.volumes[index]),
        )

    def __iter__(self) -> Iterator[Bar]:
        """The bars in order, built from the columns turned into lists once (the same bars as
        ``self[i]``: ``tolist`` gives the Python int and float that ``int()`` and ``float()`` do,
        without a numpy scalar per field; a replay of 1-minute bars iterates every row)."""
        at_epoch = Bar.at_epoch
        seconds = self.seconds
        for epoch, open_, high, low, close, volume in zip(
            self.epochs.tolist(),
            self.opens.tolist(),
            self.highs.tolist(),
            self.lows.tolist(),
            self.closes.tolist(),
            self.volumes.tolist(),
            strict=True,
        ):
            yield at_epoch(epoch, seconds, open_, high, low, close, volume)

    def is_clock_aligned(self) -> bool:
        """Every bar starts on a multiple of its size, strictly after the one before."""
        epochs = self.epochs
        if len(epochs) == 0:
            return True
        return bool((epochs % self.seconds == 0).all() and (np.diff(epochs) > 0).all())


def next_true(mask: npt.NDArray[np.bool_]) -> list[int]:
    """``result[k]`` = the first index ``>= k`` where ``mask`` is True, or ``len(mask)``."""
    n = len(mask)
    idx = np.where(mask, np.arange(n), n)
    return [*np.minimum.accumulate(idx[::-1])[::-1].tolist(), n]


def first_at_or_after(
    mask_of: Callable[[int, int], npt.NDArray[np.bool_]],
    start: int,
    stop: int,
) -> int:
    """First index in ``[start, stop)`` where ``mask_of(lo, hi)`` (a bool array for rows lo..hi) is
    True, scanning windows of growing size so a hit nearby costs little; ``stop`` if none."""
    width = 32
    lo = start
    while lo < stop:
        hi = min(stop, lo + width)
        hits = np.flatnonzero(mask_of(lo, hi))
        if hits.size:
            return lo + int(hits[0])
        lo = hi
        width *= 4
    return stop
