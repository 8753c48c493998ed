"""The reminder before IB Gateway's weekly restart, the one that needs a full login with two-factor
authentication (``reference/operations.md`` §6 #1: bots die of it because nobody approved the
prompt). The Gateway supervisor catches the Gateway that comes back not ready; this tells the
operator before, while there is time to be at the phone.
"""

from __future__ import annotations

from datetime import time, timedelta

from application.ports import Clock, Notifier
from domain.commands import Alert, AlertKind, Severity
from domain.schedule import next_weekly

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class WeeklyLoginReminder:
    """Alerts ``lead`` before each weekly login (``weekday`` Monday 0, ``at`` New York time);
    started inside that span, it reminds at once."""

    def __init__(
        self, clock: Clock, notifier: Notifier, *, weekday: int, at: time, lead: timedelta
    ) -> None:
        if not 0 <= weekday <= 6:
            raise ValueError(f"weekday must be 0 (Monday) to 6, got {weekday}")
        if lead <= timedelta(0):
            raise ValueError(f"lead must be positive, got {lead}")
        self._clock = clock
        self._notifier = notifier
        self._weekday = weekday
        self._at = at
        self._lead = lead
        self.reminded = 0

    async def run(self) -> None:
        """Remind before each weekly login, until cancelled."""
        while True:
            now = self._clock.now()
            login = next_weekly(now, self._weekday, self._at)
            remind_at = login - self._lead
            if now < remind_at:
                await self._clock.sleep((remind_at - now).total_seconds())
            hours = (login - self._clock.now()).total_seconds() / 3600
            self.reminded += 1
            self._notifier.notify(
                Alert(
                    AlertKind.CONNECTION,
                    Severity.WARNING,
                    f"IB Gateway's weekly restart is due {WEEKDAYS[self._weekday]} "
                    f"{self._at:%H:%M} New York time (in {hours:.1f} h) and will need a full "
                    "login with two-factor authentication: be ready to log in and approve the "
                    "IBKR Mobile prompt. Until it is done the Gateway answers nothing: entries "
                    "stop and you will be alerted again.",
                    self._clock.now(),
                )
            )
            # Sleep past this login before looking for the next one.
            await self._clock.sleep((login - self._clock.now()).total_seconds() + 1.0)
