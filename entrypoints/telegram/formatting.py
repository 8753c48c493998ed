"""Plain-text replies for the Telegram commands: compact, exact, UTC.

Every function here is pure: a view of the console's answers in, text out. Money is printed from
the Decimals the domain computed (never through a float), with at least two decimals; times are
UTC. No parse mode is used anywhere, so text a user typed can be echoed back safely.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from application.operator import Health, Period
from application.ports import BrokerOrder, BrokerSnapshot
from domain.circuit_breaker import BreakerStatus
from domain.engine import EngineState, EngineStatus
from domain.position import OpenPosition, RoundTrip
from domain.values import price_text

MAX_MESSAGE = 4096
"""Telegram's limit on one message's text, in characters."""

_CENT = Decimal("0.01")
_SECRET_KEYS = ("token", "password", "secret", "api_key")
MASK = "**********"


# ------------------------------------------------------------------ small pieces


def money(amount: Decimal, *, signed: bool = True) -> str:
    """``+12.50`` / ``-3.72``: exact, at least two decimals, never rounded."""
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        amount = amount.quantize(_CENT)  # only appends zeros: exact
    return f"{amount:+,}" if signed else f"{amount:,}"


def when(ts: datetime | None) -> str:
    """``2025-03-04 15:05 UTC`` (seconds shown only when they are not zero)."""
    if ts is None:
        return "never"
    utc = ts.astimezone(UTC)
    pattern = "%Y-%m-%d %H:%M UTC" if utc.second == 0 else "%Y-%m-%d %H:%M:%S UTC"
    return utc.strftime(pattern)


def duration(delta: timedelta) -> str:
    """``4 h``, ``30 min``, ``1 h 30 min``, ``45 s``."""
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    if secs or not any(parts):
        parts.append(f"{secs} s")
    return " ".join(p for p in parts if p)


def position_line(position: OpenPosition | None, *, since: bool = True) -> str:
    """``long 1 @ 5,000.25 since 2025-03-04 15:05 UTC``, or ``flat``."""
    if position is None:
        return "flat"
    line = f"{position.side.name.lower()} {position.qty} @ {price_text(position.avg_price)}"
    return f"{line} since {when(position.opened_at)}" if since else line


def position_detail(status: EngineStatus, now: datetime) -> list[str]:
    """What a trader asks of an open position: entry and current price, unrealised P&L, time held,
    and the stop and target prices. Nothing when flat."""
    position = status.position
    if position is None:
        return []
    entry = f"Entry {price_text(position.avg_price)}"
    if status.last_close is not None:
        entry += f" · now {price_text(Decimal(status.last_close))}"
    if status.unrealized_pnl is not None:
        entry += f" · unrealised {money(status.unrealized_pnl)} USD"
    held = max(now - position.opened_at, timedelta(0))
    lines = [f"{entry} · held {duration(held)}"]
    stop = price_text(status.stop_price) if status.stop_price is not None else "none known"
    target = price_text(status.target_price) if status.target_price is not None else "none known"
    lines.append(f"Stop {stop} · target {target}")
    return lines


def signed_contracts(position: OpenPosition | None) -> int:
    return 0 if position is None else position.side.sign * position.qty


def entries_line(status: EngineStatus) -> str:
    """Why new entries are refused now, or that they are open."""
    if status.paused:
        return "paused by operator (/resume to allow entries)"
    if status.reconcile_required is not None:
        return f"blocked: reconcile required ({status.reconcile_required})"
    if status.entry_blocker is not None:
        return f"blocked: {status.entry_blocker}"
    if status.last_bar_end is None:
        return "no bar seen yet"
    return "open"


def breaker_trips(breaker: BreakerStatus, now: datetime) -> list[str]:
    """The breaker rules holding entries back at ``now``."""
    trips = []
    if breaker.daily_loss_halt:
        trips.append("daily loss limit")
    if breaker.max_trades_reached:
        trips.append("daily trade cap")
    if breaker.paused_until is not None and breaker.paused_until > now:
        trips.append(f"losing-streak pause until {when(breaker.paused_until)}")
    if breaker.rejects_halt:
        trips.append("rejected entries")
    return trips


# ------------------------------------------------------------------ command replies


def status_text(status: EngineStatus, now: datetime) -> str:
    lines = [f"State {status.state.value} · {position_line(status.position)}"]
    lines.extend(position_detail(status, now))
    if status.state in (EngineState.ENTERING_LONG, EngineState.ENTERING_SHORT):
        lines.append("Entry order working")
    elif status.state in (EngineState.EXITING_LONG, EngineState.EXITING_SHORT):
        lines.append("Exit order working")
    lines.append(f"Entries: {entries_line(status)}")
    b = status.breaker
    trips = breaker_trips(b, now)
    lines.append(
        f"Breaker: {', '.join(trips) if trips else 'ok'} · today {b.trades_today} "
        f"trade{'s' if b.trades_today != 1 else ''}, realized {money(b.realized_pnl)} USD"
    )
    lines.append(f"Working orders: {len(status.working_orders)}")
    if status.last_bar_end is not None:
        bar = f"Last bar: {when(status.last_bar_end)}"
        if status.last_close is not None:
            bar += f", close {price_text(Decimal(status.last_close))}"
        if status.last_z is not None:
            bar += f", z {status.last_z:+.2f}"
        lines.append(bar)
    else:
        lines.append("Last bar: none yet")
    return "\n".join(lines)


def pnl_text(period: Period, since: datetime, trips: Sequence[RoundTrip]) -> str:
    label = {"today": "today", "week": "this week", "month": "this month"}[period]
    if not trips:
        return f"No closed trades {label} (since {when(since)})."
    won = sum(1 for t in trips if t.net_pnl > 0)
    lost = sum(1 for t in trips if t.net_pnl < 0)
    gross = sum((t.gross_pnl for t in trips), Decimal(0))
    fees = sum((t.commissions for t in trips), Decimal(0))
    nets = [t.net_pnl for t in trips]
    count = len(trips)
    return "\n".join(
        [
            f"P&L {label} (since {when(since)}): {count} trade{'s' if count != 1 else ''}, "
            f"{won} won, {lost} lost",
            f"Net {money(gross - fees)} USD (gross {money(gross)}, "
            f"commissions {money(fees, signed=False)})",
            f"Best {money(max(nets))}, worst {money(min(nets))}",
        ]
    )


def trade_line(trip: RoundTrip) -> str:
    return (
        f"#{trip.seq} {trip.side.name} {trip.qty} {price_text(trip.entry_price)} → "
        f"{price_text(trip.exit_price)} "
        f"{trip.exit_reason.value} {money(trip.net_pnl)} · {when(trip.exit_ts)}"
    )


def trades_text(trips: Sequence[RoundTrip], asked: int) -> str:
    if not trips:
        return "No closed trades yet."
    head = (
        f"Last {len(trips)} trade{'s' if len(trips) != 1 else ''}"
        if len(trips) == asked
        else f"All {len(trips)} trade{'s' if len(trips) != 1 else ''}"
    )
    return "\n".join([f"{head} (net USD, exit time):", *(trade_line(t) for t in trips)])


def positions_text(
    status: EngineStatus,
    broker: BrokerSnapshot | None,
    problem: str,
    now: datetime | None = None,
) -> str:
    engine = signed_contracts(status.position)
    lines = [f"Engine: {position_line(status.position)}"]
    if now is not None:
        lines.extend(position_detail(status, now))
    if broker is None:
        lines.append(f"Broker: did not answer ({problem})")
        return "\n".join(lines)
    lines.append(f"Broker: {broker.position:+d} contract{'s' if abs(broker.position) != 1 else ''}")
    if broker.position == engine:
        lines.append("They agree.")
    else:
        lines.append(
            f"MISMATCH: engine {engine:+d}, broker {broker.position:+d}. "
            "/reconcile asks the broker again."
        )
    if status.reconcile_required is not None:
        lines.append(f"Reconcile required: {status.reconcile_required}")
    return "\n".join(lines)


def order_line(order: BrokerOrder) -> str:
    price = f" @ {_broker_price(order.price)}" if order.price is not None else ""
    return f"{order.action} {order.qty} {order.order_type}{price} ({order.key})"


def _broker_price(text: str) -> str:
    try:
        return price_text(Decimal(text))
    except InvalidOperation:
        return text


def orders_text(status: EngineStatus, broker: BrokerSnapshot | None, problem: str) -> str:
    lines = []
    if broker is None:
        lines.append(f"Broker: did not answer ({problem})")
    elif broker.open_orders:
        lines.append(f"Open at the broker ({len(broker.open_orders)}):")
        lines.extend(order_line(o) for o in broker.open_orders)
    else:
        lines.append("No open orders at the broker.")
    engine = ", ".join(status.working_orders) if status.working_orders else "none"
    lines.append(f"Engine's working orders: {engine}")
    return "\n".join(lines)


def breaker_text(breaker: BreakerStatus, now: datetime) -> str:
    limits = breaker.limits
    trips = breaker_trips(breaker, now)
    day = breaker.trade_date.isoformat() if breaker.trade_date is not None else "none yet"
    loss_limit = (
        f" (halt at -{money(limits.max_daily_loss, signed=False)})"
        if limits.max_daily_loss is not None
        else " (no daily loss limit)"
    )
    cap = f" of {limits.max_trades_per_day}" if limits.max_trades_per_day is not None else ""
    rejects = f" of {limits.max_rejects_per_day}" if limits.max_rejects_per_day is not None else ""
    streak = (
        f" of {limits.max_consecutive_losses} (then a {duration(limits.pause)} pause)"
        if limits.max_consecutive_losses is not None
        else " (no losing-streak pause)"
    )
    age = (
        duration(limits.max_position_duration)
        if limits.max_position_duration is not None
        else "no limit"
    )
    lines = [
        f"Circuit breaker: {'TRIPPED: ' + ', '.join(trips) if trips else 'ok'}",
        f"Trade date: {day}",
        f"Realized today: {money(breaker.realized_pnl)} USD{loss_limit}",
        f"Trades today: {breaker.trades_today}{cap}",
        f"Loss streak: {breaker.loss_streak}{streak}",
        f"Entries rejected by the broker: {breaker.rejects_today}{rejects}",
        f"Max position age: {age}",
    ]
    if trips:
        lines.append("/breaker reset (operator) lifts the halts; P&L and counts stay.")
    return "\n".join(lines)


def health_text(health: Health) -> str:
    seconds = health.last_bar_age_s
    if seconds is None:
        age = "none yet"
    elif seconds < 0:
        age = f"ends {-seconds:.0f} s in the future"
    else:
        age = f"{seconds:.0f} s ago"
    return "\n".join(
        [
            f"Health: {health.status} · state {health.state} · position {health.position:+d}",
            f"Broker link: {'up' if health.connected else 'DOWN'} · last bar: {age}",
            f"Backlogs: journal {health.journal_backlog}, alerts {health.alert_backlog}",
            "Problems: " + ("; ".join(health.problems) if health.problems else "none"),
        ]
    )


def config_text(config: Mapping[str, Any], secrets: Iterable[str] = ()) -> str:
    """The settings by section, one ``key: value`` a line. Keys that name a secret are masked
    whatever their value, and any secret in ``secrets`` is masked wherever it appears."""
    lines: list[str] = []
    for section, values in config.items():
        if isinstance(values, Mapping):
            lines.append(str(section))
            lines.extend(f"  {key}: {_shown(key, value)}" for key, value in values.items())
        else:
            lines.append(f"{section}: {_shown(section, values)}")
    text = "\n".join(lines) if lines else "No settings to show."
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def _shown(key: object, value: Any) -> str:
    if value is not None and any(word in str(key).lower() for word in _SECRET_KEYS):
        return MASK
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, separators=(", ", ": "))


def chunks(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """``text`` in pieces Telegram accepts, cut at line ends where possible."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for whole in text.split("\n"):
        line = whole
        while len(line) > limit:  # a single over-long line: cut it hard
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces
