"""``report.html``: one self-contained page a trader reads, offline.

Built with Bokeh and its JavaScript inlined (``INLINE`` resources): the file fetches nothing, so it
opens from a mail attachment or a laptop on a train. Bokeh over plotly: its inlined library is a
fraction of plotly.js (about 1.5 MB against 4.5 MB, which alone would break the 5 MB budget of the
sample's report), it ships numeric columns as binary arrays rather than JSON text (40,000 trades
stay within budget), and it links the x ranges of every panel, so zooming the price zooms the
z-score, the equity and the drawdown with it.

The x axis is **trading time**: the position of a bar in the list of bars, not its clock time, so a
weekend, a halt or a month with no data takes no room; tick labels name the bar's date and time.
Prices and money are plotted from exact Decimals (prices sit on the tick grid, exact in binary).
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from bokeh.embed import file_html
from bokeh.layouts import column
from bokeh.models import (
    ColumnDataSource,
    CrosshairTool,
    CustomJSTickFormatter,
    HoverTool,
    LinearColorMapper,
)
from bokeh.models.annotations import Span
from bokeh.models.ranges import Range1d
from bokeh.models.widgets.markups import Div
from bokeh.models.widgets.tables import DataTable, DateFormatter, NumberFormatter, TableColumn
from bokeh.plotting import figure
from bokeh.resources import INLINE

from application.report import PriceBars, ReplaySummary, TradeDetail, equity_curve, ordered
from domain.position import RoundTrip
from domain.values import Side
from entrypoints.replay import ReplayResult, price_bars, strategy_zscores
from entrypoints.settings import Settings

REPORT_HTML = "report.html"
MAX_CANDLES = 20_000
"""More strategy bars than this are drawn as candles of several bars each: a screen shows a few
thousand candles at most, and the file stays small on a year of data."""


@dataclass(frozen=True, slots=True)
class ReportContext:
    """What the page shows besides the summary: the run's input and how it was configured."""

    title: str
    source: str
    """The data file, or the journal window, the run read."""
    source_sha256: str | None
    config: Mapping[str, Any]
    """The effective settings, secrets masked."""
    prices: PriceBars | None
    strategy_seconds: int
    z_entry: float
    z_exit: float
    zscores: Sequence[float] | None = None
    """One z per strategy bar (NaN while undefined), as the engine computes it; None: no panel."""
    breaker_trips: Sequence[tuple[datetime, str]] = ()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class StrategyBars:
    """Clock-aligned strategy bars built from the input bars (OHLC by bucket), oldest first."""

    starts: npt.NDArray[np.int64]
    opens: npt.NDArray[np.float64]
    highs: npt.NDArray[np.float64]
    lows: npt.NDArray[np.float64]
    closes: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.starts)


def strategy_bars(prices: PriceBars, seconds: int) -> StrategyBars:
    """Input bars grouped into clock-aligned buckets of ``seconds``: the bars the engine decided on
    (the aggregator aligns to the clock too; halts fall on bucket edges, so no bucket spans one)."""
    starts = np.asarray(prices.starts, dtype=np.int64)
    if len(starts) == 0:
        empty = np.zeros(0)
        return StrategyBars(np.zeros(0, dtype=np.int64), empty, empty, empty, empty)
    buckets = starts // seconds * seconds
    first = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    last = np.r_[first[1:] - 1, len(starts) - 1]
    highs = np.maximum.reduceat(np.asarray(prices.highs, dtype=np.float64), first)
    lows = np.minimum.reduceat(np.asarray(prices.lows, dtype=np.float64), first)
    opens = np.asarray(prices.opens, dtype=np.float64)[first]
    closes = np.asarray(prices.closes, dtype=np.float64)[last]
    return StrategyBars(buckets[first], opens, highs, lows, closes)


_Positions = Callable[[Sequence[datetime]], npt.NDArray[np.int32]]
"""Trading-time position (candle index) of each of some instants."""


def _grouped(
    bars: StrategyBars, z: npt.NDArray[np.float64], k: int
) -> tuple[StrategyBars, npt.NDArray[np.float64]]:
    """Every ``k`` consecutive bars as one candle (z: the last bar's)."""
    first = np.arange(0, len(bars), k)
    last = np.r_[first[1:] - 1, len(bars) - 1]
    grouped = StrategyBars(
        bars.starts[first],
        bars.opens[first],
        np.maximum.reduceat(bars.highs, first),
        np.minimum.reduceat(bars.lows, first),
        bars.closes[last],
    )
    return grouped, z[last]


# ---------------------------------------------------------------- the page


def write_report_html(
    path: Path,
    summary: ReplaySummary,
    round_trips: Sequence[RoundTrip],
    context: ReportContext,
    metrics_html: str,
) -> None:
    """Write the page. ``metrics_html`` is the metric tables (see report_output.metrics_html)."""
    text = report_html(summary, round_trips, context, metrics_html)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(text)


def report_html(
    summary: ReplaySummary,
    round_trips: Sequence[RoundTrip],
    context: ReportContext,
    metrics_html: str,
) -> str:
    trips = ordered(round_trips)
    details = {d.seq: d for d in summary.trades}
    header = Div(text=_header_html(context, summary), sizing_mode="stretch_width")
    parts: list[Any] = [header]
    if context.prices is not None and len(context.prices):
        parts.extend(_charts(trips, details, context))
    else:
        parts.append(Div(text="<p>No bars: no price chart.</p>"))
    parts.append(Div(text=_STYLE + metrics_html, sizing_mode="stretch_width"))
    parts.append(Div(text=f"<h2>Trades ({len(trips):,})</h2>"))
    parts.append(_trade_table(trips, details))
    layout = column(*parts, sizing_mode="stretch_width")
    return _canonical_ids(file_html(layout, INLINE, title=context.title))


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MODEL_ID = re.compile(r'"(p\d+)"')
_DOC_JSON = '<script type="application/json"'
_UUID_REACH = 120
"""The document's own UUID key follows the opening of its JSON script within this many characters."""


def _canonical_ids(page: str) -> str:
    """The same run gives the same page, byte for byte: Bokeh names the document and its root
    elements with random UUIDs and its models from a process-wide counter, so in the page's own
    part each is renamed by order of first appearance."""
    # The page's own part starts at the root element Bokeh renders into; everything before it
    # (the inlined library, whose code holds strings such as "<body>") is left alone.
    root = page.find(' data-root-id="')
    start = page.rfind("<div", 0, root) if root >= 0 else -1
    if start < 0:
        return page
    head, body = page[:start], page[start:]
    uuids: dict[str, str] = {}
    models: dict[str, str] = {}

    def uuid(match: re.Match[str]) -> str:
        return uuids.setdefault(match.group(0), f"00000000-0000-4000-8000-{len(uuids):012d}")

    def model(match: re.Match[str]) -> str:
        return '"' + models.setdefault(match.group(1), f"p{1000 + len(models)}") + '"'

    body = _MODEL_ID.sub(model, body)
    # UUIDs sit in the root element, the JSON script's tag and key, and the render script after
    # it, never inside the document's (megabytes of) data: only those parts are searched for them.
    json_at = body.find(_DOC_JSON)
    json_end = body.find("</script>", json_at)
    if json_at < 0 or json_end < 0:
        return page
    cut = json_at + len(_DOC_JSON) + _UUID_REACH
    return (
        head + _UUID.sub(uuid, body[:cut]) + body[cut:json_end] + _UUID.sub(uuid, body[json_end:])
    )


def _charts(
    trips: Sequence[RoundTrip], details: Mapping[int, TradeDetail], context: ReportContext
) -> list[Any]:
    assert context.prices is not None
    bars = strategy_bars(context.prices, context.strategy_seconds)
    z = (
        np.asarray(context.zscores, dtype=np.float64)
        if context.zscores is not None and len(context.zscores) == len(bars)
        else np.full(len(bars), np.nan)
    )
    k = max(1, math.ceil(len(bars) / MAX_CANDLES))
    note = ""
    if k > 1:
        bars, z = _grouped(bars, z, k)
        note = f" (each candle: {k} strategy bars)"
    n = len(bars)
    starts = bars.starts
    x = np.arange(n, dtype=np.int32)

    def index_of(times: Sequence[datetime]) -> npt.NDArray[np.int32]:
        """The candle holding each time (trading time: its position, gaps take no room)."""
        epochs = np.fromiter((ts.timestamp() for ts in times), np.float64, len(times))
        i = np.searchsorted(starts, np.floor(epochs).astype(np.int64), side="right") - 1
        return np.clip(i, 0, n - 1).astype(np.int32)

    axis = ColumnDataSource(
        data={"x": x, "t": starts.astype(np.float64) * 1000.0, "z": z, "close": bars.closes},
        name="bars",
    )
    time_labels = CustomJSTickFormatter(
        args={"src": axis},
        code="""
const t = src.data.t;
const i = Math.round(tick);
if (i < 0 || i >= t.length) { return ""; }
const d = new Date(t[i]);
return d.toISOString().slice(5, 16).replace("T", " ");
""",
    )
    tools = "xpan,xwheel_zoom,box_zoom,reset,save"
    price = figure(
        height=420,
        sizing_mode="stretch_width",
        title=f"Price, {context.strategy_seconds // 60}-minute bars{note} (UTC, trading time)",
        tools=tools,
        active_scroll="xwheel_zoom",
        x_range=Range1d(start=-1, end=n),
    )
    price.xaxis.formatter = time_labels
    up = bars.closes >= bars.opens
    for mask, color, name in ((up, "#26a69a", "candles_up"), (~up, "#ef5350", "candles_down")):
        src = ColumnDataSource(
            data={
                "x": x[mask],
                "t": starts[mask].astype(np.float64) * 1000.0,
                "open": bars.opens[mask],
                "high": bars.highs[mask],
                "low": bars.lows[mask],
                "close": bars.closes[mask],
                "top": np.maximum(bars.opens[mask], bars.closes[mask]),
                "bottom": np.minimum(bars.opens[mask], bars.closes[mask]),
            },
            name=name,
        )
        price.segment("x", "high", "x", "low", source=src, color=color)
        glyph = price.vbar(
            "x", 0.7, "top", "bottom", source=src, fill_color=color, line_color=color
        )
        price.add_tools(
            HoverTool(
                renderers=[glyph],
                tooltips=[
                    ("time", "@t{%F %H:%M}"),
                    ("O", "@open{0.00}"),
                    ("H", "@high{0.00}"),
                    ("L", "@low{0.00}"),
                    ("C", "@close{0.00}"),
                ],
                formatters={"@t": "datetime"},
            )
        )
    _trade_marks(price, trips, details, index_of)
    if context.breaker_trips:
        at = index_of([ts for ts, _ in context.breaker_trips])
        breaker = ColumnDataSource(
            data={
                "x": at,
                "y": bars.highs[at],
                "rule": [rule for _, rule in context.breaker_trips],
            },
            name="breaker",
        )
        marks = price.scatter(
            "x", "y", source=breaker, marker="asterisk", size=16, color="#6a1b9a", line_width=2
        )
        price.add_tools(HoverTool(renderers=[marks], tooltips=[("breaker", "@rule")]))
    price.yaxis.axis_label = "price"

    zplot = figure(
        height=160,
        sizing_mode="stretch_width",
        title="z-score with entry and exit thresholds",
        tools=tools,
        active_scroll="xwheel_zoom",
        x_range=price.x_range,
    )
    zplot.xaxis.formatter = time_labels
    zplot.line("x", "z", source=axis, color="#37474f")
    for level, color in (
        (context.z_entry, "#c62828"),
        (-context.z_entry, "#c62828"),
        (context.z_exit, "#2e7d32"),
        (-context.z_exit, "#2e7d32"),
    ):
        zplot.add_layout(
            Span(location=level, dimension="width", line_color=color, line_dash="dashed")
        )

    equity_plot, drawdown_plot = _equity_plots(trips, index_of, price, tools, time_labels)
    for p in (price, zplot, equity_plot, drawdown_plot):
        p.add_tools(CrosshairTool(dimensions="height"))
        p.toolbar.logo = None
    return [price, zplot, equity_plot, drawdown_plot]


def _trade_marks(
    price: Any,
    trips: Sequence[RoundTrip],
    details: Mapping[int, TradeDetail],
    index_of: _Positions,
) -> None:
    entry_x = index_of([t.entry_ts for t in trips])
    exit_x = index_of([t.exit_ts for t in trips])
    entry_y = np.asarray([float(t.entry_price) for t in trips], dtype=np.float64)
    exit_y = np.asarray([float(t.exit_price) for t in trips], dtype=np.float64)
    won = np.asarray([t.net_pnl > 0 for t in trips], dtype=np.float64)
    seqs = np.asarray([t.seq for t in trips], dtype=np.int32)
    nets = np.asarray([float(t.net_pnl) for t in trips], dtype=np.float64)
    short = np.asarray([t.side is Side.SHORT for t in trips], dtype=bool)
    links = ColumnDataSource(
        data={"x0": entry_x, "y0": entry_y, "x1": exit_x, "y1": exit_y, "won": won},
        name="links",
    )
    price.segment(
        "x0", "y0", "x1", "y1", source=links, color="#1565c0", line_dash="dotted", line_width=1.5
    )
    for role, color in (("stop", "#c62828"), ("target", "#2e7d32")):
        levels = [
            (int(entry_x[i]), int(exit_x[i]), float(level))
            for i, t in enumerate(trips)
            if (level := getattr(details.get(t.seq), f"{role}_price", None)) is not None
        ]
        if levels:
            source = ColumnDataSource(
                data={
                    "x0": np.asarray([a for a, _, _ in levels], dtype=np.int32),
                    "x1": np.asarray([b for _, b, _ in levels], dtype=np.int32),
                    "y": np.asarray([y for _, _, y in levels], dtype=np.float64),
                },
                name=f"{role}_levels",
            )
            price.segment(
                "x0", "y", "x1", "y", source=source, color=color, line_dash="dashed", line_width=1.5
            )
    # Numbers only (Bokeh ships numeric arrays as binary; a list of strings costs a JSON item
    # each): a short entry is the long triangle turned upside down, an exit's colour comes from
    # whether it won through a two-colour map.
    entries = ColumnDataSource(
        data={"x": entry_x, "y": entry_y, "seq": seqs, "angle": np.where(short, math.pi, 0.0)},
        name="entries",
    )
    entry_marks = price.scatter(
        "x",
        "y",
        source=entries,
        marker="triangle",
        angle="angle",
        size=11,
        color="#1565c0",
        line_color="white",
    )
    exits = ColumnDataSource(
        data={"x": exit_x, "y": exit_y, "seq": seqs, "net": nets, "won": won}, name="exits"
    )
    won_colors = LinearColorMapper(palette=["#c62828", "#2e7d32"], low=0, high=1)
    exit_marks = price.scatter(
        "x",
        "y",
        source=exits,
        marker="square_x",
        size=10,
        fill_color={"field": "won", "transform": won_colors},
        line_color="black",
    )
    price.add_tools(
        HoverTool(renderers=[entry_marks], tooltips=[("trade", "#@seq"), ("entry", "@y{0.00}")]),
        HoverTool(
            renderers=[exit_marks],
            tooltips=[("trade", "#@seq"), ("exit", "@y{0.00}"), ("net USD", "@net{0,0.00}")],
        ),
    )


def _equity_plots(
    trips: Sequence[RoundTrip], index_of: _Positions, price: Any, tools: str, labels: Any
) -> tuple[Any, Any]:
    curve = equity_curve(trips)
    xs = index_of([ts for ts, _ in curve])
    equity = np.asarray([float(v) for _, v in curve], dtype=np.float64)
    peak = np.maximum.accumulate(equity) if len(equity) else equity
    peak = np.maximum(peak, 0.0)
    source = ColumnDataSource(
        data={"x": xs, "equity": equity, "drawdown": equity - peak}, name="equity"
    )
    equity_plot = figure(
        height=200,
        sizing_mode="stretch_width",
        title="Equity: cumulative net P&L, USD (trading time)",
        tools=tools,
        active_scroll="xwheel_zoom",
        x_range=price.x_range,
    )
    equity_plot.step("x", "equity", source=source, mode="after", color="#1565c0", line_width=2)
    equity_plot.add_layout(Span(location=0, dimension="width", line_color="#9e9e9e"))
    drawdown_plot = figure(
        height=130,
        sizing_mode="stretch_width",
        title="Drawdown from the running peak, USD",
        tools=tools,
        active_scroll="xwheel_zoom",
        x_range=price.x_range,
    )
    drawdown_plot.varea_step(
        x="x", y1="drawdown", y2=0, source=source, step_mode="after", fill_color="#ef9a9a"
    )
    for p in (equity_plot, drawdown_plot):
        p.xaxis.formatter = labels
    return equity_plot, drawdown_plot


def _trade_table(trips: Sequence[RoundTrip], details: Mapping[int, TradeDetail]) -> DataTable:
    def detail(trip: RoundTrip) -> TradeDetail | None:
        return details.get(trip.seq)

    def num(value: Decimal | float | None) -> float:
        return math.nan if value is None else float(value)

    def floats(values: Sequence[float]) -> npt.NDArray[np.float64]:
        return np.asarray(values, dtype=np.float64)

    data: dict[str, Any] = {
        "seq": np.asarray([t.seq for t in trips], dtype=np.int32),
        "side": [t.side.name for t in trips],
        "qty": np.asarray([t.qty for t in trips], dtype=np.int32),
        "entry_time": floats([t.entry_ts.timestamp() * 1000 for t in trips]),
        "entry_price": floats([float(t.entry_price) for t in trips]),
        "exit_time": floats([t.exit_ts.timestamp() * 1000 for t in trips]),
        "exit_price": floats([float(t.exit_price) for t in trips]),
        "reason": [t.exit_reason.value for t in trips],
        "held": floats([(t.exit_ts - t.entry_ts).total_seconds() / 60 for t in trips]),
        "net": floats([float(t.net_pnl) for t in trips]),
        "entry_z": floats([num(d.entry_z if (d := detail(t)) else None) for t in trips]),
        "stop": floats([num(d.stop_price if (d := detail(t)) else None) for t in trips]),
        "target": floats([num(d.target_price if (d := detail(t)) else None) for t in trips]),
        "mae": floats([num(d.mae_usd if (d := detail(t)) else None) for t in trips]),
        "mfe": floats([num(d.mfe_usd if (d := detail(t)) else None) for t in trips]),
    }
    source = ColumnDataSource(data=data, name="trades")
    when = DateFormatter(format="%Y-%m-%d %H:%M")
    price_fmt = NumberFormatter(format="0,0.00")
    usd_fmt = NumberFormatter(format="0,0.00")
    columns = [
        TableColumn(field="seq", title="#", width=40),
        TableColumn(field="side", title="side", width=70),
        TableColumn(field="qty", title="qty", width=35),
        TableColumn(field="entry_time", title="entry (UTC)", formatter=when),
        TableColumn(field="entry_price", title="entry", formatter=price_fmt),
        TableColumn(field="exit_time", title="exit (UTC)", formatter=when),
        TableColumn(field="exit_price", title="exit", formatter=price_fmt),
        TableColumn(field="reason", title="reason"),
        TableColumn(field="held", title="held (min)", formatter=NumberFormatter(format="0,0")),
        TableColumn(field="net", title="net USD", formatter=usd_fmt),
        TableColumn(field="entry_z", title="entry z", formatter=NumberFormatter(format="0.00")),
        TableColumn(field="stop", title="stop", formatter=price_fmt),
        TableColumn(field="target", title="target", formatter=price_fmt),
        TableColumn(field="mae", title="MAE USD", formatter=usd_fmt),
        TableColumn(field="mfe", title="MFE USD", formatter=usd_fmt),
    ]
    return DataTable(
        source=source, columns=columns, height=360, sizing_mode="stretch_width", index_position=None
    )


def _header_html(context: ReportContext, summary: ReplaySummary) -> str:
    period = "no bars"
    if summary.first_bar_at is not None and summary.last_bar_at is not None:
        period = f"{_utc(summary.first_bar_at)} to {_utc(summary.last_bar_at)}"
    digest = f"<br>SHA-256 <code>{context.source_sha256}</code>" if context.source_sha256 else ""
    config = html.escape(json.dumps(context.config, indent=2, default=str))
    return _STYLE + (
        f"<h1>{html.escape(context.title)}</h1>"
        f"<p>Data: <code>{html.escape(context.source)}</code>{digest}<br>"
        f"Period: {period}</p>"
        "<details><summary>Effective configuration</summary>"
        f"<pre>{config}</pre></details>"
    )


# Bokeh renders each Div in its own shadow root: every Div that needs these rules carries them.
_STYLE = (
    "<style>"
    "div,p,td,th{font-family:system-ui,sans-serif;font-size:14px}"
    "table.m{border-collapse:collapse;margin:4px 16px 12px 0;display:inline-table;"
    "vertical-align:top}"
    "table.m td,table.m th{border-bottom:1px solid #ddd;padding:2px 8px;text-align:right}"
    "table.m td:first-child,table.m th:first-child{text-align:left}"
    "table.m th{background:#f0f0f0}"
    "pre{background:#f6f6f6;padding:6px;max-height:300px;overflow:auto}"
    "</style>"
)


def _utc(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------- contexts


def replay_context(settings: Settings, result: ReplayResult, source: object) -> ReportContext:
    """What report.html shows of a replay besides its summary (``source``: the bar file)."""
    prices = price_bars(result.series)
    seconds = settings.strategy.bar_minutes * 60
    bars = strategy_bars(prices, seconds)
    path = Path(str(source))
    digest = file_sha256(path) if path.is_file() else None
    return ReportContext(
        title=f"Replay of {path.name}" if digest else f"Replay of {source}",
        source=str(source),
        source_sha256=digest,
        config=settings.redacted(),
        prices=prices,
        strategy_seconds=seconds,
        z_entry=float(settings.strategy.z_threshold_entry),
        z_exit=float(settings.strategy.z_threshold_exit),
        zscores=strategy_zscores(settings, bars.closes),
        breaker_trips=[(t.ts, t.rule.value) for t in result.journal.breaker_trips()],
    )
