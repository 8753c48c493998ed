"""One notifier that tells several (the log and Telegram, say)."""

from __future__ import annotations

import logging

from application.ports import Notifier
from domain.commands import Alert

log = logging.getLogger(__name__)


class FanoutNotifier:
    """Notifier port over several notifiers; one failing never keeps the alert from the others."""

    def __init__(self, *notifiers: Notifier) -> None:
        self._notifiers = notifiers

    def notify(self, alert: Alert) -> None:
        for notifier in self._notifiers:
            try:
                notifier.notify(alert)
            except Exception:  # the port promises never to raise into trading; keep that promise
                log.exception("notifier %s failed", type(notifier).__name__)
