"""Quiet bars: which coming bars cannot make the engine act, read from the engine's state.

A runner that holds many bars at once (a replay) may hand the engine only the bars that match the
engine's :class:`WakeSpec`: on any other bar :meth:`Engine.on_bar <domain.engine.Engine.on_bar>`
returns no command and changes nothing but the last-bar bookkeeping. This module states that rule;
it decides nothing itself. Conditions are the engine's own, stated as plain floats: a runner compares
with them in the waking direction, and waking early is always safe (``on_bar`` then decides, exactly,
as for any bar). The per-bar path never uses this module.
"""

from __future__ import annotations

from domain.engine import Engine, EngineState
from domain.record import record
from domain.values import Side


@record
class WakeSpec:
    """Conditions under which the next bar needs the engine. Any one matching is enough; ``None``
    means no such condition."""

    every_bar: bool = False
    z_abs_at_least: float | None = None
    """A bar whose float ``|z|`` is at least this (already widened for the exact test)."""
    z_abs_at_most: float | None = None
    """A bar whose float ``|z|`` is at most this (already widened for the exact test)."""
    close_at_most: float | None = None
    close_at_least: float | None = None
    start_at_least: int | None = None
    """A bar starting at or after this epoch second."""
    end_at_least: int | None = None
    """A bar ending at or after this epoch second."""


EVERY_BAR = WakeSpec(every_bar=True)

_IDLE = EngineState.IDLE
_LONG = EngineState.LONG
_SHORT = EngineState.SHORT


class QuietRule:
    """The :class:`WakeSpec` of one engine, as its state stands now."""

    __slots__ = ("_engine", "_idle")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._idle: WakeSpec | None = None  # the answer while flat, the same for a whole session

    def wake_spec(self) -> WakeSpec:
        """What the next bars must show for ``on_bar`` to do anything."""
        engine = self._engine
        session = engine.session
        if session is None or engine.session_uncovered is not None:
            return EVERY_BAR
        # A bar outside the cached session enters the next one (breaker reset, session rules).
        start_at_least = session.close_epoch
        state = engine.state
        if state is _IDLE:
            spec = self._idle
            if spec is None or spec.start_at_least != start_at_least:
                spec = self._idle = WakeSpec(
                    z_abs_at_least=engine.config.strategy.entry.lower_bound,
                    start_at_least=start_at_least,
                )
            return spec
        if state is not _LONG and state is not _SHORT:
            # Entering or exiting: orders are in flight, and one still working at the next bar
            # close is dealt with then.
            return EVERY_BAR
        if engine.exit_required is not None:
            return EVERY_BAR
        position = engine.position
        rules = engine.config.sessions
        end_at_least: int | None = None
        if rules.enabled:
            closed_at = engine.closed_at
            if closed_at is not None and session.open_epoch <= closed_at:
                return EVERY_BAR
            if rules.flatten_before_close is not None:
                end_at_least = session.close_epoch - int(rules.flatten_before_close.total_seconds())
        breaker = engine.breaker
        duration = breaker.limits.max_position_duration
        opened = position.opened_at
        if duration is not None and opened is not None:
            expires = int(opened.timestamp()) + int(duration.total_seconds())
            end_at_least = expires if end_at_least is None else min(end_at_least, expires)
        close_at_most = close_at_least = None
        cap = breaker.limits.max_daily_loss
        if cap is not None and not breaker.daily_loss_halt:
            # realized + open - commissions <= -cap, solved for the mark (open P&L is linear in it).
            budget = (
                -cap - breaker.realized_pnl + position.commissions_paid - position.trip_realized_pnl
            )
            # One tick of slack covers the float rounding of an exact breach price.
            breach = position.mark_for_open_pnl(budget)
            tick = float(engine.config.instrument.tick_size)
            if position.side is Side.LONG:
                close_at_most = breach + tick
            else:
                close_at_least = breach - tick
        return WakeSpec(
            z_abs_at_most=engine.config.strategy.exit.upper_bound,
            close_at_most=close_at_most,
            close_at_least=close_at_least,
            start_at_least=start_at_least,
            end_at_least=end_at_least,
        )
