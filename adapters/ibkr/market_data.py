"""The MarketData port on IB: 5-second real-time bars (TRADES, outside regular hours too).

Bars go out oldest first, each exactly once: a bar no newer than the last one sent is dropped (IB
repeats bars after a resubscribe). IB sends a real-time bar every 5 seconds while the market is
open, so the stream itself shows when bars were lost:

* **Gap check.** A real-time bar that starts later than 5 s after the last bar sent, across time
  the session calendar says the market was open, means bars were lost on the way (a subscription
  dropped or raced at IB, a farm flap). That bar and every newer one are held back while the gap
  is filled from IB's 5-second history, in requests of at most an hour each, so the consumer sees
  one unbroken, ordered series: the bars IB really had, and nothing it did not. A gap history
  cannot fill is logged with its size and left; the stream goes on.
  If IB cannot be asked (link down, a history request timed out or was refused), the bars stay
  held until a recovery fills the gap, or for at most :data:`HOLD_LIMIT_S` market seconds.
* **Make before break.** :meth:`IbkrMarketData.recover` (after IB reports lost data, a stale feed
  or a reconnect) opens the new subscription before it cancels the old one: ib_async drops every
  bar that still arrives for a cancelled request id, so break-before-make loses the bars in
  flight. Both subscriptions may deliver the same bar for a moment; the duplicate is dropped. A
  subscription of an earlier connection is forgotten, not cancelled (it died with its link, and
  its request id may be the new one's). A new contract (the roll) ends the old stream first, drops
  whatever was held for it, and starts its series afresh.

Recoveries, gap fills and subscriptions take turns (one lock): two recoveries at once (1101 and a
farm notice) would otherwise cancel each other's subscriptions and release each other's bars.

A bar the :class:`BarGate` refuses (a price outside the sanity band, a start in the future beyond a
small clock skew) is counted and logged, and goes nowhere: it never becomes the last bar sent
either, so a bar stamped in the future cannot make the real ones after it look like duplicates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

from ib_async import BarData, Contract, RealTimeBarList

from adapters.ibkr.client import IbClient
from adapters.ibkr.mapping import MappingError, bar_from_historical, bar_from_realtime
from application.bar_gate import FUTURE, BarGate
from application.ports import Clock
from domain.bar import Bar
from domain.calendar import SessionCalendar
from domain.errors import CalendarCoverageError

log = logging.getLogger(__name__)

BAR_SECONDS = 5
MAX_BACKFILL_S = 3600
"""IB serves 5-second history for at most an hour per request: a longer gap takes several."""
MAX_GAP_FILL_S = 12 * 3600
"""The most of one gap that is filled (12 requests); older bars of a longer outage are left."""
HOLD_LIMIT_S = 120
"""Market seconds newer bars may be held for a gap IB cannot be asked about; then they go on."""


class IbkrMarketData:
    """Real-time bars for one contract at a time, as a stream of one-bar batches.

    ``calendar`` tells a gap in the stream that is only the market being closed (the daily halt,
    a weekend) from lost bars; without one, every gap is looked up in IB's history.
    """

    def __init__(
        self,
        *,
        client: IbClient,
        clock: Clock,
        calendar: SessionCalendar | None = None,
        gate: BarGate | None = None,
    ) -> None:
        self._client = client
        self._clock = clock
        self._calendar = calendar
        self.gate = gate if gate is not None else BarGate(None)
        self._queue: asyncio.Queue[Sequence[Bar] | None] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._contract: Contract | None = None
        self._subscription: RealTimeBarList | None = None
        self._subscribed_on = 0  # the client's connection the subscription was made on
        self._series = 0  # bumped when the contract changes: work for the old one is void
        self._last_epoch: int | None = None
        self._held: list[Bar] | None = None  # real-time bars held back while a gap is filled
        self._held_since: int | None = None  # market time the current gap began to hold bars
        self._filling: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[Bar], None]] = []
        self._closed = False
        self._skip_before: int | None = None
        self._first_epoch: int | None = None
        self.warm_up_overlap = 0
        """Bars the stream delivered that the z-score warm-up had counted already (dropped)."""
        self.bars_received = 0
        self.duplicates_dropped = 0
        self.backfilled = 0
        self.gaps_found = 0
        """Gaps the 5-second stream showed while the market was open (each one filled, or tried)."""
        self.bars_unfilled = 0
        """Bars of those gaps that IB's history did not have (or could not be asked for)."""

    # -- MarketData port ----------------------------------------------------------------------

    async def batches(self) -> AsyncIterator[Sequence[Bar]]:
        while True:
            batch = await self._queue.get()
            if batch is None:
                return
            floor = self._skip_before
            if floor is not None:
                if batch[-1].epoch < floor:
                    self.warm_up_overlap += len(batch)
                    continue
                self._skip_before = None  # the series is past the warm-up: newer from here
            yield batch

    @property
    def first_epoch(self) -> int | None:
        """The start of the first bar this series sent on (None: none yet)."""
        return self._first_epoch

    def skip_before(self, epoch: int) -> None:
        """Bars that start before ``epoch`` are not taken: the z-score warm-up counted them."""
        self._skip_before = epoch

    # -- control (the session drives these) ---------------------------------------------------

    def on_bar(self, listener: Callable[[Bar], None]) -> None:
        """Also tell ``listener`` of every bar sent (the stale-feed watchdog)."""
        self._listeners.append(listener)

    @property
    def contract(self) -> Contract | None:
        return self._contract

    @property
    def filling(self) -> bool:
        """Whether a gap is being filled from history right now (newer bars held meanwhile)."""
        return self._filling is not None

    @property
    def last_bar_end(self) -> int | None:
        return None if self._last_epoch is None else self._last_epoch + BAR_SECONDS

    async def subscribe(self, contract: Contract) -> None:
        """Stream ``contract``'s bars, replacing any earlier subscription.

        The same contract: the new subscription is open before the old one is cancelled. Another
        contract: the old stream ends first and the new series starts afresh.
        """
        async with self._lock:
            await self._subscribe(contract)

    def unsubscribe(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.updateEvent -= self._on_update
            if self._subscribed_on == self._client.connections:
                self._client.cancel_realtime_bars(subscription)

    async def recover(self) -> int:
        """Resubscribe and backfill the gap since the last bar sent; returns the bars filled in."""
        async with self._lock:
            contract = self._contract
            if contract is None or self._closed:
                return 0
            series = self._series
            if self._held is None:
                self._held = []
            # else: bars held since a gap fill could not reach IB; this backfill covers it too.
            filled = 0
            try:
                await self._subscribe(contract)
                last = self._last_epoch
                if last is not None:
                    now = self._now()
                    filled, _ = await self._backfill(
                        contract, last + BAR_SECONDS, now - now % BAR_SECONDS, series
                    )
            finally:
                if series == self._series:
                    self._release()
            return filled

    def close(self) -> None:
        """End the stream (the consumer's ``batches`` loop returns)."""
        self._closed = True
        self.unsubscribe()
        if self._filling is not None:
            self._filling.cancel()
        self._queue.put_nowait(None)

    # -- the stream ---------------------------------------------------------------------------

    async def _subscribe(self, contract: Contract) -> None:
        if self._contract is not None and self._contract.conId != contract.conId:
            self.unsubscribe()
            self._new_series()
        self._contract = contract
        subscription = await self._client.realtime_bars(contract)
        subscription.updateEvent += self._on_update
        # Whatever is current now (not before the await) is what this one replaces.
        old, self._subscription = self._subscription, subscription
        old_on, self._subscribed_on = self._subscribed_on, self._client.connections
        if old is not None and old is not subscription:
            old.updateEvent -= self._on_update
            if old_on == self._client.connections:
                self._client.cancel_realtime_bars(old)

    def _new_series(self) -> None:
        """Another contract: whatever was held or being filled for the old one is void."""
        self._series += 1
        self._last_epoch = None
        self._first_epoch = None
        if self._filling is not None:
            self._filling.cancel()
            self._filling = None
        if self._held:
            log.warning("%d held bars of the old contract dropped on the roll", len(self._held))
        self._held = None
        self._held_since = None

    def _on_update(self, bars: RealTimeBarList, has_new_bar: bool) -> None:
        if not has_new_bar or not bars:
            return
        latest = bars[-1]
        # ib_async appends every bar to the subscription's list for as long as it lives: keep only
        # the newest, or a week of 5-second bars is a list that only grows.
        del bars[:-1]
        if self._contract is not None and bars.contract.conId != self._contract.conId:
            return  # a bar of the contract rolled away from, still in flight
        try:
            bar = bar_from_realtime(latest)
        except (MappingError, ValueError) as exc:
            log.warning("real-time bar skipped: %s", exc)
            return
        self.bars_received += 1
        self._accept(bar)

    def _accept(self, bar: Bar) -> None:
        """Send ``bar`` on, unless bars before it are missing: then hold it and fill the gap."""
        if self._held is not None:
            self._held.append(bar)
            since = self._held_since
            if (
                since is not None
                and self._filling is None
                and not self._lock.locked()
                and self._now() - since >= HOLD_LIMIT_S
            ):
                self._give_up_gap()
            return
        last = self._last_epoch
        if (
            last is not None
            and bar.epoch > last + BAR_SECONDS
            and self._contract is not None
            and not self._closed
            and self._market_open(last + BAR_SECONDS, bar.epoch)
        ):
            self.gaps_found += 1
            self._held = [bar]
            if self._held_since is None:
                self._held_since = self._now()
            self._filling = asyncio.get_running_loop().create_task(
                self._fill_gap(self._contract, last + BAR_SECONDS, bar.epoch, self._series)
            )
            return
        self._held_since = None
        self._emit(bar)

    async def _fill_gap(self, contract: Contract, start: int, end: int, series: int) -> None:
        gap = end - start
        try:
            async with self._lock:
                if series != self._series or self._held is None:
                    return  # the roll voided it, or a recovery has filled and released it
                try:
                    filled, reached = await self._backfill(contract, start, end, series)
                except Exception as exc:  # the stream goes on whatever the request did
                    log.warning("filling a gap of %d s failed: %r", gap, exc)
                    filled, reached = 0, False
                if series != self._series:
                    return
                held_for = self._now() - (self._held_since or self._now())
                if not reached and held_for < HOLD_LIMIT_S and not self._closed:
                    # IB could not be asked: keep holding; the recovery that follows a reconnect
                    # (or the stale-feed watchdog's) backfills from the last bar sent.
                    log.warning("a gap of %d s waits for IB's history to be filled", gap)
                    return
                held, self._held = self._held or [], None
                self._held_since = None
                self._note_gap(start, end, filled)
                if held and not self._closed:
                    # Tried: whatever is still missing before the first held bar stays missing.
                    self._emit(held[0])
                    for bar in held[1:]:
                        self._accept(bar)
        finally:
            if self._filling is asyncio.current_task():
                self._filling = None

    def _give_up_gap(self) -> None:
        """IB's history stayed out of reach for :data:`HOLD_LIMIT_S`: the held bars go on."""
        held, self._held = self._held or [], None
        self._held_since = None
        if not held or self._closed:
            return
        last = self._last_epoch
        if last is not None:
            self._note_gap(last + BAR_SECONDS, held[0].epoch, 0)
        self._emit(held[0])
        for bar in held[1:]:
            self._accept(bar)

    def _note_gap(self, start: int, end: int, filled: int) -> None:
        missing = (end - start) // BAR_SECONDS - filled
        if missing > 0:
            self.bars_unfilled += missing
        log.log(
            logging.WARNING if missing > 0 else logging.INFO,
            "%d bars missing from the real-time stream before %s; %d filled from history",
            (end - start) // BAR_SECONDS,
            datetime.fromtimestamp(end, UTC).isoformat(),
            filled,
        )

    def _release(self) -> None:
        """Send the bars held during a recovery, each through the gap check."""
        held, self._held = self._held or [], None
        for bar in held:  # a gap still there holds them again, its hold limit still running
            self._accept(bar)

    async def _backfill(
        self, contract: Contract, start: int, end: int, series: int
    ) -> tuple[int, bool]:
        """Send IB's 5-second bars that start in ``[start, end)``, oldest first.

        Returns how many were sent, and whether IB answered every request (False: the link was
        down, a request timed out or IB refused it). ``end`` is bounded by now (a bar still
        forming at IB comes on the real-time stream) and the span by :data:`MAX_GAP_FILL_S`; one
        request per :data:`MAX_BACKFILL_S`. Nothing is sent once ``series`` is over (a roll).
        """
        now = self._now()
        end = min(end, now - now % BAR_SECONDS)
        if end - start > MAX_GAP_FILL_S:
            skipped = (end - MAX_GAP_FILL_S - start) // BAR_SECONDS
            log.warning("a gap of %d s: the oldest %d bars are not asked for", end - start, skipped)
            self.bars_unfilled += skipped
            start = end - MAX_GAP_FILL_S
        filled = 0
        reached = True
        chunk_start = start
        while chunk_start < end and not self._closed and series == self._series:
            chunk_end = min(end, chunk_start + MAX_BACKFILL_S)
            if self._market_open(chunk_start, chunk_end):
                try:
                    history = await self._client.historical_bars(
                        contract,
                        datetime.fromtimestamp(chunk_end, UTC),
                        chunk_end - chunk_start,
                        "5 secs",
                    )
                except (TimeoutError, ConnectionError) as exc:
                    what = str(exc) or type(exc).__name__
                    log.warning("backfill of %d s failed: %s", chunk_end - chunk_start, what)
                    reached = False
                    break
                if series != self._series:
                    break
                filled += self._send_history(history, chunk_start, chunk_end)
            chunk_start = chunk_end
        self.backfilled += filled
        return filled, reached

    def _send_history(self, history: Sequence[BarData], start: int, end: int) -> int:
        bars: list[Bar] = []
        for item in history:
            try:
                bars.append(bar_from_historical(item, BAR_SECONDS))
            except MappingError as exc:
                log.warning("historical bar skipped: %s", exc)
        filled = 0
        for bar in sorted(bars, key=lambda b: b.epoch):
            if start <= bar.epoch < end and self._emit(bar):
                filled += 1
        return filled

    def _market_open(self, start: int, end: int) -> bool:
        """Whether the market was open at any time in ``[start, end)`` (True if unknown)."""
        if self._calendar is None:
            return True
        try:
            return self._calendar.next_session(start).open_epoch < end
        except CalendarCoverageError:
            return True

    def _emit(self, bar: Bar) -> bool:
        if self._last_epoch is not None and bar.epoch <= self._last_epoch:
            self.duplicates_dropped += 1
            return False
        reason = self.gate.refusal(bar, self._now())
        if reason is not None:
            count = self.gate.refused[reason]
            if count <= 10 or count % 1000 == 0:  # a broken feed must not flood the log
                log.warning("bar refused (%s, %d so far): %r", reason, count, bar)
            if reason != FUTURE:
                # Its place in the series is taken (the gap check must not ask IB for it again);
                # a bar from the future takes no place, or the real ones after it would be dropped.
                self._last_epoch = bar.epoch
            return False
        self._last_epoch = bar.epoch
        if self._first_epoch is None:
            self._first_epoch = bar.epoch
        self._queue.put_nowait((bar,))
        for listener in self._listeners:
            listener(bar)
        return True

    def _now(self) -> int:
        return int(self._clock.now().timestamp())
