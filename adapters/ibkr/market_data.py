"""The MarketData port on IB: 5-second real-time bars (TRADES, outside regular hours too).

Bars go out oldest first, each exactly once: a bar no newer than the last one sent is dropped (IB
repeats bars after a resubscribe). After IB reports that data was lost (1101) or the feed went
stale, :meth:`IbkrMarketData.recover` resubscribes and fills the gap from historical 5-second bars
before any newer real-time bar goes out, so the aggregator sees one unbroken, ordered series: the
bars IB really had, and nothing it did not. A bar the :class:`BarGate` refuses (a price outside the
sanity band, a start in the future beyond a small clock skew) is counted and logged, and goes nowhere:
it never becomes the last bar sent either, so a bar stamped in the future cannot make the real ones
after it look like duplicates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC

from ib_async import Contract, RealTimeBarList

from adapters.ibkr.client import IbClient
from adapters.ibkr.mapping import MappingError, bar_from_historical, bar_from_realtime
from application.bar_gate import BarGate
from application.ports import Clock
from domain.bar import Bar

log = logging.getLogger(__name__)

BAR_SECONDS = 5
MAX_BACKFILL_S = 3600
"""IB serves 5-second history for at most an hour per request; a longer gap is filled up to that."""


class IbkrMarketData:
    """Real-time bars for one contract at a time, as a stream of one-bar batches."""

    def __init__(self, *, client: IbClient, clock: Clock, gate: BarGate | None = None) -> None:
        self._client = client
        self._clock = clock
        self.gate = gate if gate is not None else BarGate(None)
        self._queue: asyncio.Queue[Sequence[Bar] | None] = asyncio.Queue()
        self._contract: Contract | None = None
        self._subscription: RealTimeBarList | None = None
        self._last_epoch: int | None = None
        self._held: list[Bar] | None = None  # real-time bars held back while a gap is filled
        self._listeners: list[Callable[[Bar], None]] = []
        self.bars_received = 0
        self.duplicates_dropped = 0
        self.backfilled = 0

    # -- MarketData port ----------------------------------------------------------------------

    async def batches(self) -> AsyncIterator[Sequence[Bar]]:
        while True:
            batch = await self._queue.get()
            if batch is None:
                return
            yield batch

    # -- control (the session drives these) ---------------------------------------------------

    def on_bar(self, listener: Callable[[Bar], None]) -> None:
        """Also tell ``listener`` of every bar sent (the stale-feed watchdog)."""
        self._listeners.append(listener)

    @property
    def contract(self) -> Contract | None:
        return self._contract

    @property
    def last_bar_end(self) -> int | None:
        return None if self._last_epoch is None else self._last_epoch + BAR_SECONDS

    async def subscribe(self, contract: Contract) -> None:
        """Stream ``contract``'s bars (replacing any earlier subscription)."""
        self.unsubscribe()
        if self._contract is not None and self._contract.conId != contract.conId:
            self._last_epoch = None  # another contract: its series starts afresh
        self._contract = contract
        subscription = await self._client.realtime_bars(contract)
        subscription.updateEvent += self._on_update
        self._subscription = subscription

    def unsubscribe(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.updateEvent -= self._on_update
            self._client.cancel_realtime_bars(subscription)

    async def recover(self) -> int:
        """Resubscribe and backfill the gap since the last bar sent; returns the bars filled in."""
        contract = self._contract
        if contract is None or self._held is not None:
            return 0  # nothing to recover, or a recovery is under way and fills the same gap
        self._held = []
        try:
            await self.subscribe(contract)
            filled = await self._backfill(contract)
        finally:
            held, self._held = self._held or [], None
            for bar in held:
                self._emit(bar)
        return filled

    def close(self) -> None:
        """End the stream (the consumer's ``batches`` loop returns)."""
        self.unsubscribe()
        self._queue.put_nowait(None)

    # -- internals ----------------------------------------------------------------------------

    async def _backfill(self, contract: Contract) -> int:
        last = self._last_epoch
        if last is None:
            return 0
        now = self._clock.now().astimezone(UTC)
        gap = int(now.timestamp()) - (last + BAR_SECONDS)
        if gap < BAR_SECONDS:
            return 0
        duration = min(MAX_BACKFILL_S, (gap // BAR_SECONDS + 2) * BAR_SECONDS)
        try:
            history = await self._client.historical_bars(contract, now, duration, "5 secs")
        except (TimeoutError, ConnectionError) as exc:
            log.warning("backfill of %d s failed: %s", gap, exc)
            return 0
        bars: list[Bar] = []
        for item in history:
            try:
                bars.append(bar_from_historical(item, BAR_SECONDS))
            except MappingError as exc:
                log.warning("historical bar skipped: %s", exc)
        first_held = self._held[0].epoch if self._held else None
        filled = 0
        for bar in sorted(bars, key=lambda b: b.epoch):
            # Only the gap: after the last bar sent, before the first real-time bar held back.
            if bar.epoch <= last or (first_held is not None and bar.epoch >= first_held):
                continue
            if bar.end_epoch > int(now.timestamp()):
                continue  # still forming at IB: the real-time stream will bring it
            self._emit(bar)
            filled += 1
        self.backfilled += filled
        return filled

    def _on_update(self, bars: RealTimeBarList, has_new_bar: bool) -> None:
        if not has_new_bar or not bars:
            return
        latest = bars[-1]
        # ib_async appends every bar to the subscription's list for as long as it lives: keep only
        # the newest, or a week of 5-second bars is a list that only grows.
        del bars[:-1]
        try:
            bar = bar_from_realtime(latest)
        except (MappingError, ValueError) as exc:
            log.warning("real-time bar skipped: %s", exc)
            return
        self.bars_received += 1
        if self._held is not None:
            self._held.append(bar)
            return
        self._emit(bar)

    def _emit(self, bar: Bar) -> None:
        if self._last_epoch is not None and bar.epoch <= self._last_epoch:
            self.duplicates_dropped += 1
            return
        reason = self.gate.refusal(bar, int(self._clock.now().timestamp()))
        if reason is not None:
            count = self.gate.refused[reason]
            if count <= 10 or count % 1000 == 0:  # a broken feed must not flood the log
                log.warning("bar refused (%s, %d so far): %r", reason, count, bar)
            return
        self._last_epoch = bar.epoch
        self._queue.put_nowait((bar,))
        for listener in self._listeners:
            listener(bar)
