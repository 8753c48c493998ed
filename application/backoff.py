"""One exponential backoff for every retry loop: the IB reconnect, the SQL journal's writes after an
outage, the Telegram notifier's sends.

:class:`BackoffPolicy` is pure: the ceiling of attempt n is ``min(max_s, initial_s * factor**n)``,
and the delay is that ceiling, or with full jitter a uniform draw in ``[0, ceiling]`` from an
injected :class:`random.Random` (deterministic when seeded). :class:`Retries` counts the attempts
of one retry loop and starts over on :meth:`Retries.reset`, after an attempt that worked.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


def _finite(name: str, value: float, *, minimum: float, inclusive: bool) -> None:
    ok = math.isfinite(value) and (value >= minimum if inclusive else value > minimum)
    if not ok:
        bound = f">= {minimum}" if inclusive else f"> {minimum}"
        raise ValueError(f"Backoff: {name} must be a finite number {bound}, got {value!r}")


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Delays from the attempt number (0 for the first retry): exponential, capped, and jittered
    when ``jitter`` is set."""

    initial_s: float
    max_s: float
    factor: float = 2.0
    jitter: bool = False

    def __post_init__(self) -> None:
        _finite("initial_s", self.initial_s, minimum=0.0, inclusive=False)
        _finite("factor", self.factor, minimum=1.0, inclusive=True)
        _finite("max_s", self.max_s, minimum=self.initial_s, inclusive=True)

    def ceiling(self, attempt: int) -> float:
        """The longest wait before retry ``attempt``: ``min(max_s, initial_s * factor**attempt)``,
        never overflowing however long the outage."""
        if attempt < 0:
            raise ValueError(f"Backoff: attempt must be >= 0, got {attempt}")
        if attempt == 0 or self.factor == 1.0:
            return self.initial_s
        if attempt * math.log(self.factor) >= math.log(self.max_s / self.initial_s):
            return self.max_s
        return min(self.max_s, self.initial_s * self.factor**attempt)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry ``attempt``: the ceiling, or uniform in ``[0, ceiling]``
        drawn from ``rng`` when the policy jitters (``rng`` is then required)."""
        ceiling = self.ceiling(attempt)
        if not self.jitter:
            return ceiling
        if rng is None:
            raise ValueError("Backoff: a jittered policy needs a random.Random")
        return rng.uniform(0.0, ceiling)


class Retries:
    """The attempts of one retry loop under a :class:`BackoffPolicy`."""

    __slots__ = ("_attempts", "_rng", "policy")

    def __init__(self, policy: BackoffPolicy, rng: random.Random | None = None) -> None:
        if policy.jitter and rng is None:
            raise ValueError("Backoff: a jittered policy needs a random.Random")
        self.policy = policy
        self._rng = rng
        self._attempts = 0

    @property
    def attempts(self) -> int:
        """Delays handed out since the last :meth:`reset`."""
        return self._attempts

    @property
    def ceiling_s(self) -> float:
        """The upper bound of the next :meth:`next_delay` (its value, without jitter)."""
        return self.policy.ceiling(self._attempts)

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt; the next one waits longer, up to the cap."""
        delay = self.policy.delay(self._attempts, self._rng)
        self._attempts += 1
        return delay

    def reset(self) -> None:
        """Start over from ``initial_s``: the last attempt worked."""
        self._attempts = 0


class Reminders:
    """When to tell the operator again about a fault that lasts: at once, then after each of the
    policy's delays (5, 10, 20, 40 min, then hourly by default), until :meth:`clear`.

    Times are seconds on any monotonic scale the caller chooses; pure, like the policy.
    """

    __slots__ = ("_next", "_since", "_steps", "sent")

    def __init__(self, policy: BackoffPolicy) -> None:
        if policy.jitter:
            raise ValueError("Reminders: an operator's reminders do not jitter")
        self._steps = Retries(policy)
        self._since: float | None = None
        self._next = 0.0
        self.sent = 0
        """Reminders that fell due since the fault began (1 after the at-once one)."""

    @property
    def active(self) -> bool:
        """A fault is being reminded of (between :meth:`start` and :meth:`clear`)."""
        return self._since is not None

    def start(self, now: float) -> None:
        """The fault began at ``now`` (a second start while it lasts changes nothing)."""
        if self._since is None:
            self._since = now
            self._next = now
            self.sent = 0
            self._steps.reset()

    def due(self, now: float) -> bool:
        """True when a reminder is due at ``now`` (the next one is then scheduled)."""
        if self._since is None or now < self._next:
            return False
        self._next = now + self._steps.next_delay()
        self.sent += 1
        return True

    def elapsed(self, now: float) -> float:
        """Seconds since the fault began (0 when none is being reminded of)."""
        return 0.0 if self._since is None else max(0.0, now - self._since)

    def clear(self) -> None:
        """The fault is over."""
        self._since = None


REMINDERS = BackoffPolicy(initial_s=300.0, max_s=3600.0)
"""The operator hears of a lasting fault at once, then after 5, 10, 20 and 40 min, then hourly."""
