"""Bars held as columns: iterating them gives the same bars as indexing them, field for field."""

from __future__ import annotations

import numpy as np

from application.bar_columns import BarColumns
from domain.bar import Bar


def _columns() -> BarColumns:
    epochs = np.array([1_700_000_040, 1_700_000_100, 1_700_000_220], dtype=np.int64)
    return BarColumns(
        60,
        epochs,
        np.array([5000.25, 5001.0, 4999.5]),
        np.array([5001.0, 5002.75, 5000.0]),
        np.array([4999.75, 5000.5, 4998.25]),
        np.array([5000.5, 5002.0, 4999.0]),
        np.array([12, 0, 2**40], dtype=np.int64),
    )


def test_iterating_gives_the_indexed_bars_with_python_numbers() -> None:
    columns = _columns()
    bars = list(columns)
    assert bars == [columns[i] for i in range(len(columns))]
    assert bars[2] == Bar.at_epoch(1_700_000_220, 60, 4999.5, 5000.0, 4998.25, 4999.0, 2**40)
    for b in bars:  # plain Python numbers, not numpy scalars (a Bar is hashed and serialised)
        assert type(b.epoch) is int
        assert type(b.volume) is int
        assert type(b.close) is float


def test_an_empty_batch_iterates_to_nothing() -> None:
    columns = _columns()[0:0]
    assert list(columns) == []
