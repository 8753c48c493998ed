"""A notifier that writes alerts to the log (the daemon's default without Telegram)."""

from __future__ import annotations

import logging

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
