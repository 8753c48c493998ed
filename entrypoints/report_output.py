"""Renders a replay summary: a terminal table and a report folder (JSON, CSV, PNG chart and the
self-contained HTML report).

Renderings are deterministic: dollars to the cent (half-even), prices to at most six decimals,
ratios to six decimals, times as ISO-8601 UTC with a "Z". The same input gives byte-identical
``summary.json``, ``trades.csv`` and ``report.html``.
"""

from __future__ import annotations

import csv
import gc
import html
import io
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import numpy as np

from application.report import (
    IntColumn,
    PriceBars,
    ReplaySummary,
    TradeDetail,
    drawdown_curve,
    equity_curve,
    ordered,
)
from domain.bar import Bar
from domain.position import OpenPosition, RoundTrip

if TYPE_CHECKING:
    from entrypoints.report_html import ReportContext

SUMMARY_JSON = "summary.json"
TRADES_CSV = "trades.csv"
EQUITY_PNG = "equity.png"

TRADES_CSV_HEADER = (
    "seq",
    "side",
    "qty",
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "exit_reason",
    "pnl_ticks",
    "gross_pnl_usd",
    "commissions_usd",
    "net_pnl_usd",
    "held_seconds",
    "entry_z",
    "stop_price",
    "target_price",
    "mae_usd",
    "mfe_usd",
)

_CONTEXT = Context(prec=34)
_CENT = Decimal("0.01")
_PRICE_STEP = Decimal("0.000001")
_RATIO_DIGITS = 6
_NA = "n/a"
_T = TypeVar("_T")


# ---------------------------------------------------------------- scalar renderings


def usd(amount: Decimal) -> str:
    """Dollars with exactly two decimals, rounded half-even: ``Decimal("1.005")`` → ``"1.00"``."""
    cents = amount.quantize(_CENT, rounding=ROUND_HALF_EVEN, context=_CONTEXT)
    # A tiny negative mean rounds to -0.00; print it as 0.00.
    return str(cents.copy_abs() if cents == 0 else cents)


def price(value: Decimal) -> str:
    """A price with two to six decimals: ``5000.25``, ``5000.125``, ``5000.333333``."""
    text = format(value.quantize(_PRICE_STEP, rounding=ROUND_HALF_EVEN, context=_CONTEXT), "f")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.rstrip('0').ljust(2, '0')}"


def utc(ts: datetime) -> str:
    """ISO-8601 in UTC with a "Z" suffix."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ratio(value: float | None) -> float | None:
    return None if value is None else round(value, _RATIO_DIGITS)


# ---------------------------------------------------------------- terminal table

_LABEL = 30
_VALUE = 24


def format_summary(summary: ReplaySummary) -> str:
    """The summary as a fixed-width table for the terminal."""
    s = summary
    lines: list[str] = ["Replay summary", "=" * (_LABEL + _VALUE + 2)]

    def section(title: str) -> None:
        lines.append("")
        lines.append(title)
        lines.append("-" * (_LABEL + _VALUE + 2))

    def row(label: str, value: object) -> None:
        lines.append(f"  {label:<{_LABEL}}{value!s:>{_VALUE}}")

    section("Overview")
    row("Data from", _opt(s.first_bar_at, utc))
    row("Data to", _opt(s.last_bar_at, utc))
    row("Input bars", f"{s.bars_in:,}")
    row("Strategy bars", f"{s.strategy_bars:,}")
    row("Trading days", f"{s.trading_days:,}")
    row("Round trips", f"{s.round_trips:,}")
    row("Long / short", f"{s.long_trades} / {s.short_trades}")
    row("Wins / losses / breakeven", f"{s.wins} / {s.losses} / {s.breakeven}")
    row("First entry", _opt(s.first_trade_at, utc))
    row("Last exit", _opt(s.last_trade_at, utc))

    section("P&L (USD, net of commissions)")
    row("Net P&L", _money(s.net_pnl_usd))
    row("Gross P&L", _money(s.gross_pnl_usd))
    row("Commissions", _money(s.commissions_usd))
    row("Expectancy per trade", _opt(s.expectancy_usd, _money))
    row("Average win", _opt(s.avg_win_usd, _money))
    row("Average loss", _opt(s.avg_loss_usd, _money))
    row("Best trade", _trade_ref(s.best_trade_usd, s.best_trade_seq))
    row("Worst trade", _trade_ref(s.worst_trade_usd, s.worst_trade_seq))
    row("Max drawdown", _money(s.max_drawdown_usd))
    row(
        "Long: trades / won / net",
        f"{s.long.trades} / {s.long.wins} / {_money(s.long.net_pnl_usd)}",
    )
    row(
        "Short: trades / won / net",
        f"{s.short.trades} / {s.short.wins} / {_money(s.short.net_pnl_usd)}",
    )

    section(f"Returns (on an account of {_money(s.account_size_usd)} USD)")
    row("Return", _opt(s.return_pct, _pct))
    row("Annualised (simple)", _opt(s.annual_return_pct, _pct))
    row("CAGR", _opt(s.cagr_pct, _pct))
    dd = s.drawdown
    row("Max drawdown", f"{_money(dd.depth_usd)} ({_opt(dd.depth_pct, lambda v: f'{v:.2f}%')})")
    row("  peak", _opt(dd.start, utc))
    row("  bottom", _opt(dd.bottom, utc))
    row("  recovered", _opt(dd.recovery, utc) if dd.start is not None else _NA)
    row("  duration", _opt(dd.duration, held))
    row("Calmar", _opt(s.calmar, _fixed))
    row("SQN", _opt(s.sqn, _fixed))
    if s.market is not None:
        m = s.market
        row(
            "Market change",
            f"{price(m.first_open)} -> {price(m.last_close)}",
        )
        row(
            "  points / % / USD per lot",
            f"{m.points:+} / {m.pct:+.2f}% / {_money(m.usd_per_contract)}",
        )

    section("Holding time")
    row("Average", _opt(s.avg_hold, held))
    row("Average winner", _opt(s.avg_hold_win, held))
    row("Average loser", _opt(s.avg_hold_loss, held))
    row("Longest", _opt(s.max_hold, held))

    section("Risk ratios")
    row("Win rate", _opt(s.win_rate, lambda r: f"{r * 100:.2f}%"))
    row("Profit factor", _opt(s.profit_factor, _fixed))
    row("Sharpe (daily, annualised)", _opt(s.sharpe_daily, _fixed))
    row("Sortino (daily, annualised)", _opt(s.sortino_daily, _fixed))
    row("Max losing streak", s.max_losing_streak)
    row("Max winning streak", s.max_winning_streak)

    section("By exit reason")
    if s.by_exit_reason:
        lines.append(f"  {'reason':<18}{'trades':>8}{'wins':>8}{'losses':>8}{'net P&L':>14}")
        for reason, stats in s.by_exit_reason.items():
            lines.append(
                f"  {reason.value:<18}{stats.trades:>8}{stats.wins:>8}{stats.losses:>8}"
                f"{_money(stats.net_pnl_usd):>14}"
            )
    else:
        lines.append("  (no round trips)")

    section(f"Days: {s.days_won} won, {s.days_lost} lost")
    row("Best day", _day(s.best_day))
    row("Worst day", _day(s.worst_day))
    for day, pnl in s.daily_pnl_usd:
        row(day.isoformat(), _money(pnl))

    section(f"Breaker trips: {s.breaker_trips}")
    for rule, count in s.breaker_trips_by_rule.items():
        row(rule, count)

    section("Final position")
    lines.append(f"  {_position_line(s.final_position)}")
    if s.final_unrealized_usd is not None and s.last_close is not None:
        lines.append(
            f"  unrealised {_money(s.final_unrealized_usd)} USD at the last close "
            f"{price(s.last_close)}"
        )

    section(f"Refused input rows: {s.rows_refused_total:,}")
    for refusal, count in s.rows_refused.items():
        row(refusal, f"{count:,}")

    section(f"Signals blocked: {s.signals_blocked_total:,}")
    for blocked, count in s.signals_blocked.items():
        row(blocked, f"{count:,}")
    return "\n".join(lines) + "\n"


def _money(amount: Decimal) -> str:
    return f"{Decimal(usd(amount)):,.2f}"


def _pct(value: float) -> str:
    return f"{value:+.2f}%"


def held(delta: timedelta) -> str:
    """A holding time: ``2d 3h 05m``, ``3h 05m``, ``12m 30s``."""
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


def _day(day: tuple[date, Decimal] | None) -> str:
    return _NA if day is None else f"{_money(day[1])} ({day[0].isoformat()})"


def _fixed(value: float) -> str:
    return f"{value:.3f}"


def _trade_ref(amount: Decimal | None, seq: int | None) -> str:
    if amount is None or seq is None:
        return _NA
    return f"{_money(amount)} (#{seq})"


def _position_line(position: OpenPosition | None) -> str:
    if position is None:
        return "flat"
    return (
        f"{position.side.name} {position.qty} @ {price(position.avg_price)} "
        f"since {utc(position.opened_at)} (open; not in P&L)"
    )


def _opt(value: _T | None, render: Callable[[_T], str]) -> str:
    return _NA if value is None else render(value)


# ---------------------------------------------------------------- report folder


def write_report(
    directory: Path,
    summary: ReplaySummary,
    round_trips: Sequence[RoundTrip],
    context: ReportContext | None = None,
) -> list[Path]:
    """Write summary.json, trades.csv, equity.png and, given the run's ``context``, report.html
    into ``directory`` (created if missing)."""
    # A batch of short-lived objects without reference cycles, as in the replay (entrypoints.replay):
    # the cyclic collector would only re-walk the heap a large replay leaves (measured: 40% of the
    # report's time after the 1M-bar replay).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _write_report(directory, summary, round_trips, context)
    finally:
        if collecting:
            gc.enable()


def _write_report(
    directory: Path,
    summary: ReplaySummary,
    round_trips: Sequence[RoundTrip],
    context: ReportContext | None,
) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    summary_path = directory / SUMMARY_JSON
    trades_path = directory / TRADES_CSV
    chart_path = directory / EQUITY_PNG
    _write_text(summary_path, summary_json(summary))
    _write_text(trades_path, trades_csv(round_trips, summary.trades))
    prices = None if context is None else context.prices
    write_equity_chart(chart_path, round_trips, prices)
    written = [summary_path, trades_path, chart_path]
    if context is not None:
        # Bokeh only when a page is written: the daemon's /chart uses this module's PNG alone.
        from entrypoints.report_html import REPORT_HTML, write_report_html

        html_path = directory / REPORT_HTML
        write_report_html(html_path, summary, round_trips, context, metrics_html(summary))
        written.append(html_path)
    return written


def _write_text(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(text)


def summary_json(summary: ReplaySummary) -> str:
    """The summary as JSON text: keys sorted, indent 2, trailing newline."""
    s = summary
    document: dict[str, Any] = {
        "bars_in": s.bars_in,
        "strategy_bars": s.strategy_bars,
        "round_trips": s.round_trips,
        "wins": s.wins,
        "losses": s.losses,
        "breakeven": s.breakeven,
        "long_trades": s.long_trades,
        "short_trades": s.short_trades,
        "gross_pnl_usd": usd(s.gross_pnl_usd),
        "commissions_usd": usd(s.commissions_usd),
        "net_pnl_usd": usd(s.net_pnl_usd),
        "win_rate": ratio(s.win_rate),
        "profit_factor": ratio(s.profit_factor),
        "expectancy_usd": _opt_usd(s.expectancy_usd),
        "avg_win_usd": _opt_usd(s.avg_win_usd),
        "avg_loss_usd": _opt_usd(s.avg_loss_usd),
        "best_trade": _trade_json(s.best_trade_usd, s.best_trade_seq),
        "worst_trade": _trade_json(s.worst_trade_usd, s.worst_trade_seq),
        "max_drawdown_usd": usd(s.max_drawdown_usd),
        "max_losing_streak": s.max_losing_streak,
        "max_winning_streak": s.max_winning_streak,
        "trading_days": s.trading_days,
        "daily_pnl_usd": {day.isoformat(): usd(pnl) for day, pnl in s.daily_pnl_usd},
        "sharpe_daily": ratio(s.sharpe_daily),
        "sortino_daily": ratio(s.sortino_daily),
        "first_trade_at": None if s.first_trade_at is None else utc(s.first_trade_at),
        "last_trade_at": None if s.last_trade_at is None else utc(s.last_trade_at),
        "by_exit_reason": {
            reason.value: {
                "trades": stats.trades,
                "wins": stats.wins,
                "losses": stats.losses,
                "net_pnl_usd": usd(stats.net_pnl_usd),
            }
            for reason, stats in s.by_exit_reason.items()
        },
        "breaker_trips": s.breaker_trips,
        "breaker_trips_by_rule": dict(s.breaker_trips_by_rule),
        "breaker_trip_log": [{"time": utc(ts), "rule": rule} for ts, rule in s.breaker_trip_log],
        "final_position": _position_json(s.final_position),
        "rows_refused": dict(s.rows_refused),
        "rows_refused_total": s.rows_refused_total,
        "signals_blocked": dict(s.signals_blocked),
        "signals_blocked_total": s.signals_blocked_total,
        "first_bar_at": _opt_utc(s.first_bar_at),
        "last_bar_at": _opt_utc(s.last_bar_at),
        "account_size_usd": usd(s.account_size_usd),
        "return_pct": ratio(s.return_pct),
        "annual_return_pct": ratio(s.annual_return_pct),
        "cagr_pct": ratio(s.cagr_pct),
        "long": _side_json(s.long),
        "short": _side_json(s.short),
        "hold_seconds": {
            "average": _opt_seconds(s.avg_hold),
            "average_win": _opt_seconds(s.avg_hold_win),
            "average_loss": _opt_seconds(s.avg_hold_loss),
            "max": _opt_seconds(s.max_hold),
        },
        "max_drawdown": {
            "usd": usd(s.drawdown.depth_usd),
            "pct": ratio(s.drawdown.depth_pct),
            "peak_at": _opt_utc(s.drawdown.start),
            "bottom_at": _opt_utc(s.drawdown.bottom),
            "recovered_at": _opt_utc(s.drawdown.recovery),
            "duration_seconds": _opt_seconds(s.drawdown.duration),
        },
        "calmar": ratio(s.calmar),
        "sqn": ratio(s.sqn),
        "best_day": _day_json(s.best_day),
        "worst_day": _day_json(s.worst_day),
        "days_won": s.days_won,
        "days_lost": s.days_lost,
        "last_close": None if s.last_close is None else price(s.last_close),
        "final_unrealized_usd": _opt_usd(s.final_unrealized_usd),
        "market_change": None
        if s.market is None
        else {
            "first_open": price(s.market.first_open),
            "last_close": price(s.market.last_close),
            "points": price(s.market.points),
            "pct": ratio(s.market.pct),
            "usd_per_contract": usd(s.market.usd_per_contract),
        },
    }
    return json.dumps(document, sort_keys=True, indent=2, allow_nan=False) + "\n"


def _opt_usd(amount: Decimal | None) -> str | None:
    return None if amount is None else usd(amount)


def _opt_utc(ts: datetime | None) -> str | None:
    return None if ts is None else utc(ts)


def _opt_seconds(delta: timedelta | None) -> int | None:
    return None if delta is None else int(delta.total_seconds())


def _side_json(side: Any) -> dict[str, Any]:
    return {"trades": side.trades, "wins": side.wins, "net_pnl_usd": usd(side.net_pnl_usd)}


def _day_json(day: tuple[date, Decimal] | None) -> dict[str, str] | None:
    return None if day is None else {"date": day[0].isoformat(), "net_pnl_usd": usd(day[1])}


def _trade_json(amount: Decimal | None, seq: int | None) -> dict[str, Any] | None:
    if amount is None or seq is None:
        return None
    return {"seq": seq, "net_pnl_usd": usd(amount)}


def _position_json(position: OpenPosition | None) -> dict[str, Any] | None:
    if position is None:
        return None
    return {
        "side": position.side.name,
        "qty": position.qty,
        "avg_price": price(position.avg_price),
        "opened_at": utc(position.opened_at),
    }


def trades_csv(round_trips: Iterable[RoundTrip], details: Iterable[TradeDetail] = ()) -> str:
    """One CSV row per round trip, in closing order, with a header row and "\\n" line endings.

    The columns after ``net_pnl_usd`` come from ``details`` (matched by ``seq``): holding time in
    seconds, the entry signal's z, the stop and target prices, and MAE/MFE in USD (gross, MAE <= 0);
    a cell is empty where the detail is unknown."""
    by_seq = {d.seq: d for d in details}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TRADES_CSV_HEADER)
    # Prices and dollar amounts repeat from trade to trade (a grid of ticks, a few commissions), and
    # their text depends on the value alone: each is rendered once.
    price_text = _memo(price)
    usd_text = _memo(usd)
    for trip in ordered(round_trips):
        d = by_seq.get(trip.seq)
        writer.writerow(
            (
                trip.seq,
                trip.side.name,
                trip.qty,
                utc(trip.entry_ts),
                price_text(trip.entry_price),
                utc(trip.exit_ts),
                price_text(trip.exit_price),
                trip.exit_reason.value,
                trip.pnl_ticks,
                usd_text(trip.gross_pnl),
                usd_text(trip.commissions),
                usd_text(trip.net_pnl),
                int((trip.exit_ts - trip.entry_ts).total_seconds()),
                "" if d is None or d.entry_z is None else f"{d.entry_z:.6f}",
                "" if d is None or d.stop_price is None else price_text(d.stop_price),
                "" if d is None or d.target_price is None else price_text(d.target_price),
                "" if d is None or d.mae_usd is None else usd_text(d.mae_usd),
                "" if d is None or d.mfe_usd is None else usd_text(d.mfe_usd),
            )
        )
    return buffer.getvalue()


def _memo(render: Callable[[Decimal], str]) -> Callable[[Decimal], str]:
    """``render`` remembering its answers by value: ``usd`` and ``price`` quantize first, so equal
    Decimals render alike, zero aside (-0 and 0 are equal and may not). For one report; the
    memory goes with it."""
    done: dict[Decimal, str] = {}

    def memo(value: Decimal) -> str:
        text = done.get(value)
        if text is None:
            text = render(value)
            if value:
                done[value] = text
        return text

    return memo


def write_equity_chart(
    path: Path | BinaryIO, round_trips: Sequence[RoundTrip], prices: PriceBars | None = None
) -> None:
    """Equity curve over closed trades with a drawdown panel underneath, as a PNG.

    The x axis is trading time: with ``prices``, the number of input bars before each point (a
    weekend or a month without data takes no room), labelled with the dates of those bars; without
    them, the trade count."""
    # matplotlib only when a chart is drawn: a replay without --report never pays its import.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # The object-oriented API with an explicit Agg canvas: no pyplot, so no global figure
    # registry and no backend switch; the figure is unreachable (closed) once this returns.
    # Decimated before the drawdown is derived: bucket extremes keep every peak and trough.
    equity = _decimate(equity_curve(round_trips))
    drawdown = drawdown_curve(equity)
    # Fixed margins: constrained layout re-measures every tick label and costs more than the data.
    figure = Figure(figsize=(10, 6), dpi=100)
    figure.subplots_adjust(left=0.09, right=0.98, top=0.94, bottom=0.09, hspace=0.08)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1)}, squeeze=True
    )
    top.set_title("Replay equity (net of commissions), trading time")
    top.set_ylabel("cumulative net P&L, USD")
    bottom.set_ylabel("drawdown, USD")
    top.axhline(0.0, color="0.6", linewidth=0.8)
    bottom.axhline(0.0, color="0.6", linewidth=0.8)
    if equity:
        xs, ticks, labels, what = trading_axis([ts for ts, _ in equity], prices)
        top.step(xs, [float(v) for _, v in equity], where="post", color="tab:blue")
        depths = [-float(v) for _, v in drawdown]
        bottom.fill_between(xs, depths, 0.0, step="post", color="tab:red", alpha=0.4)
        bottom.step(xs, depths, where="post", color="tab:red", linewidth=0.8)
        if xs[0] == xs[-1]:
            # A single point would give matplotlib an empty x range (and a warning).
            bottom.set_xlim(xs[0] - 1, xs[0] + 1)
        if ticks:
            bottom.set_xticks(ticks, labels)
        bottom.set_xlabel(what)
    else:
        top.text(0.5, 0.75, "no closed trades", transform=top.transAxes, ha="center", va="center")
        top.set_ylim(-1.0, 1.0)
        bottom.set_ylim(-1.0, 1.0)
        top.set_xticks([])
        bottom.set_xticks([])
    figure.savefig(path, format="png", metadata={"Software": None})


def price_bars_of(bars: Sequence[Bar]) -> PriceBars | None:
    """Recorded bars as the report's columns: the finest size recorded, one contract's bars after
    another's (a roll); None without bars."""
    if not bars:
        return None
    seconds = min(b.seconds for b in bars)
    kept = sorted((b for b in bars if b.seconds == seconds), key=lambda b: b.epoch)
    return PriceBars(
        starts=[b.epoch for b in kept],
        seconds=seconds,
        opens=[float(b.open) for b in kept],
        highs=[float(b.high) for b in kept],
        lows=[float(b.low) for b in kept],
        closes=[float(b.close) for b in kept],
    )


_MAX_DATE_TICKS = 8


def trading_positions(times: Sequence[datetime], starts: IntColumn) -> list[int]:
    """Trading time of each instant: how many bars started at or before it."""
    epochs = np.asarray([int(ts.timestamp()) for ts in times], dtype=np.int64)
    positions: list[int] = np.searchsorted(
        np.asarray(starts, dtype=np.int64), epochs, side="right"
    ).tolist()
    return positions


def trading_axis(
    times: Sequence[datetime], prices: PriceBars | None
) -> tuple[list[int], list[int], list[str], str]:
    """x of each point, tick positions and their date labels, and the axis title."""
    if prices is None or not len(prices):
        return list(range(len(times))), [], [], "closed trades (trading time: no bars given)"
    xs = trading_positions(times, prices.starts)
    # A tick at the first bar of each UTC date the run saw, thinned to a readable number.
    starts = np.asarray(prices.starts, dtype=np.int64)
    days = starts // 86400
    firsts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    step = max(1, -(-len(firsts) // _MAX_DATE_TICKS))
    # Labels too close to the next one would overlap (a run starting late on a date): drop them.
    gap = len(starts) / (2 * _MAX_DATE_TICKS)
    chosen: list[int] = []
    for tick in reversed(firsts[::step].tolist()):
        if not chosen or chosen[-1] - tick >= gap:
            chosen.append(tick)
    chosen.reverse()
    labels = [datetime.fromtimestamp(int(starts[i]), UTC).strftime("%Y-%m-%d") for i in chosen]
    return (
        xs,
        chosen,
        labels,
        "trading time: bars elapsed, labelled by UTC date (gaps take no room)",
    )


_CHART_BUCKETS = 1500


def _decimate(points: list[tuple[datetime, Decimal]]) -> list[tuple[datetime, Decimal]]:
    """At most ~4 points per bucket of equal count (first, lowest, highest, last, in time order).

    A chart is ~1000 pixels wide: drawing 40,000 steps costs time and shows nothing more, while
    keeping each bucket's extremes keeps every peak and trough, so the drawdown reads the same.
    """
    if len(points) <= 4 * _CHART_BUCKETS:
        return points
    size = -(-len(points) // _CHART_BUCKETS)
    kept: list[tuple[datetime, Decimal]] = []
    for start in range(0, len(points), size):
        chunk = points[start : start + size]
        lo = min(range(len(chunk)), key=lambda i: chunk[i][1])
        hi = max(range(len(chunk)), key=lambda i: chunk[i][1])
        kept.extend(chunk[i] for i in sorted({0, lo, hi, len(chunk) - 1}))
    return kept


# ---------------------------------------------------------------- HTML metric tables


def metrics_html(summary: ReplaySummary) -> str:
    """The summary's metrics as HTML tables (for report.html): the same figures, same roundings,
    as the terminal table."""
    s = summary
    dd = s.drawdown

    def table(title: str, rows: Sequence[tuple[str, object]]) -> str:
        body = "".join(
            f"<tr><td>{html.escape(label)}</td><td>{html.escape(str(value))}</td></tr>"
            for label, value in rows
        )
        return f'<table class="m"><tr><th colspan="2">{html.escape(title)}</th></tr>{body}</table>'

    overview = [
        ("Data from", _opt(s.first_bar_at, utc)),
        ("Data to", _opt(s.last_bar_at, utc)),
        ("Input bars", f"{s.bars_in:,}"),
        ("Strategy bars", f"{s.strategy_bars:,}"),
        ("Trading days", f"{s.trading_days:,}"),
        ("Round trips", f"{s.round_trips:,}"),
        ("Wins / losses / breakeven", f"{s.wins} / {s.losses} / {s.breakeven}"),
        ("Win rate", _opt(s.win_rate, lambda r: f"{r * 100:.2f}%")),
    ]
    pnl = [
        ("Net P&L", _money(s.net_pnl_usd)),
        ("Gross P&L", _money(s.gross_pnl_usd)),
        ("Commissions", _money(s.commissions_usd)),
        ("Profit factor", _opt(s.profit_factor, _fixed)),
        ("Expectancy per trade", _opt(s.expectancy_usd, _money)),
        ("Average win", _opt(s.avg_win_usd, _money)),
        ("Average loss", _opt(s.avg_loss_usd, _money)),
        ("Best trade", _trade_ref(s.best_trade_usd, s.best_trade_seq)),
        ("Worst trade", _trade_ref(s.worst_trade_usd, s.worst_trade_seq)),
        (
            "Long: trades / won / net",
            f"{s.long.trades} / {s.long.wins} / {_money(s.long.net_pnl_usd)}",
        ),
        (
            "Short: trades / won / net",
            f"{s.short.trades} / {s.short.wins} / {_money(s.short.net_pnl_usd)}",
        ),
    ]
    risk = [
        ("Account size", _money(s.account_size_usd)),
        ("Return", _opt(s.return_pct, _pct)),
        ("Annualised (simple)", _opt(s.annual_return_pct, _pct)),
        ("CAGR", _opt(s.cagr_pct, _pct)),
        ("Max drawdown", f"{_money(dd.depth_usd)} ({_opt(dd.depth_pct, lambda v: f'{v:.2f}%')})"),
        ("Drawdown peak", _opt(dd.start, utc)),
        ("Drawdown bottom", _opt(dd.bottom, utc)),
        ("Recovered", _opt(dd.recovery, utc) if dd.start is not None else _NA),
        ("Drawdown duration", _opt(dd.duration, held)),
        ("Sharpe (daily, annualised)", _opt(s.sharpe_daily, _fixed)),
        ("Sortino (daily, annualised)", _opt(s.sortino_daily, _fixed)),
        ("Calmar", _opt(s.calmar, _fixed)),
        ("SQN", _opt(s.sqn, _fixed)),
        ("Max losing / winning streak", f"{s.max_losing_streak} / {s.max_winning_streak}"),
    ]
    hold = [
        ("Average", _opt(s.avg_hold, held)),
        ("Average winner", _opt(s.avg_hold_win, held)),
        ("Average loser", _opt(s.avg_hold_loss, held)),
        ("Longest", _opt(s.max_hold, held)),
    ]
    market = [("Market change", _NA)]
    if s.market is not None:
        m = s.market
        market = [
            ("First open", price(m.first_open)),
            ("Last close", price(m.last_close)),
            ("Change, points", f"{m.points:+}"),
            ("Change, %", f"{m.pct:+.2f}%"),
            ("Change, USD per contract", _money(m.usd_per_contract)),
        ]
    final = [("Position", _position_line(s.final_position))]
    if s.final_unrealized_usd is not None:
        final.append(("Unrealised at last close", _money(s.final_unrealized_usd)))
    days = [
        ("Days won / lost", f"{s.days_won} / {s.days_lost}"),
        ("Best day", _day(s.best_day)),
        ("Worst day", _day(s.worst_day)),
        *((day.isoformat(), _money(pnl)) for day, pnl in s.daily_pnl_usd),
    ]
    reasons = [
        (r.value, f"{st.trades} trades, {st.wins} won, {_money(st.net_pnl_usd)}")
        for r, st in s.by_exit_reason.items()
    ]
    blocked = [(reason, f"{count:,}") for reason, count in s.signals_blocked.items()]
    trips = [(rule, str(count)) for rule, count in s.breaker_trips_by_rule.items()]
    return "<h2>Metrics</h2>" + "".join(
        [
            table("Overview", overview),
            table("P&L (USD, net of commissions)", pnl),
            table("Returns and risk", risk),
            table("Holding time", hold),
            table("Market", market),
            table("Open position at the end", final),
            table("Daily net P&L (USD)", days),
            table("By exit reason", reasons or [("none", "")]),
            table(f"Signals blocked ({s.signals_blocked_total:,})", blocked or [("none", "")]),
            table(f"Breaker trips ({s.breaker_trips})", trips or [("none", "")]),
        ]
    )
