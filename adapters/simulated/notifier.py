"""A notifier that records alerts in memory (replay and tests)."""

from __future__ import annotations

from domain.commands import Alert, AlertKind


class RecordingNotifier:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def notify(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def of_kind(self, kind: AlertKind) -> list[Alert]:
        return [a for a in self.alerts if a.kind is kind]
