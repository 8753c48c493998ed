"""Alerts raised before Telegram is up (the broker connects first) reach Telegram once it is."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from adapters.log_notifier import HeldNotifier
from adapters.simulated.notifier import RecordingNotifier
from domain.commands import Alert, AlertKind, Severity

T = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def _alert(text: str) -> Alert:
    return Alert(AlertKind.CONNECTION, Severity.INFO, text, T)


def test_alerts_before_attach_are_logged_at_once_and_sent_on_attach(
    caplog: pytest.LogCaptureFixture,
) -> None:
    held = HeldNotifier()
    with caplog.at_level(logging.INFO):
        held.notify(_alert("connected to IB Gateway"))
    assert "connected to IB Gateway" in caplog.text
    telegram = RecordingNotifier()
    held.attach(telegram)
    held.notify(_alert("started"))
    assert [a.text for a in telegram.alerts] == ["connected to IB Gateway", "started"]


def test_a_log_only_attach_does_not_log_the_held_alerts_twice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    held = HeldNotifier()
    with caplog.at_level(logging.INFO):
        held.notify(_alert("connected to IB Gateway"))
        held.attach(None)  # no Telegram: the log only, which has the held alerts already
        held.notify(_alert("started"))
    assert caplog.text.count("connected to IB Gateway") == 1
    assert caplog.text.count("started") == 1


def test_at_most_the_limit_is_held() -> None:
    held = HeldNotifier(limit=2)
    for i in range(5):
        held.notify(_alert(f"alert {i}"))
    telegram = RecordingNotifier()
    held.attach(telegram)
    assert [a.text for a in telegram.alerts] == ["alert 0", "alert 1"]


def test_a_recorder_beside_the_channel_gets_every_alert_as_it_is_raised() -> None:
    recorder = RecordingNotifier()
    held = HeldNotifier(also=recorder)
    held.notify(_alert("connected to IB Gateway"))
    assert [a.text for a in recorder.alerts] == ["connected to IB Gateway"]
    telegram = RecordingNotifier()
    held.attach(telegram)  # the held alert goes to the channel; the recorder has it once
    held.notify(_alert("started"))
    assert [a.text for a in recorder.alerts] == ["connected to IB Gateway", "started"]
    assert [a.text for a in telegram.alerts] == ["connected to IB Gateway", "started"]
