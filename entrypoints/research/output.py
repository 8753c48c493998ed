"""A sweep's files: the results table as CSV and Parquet, and the objective's heatmap as PNG.

Both tables hold the same rows in the same (plan) order, with exact types: money as decimals,
ratios as floats, counts as integers. Written from the results, never from the order trials
finished in, so every executor writes the same bytes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from application.research.grid import ParamValue
from application.research.objectives import Objective
from application.research.sweep import param_text

CSV_NAME = "results.csv"
PARQUET_NAME = "results.parquet"
HEATMAP_NAME = "heatmap.png"


def _is_money(column: str) -> bool:
    return column.endswith("_usd") or column.endswith(".usd")


def typed_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Money text (``"-43.05"``) as Decimal, everything else as it is."""
    money = [i for i, c in enumerate(columns) if _is_money(c)]
    typed = [list(row) for row in rows]
    for row in typed:
        for i in money:
            if isinstance(row[i], str):
                row[i] = Decimal(row[i])
    return typed


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def csv_text(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(csv_text(columns, rows))


def write_parquet(path: Path, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = [
        pa.array([row[i] for row in rows], type=_arrow_type([row[i] for row in rows]))
        for i in range(len(columns))
    ]
    table = pa.Table.from_arrays(arrays, names=list(columns))
    pq.write_table(table, path)


def _arrow_type(values: Sequence[Any]) -> Any:
    import pyarrow as pa

    present = [v for v in values if v is not None]
    if not present:
        return pa.null()
    if all(isinstance(v, bool) for v in present):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.int64()
    if all(isinstance(v, Decimal) for v in present):
        scale = max(max(-int(v.as_tuple().exponent), 0) for v in present)
        return pa.decimal128(38, scale)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pa.float64()
    return pa.string()


def write_heatmap(
    path: Path,
    objective: Objective,
    x_key: str,
    y_key: str,
    xs: Sequence[ParamValue],
    ys: Sequence[ParamValue],
    cells: Sequence[Sequence[float | None]],
) -> None:
    """The mean objective for each (x, y) pair, annotated, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.array([[np.nan if c is None else c for c in row] for row in cells], dtype=float)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(xs) + 2), max(3.0, 0.6 * len(ys) + 2)))
    try:
        image = ax.imshow(
            grid,
            origin="lower",
            aspect="auto",
            cmap="RdYlGn" if objective.higher_is_better else "RdYlGn_r",
        )
        ax.set_xticks(range(len(xs)), [param_text(x) for x in xs], rotation=45, ha="right")
        ax.set_yticks(range(len(ys)), [param_text(y) for y in ys])
        ax.set_xlabel(x_key)
        ax.set_ylabel(y_key)
        ax.set_title(f"{objective.name} (mean over other parameters)")
        if len(xs) * len(ys) <= 400:
            for yi, row in enumerate(cells):
                for xi, value in enumerate(row):
                    if value is not None:
                        ax.text(xi, yi, f"{value:.3g}", ha="center", va="center", fontsize=7)
        fig.colorbar(image, ax=ax, label=objective.description)
        fig.tight_layout()
        fig.savefig(path, dpi=100, metadata={"Software": None})
    finally:
        plt.close(fig)
