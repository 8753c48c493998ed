"""The simulated venue for the daemon: a recorded feed played as a live one against the simulated
exchange, in market time.

A restart replays the feed from the last strategy-bar checkpoint with the exchange's book as it
was then, so whatever happened after the checkpoint happens again, identically (order keys and
execution ids included); the journal keeps one copy of each record.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.simulated.broker import SimulatedBroker
from adapters.simulated.clock import ManualClock
from adapters.simulated.market_data import BarSeries, PacedMarketData
from application.ports import ResumePoint


class SimulatedVenueHealth:
    """The exchange is in-process: always connected; the last bar ends at market time."""

    stale_after_s = float("inf")  # market time stands still between bars of a paced feed

    def __init__(self, clock: ManualClock) -> None:
        self._clock = clock

    def connected(self) -> bool:
        return True

    def last_bar_end(self) -> datetime | None:
        return self._clock.now()

    def expect_bars(self) -> bool:
        return True

    def reconnects(self) -> int:
        return 0

    def notices(self) -> Mapping[str, int]:
        return {}


class SimulatedVenue:
    """:class:`application.daemon.Venue` on the simulated exchange."""

    mid_bar_snapshots = False

    def __init__(
        self,
        *,
        series: BarSeries,
        feed: PacedMarketData,
        broker: SimulatedBroker,
        clock: ManualClock,
        symbol: str,
    ) -> None:
        self._series = series
        self._feed = feed
        self._broker = broker
        self._clock = clock
        self.contract = f"SIM:{symbol}"
        self.health = SimulatedVenueHealth(clock)

    def contract_name(self) -> str:
        return self.contract

    def describe(self) -> str:
        return f"simulated broker on {self._series.source.name}"

    async def connect(self, resume: ResumePoint | None, executions_since: datetime | None) -> None:
        if resume is None or resume.next_bar_epoch is None:
            if len(self._series):  # market time starts with the feed
                self._clock.set(datetime.fromtimestamp(int(self._series.epochs[0]), UTC))
            return
        self._feed.start_from(resume.next_bar_epoch)
        self._clock.set(datetime.fromtimestamp(resume.next_bar_epoch, UTC))
        if resume.exchange is not None:
            self._broker.restore_state(resume.exchange)

    async def warm_up(self, resume: ResumePoint | None, window: int) -> tuple[Sequence[float], str]:
        if resume is None:
            return (), "nowhere (a fresh start warms up on the feed)"
        return resume.closes, "the last checkpoint"

    def tasks(self) -> Mapping[str, Coroutine[Any, Any, None]]:
        return {}

    def state(self) -> str | None:
        return self._broker.export_state()

    async def close(self) -> None:
        return None

    @property
    def bars_sent(self) -> int:
        return self._feed.sent
