"""IB Gateway as the daemon's venue: the connection supervisor, the bar stream, the warm-up from IB's
history, the session timer.

Start-up (the venue's part, each failure one line): connect (``ibkr.startup_attempts`` tries), resync
our orders by key, reconcile the position and its legs; the contract (the front month by the roll
rule, or ``instrument.expiry``); the real-time bars; the z-score window from IB's history.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.ibkr.broker import IbkrBroker
from adapters.ibkr.client import IbConnectError
from adapters.ibkr.contracts import ContractError
from adapters.ibkr.history import recent_bars
from adapters.ibkr.market_data import IbkrMarketData
from adapters.ibkr.session import IbkrSession
from application.daemon import VenueUnavailable
from application.ports import BrokerError, Clock, ResumePoint
from application.session_timer import SessionTimer
from application.weekly_login import WeeklyLoginReminder
from domain.calendar import SessionCalendar
from domain.errors import CalendarCoverageError


class IbkrVenueHealth:
    def __init__(
        self,
        session: IbkrSession,
        market_data: IbkrMarketData,
        clock: Clock,
        calendar: SessionCalendar,
        stale_after_s: float,
    ) -> None:
        self._session = session
        self._market_data = market_data
        self._clock = clock
        self._calendar = calendar
        self.stale_after_s = stale_after_s

    def connected(self) -> bool:
        return self._session.link_up

    def last_bar_end(self) -> datetime | None:
        end = self._market_data.last_bar_end
        return None if end is None else datetime.fromtimestamp(end, UTC)

    def expect_bars(self) -> bool:
        try:
            return self._calendar.session_at(int(self._clock.now().timestamp())) is not None
        except CalendarCoverageError:
            return True

    def reconnects(self) -> int:
        return self._session.reconnects

    def notices(self) -> Mapping[str, int]:
        return dict(self._session.notices)


class IbkrVenue:
    """:class:`application.daemon.Venue` on IB Gateway."""

    mid_bar_snapshots = True

    def __init__(
        self,
        *,
        session: IbkrSession,
        broker: IbkrBroker,
        market_data: IbkrMarketData,
        timer: SessionTimer,
        clock: Clock,
        calendar: SessionCalendar,
        warm_up_calendar: SessionCalendar | None,
        bar_seconds: int,
        host: str,
        port: int,
        client_id: int,
        startup_attempts: int,
        stale_after_s: float,
        weekly_login: WeeklyLoginReminder | None = None,
    ) -> None:
        self.session = session
        self._broker = broker
        self._market_data = market_data
        self._timer = timer
        self._clock = clock
        self._warm_up_calendar = warm_up_calendar
        self._bar_seconds = bar_seconds
        self._where = f"IB Gateway at {host}:{port} (client id {client_id})"
        self._host_port = f"{host}:{port}"
        self._attempts = startup_attempts
        self._weekly_login = weekly_login
        self.health = IbkrVenueHealth(session, market_data, clock, calendar, stale_after_s)

    def contract_name(self) -> str:
        """The contract IB streams: the session resolves it at start and on a roll."""
        contract = self.session.contract
        return contract.local_symbol if contract is not None else "IBKR:unresolved"

    def describe(self) -> str:
        return f"{self.contract_name()} on IB Gateway {self._host_port}"

    async def connect(self, resume: ResumePoint | None, executions_since: datetime | None) -> None:
        self._broker.last_execution = executions_since
        try:
            await self.session.start()
        except IbConnectError as exc:
            raise VenueUnavailable(
                f"cannot connect to {self._where} after {self._attempts} attempt(s): {exc}"
            ) from exc
        except ContractError as exc:
            raise VenueUnavailable(f"no contract to trade at {self._where}: {exc}") from exc
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            what = str(exc) or type(exc).__name__
            raise VenueUnavailable(
                f"{self._where} connected but did not answer the start-up requests: {what}"
            ) from exc

    async def warm_up(self, resume: ResumePoint | None, window: int) -> tuple[Sequence[float], str]:
        """From IB's history; else the checkpoint's closes. Either way the price band's reference
        is seeded, so the first live bar is checked too rather than taken as the reference.

        The bars are subscribed first, so the stream and the history can overlap; each strategy
        bar counts once. The history stops where the strategy bar of the first bar the stream has
        already delivered begins (that one is the stream's to decide), and the stream drops the
        bars of strategy bars the history counted (one that ended while the history was asked)."""
        ib_contract = self._market_data.contract
        assert ib_contract is not None  # the session subscribed it, or connect() raised
        now = self._clock.now()
        first = self._market_data.first_epoch
        if first is not None:
            bucket = first - first % self._bar_seconds
            now = min(now, datetime.fromtimestamp(bucket, UTC))
        bars = await recent_bars(
            self.session.client,
            ib_contract,
            now=now,
            bar_seconds=self._bar_seconds,
            count=window,
            calendar=self._warm_up_calendar,
            gate=self._market_data.gate,
        )
        closes: Sequence[float] = [float(bar.close) for bar in bars]
        source = "IB's history"
        if len(closes) < window and resume is not None and len(resume.closes) > len(closes):
            closes, source = list(resume.closes), "the last checkpoint"
        elif bars:
            self._market_data.skip_before(bars[-1].end_epoch)
        self._market_data.gate.seed(closes)
        return closes, source

    def tasks(self) -> Mapping[str, Coroutine[Any, Any, None]]:
        tasks = {"session timer": self._timer.run()}
        if self._weekly_login is not None:
            tasks["weekly login reminder"] = self._weekly_login.run()
        return tasks

    def state(self) -> str | None:
        return None  # IB keeps the market's state: a restart reconciles with it

    async def close(self) -> None:
        await self.session.close()

    @property
    def bars_received(self) -> int:
        return self._market_data.bars_received + self._market_data.backfilled
