"""IB historical-data pacing: one limiter that every historical and real-time-bar request passes.

IB's rules (TWS API "Historical Data Limitations", ``reference/mes-facts.md`` §3, operations §2 #7):

* no more than 60 requests in any 10-minute window;
* no identical request within 15 s;
* no **six or more** requests for the same contract, exchange and tick type within 2 s, so at most
  five: ``burst`` is the number allowed, default 5 (6 is IB's violating count);
* at most 50 open requests at a time;
* a ``BID_ASK`` request counts twice: pass ``weight=2``.

IB states the first three for bars of 30 s or less; the limiter applies them to every request it
sees, which is only ever more cautious. Time rules use ``s + window > now`` ("``s`` still counts")
throughout, so a request at exactly ``s + window`` goes.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable


def _room_delay(
    times: Iterable[float], now: float, window: float, limit: int, weight: int
) -> float:
    """Seconds until ``weight`` more entries fit under ``limit`` within ``window`` (sorted times)."""
    live = [s for s in times if s + window > now]
    excess = len(live) + weight - limit
    if excess <= 0:
        return 0.0
    return live[excess - 1] + window - now


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"PacingLimiter: {name} must be a finite number > 0, got {value!r}")


def _count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"PacingLimiter: {name} must be an int >= 1, got {value!r}")


class PacingLimiter:
    """Admits requests in FIFO order, each as soon as IB's pacing rules allow and no sooner.

    ``key`` identifies the request (contract, end time, duration, bar size, what-to-show, RTH):
    equal keys are "identical requests". ``contract_key`` is contract + exchange + tick type.
    Every :meth:`acquire` holds one open-request slot until :meth:`release`. Strict FIFO: a
    request that must wait also holds back those queued behind it.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        *,
        max_per_window: int = 60,
        window_s: float = 600.0,
        identical_gap_s: float = 15.0,
        burst: int = 5,
        burst_window_s: float = 2.0,
        max_open: int = 50,
    ) -> None:
        _count("max_per_window", max_per_window)
        _count("burst", burst)
        _count("max_open", max_open)
        _positive("window_s", window_s)
        _positive("identical_gap_s", identical_gap_s)
        _positive("burst_window_s", burst_window_s)
        self._clock = clock
        self._sleep = sleep
        self._max_per_window = max_per_window
        self._window_s = window_s
        self._identical_gap_s = identical_gap_s
        self._burst = burst
        self._burst_window_s = burst_window_s
        self._max_open = max_open

        self._recent: deque[float] = deque()  # admission times, one entry per unit of weight
        self._last_by_key: dict[str, float] = {}
        self._burst_by_contract: dict[str, deque[float]] = {}
        self._open = 0
        self._queue: deque[asyncio.Future[None]] = deque()
        self._slot_freed: asyncio.Future[None] | None = None

    async def acquire(self, key: str, contract_key: str, *, weight: int = 1) -> None:
        """Wait for this request's turn, then for the pacing rules and a free slot, then admit it."""
        self._check_request(key, contract_key, weight)
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        if not self._queue:
            turn.set_result(None)
        self._queue.append(turn)
        try:
            await turn
            while True:
                if self._open >= self._max_open:
                    self._slot_freed = loop.create_future()
                    await self._slot_freed
                    continue
                now = self._clock()
                delay = self._time_delay(now, key, contract_key, weight)
                if delay <= 0.0:
                    break
                await self._sleep(delay)
            self._admit(now, key, contract_key, weight)
        finally:
            was_head = bool(self._queue) and self._queue[0] is turn
            self._queue.remove(turn)
            if was_head and self._queue and not self._queue[0].done():
                self._queue[0].set_result(None)

    def release(self) -> None:
        """Free the open-request slot taken by :meth:`acquire` (the answer came or was cancelled)."""
        if self._open == 0:
            raise RuntimeError("PacingLimiter.release() without a matching acquire()")
        self._open -= 1
        if self._slot_freed is not None and not self._slot_freed.done():
            self._slot_freed.set_result(None)

    def _check_request(self, key: str, contract_key: str, weight: int) -> None:
        if not key or not contract_key:
            raise ValueError(
                f"PacingLimiter: key and contract_key must be non-empty, got {key!r}, "
                f"{contract_key!r}"
            )
        limit = min(self._max_per_window, self._burst)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= limit:
            raise ValueError(f"PacingLimiter: weight must be an int in 1..{limit}, got {weight!r}")

    def _time_delay(self, now: float, key: str, contract_key: str, weight: int) -> float:
        delays = [_room_delay(self._recent, now, self._window_s, self._max_per_window, weight)]
        last = self._last_by_key.get(key)
        if last is not None:
            delays.append(last + self._identical_gap_s - now)
        same_contract = self._burst_by_contract.get(contract_key)
        if same_contract is not None:
            delays.append(
                _room_delay(same_contract, now, self._burst_window_s, self._burst, weight)
            )
        return max(0.0, *delays)

    def _admit(self, now: float, key: str, contract_key: str, weight: int) -> None:
        self._open += 1
        # Forget what can no longer hold anyone back, so memory stays bounded.
        while self._recent and self._recent[0] + self._window_s <= now:
            self._recent.popleft()
        self._recent.extend([now] * weight)
        self._last_by_key = {
            k: t for k, t in self._last_by_key.items() if t + self._identical_gap_s > now
        }
        self._last_by_key[key] = now
        for ck in list(self._burst_by_contract):
            times = self._burst_by_contract[ck]
            while times and times[0] + self._burst_window_s <= now:
                times.popleft()
            if not times:
                del self._burst_by_contract[ck]
        self._burst_by_contract.setdefault(contract_key, deque()).extend([now] * weight)
