"""Pending confirmations for the commands that trade or stop the daemon.

``/flatten``, ``/stop`` and ``/breaker reset`` do nothing at once: they open a :class:`Pending`
under a random id that the inline buttons carry. A press is honoured only when it comes from the
user who asked, before the deadline measured on the injected clock, and only once: the first
press by the asker (or a press after the deadline) takes the entry out of the book, so a second
press finds nothing. Each entry also keeps the subject its question described (the position and
its orders, or the breaker): the router acts on a press only while that subject is unchanged.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Literal

from aiogram.filters.callback_data import CallbackData

from application.ports import Clock

Action = Literal["flatten", "stop", "breaker_reset"]

COMMAND_OF: dict[Action, str] = {
    "flatten": "/flatten",
    "stop": "/stop",
    "breaker_reset": "/breaker reset",
}


class Choice(Enum):
    """What a button says; its value travels in the callback data."""

    CONFIRM = "ok"
    CANCEL = "no"
    FLATTEN_AND_STOP = "flat"
    STOP_KEEP_BRACKET = "keep"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Choice.CONFIRM: "Confirm",
    Choice.CANCEL: "Cancel",
    Choice.FLATTEN_AND_STOP: "Flatten and stop",
    Choice.STOP_KEEP_BRACKET: "Stop, keep the bracket",
}


class ConfirmButton(CallbackData, prefix="qs"):
    """Callback data of a confirmation button: the pending id and the choice (``qs:<id>:<c>``)."""

    id: str
    choice: Choice


@dataclass(frozen=True, slots=True)
class Pending:
    id: str
    action: Action
    user_id: int
    asked_at: datetime
    expires_at: datetime
    choices: tuple[Choice, ...]
    subject: str = ""
    """What the question described (the position and its orders, or the breaker): a press acts
    only while this is unchanged."""

    @property
    def command(self) -> str:
        return COMMAND_OF[self.action]


class Verdict(Enum):
    TAKEN = "taken"
    """The asker pressed in time: act on the choice. The entry is gone from the book."""
    EXPIRED = "expired"
    """The asker pressed too late: do nothing. The entry is gone from the book."""
    NOT_YOURS = "not yours"
    """Someone else pressed: do nothing. The entry stays for the asker."""
    UNKNOWN = "unknown"
    """Already answered, never issued, dropped as the book's oldest, or a choice the question did
    not offer: do nothing."""


@dataclass(frozen=True, slots=True)
class Claim:
    verdict: Verdict
    pending: Pending | None


def _random_id() -> str:
    return secrets.token_urlsafe(9)  # 12 characters of [A-Za-z0-9_-]: never the ':' separator


class ConfirmationBook:
    """The open confirmations, oldest first, at most ``capacity`` of them."""

    def __init__(
        self,
        clock: Clock,
        timeout_s: float,
        *,
        capacity: int = 100,
        new_id: Callable[[], str] = _random_id,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._clock = clock
        self.timeout = timedelta(seconds=timeout_s)
        self._capacity = capacity
        self._new_id = new_id
        self._open: OrderedDict[str, Pending] = OrderedDict()

    def __len__(self) -> int:
        return len(self._open)

    def open(
        self, action: Action, user_id: int, choices: tuple[Choice, ...], subject: str = ""
    ) -> Pending:
        """A new confirmation for ``user_id`` about ``subject``; expired and surplus old entries
        are dropped."""
        now = self._clock.now()
        for key in [k for k, p in self._open.items() if p.expires_at <= now]:
            del self._open[key]
        while len(self._open) >= self._capacity:
            self._open.popitem(last=False)
        pending_id = self._new_id()
        while pending_id in self._open:  # pragma: no cover - 72 random bits
            pending_id = self._new_id()
        pending = Pending(pending_id, action, user_id, now, now + self.timeout, choices, subject)
        self._open[pending_id] = pending
        return pending

    def claim(self, pending_id: str, user_id: int, choice: Choice) -> Claim:
        """What ``user_id`` pressing ``choice`` on ``pending_id`` means (see :class:`Verdict`)."""
        pending = self._open.get(pending_id)
        if pending is None or choice not in pending.choices:
            return Claim(Verdict.UNKNOWN, None)
        if pending.user_id != user_id:
            return Claim(Verdict.NOT_YOURS, pending)
        del self._open[pending_id]
        if self._clock.now() >= pending.expires_at:
            return Claim(Verdict.EXPIRED, pending)
        return Claim(Verdict.TAKEN, pending)
