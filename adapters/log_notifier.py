"""A notifier that writes alerts to the log (the daemon's default without Telegram)."""

from __future__ import annotations

import logging

from application.ports import Notifier
from domain.commands import Alert, Severity

_LEVELS = {
    Severity.INFO: logging.INFO,
    Severity.WARNING: logging.WARNING,
    Severity.CRITICAL: logging.ERROR,
}


class LogNotifier:
    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger if logger is not None else logging.getLogger("quant_scalper.alerts")

    def notify(self, alert: Alert) -> None:
        self._log.log(
            _LEVELS[alert.severity],
            "[%s] %s (%s)",
            alert.kind.value,
            alert.text,
            alert.ts.isoformat(),
        )


class HeldNotifier:
    """The daemon's notifier before its alert channel (Telegram) is up, and after.

    Until :meth:`attach`, alerts go to the log at once and are held; once attached, the held ones go
    to the channel too, then every alert: nothing said at start-up is lost on the operator's phone.
    """

    def __init__(self, limit: int = 100, *, also: Notifier | None = None) -> None:
        self._log = LogNotifier()
        self._held: list[Alert] = []
        self._limit = limit
        self._next: Notifier | None = None
        self._also = also  # every alert, at once, whatever the channel: a test's recorder

    def notify(self, alert: Alert) -> None:
        if self._also is not None:
            self._also.notify(alert)
        if self._next is not None:
            self._next.notify(alert)
            return
        self._log.notify(alert)
        if len(self._held) < self._limit:
            self._held.append(alert)

    def attach(self, notifier: Notifier | None) -> None:
        """From now on alerts go to ``notifier`` (which must log them too), the held ones first;
        None: to the log only, which has the held ones already."""
        held, self._held = self._held, []
        if notifier is None:
            self._next = self._log
            return
        self._next = notifier
        for alert in held:
            notifier.notify(alert)
