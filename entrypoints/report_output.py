"""Renders a replay summary: a terminal table and a report folder (JSON, CSV, PNG chart).

Renderings are deterministic: dollars to the cent (half-even), prices to at most six decimals,
ratios to six decimals, times as ISO-8601 UTC with a "Z". The same input gives byte-identical
``summary.json`` and ``trades.csv``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import Any, TypeVar

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from application.report import ReplaySummary, drawdown_curve, equity_curve, ordered
from domain.position import OpenPosition, RoundTrip

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

    section(f"Breaker trips: {s.breaker_trips}")
    for rule, count in s.breaker_trips_by_rule.items():
        row(rule, count)

    section("Final position")
    lines.append(f"  {_position_line(s.final_position)}")

    section(f"Refused input rows: {s.rows_refused_total:,}")
    for refusal, count in s.rows_refused.items():
        row(refusal, f"{count:,}")

    section(f"Signals blocked: {s.signals_blocked_total:,}")
    for blocked, count in s.signals_blocked.items():
        row(blocked, f"{count:,}")
    return "\n".join(lines) + "\n"


def _money(amount: Decimal) -> str:
    return f"{Decimal(usd(amount)):,.2f}"


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
    directory: Path, summary: ReplaySummary, round_trips: Sequence[RoundTrip]
) -> list[Path]:
    """Write summary.json, trades.csv and equity.png into ``directory`` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    summary_path = directory / SUMMARY_JSON
    trades_path = directory / TRADES_CSV
    chart_path = directory / EQUITY_PNG
    _write_text(summary_path, summary_json(summary))
    _write_text(trades_path, trades_csv(round_trips))
    write_equity_chart(chart_path, round_trips)
    return [summary_path, trades_path, chart_path]


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
    }
    return json.dumps(document, sort_keys=True, indent=2, allow_nan=False) + "\n"


def _opt_usd(amount: Decimal | None) -> str | None:
    return None if amount is None else usd(amount)


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


def trades_csv(round_trips: Iterable[RoundTrip]) -> str:
    """One CSV row per round trip, in closing order, with a header row and "\\n" line endings."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TRADES_CSV_HEADER)
    for trip in ordered(round_trips):
        writer.writerow(
            (
                trip.seq,
                trip.side.name,
                trip.qty,
                utc(trip.entry_ts),
                price(trip.entry_price),
                utc(trip.exit_ts),
                price(trip.exit_price),
                trip.exit_reason.value,
                trip.pnl_ticks,
                usd(trip.gross_pnl),
                usd(trip.commissions),
                usd(trip.net_pnl),
            )
        )
    return buffer.getvalue()


def write_equity_chart(path: Path, round_trips: Sequence[RoundTrip]) -> None:
    """Equity curve over closed trades with a drawdown panel underneath, as a PNG."""
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
    top.set_title("Replay equity (net of commissions)")
    top.set_ylabel("cumulative net P&L, USD")
    bottom.set_ylabel("drawdown, USD")
    top.axhline(0.0, color="0.6", linewidth=0.8)
    bottom.axhline(0.0, color="0.6", linewidth=0.8)
    if equity:
        times = [ts.astimezone(UTC).replace(tzinfo=None) for ts, _ in equity]
        top.step(times, [float(v) for _, v in equity], where="post", color="tab:blue")
        depths = [-float(v) for _, v in drawdown]
        bottom.fill_between(times, depths, 0.0, step="post", color="tab:red", alpha=0.4)
        bottom.step(times, depths, where="post", color="tab:red", linewidth=0.8)
        if times[0] == times[-1]:
            # A single instant would give matplotlib an empty x range (and a warning).
            bottom.set_xlim(times[0] - timedelta(hours=1), times[0] + timedelta(hours=1))
        bottom.set_xlabel("exit time (UTC)")
    else:
        top.text(0.5, 0.75, "no closed trades", transform=top.transAxes, ha="center", va="center")
        top.set_ylim(-1.0, 1.0)
        bottom.set_ylim(-1.0, 1.0)
        top.set_xticks([])
        bottom.set_xticks([])
    figure.savefig(path, format="png", metadata={"Software": None})


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
