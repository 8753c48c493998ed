"""Cutting a bar series into walk-forward windows of CME trade dates.

A walk-forward ships the whole series to its executor's workers once; each trial then names the
rows of its window (:data:`Rows`), and the worker cuts them with :func:`take_rows`, the same cut
the parent makes to hash the window's data, so a trial sees the bars its key was made from.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, TypeAlias

import numpy as np

from application.bar_series import BarSeries
from domain.calendar import cme_trade_date

Rows: TypeAlias = slice | np.ndarray[Any, Any] | None
"""The rows of a series a trial replays: a slice, a boolean mask, or ``None`` for all of them."""


def trade_date_ordinals(epochs: np.ndarray[Any, np.dtype[np.int64]]) -> np.ndarray[Any, Any]:
    """The CME trade date (as a proleptic ordinal) of each bar start. The 18:00 New York boundary
    falls on a whole UTC hour, so one look-up per hour of data is enough."""
    hours, inverse = np.unique(epochs // 3600, return_inverse=True)
    dates = np.array(
        [cme_trade_date(datetime.fromtimestamp(int(h) * 3600, UTC)).toordinal() for h in hours],
        dtype=np.int64,
    )
    ordinals: np.ndarray[Any, Any] = dates[inverse.reshape(-1)]
    return ordinals


def window_rows(ordinals: np.ndarray[Any, Any], first: date, last: date) -> Rows:
    """The rows of trade dates ``first``..``last`` (inclusive), in file order. A file in time
    order is cut by bisection (a slice); one with a bar out of order (the replay merges such a
    bar) by a mask, so every bar lands in the window of its own trade date."""
    if len(ordinals) < 2 or bool(np.all(ordinals[1:] >= ordinals[:-1])):
        lo = int(np.searchsorted(ordinals, first.toordinal(), side="left"))
        hi = int(np.searchsorted(ordinals, last.toordinal(), side="right"))
        return slice(lo, hi)
    mask: np.ndarray[Any, Any] = (ordinals >= first.toordinal()) & (ordinals <= last.toordinal())
    return mask


def take_rows(series: BarSeries, rows: Rows) -> BarSeries:
    """``rows`` of ``series`` as a series of their own (``None``: the series itself)."""
    if rows is None:
        return series
    epochs = series.epochs[rows]
    return replace(
        series,
        epochs=epochs,
        opens=series.opens[rows],
        highs=series.highs[rows],
        lows=series.lows[rows],
        closes=series.closes[rows],
        volumes=series.volumes[rows],
        rows_read=len(epochs),
        refused={},
        refused_lines={},
    )


def window_series(
    series: BarSeries, ordinals: np.ndarray[Any, Any], first: date, last: date
) -> BarSeries:
    """The bars of trade dates ``first``..``last`` (inclusive) as a series of their own."""
    return take_rows(series, window_rows(ordinals, first, last))
