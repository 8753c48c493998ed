"""Recorded bars as columns: the :class:`BarSeries` every layer above the adapters passes around (the
replay, the research commands, the journal's ``replay --from-db``), the errors of reading one, and the
price-band test applied to whole columns.

Values and pure array arithmetic only: reading files is the simulated market data adapter's job
(``adapters.simulated.market_data``), which builds these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from application.bar_columns import BarColumns, next_true
from domain.bar import Bar
from domain.price_band import SEED_BARS, PriceBand, PriceGuard, seed_reference


class BarFileError(Exception):
    """A bar file that cannot be read as bars. ``str()`` names the file and, for CSV, the line."""

    def __init__(self, path: Path, message: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


class BarSizeError(BarFileError):
    """The bar size asked for disagrees with the file's rows (a usage error, not bad data)."""


@dataclass(slots=True)
class BarSeries:
    """Valid rows of a bar file as columns, plus what was refused."""

    source: Path
    bar_seconds: int
    epochs: npt.NDArray[np.int64]
    opens: npt.NDArray[np.float64]
    highs: npt.NDArray[np.float64]
    lows: npt.NDArray[np.float64]
    closes: npt.NDArray[np.float64]
    volumes: npt.NDArray[np.int64]
    rows_read: int
    refused: dict[str, int] = field(default_factory=dict)
    refused_lines: dict[str, list[int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.epochs)

    def columns(self, start: int = 0, stop: int | None = None) -> BarColumns:
        """Rows ``[start, stop)`` as columns (no Bar objects are built until asked for)."""
        sl = slice(start, stop)
        return BarColumns(
            self.bar_seconds,
            self.epochs[sl],
            self.opens[sl],
            self.highs[sl],
            self.lows[sl],
            self.closes[sl],
            self.volumes[sl],
        )

    def bars(self, start: int = 0, stop: int | None = None) -> list[Bar]:
        """Rows ``[start, stop)`` as :class:`Bar` objects."""
        sl = slice(start, stop)
        seconds = self.bar_seconds
        make = Bar.at_epoch
        return [
            make(t, seconds, o, h, lo, c, v)
            for t, o, h, lo, c, v in zip(
                self.epochs[sl].tolist(),
                self.opens[sl].tolist(),
                self.highs[sl].tolist(),
                self.lows[sl].tolist(),
                self.closes[sl].tolist(),
                self.volumes[sl].tolist(),
                strict=True,
            )
        ]


def band_refusals(
    band: PriceBand,
    lows: npt.NDArray[np.float64],
    highs: npt.NDArray[np.float64],
    closes: npt.NDArray[np.float64],
    refused: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Rows outside ``band`` (:mod:`domain.price_band`) among those not ``refused`` already: the
    ``price_range`` and the ``price_jump`` masks. The same decisions as feeding every row through a
    :class:`PriceGuard` seeded from the first closes, with the guard consulted only where a row jumps
    from the one before it or follows a refused one (so a clean file costs a few array operations)."""
    n = len(closes)
    with np.errstate(invalid="ignore"):
        out_of_range = ((lows < band.min_price) | (highs > band.max_price)) & ~refused
    jump = np.zeros(n, dtype=bool)
    usable = np.flatnonzero(~(refused | out_of_range))
    if usable.size == 0:
        return out_of_range, jump
    lo, hi, cl = lows[usable], highs[usable], closes[usable]
    guard = PriceGuard(band, seed_reference(band, cl[:SEED_BARS].tolist()))
    previous = np.empty_like(cl)
    previous[0] = guard.reference
    previous[1:] = cl[:-1]
    jumps = (hi - previous > band.max_jump) | (previous - lo > band.max_jump)
    next_jump = next_true(jumps)
    m = len(cl)
    refused_here = np.zeros(m, dtype=bool)
    k = 0
    synced = True  # the guard's reference is the close of the row before k
    while k < m:
        if synced and next_jump[k] > k:
            k = next_jump[k]  # rows up to here are within the band of the row before each
            guard.accept(float(cl[k - 1]))
            continue
        if guard.check(float(lo[k]), float(hi[k]), float(cl[k])) is not None:
            refused_here[k] = True
        synced = guard.reference == float(cl[k])
        k += 1
    jump[usable[refused_here]] = True
    return out_of_range, jump
