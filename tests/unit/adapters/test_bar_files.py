"""Reading recorded bars: CSV and Parquet give the same series; bad files are named precisely."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adapters.simulated.market_data import BarFileError, read_bar_file

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample" / "es_1min_20131006_20131014.csv"


UTC_SECONDS = pa.timestamp("s", tz="UTC")


def _to_parquet(path: Path, ts_type: pa.DataType = UTC_SECONDS) -> Path:
    series = read_bar_file(SAMPLE)
    table = pa.table(
        {
            "ts": pa.array(series.epochs, type=pa.int64()).cast(ts_type),
            "open": series.opens,
            "high": series.highs,
            "low": series.lows,
            "close": series.closes,
            "volume": series.volumes,
        }
    )
    pq.write_table(table, path)
    return path


def test_csv_and_parquet_give_the_same_series(tmp_path: Path) -> None:
    csv = read_bar_file(SAMPLE, tick_size=Decimal("0.25"))
    parquet = read_bar_file(_to_parquet(tmp_path / "bars.parquet"), tick_size=Decimal("0.25"))
    assert len(csv) == len(parquet) == 8198
    assert csv.bar_seconds == parquet.bar_seconds == 60
    for name in ("epochs", "opens", "highs", "lows", "closes", "volumes"):
        assert np.array_equal(getattr(csv, name), getattr(parquet, name)), name
    assert csv.bars(0, 3) == parquet.bars(0, 3)


def test_parquet_without_a_time_zone_is_refused(tmp_path: Path) -> None:
    path = _to_parquet(tmp_path / "naive.parquet", pa.timestamp("s"))
    with pytest.raises(BarFileError, match="timezone-aware timestamp"):
        read_bar_file(path)


def test_parquet_missing_a_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "partial.parquet"
    pq.write_table(pa.table({"ts": pa.array([0], type=pa.timestamp("s", tz="UTC"))}), path)
    with pytest.raises(BarFileError, match="missing column"):
        read_bar_file(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("ts,open,high,low,close\n", "missing column(s) volume"),
    ],
)
def test_a_bad_header_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(BarFileError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        read_bar_file(path)
    assert err.value.line == 1


def test_unknown_file_types_and_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(BarFileError, match="unknown bar file type"):
        read_bar_file(Path(__file__))
    with pytest.raises(BarFileError, match="no such file"):
        read_bar_file(tmp_path / "absent.csv")


def test_the_bar_size_is_inferred_from_the_most_common_spacing(tmp_path: Path) -> None:
    path = tmp_path / "gappy.csv"
    rows = ["ts,open,high,low,close,volume"]
    for minute in (0, 1, 2, 5, 6, 7, 30, 31):  # gaps of 3 and 23 minutes do not confuse it
        rows.append(f"2025-03-04T15:{minute:02d}:00Z,5000,5001,4999,5000,1")
    path.write_text("\n".join(rows) + "\n")
    assert read_bar_file(path).bar_seconds == 60
    single = tmp_path / "single.csv"
    single.write_text(rows[0] + "\n" + rows[1] + "\n")
    with pytest.raises(BarFileError, match="cannot infer the bar size"):
        read_bar_file(single)
    assert read_bar_file(single, bar_seconds=60).bar_seconds == 60


def test_refused_rows_keep_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "bad_values.csv"
    path.write_text(
        "ts,open,high,low,close,volume\n"
        "2025-03-04T15:00:00Z,5000,5001,4999,5000,1\n"
        "2025-03-04T15:01:00Z,5000,4000,4999,5000,1\n"
        "2025-03-04T15:02:00Z,inf,5001,4999,5000,1\n"
        "2025-03-04T15:03:00Z,5000,5001,4999,5000,-3\n"
    )
    series = read_bar_file(path, bar_seconds=60)
    assert len(series) == 1
    assert series.refused == {"ohlc": 1, "non_finite": 1, "negative_volume": 1}
    assert series.refused_lines == {"ohlc": [3], "non_finite": [4], "negative_volume": [5]}


def test_a_missing_timestamp_is_refused_and_does_not_skew_the_bar_size(tmp_path: Path) -> None:
    path = tmp_path / "nan_ts.csv"
    path.write_text(
        "ts, open, high, low, close, volume\n"  # spaces in the header are fine
        "2025-03-04T15:00:00Z,5000,5001,4999,5000,1\n"
        "nan,5000,5001,4999,5000,1\n"
        "2025-03-04T15:05:00Z,5000,5001,4999,5000,1\n"
        "2025-03-04T15:10:00Z,5000,5001,4999,5000.1,1\n"  # off the grid
        "2025-03-04T15:15:00Z,5000,5001,4999,5000,1\n"
        "\n"
        "2025-03-04T15:20:00Z,5000,5001,4999,5000,1\n"
        "\n"
    )
    series = read_bar_file(path, tick_size=Decimal("0.25"))
    assert series.refused == {"nan": 1, "off_tick": 1}
    assert series.refused_lines == {"nan": [3], "off_tick": [5]}
    assert series.bar_seconds == 300
    assert series.epochs.min() > 0
    assert len(series) == 4
