"""Seeded synthetic MES 5-minute bars, written as CSV in the shared data format.

The close follows a mean-reverting random walk on the 0.25 grid around 5000 (an Ornstein-Uhlenbeck
step plus noise, rounded to the tick), so a z-score strategy trades often; open/high/low are drawn
around it and kept consistent; volume is random. Bars are consecutive 5-minute bars with no gaps.

    python bench/gen_series.py OUT.csv [--bars N] [--seed S]
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

TICK = 0.25
# In the past: a replay refuses bars that end after the wall clock's now (a recording cannot hold the
# future), and 1,000,000 five-minute bars span 9.5 years.
START = datetime(2010, 1, 3, 23, 0, tzinfo=UTC)


def generate(bars: int, seed: int) -> dict[str, npt.NDArray[np.generic]]:
    rng = np.random.default_rng(seed)
    level = np.empty(bars, dtype=np.float64)
    x = 5000.0
    shocks = rng.normal(0.0, 1.5, bars)
    mean = 5000.0
    for i in range(bars):
        x += 0.02 * (mean - x) + shocks[i]
        level[i] = x
    close = np.round(level / TICK) * TICK
    open_ = np.empty_like(close)
    open_[0] = close[0]
    open_[1:] = close[:-1] + np.round(rng.normal(0.0, 0.5, bars - 1) / TICK) * TICK
    wick_up = np.round(np.abs(rng.normal(0.0, 1.0, bars)) / TICK) * TICK
    wick_down = np.round(np.abs(rng.normal(0.0, 1.0, bars)) / TICK) * TICK
    high = np.maximum(open_, close) + wick_up
    low = np.minimum(open_, close) - wick_down
    volume = rng.integers(50, 5000, bars)
    epochs = int(START.timestamp()) + 300 * np.arange(bars, dtype=np.int64)
    return {
        "epochs": epochs,
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": volume,
    }


def write_csv(path: Path, series: dict[str, npt.NDArray[np.generic]]) -> None:
    stamps = np.datetime_as_string(series["epochs"].astype("datetime64[s]"), unit="s")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write("ts,open,high,low,close,volume\n")
        for row in zip(
            stamps.tolist(),
            series["open"].tolist(),
            series["high"].tolist(),
            series["low"].tolist(),
            series["close"].tolist(),
            series["volume"].tolist(),
            strict=True,
        ):
            out.write(f"{row[0]}Z,{row[1]:g},{row[2]:g},{row[3]:g},{row[4]:g},{row[5]}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261124)
    args = parser.parse_args()
    write_csv(args.out, generate(args.bars, args.seed))


if __name__ == "__main__":
    main()
