"""The circuit breaker: the risk rules of DESIGN section 1, with time passed in.

Rules (each limit may be ``None``, which switches it off):

* daily loss: no new entries once the session's realized net P&L is at or below ``-max_daily_loss``;
  if realized plus open P&L reaches it, the position must be closed and entries halt until the next
  session;
* consecutive losses: after ``max_consecutive_losses`` losing round trips in a row (net P&L < 0),
  entries pause for ``pause_minutes`` from the last loss; the streak starts again from zero;
* trades per day: at most ``max_trades_per_day`` entries per session;
* position duration: a position older than ``max_position_duration`` must be closed;
* rejected entries: after ``max_rejects_per_day`` entry orders the broker refused (margin,
  permissions, price...) entries halt until the next session: a refusal is never retried, and one
  that repeats means the account or the order is wrong, not the market;
* everything resets at the CME session open (18:00 America/New_York), which the caller signals with
  :meth:`CircuitBreaker.start_session` when the trade date changes. A consecutive-loss pause is a span
  of time and runs out on its own clock, across a session open too.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum

from domain.errors import DomainError
from domain.position import RoundTrip
from domain.record import record
from domain.values import ZERO


class BreakerRule(Enum):
    DAILY_LOSS = "daily_loss"
    CONSECUTIVE_LOSSES = "consecutive_losses"
    MAX_TRADES = "max_trades_per_day"
    MAX_DURATION = "max_position_duration"
    REJECTS = "max_rejects_per_day"


@record
class RiskLimits:
    max_daily_loss: Decimal | None = Decimal(200)
    max_consecutive_losses: int | None = 3
    pause: timedelta = timedelta(minutes=30)
    max_trades_per_day: int | None = 50
    max_position_duration: timedelta | None = timedelta(hours=4)
    max_rejects_per_day: int | None = 3

    def __post_init__(self) -> None:
        if self.max_daily_loss is not None and self.max_daily_loss <= 0:
            raise DomainError("max_daily_loss must be positive (or None to switch it off)")
        if self.max_consecutive_losses is not None and self.max_consecutive_losses < 1:
            raise DomainError("max_consecutive_losses must be >= 1 (or None)")
        if self.pause <= timedelta(0):
            raise DomainError("pause must be positive")
        if self.max_trades_per_day is not None and self.max_trades_per_day < 1:
            raise DomainError("max_trades_per_day must be >= 1 (or None)")
        if self.max_position_duration is not None and self.max_position_duration <= timedelta(0):
            raise DomainError("max_position_duration must be positive (or None)")
        if self.max_rejects_per_day is not None and self.max_rejects_per_day < 1:
            raise DomainError("max_rejects_per_day must be >= 1 (or None)")


@record
class BreakerTripped:
    rule: BreakerRule
    ts: datetime
    detail: str
    until: datetime | None = None
    """When the rule lifts by itself; None means at the next session open."""


@record
class BreakerReset:
    ts: datetime
    reason: str
    """"session_open" for the 18:00 ET reset, "operator" for a manual reset."""


@record
class BreakerStatus:
    """What ``/breaker`` shows."""

    trade_date: date | None
    realized_pnl: Decimal
    trades_today: int
    loss_streak: int
    daily_loss_halt: bool
    max_trades_reached: bool
    paused_until: datetime | None
    limits: RiskLimits
    rejects_today: int = 0
    rejects_halt: bool = False


@record
class BreakerState:
    """The breaker's persisted counters (everything but the limits, which come from config)."""

    trade_date: date | None
    realized_pnl: Decimal
    trades_today: int
    loss_streak: int
    daily_loss_halt: bool
    paused_until: datetime | None
    rejects_today: int = 0
    """Entry orders the broker refused this session (a snapshot from before it counts none)."""


class CircuitBreaker:
    """Session risk counters and the entry gate derived from them."""

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self.trade_date: date | None = None
        self.realized_pnl = ZERO
        self.trades_today = 0
        self.loss_streak = 0
        self.daily_loss_halt = False
        self.paused_until: datetime | None = None
        self.rejects_today = 0

    def state(self) -> BreakerState:
        return BreakerState(
            self.trade_date,
            self.realized_pnl,
            self.trades_today,
            self.loss_streak,
            self.daily_loss_halt,
            self.paused_until,
            self.rejects_today,
        )

    def restore(self, state: BreakerState) -> None:
        self.trade_date = state.trade_date
        self.realized_pnl = state.realized_pnl
        self.trades_today = state.trades_today
        self.loss_streak = state.loss_streak
        self.daily_loss_halt = state.daily_loss_halt
        self.paused_until = state.paused_until
        self.rejects_today = state.rejects_today

    # -- session ---------------------------------------------------------------------------

    def start_session(self, trade_date: date, ts: datetime) -> BreakerReset | None:
        """Reset the session counters for a new trade date. Returns the reset, if anything changed."""
        if self.trade_date == trade_date:
            return None
        first = self.trade_date is None
        self.trade_date = trade_date
        self.realized_pnl = ZERO
        self.trades_today = 0
        self.loss_streak = 0
        self.daily_loss_halt = False
        self.rejects_today = 0
        return None if first else BreakerReset(ts, "session_open")

    def reset(self, ts: datetime) -> BreakerReset:
        """Operator reset: lift every halt and pause; the session's P&L and trade count stay."""
        self.daily_loss_halt = False
        self.paused_until = None
        self.loss_streak = 0
        self.rejects_today = 0
        return BreakerReset(ts, "operator")

    # -- the gate ----------------------------------------------------------------------------

    def entry_blocker(self, now: datetime) -> BreakerRule | None:
        """The rule that forbids a new entry now, if any."""
        limits = self.limits
        if self.daily_loss_halt:
            return BreakerRule.DAILY_LOSS
        if limits.max_daily_loss is not None and self.realized_pnl <= -limits.max_daily_loss:
            return BreakerRule.DAILY_LOSS
        if self.paused_until is not None and now < self.paused_until:
            return BreakerRule.CONSECUTIVE_LOSSES
        if limits.max_trades_per_day is not None and self.trades_today >= limits.max_trades_per_day:
            return BreakerRule.MAX_TRADES
        if self._rejects_halt():
            return BreakerRule.REJECTS
        return None

    def _rejects_halt(self) -> bool:
        cap = self.limits.max_rejects_per_day
        return cap is not None and self.rejects_today >= cap

    # -- updates -----------------------------------------------------------------------------

    def on_entry(self, ts: datetime) -> BreakerTripped | None:
        """Count an entry; trips MAX_TRADES when this entry uses up the allowance."""
        self.trades_today += 1
        cap = self.limits.max_trades_per_day
        if cap is not None and self.trades_today == cap:
            return BreakerTripped(BreakerRule.MAX_TRADES, ts, f"{cap} entries this session")
        return None

    def on_reject(self, ts: datetime, reason: str) -> BreakerTripped | None:
        """Count an entry order the broker refused; trips REJECTS when it uses up the allowance
        (entries halt until the next session or an operator reset)."""
        self.rejects_today += 1
        cap = self.limits.max_rejects_per_day
        if cap is not None and self.rejects_today == cap:
            return BreakerTripped(
                BreakerRule.REJECTS, ts, f"{cap} entry orders rejected this session; last: {reason}"
            )
        return None

    def on_round_trip(self, trip: RoundTrip, ts: datetime) -> list[BreakerTripped]:
        """Book a closed round trip into the session and apply the loss rules."""
        limits = self.limits
        trips: list[BreakerTripped] = []
        self.realized_pnl += trip.net_pnl
        if trip.is_loss:
            self.loss_streak += 1
            cap = limits.max_consecutive_losses
            if cap is not None and self.loss_streak >= cap:
                self.paused_until = ts + limits.pause
                self.loss_streak = 0
                trips.append(
                    BreakerTripped(
                        BreakerRule.CONSECUTIVE_LOSSES,
                        ts,
                        f"{cap} losing trades in a row",
                        until=self.paused_until,
                    )
                )
        else:
            self.loss_streak = 0
        if (
            limits.max_daily_loss is not None
            and not self.daily_loss_halt
            and self.realized_pnl <= -limits.max_daily_loss
        ):
            self.daily_loss_halt = True
            trips.append(
                BreakerTripped(
                    BreakerRule.DAILY_LOSS,
                    ts,
                    f"session realized P&L {self.realized_pnl} <= -{limits.max_daily_loss}",
                )
            )
        return trips

    def check_open_loss(
        self, open_pnl: Decimal, open_commission: Decimal, ts: datetime
    ) -> BreakerTripped | None:
        """Trip DAILY_LOSS when realized plus open P&L (net of commissions paid) reaches the limit.

        The caller closes the position when this returns a trip; entries then halt until the next session.
        """
        cap = self.limits.max_daily_loss
        if cap is None or self.daily_loss_halt:
            return None
        total = self.realized_pnl + open_pnl - open_commission
        if total <= -cap:
            self.daily_loss_halt = True
            return BreakerTripped(
                BreakerRule.DAILY_LOSS, ts, f"session P&L incl. open {total} <= -{cap}"
            )
        return None

    def position_expired(self, opened_at: datetime, now: datetime) -> bool:
        cap = self.limits.max_position_duration
        return cap is not None and now - opened_at >= cap

    def status(self) -> BreakerStatus:
        cap = self.limits.max_trades_per_day
        return BreakerStatus(
            trade_date=self.trade_date,
            realized_pnl=self.realized_pnl,
            trades_today=self.trades_today,
            loss_streak=self.loss_streak,
            daily_loss_halt=self.daily_loss_halt,
            max_trades_reached=cap is not None and self.trades_today >= cap,
            paused_until=self.paused_until,
            limits=self.limits,
            rejects_today=self.rejects_today,
            rejects_halt=self._rejects_halt(),
        )
