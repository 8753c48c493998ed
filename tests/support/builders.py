"""Builders for domain objects in tests."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain.bar import Bar
from domain.calendar import ContinuousCalendar, SessionCalendar
from domain.circuit_breaker import RiskLimits
from domain.engine import Engine, EngineConfig, LostLeg, SessionRules, StrategyParams
from domain.position import Fill
from domain.values import MES, Action
from domain.zscore import Threshold, ZScore

T0 = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 ET: mid-session


def bar(
    at: datetime = T0,
    close: float = 5000.0,
    *,
    seconds: int = 300,
    volume: int = 100,
    high: float | None = None,
    low: float | None = None,
    open_: float | None = None,
) -> Bar:
    o = close if open_ is None else open_
    return Bar(
        at,
        seconds,
        o,
        max(o, close) if high is None else high,
        min(o, close) if low is None else low,
        close,
        volume,
    )


def z(value: float) -> ZScore:
    """A z-score whose exact terms give exactly ``value`` (value must be a quarter multiple)."""
    num = round(value * 4)
    assert num == value * 4, "use quarter multiples so the exact terms are simple"
    return ZScore(num, 16, value)


def z_exact(num: int, var: int) -> ZScore:
    return ZScore(num, var, math.copysign(math.sqrt(num * num / var), num))


def fill(
    key: str,
    action: Action,
    price: str | Decimal,
    *,
    qty: int = 1,
    at: datetime = T0,
    exec_id: str | None = None,
    commission: str = "0.62",
) -> Fill:
    return Fill(
        exec_id=exec_id or f"x-{key}-{action.value}-{qty}-{price}-{at.timestamp()}",
        order_key=key,
        action=action,
        qty=qty,
        price=Decimal(price),
        ts=at,
        commission=Decimal(commission) * qty,
    )


def engine(
    *,
    qty: int = 1,
    stop: str | None = "50",
    target: str | None = "75",
    limits: RiskLimits | None = None,
    calendar: SessionCalendar | None = None,
    sessions_enabled: bool | None = None,
    min_volume: int = 0,
    entry: str = "2.0",
    exit_: str = "0.5",
    lost_leg: LostLeg = LostLeg.FLATTEN,
) -> Engine:
    cal = calendar if calendar is not None else ContinuousCalendar()
    return Engine(
        EngineConfig(
            instrument=MES,
            strategy=StrategyParams(Threshold(entry), Threshold(exit_), min_volume),
            qty=qty,
            stop_loss_dollars=Decimal(stop) if stop is not None else None,
            take_profit_dollars=Decimal(target) if target is not None else None,
            limits=limits if limits is not None else RiskLimits(),
            sessions=SessionRules(
                calendar=cal,
                enabled=(calendar is not None) if sessions_enabled is None else sessions_enabled,
            ),
            lost_leg=lost_leg,
        )
    )


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)
