"""How optimistic were the paper fills? Each journaled fill beside the bar it happened in.

Paper fills are simulated by IB (``reference/operations.md`` §6 #7: a paper bot with 96 % winners
went live to 98 % losers). Before going live a trader wants to see, per fill:

* where it sits in the range of the recorded bar it happened in: a buy below the bar's low or a sell
  above its high is a price the market never offered (*outside*, an optimistic fill);
* its slippage against what the order aimed at, in ticks, positive when it cost us: the signal
  bar's close for an entry or a signal exit, the stop or target price for a bracket leg;

and the same summed up by side and by New York hour. Pure: the caller reads the journal.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from statistics import median
from zoneinfo import ZoneInfo

from domain.bar import Bar
from domain.commands import FillRecord, OrderIntentRecord, SignalAction, SignalRecord
from domain.values import Action

_ET = ZoneInfo("America/New_York")


@dataclass(frozen=True, slots=True)
class FillCheck:
    exec_id: str
    order_key: str
    role: str
    action: Action
    qty: int
    price: Decimal
    ts: datetime
    bar_start: datetime | None
    bar_low: Decimal | None
    bar_high: Decimal | None
    outside_ticks: Decimal | None
    """How far the fill lies outside the bar's range, in ticks, positive when it is better for us
    than any price the bar traded (optimistic), negative when worse; 0 inside. None: no bar."""
    reference: Decimal | None
    reference_kind: str
    slippage_ticks: Decimal | None
    """Fill against the reference, in ticks, positive when it cost us."""

    @property
    def side(self) -> str:
        return self.action.value

    @property
    def hour_et(self) -> int:
        return self.ts.astimezone(_ET).hour


@dataclass(frozen=True, slots=True)
class FillGroup:
    label: str
    fills: int
    mean_slippage_ticks: Decimal | None
    median_slippage_ticks: Decimal | None
    outside_better: int
    """Fills at a price better than anything the bar traded."""
    outside_worse: int
    without_bar: int


def check_fills(
    fills: Iterable[FillRecord],
    *,
    bars: Sequence[Bar],
    signals: Iterable[SignalRecord],
    intents: Iterable[OrderIntentRecord],
    tick: Decimal,
) -> list[FillCheck]:
    """Each fill (oldest first) beside its bar and its reference price."""
    kept = sorted(bars, key=lambda b: b.epoch)
    finest = min((b.seconds for b in kept), default=0)
    kept = [b for b in kept if b.seconds == finest]
    starts = [b.epoch for b in kept]
    closes = sorted(
        ((s.ts, Decimal(repr(s.close))) for s in signals if s.action is not SignalAction.SKIPPED),
        key=lambda c: c[0],
    )
    close_times = [ts for ts, _ in closes]
    intent_of = {i.key: i for i in intents}
    out = []
    for record in sorted(fills, key=lambda r: (r.fill.ts, r.fill.exec_id)):
        fill = record.fill
        bar = _bar_at(kept, starts, fill.ts)
        low = high = outside = None
        if bar is not None:
            low, high = Decimal(repr(bar.low)), Decimal(repr(bar.high))
            outside = _outside(fill.action, fill.price, low, high) / tick
        reference, kind = _reference(
            record.role, intent_of.get(fill.order_key), closes, close_times
        )
        slippage = None
        if reference is not None:
            cost = fill.price - reference if fill.action is Action.BUY else reference - fill.price
            slippage = cost / tick
        out.append(
            FillCheck(
                exec_id=fill.exec_id,
                order_key=fill.order_key,
                role=record.role,
                action=fill.action,
                qty=fill.qty,
                price=fill.price,
                ts=fill.ts,
                bar_start=bar.ts if bar is not None else None,
                bar_low=low,
                bar_high=high,
                outside_ticks=outside,
                reference=reference,
                reference_kind=kind,
                slippage_ticks=slippage,
            )
        )
    return out


def group(checks: Sequence[FillCheck], label: str) -> FillGroup:
    slips = [c.slippage_ticks for c in checks if c.slippage_ticks is not None]
    return FillGroup(
        label=label,
        fills=len(checks),
        mean_slippage_ticks=(sum(slips, Decimal(0)) / len(slips)) if slips else None,
        median_slippage_ticks=Decimal(median(slips)) if slips else None,
        outside_better=sum(
            1 for c in checks if c.outside_ticks is not None and c.outside_ticks > 0
        ),
        outside_worse=sum(1 for c in checks if c.outside_ticks is not None and c.outside_ticks < 0),
        without_bar=sum(1 for c in checks if c.outside_ticks is None),
    )


def by_side(checks: Sequence[FillCheck]) -> list[FillGroup]:
    return [group([c for c in checks if c.action is a], a.value) for a in Action]


def by_hour(checks: Sequence[FillCheck]) -> list[FillGroup]:
    hours = sorted({c.hour_et for c in checks})
    return [group([c for c in checks if c.hour_et == h], f"{h:02d}:00") for h in hours]


def by_role(checks: Sequence[FillCheck]) -> list[FillGroup]:
    roles = sorted({c.role for c in checks})
    return [group([c for c in checks if c.role == r], r) for r in roles]


# -- internals --------------------------------------------------------------------------------


def _bar_at(bars: Sequence[Bar], starts: Sequence[int], ts: datetime) -> Bar | None:
    """The bar whose [start, end) holds ``ts``; else the one that ends at ``ts`` (a fill stamped
    at a bar's close, as a replay's are)."""
    moment = ts.timestamp()
    i = bisect.bisect_right(starts, moment) - 1
    if i >= 0 and moment < bars[i].end_epoch:
        return bars[i]
    if i >= 0 and moment == bars[i].end_epoch:
        return bars[i]
    return None


def _outside(action: Action, price: Decimal, low: Decimal, high: Decimal) -> Decimal:
    """Price distance outside [low, high], positive when better for us than the bar allowed."""
    if action is Action.BUY:
        return low - price if price < low else (-(price - high) if price > high else Decimal(0))
    return price - high if price > high else (-(low - price) if price < low else Decimal(0))


def _reference(
    role: str,
    intent: OrderIntentRecord | None,
    closes: Sequence[tuple[datetime, Decimal]],
    close_times: Sequence[datetime],
) -> tuple[Decimal | None, str]:
    if intent is None:
        return None, "no order intent"
    if role in ("stop", "target"):
        return intent.price, f"{role} price"
    if intent.price is not None:
        return intent.price, "limit price"
    i = bisect.bisect_right(close_times, intent.ts) - 1
    if i >= 0 and closes[i][0] == intent.ts:
        return closes[i][1], "signal close"
    return None, "no signal (flatten, timeout)"
