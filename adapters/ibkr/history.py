"""Warming the z-score up from IB's history, so a (re)started daemon trades on its first bar.

The strategy bars are rebuilt from 1-minute TRADES bars with the same aggregator (and session
calendar) the live stream goes through, so the warm-up window holds the closes the live daemon
would have seen, had it been running. Only bars that had ended by ``now`` count: IB also serves the
bar still forming.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from ib_async import Contract

from adapters.ibkr.client import IbClient
from adapters.ibkr.mapping import MappingError, bar_from_historical
from application.bar_gate import BarGate
from domain.aggregation import BarAggregator
from domain.bar import Bar
from domain.calendar import SessionCalendar

log = logging.getLogger(__name__)

HISTORY_BAR_SECONDS = 60
MAX_WARMUP_S = 86_400
"""One request for 1-minute bars covers at most a day (IB's limit for that bar size)."""


async def recent_bars(
    client: IbClient,
    contract: Contract,
    *,
    now: datetime,
    bar_seconds: int,
    count: int,
    calendar: SessionCalendar | None,
    gate: BarGate | None = None,
) -> list[Bar]:
    """The last ``count`` strategy bars that ended by ``now``, oldest first (fewer when IB has
    fewer, none when it does not answer).

    With ``gate``, the history goes through it as the live bars will: its reference is seeded from
    the median of the first closes (so a bad first bar cannot become it), a bar it refuses does not
    count, and the live stream then goes on from the reference the history left."""
    # Three windows' worth covers a halt or a thin overnight; a weekend takes the full day.
    duration = min(MAX_WARMUP_S, max(3 * count * bar_seconds, 3600))
    end = now.astimezone(UTC)
    try:
        items = await client.historical_bars(contract, end, duration, "1 min")
    except (TimeoutError, ConnectionError) as exc:
        log.warning("z-score warm-up: IB history did not come (%s)", str(exc) or type(exc).__name__)
        return []
    limit = int(end.timestamp())
    minutes: list[Bar] = []
    for item in items:
        try:
            bar = bar_from_historical(item, HISTORY_BAR_SECONDS)
        except MappingError as exc:
            log.warning("z-score warm-up: bar skipped: %s", exc)
            continue
        if bar.end_epoch <= limit:
            minutes.append(bar)
    minutes.sort(key=lambda b: b.epoch)
    if gate is not None:
        gate.seed([b.close for b in minutes])
        admitted = [b for b in minutes if gate.refusal(b, limit) is None]
        if len(admitted) < len(minutes):
            log.warning(
                "z-score warm-up: %d history bar(s) refused (%s)",
                len(minutes) - len(admitted),
                ", ".join(f"{reason} {n}" for reason, n in sorted(gate.refused.items())),
            )
        minutes = admitted
    aggregator = BarAggregator(bar_seconds, calendar)
    done: list[Bar] = []
    for bar in minutes:
        done.extend(aggregator.add(bar))
    last = aggregator.close_before(limit)
    if last is not None:
        done.append(last)
    return done[-count:]
