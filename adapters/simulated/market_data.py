"""Recorded bars: reading CSV and Parquet files, and replaying them as a MarketData feed.

File format (as in ``data/sample``): columns ``ts,open,high,low,close,volume`` with ``ts`` the bar *start*
as ISO-8601 UTC with an explicit zone (``Z`` or ``+00:00``), prices decimal, volume an integer.
Extra columns are ignored.

Two kinds of bad input, treated differently:

* a **malformed** row (wrong number of fields, text where a number belongs, a timestamp without a zone
  or off a whole second, an empty field) stops the read with :class:`BarFileError` naming the file and
  the line: the file is not what it claims to be, and guessing would lose data silently;
* a well-formed row with impossible **values** (NaN, infinite, zero or negative price, inconsistent
  OHLC, negative volume, a price off the instrument's tick grid, a price outside the sanity band of
  :mod:`domain.price_band`, a bar that ends after the wall clock's now: a recording cannot hold the
  future) is refused and counted by reason, with the first few line numbers kept as examples; the
  rest of the file is used.

Parsing runs in pyarrow's C++ CSV reader; only when it fails does a line-by-line pass run to find and
explain the first malformed line.
"""

from __future__ import annotations

import asyncio
import csv
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

from application.bar_columns import BarColumns
from application.bar_gate import DEFAULT_MAX_SKEW_S, FUTURE
from application.bar_series import BarFileError, BarSeries, BarSizeError, band_refusals
from domain.bar import Bar
from domain.price_band import PRICE_JUMP, PRICE_RANGE, PriceBand

__all__ = [
    "BarFileError",
    "BarSeries",
    "BarSizeError",
    "PacedMarketData",
    "ReplayMarketData",
    "band_refusals",
    "read_bar_file",
]

COLUMNS = ("ts", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
_MAX_EXAMPLES = 5
_ARROW_TYPES = {
    "ts": pa.timestamp("s", tz="UTC"),
    "open": pa.float64(),
    "high": pa.float64(),
    "low": pa.float64(),
    "close": pa.float64(),
    "volume": pa.int64(),
}
_NULL_TEXTS = ["nan", "NaN", "NAN"]
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_HEADER = 64 * 1024
FUTURE_SKEW_S = DEFAULT_MAX_SKEW_S


def read_bar_file(
    path: Path,
    *,
    tick_size: Decimal | None = None,
    bar_seconds: int | None = None,
    band: PriceBand | None = None,
    now_epoch: int | None = None,
) -> BarSeries:
    """Read a CSV or Parquet bar file (see the module docstring for what is refused and why).

    ``now_epoch``: rows whose bar ends after it (plus :data:`FUTURE_SKEW_S`) are refused as
    ``future``; None: no such check.

    ``bar_seconds`` is the size of the bars in the file; by default it is inferred as the most common
    spacing between consecutive bars.
    """
    _require_readable_file(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        table = _read_parquet(path)
        first_line = None
    elif suffix in (".csv", ".txt"):
        table = _read_csv(path)
        first_line = 2
    else:
        raise BarFileError(path, f"unknown bar file type {suffix!r} (expected .csv or .parquet)")
    return _validate(path, table, first_line, tick_size, bar_seconds, band, now_epoch)


# -- reading ---------------------------------------------------------------------------------

_NOT_REGULAR = (
    (stat.S_ISDIR, "is a directory, not a bar file"),
    (
        stat.S_ISFIFO,
        "is a FIFO (named pipe), not a regular file: a bar file is read more than once",
    ),
    (stat.S_ISSOCK, "is a socket, not a regular file"),
    (stat.S_ISCHR, "is a character device, not a regular file"),
    (stat.S_ISBLK, "is a block device, not a regular file"),
)


def _require_readable_file(path: Path) -> None:
    """A regular file this process can open, else :class:`BarFileError` saying what it is."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise BarFileError(path, "no such file") from None
    except NotADirectoryError:
        raise BarFileError(path, "no such file (a part of the path is not a directory)") from None
    except PermissionError:
        raise BarFileError(
            path, "permission denied: a directory on the path cannot be searched"
        ) from None
    except OSError as exc:
        raise BarFileError(path, f"cannot read: {exc.strerror or exc}") from None
    for test, what in _NOT_REGULAR:
        if test(mode):
            raise BarFileError(path, what)
    try:
        with path.open("rb"):
            pass
    except PermissionError:
        raise BarFileError(path, "permission denied: this user cannot read the file") from None
    except OSError as exc:
        raise BarFileError(path, f"cannot read: {exc.strerror or exc}") from None


def _read_csv(path: Path) -> pa.Table:
    header = _csv_header(path)
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise BarFileError(path, f"missing column(s) {', '.join(missing)} in the header", line=1)
    try:
        return pacsv.read_csv(
            path,
            # The names as read by _csv_header (stripped), so "ts, open" works too.
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
            convert_options=pacsv.ConvertOptions(
                column_types=_ARROW_TYPES,
                include_columns=list(COLUMNS),
                null_values=_NULL_TEXTS,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        line, message = _diagnose_csv(path, header)
        if line is None:
            raise BarFileError(path, f"cannot parse: {exc}") from None
        raise BarFileError(path, message, line) from None


def _csv_header(path: Path) -> list[str]:
    try:
        # utf-8-sig: a byte order mark (as spreadsheet programs write) is not part of the header.
        with path.open(newline="", encoding="utf-8-sig") as handle:
            first = handle.readline(_MAX_HEADER)
    except UnicodeDecodeError:
        raise BarFileError(path, "not a UTF-8 text file", line=1) from None
    except OSError as exc:
        raise BarFileError(path, f"cannot read: {exc.strerror or exc}") from None
    if not first.strip():
        raise BarFileError(path, "empty file (expected a header line)", line=1)
    return [name.strip() for name in next(csv.reader([first]))]


def _diagnose_csv(path: Path, header: list[str]) -> tuple[int | None, str]:
    """Find the first malformed line and say what is wrong with it."""
    index = {name: header.index(name) for name in COLUMNS}
    width = len(header)
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        try:
            next(reader)
            for fields in reader:
                line = reader.line_num
                if not fields:
                    continue  # blank lines are skipped, as the fast path skips them
                if len(fields) != width:
                    return line, f"expected {width} fields, found {len(fields)}"
                problem = _row_problem(fields, index)
                if problem is not None:
                    return line, problem
        except csv.Error as exc:
            # The csv module's own limit on a field (131,072 characters): no bar needs one so long.
            return reader.line_num, f"not a valid CSV row: {exc}"
    return None, ""


def _row_problem(fields: list[str], index: dict[str, int]) -> str | None:
    raw_ts = fields[index["ts"]].strip()
    try:
        ts = datetime.fromisoformat(raw_ts)
    except ValueError:
        return f"ts {raw_ts!r} is not an ISO-8601 timestamp"
    if ts.utcoffset() is None:
        return f"ts {raw_ts!r} has no time zone (expected UTC, e.g. {raw_ts}Z)"
    if ts.microsecond:
        return f"ts {raw_ts!r} is not on a whole second"
    for name in PRICE_COLUMNS:
        text = fields[index[name]].strip()
        if text in _NULL_TEXTS:
            continue
        try:
            float(text)
        except ValueError:
            return f"{name} {text!r} is not a number"
    text = fields[index["volume"]].strip()
    if text not in _NULL_TEXTS:
        try:
            volume = int(text)
        except ValueError:
            return f"volume {text!r} is not a whole number"
        if not _INT64_MIN <= volume <= _INT64_MAX:
            return f"volume {text} does not fit a 64-bit integer"
    return None


def _read_parquet(path: Path) -> pa.Table:
    # Imported here: a CSV replay (the common case) needs neither, and they cost start-up time.
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BarFileError(path, f"not a readable Parquet file: {exc}") from None
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise BarFileError(path, f"missing column(s) {', '.join(missing)}")
    ts_type = table.schema.field("ts").type
    if not pa.types.is_timestamp(ts_type) or ts_type.tz is None:
        raise BarFileError(path, f"column ts must be a timezone-aware timestamp, found {ts_type}")
    columns = {}
    for name in COLUMNS:
        try:
            columns[name] = pc.cast(table.column(name), _ARROW_TYPES[name])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise BarFileError(path, f"column {name}: {exc}") from None
    return pa.table(columns)


# -- validation ------------------------------------------------------------------------------

_N = TypeVar("_N", np.int64, np.float64)


def _numbers(values: pa.ChunkedArray, dtype: type[_N], missing: float) -> npt.NDArray[_N]:
    """A 64-bit column (int, float or timestamp) as a numpy array, ``missing`` where it is null.

    Read from the Arrow buffers, not with Arrow's ``to_numpy``, ``cast`` or ``fill_null``: those
    import pandas (Arrow's conversion layer) or Arrow's compute module, a quarter of a second
    together and most of a short replay's start-up, for nothing a bar file needs."""
    parts: list[npt.NDArray[_N]] = []
    for chunk in values.chunks:
        n = len(chunk)
        if n == 0:
            continue
        assert chunk.type.bit_width == 64
        data = np.frombuffer(chunk.buffers()[1], dtype=dtype, count=n, offset=chunk.offset * 8)
        if chunk.null_count:
            data = np.where(_chunk_nulls(chunk), dtype(missing), data)
        parts.append(data)
    if not parts:
        return np.empty(0, dtype=dtype)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _nulls(values: pa.ChunkedArray) -> npt.NDArray[np.bool_]:
    """Which rows of a column are null."""
    parts = [_chunk_nulls(chunk) for chunk in values.chunks]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.bool_)


def _chunk_nulls(chunk: pa.Array) -> npt.NDArray[np.bool_]:
    n = len(chunk)
    if chunk.null_count == 0:
        return np.zeros(n, dtype=np.bool_)
    # The validity bitmap: bit i (least significant first) set when row i holds a value.
    bitmap = np.frombuffer(chunk.buffers()[0], dtype=np.uint8)
    valid = np.unpackbits(bitmap, count=chunk.offset + n, bitorder="little")[chunk.offset :]
    missing: npt.NDArray[np.bool_] = valid == 0
    return missing


def _validate(
    path: Path,
    table: pa.Table,
    first_line: int | None,
    tick_size: Decimal | None,
    bar_seconds: int | None,
    band: PriceBand | None = None,
    now_epoch: int | None = None,
) -> BarSeries:
    n = table.num_rows
    ts_column = table.column("ts")
    ts_missing = _nulls(ts_column)
    epochs = _numbers(ts_column, np.int64, 0)  # timestamp[s]: int64 seconds since the epoch
    # A missing price is NaN, as Arrow's own conversion gives it (refused as "nan" below).
    prices = {name: _numbers(table.column(name), np.float64, np.nan) for name in PRICE_COLUMNS}
    volume_col = table.column("volume")
    volumes = _numbers(volume_col, np.int64, -1)
    o, h, lo, c = (prices[name] for name in PRICE_COLUMNS)

    # One reason per refused row, the first that applies in this order.
    reasons: list[tuple[str, npt.NDArray[np.bool_]]] = []
    is_nan = (
        np.isnan(o) | np.isnan(h) | np.isnan(lo) | np.isnan(c) | _nulls(volume_col) | ts_missing
    )
    reasons.append(("nan", is_nan))
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c)
        reasons.append(("non_finite", ~finite))
        reasons.append(("non_positive_price", (o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0)))
        reasons.append(("ohlc", (lo > o) | (lo > c) | (h < o) | (h < c)))
        reasons.append(("negative_volume", volumes < 0))
        if now_epoch is not None:
            # The start alone: a bar size not known yet cannot make a row refused.
            reasons.append((FUTURE, ~ts_missing & (epochs > now_epoch + FUTURE_SKEW_S)))
        if tick_size is not None:
            step = float(tick_size)
            off = np.zeros(n, dtype=bool)
            for column in (o, h, lo, c):
                q = column / step
                off |= q != np.round(q)
            reasons.append(("off_tick", off))

    bad = np.zeros(n, dtype=bool)
    refused: dict[str, int] = {}
    refused_lines: dict[str, list[int]] = {}
    for reason, mask in reasons:
        new = mask & ~bad
        count = int(new.sum())
        if count:
            refused[reason] = count
            rows = np.flatnonzero(new)[:_MAX_EXAMPLES].tolist()
            refused_lines[reason] = (
                _line_numbers(path, rows) if first_line is not None else [int(r) for r in rows]
            )
        bad |= new
    if band is not None:
        # After the rules above: a row refused for them is never the band's reference.
        for reason, mask in zip(
            (PRICE_RANGE, PRICE_JUMP), band_refusals(band, lo, h, c, bad), strict=True
        ):
            count = int(mask.sum())
            if count:
                refused[reason] = count
                rows = np.flatnonzero(mask)[:_MAX_EXAMPLES].tolist()
                refused_lines[reason] = (
                    _line_numbers(path, rows) if first_line is not None else [int(r) for r in rows]
                )
            bad |= mask
    # The bar size is a property of the file, inferred before any row is refused.
    seconds = _bar_seconds(path, epochs[~ts_missing], bar_seconds)
    kept = n - int(bad.sum())
    if kept == 0:
        why = ", ".join(f"{reason} {count:,}" for reason, count in refused.items())
        raise BarFileError(
            path,
            f"no usable bar: all {n:,} rows refused ({why})" if n else "no usable bar: no rows",
        )
    keep = ~bad
    if not bad.any():
        keep = slice(None)  # type: ignore[assignment]  # no copy when nothing was refused
    epochs = epochs[keep].astype(np.int64, copy=False)
    return BarSeries(
        source=path,
        bar_seconds=seconds,
        epochs=epochs,
        opens=o[keep],
        highs=h[keep],
        lows=lo[keep],
        closes=c[keep],
        volumes=volumes[keep],
        rows_read=n,
        refused=refused,
        refused_lines=refused_lines,
    )


def _line_numbers(path: Path, rows: list[int]) -> list[int]:
    """File line numbers of data rows (0-based, blank lines not counted), for refusal examples."""
    wanted = set(rows)
    found: dict[int, int] = {}
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        next(reader)
        row = -1
        for fields in reader:
            if not fields:
                continue
            row += 1
            if row in wanted:
                found[row] = reader.line_num
                if len(found) == len(wanted):
                    break
    return [found[r] for r in rows]


def _bar_seconds(path: Path, epochs: npt.NDArray[np.int64], given: int | None) -> int:
    """The size of the file's bars: ``given`` if the rows agree with it, else inferred."""
    spacing = _most_common_spacing(epochs)
    if given is None:
        if spacing is None:
            raise BarFileError(path, "cannot infer the bar size from fewer than two distinct bars")
        return spacing
    if given <= 0:
        raise BarSizeError(path, f"bar size must be positive, got {given}s")
    if spacing is not None and spacing != given:
        raise BarSizeError(
            path,
            f"--bar-seconds {given} disagrees with the file: its rows are {spacing} s apart "
            "(the most common spacing); drop --bar-seconds to use the file's own size",
        )
    return given


def _most_common_spacing(epochs: npt.NDArray[np.int64]) -> int | None:
    """The most common positive spacing among the first rows (files skip bars without trades);
    None with fewer than two distinct bars."""
    sample = np.diff(epochs[:10_001])
    sample = sample[sample > 0]
    if sample.size == 0:
        return None
    values, counts = np.unique(sample, return_counts=True)
    return int(values[int(np.argmax(counts))])


# -- the feed --------------------------------------------------------------------------------


class ReplayMarketData:
    """MarketData port over recorded bars, in batches, oldest first."""

    def __init__(
        self,
        source: BarSeries | Sequence[Bar],
        *,
        batch_size: int = 4096,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self._source = source
        self._batch = batch_size
        self._on_progress = on_progress

    def __len__(self) -> int:
        return len(self._source)

    async def batches(self) -> AsyncIterator[Sequence[Bar]]:
        source = self._source
        total = len(source)
        for start in range(0, total, self._batch):
            stop = min(start + self._batch, total)
            if isinstance(source, BarSeries):
                batch: Sequence[Bar] = source.columns(start, stop)
            else:
                batch = source[start:stop]
            yield batch
            if self._on_progress is not None:
                self._on_progress(stop)

    async def column_batches(self) -> AsyncIterator[BarColumns]:
        """The same batches as columns, for the fast replay (a :class:`BarSeries` source only)."""
        source = self._source
        if not isinstance(source, BarSeries):
            raise TypeError("column batches are read from a BarSeries")
        total = len(source)
        for start in range(0, total, self._batch):
            stop = min(start + self._batch, total)
            yield source.columns(start, stop)
            if self._on_progress is not None:
                self._on_progress(stop)


class PacedMarketData:
    """A recorded feed played as a live one: one bar at a time, ``speed`` times faster than real
    time (None: as fast as possible), from ``start_epoch`` on (a restarted daemon's resume point).

    Gaps in the recording (halts, weekends) are not waited out: each bar follows the one before it
    after one bar's length, divided by the speed.
    """

    def __init__(
        self,
        series: BarSeries,
        *,
        speed: float | None,
        start_epoch: int | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self._series = series
        self._speed = speed
        self._start = 0 if start_epoch is None else int(np.searchsorted(series.epochs, start_epoch))
        self._sleep = sleep
        self.sent = 0

    @property
    def remaining(self) -> int:
        return len(self._series) - self._start - self.sent

    def start_from(self, epoch: int) -> None:
        """Play from the first bar at or after ``epoch`` (a restarted daemon's resume point)."""
        self._start = int(np.searchsorted(self._series.epochs, epoch))

    async def batches(self) -> AsyncIterator[Sequence[Bar]]:
        delay = None if self._speed is None else self._series.bar_seconds / self._speed
        for bar in self._series.bars(self._start):
            if delay is not None and self.sent:
                await self._sleep(delay)
            self.sent += 1
            yield (bar,)
