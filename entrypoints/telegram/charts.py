"""PNG charts for /chart: the session's equity (the report's equity.png) and the price of the last
hours with the trades on it. Both on trading time: a halt or a weekend takes no room."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from application.report import PriceBars
from domain.position import RoundTrip
from entrypoints.report_output import trading_positions, write_equity_chart

_TICKS = 6


def equity_png(trips: Sequence[RoundTrip], prices: PriceBars | None) -> bytes:
    buffer = io.BytesIO()
    write_equity_chart(buffer, trips, prices)
    return buffer.getvalue()


def price_png(prices: PriceBars, trips: Sequence[RoundTrip], title: str) -> bytes:
    """Closes with each bar's range shaded, entries (triangles) and exits (squares, green for a
    win, red for a loss) of the trades inside the window."""
    figure = Figure(figsize=(10, 5), dpi=100)
    figure.subplots_adjust(left=0.09, right=0.98, top=0.92, bottom=0.12)
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    x = np.arange(len(prices))
    axes.fill_between(x, prices.lows, prices.highs, color="tab:blue", alpha=0.15, step="mid")
    axes.plot(x, prices.closes, color="tab:blue", linewidth=1.0)
    first, last = prices.starts[0], prices.starts[-1] + prices.seconds
    inside = [t for t in trips if first <= t.entry_ts.timestamp() and t.exit_ts.timestamp() <= last]
    if inside:
        entries = [x - 1 for x in trading_positions([t.entry_ts for t in inside], prices.starts)]
        exits = [x - 1 for x in trading_positions([t.exit_ts for t in inside], prices.starts)]
        axes.scatter(
            entries,
            [float(t.entry_price) for t in inside],
            marker="^",
            color="tab:blue",
            zorder=3,
        )
        axes.scatter(
            exits,
            [float(t.exit_price) for t in inside],
            marker="s",
            color=["tab:green" if t.net_pnl > 0 else "tab:red" for t in inside],
            zorder=3,
        )
    step = max(1, len(prices) // _TICKS)
    ticks = list(range(0, len(prices), step))
    axes.set_xticks(
        ticks,
        [datetime.fromtimestamp(prices.starts[i], UTC).strftime("%m-%d %H:%M") for i in ticks],
    )
    axes.set_title(title)
    axes.set_ylabel("price")
    axes.set_xlabel("bar start, UTC (trading time: gaps take no room)")
    axes.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
