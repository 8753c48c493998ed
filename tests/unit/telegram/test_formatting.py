"""Reply text: exact money, UTC times, masked secrets, messages cut to Telegram's size."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from entrypoints.telegram.formatting import chunks, config_text, duration, money, when


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (Decimal("-51.24"), "-51.24"),
        (Decimal("0"), "+0.00"),
        (Decimal("12.5"), "+12.50"),
        (Decimal("1234567.125"), "+1,234,567.125"),  # never rounded
        (Decimal("-0.62") * 3, "-1.86"),
        (Decimal("1E+2"), "+100.00"),
    ],
)
def test_money_is_exact_signed_and_has_cents(amount: Decimal, shown: str) -> None:
    assert money(amount) == shown


def test_times_are_shown_in_utc() -> None:
    new_york = timezone(timedelta(hours=-5))
    assert when(datetime(2025, 3, 4, 10, 5, tzinfo=new_york)) == "2025-03-04 15:05 UTC"
    assert when(datetime(2025, 3, 4, 15, 5, 7, tzinfo=UTC)) == "2025-03-04 15:05:07 UTC"
    assert when(None) == "never"


@pytest.mark.parametrize(
    ("delta", "shown"),
    [
        (timedelta(hours=4), "4 h"),
        (timedelta(minutes=90), "1 h 30 min"),
        (timedelta(seconds=45), "45 s"),
        (timedelta(0), "0 s"),
    ],
)
def test_durations_are_compact(delta: timedelta, shown: str) -> None:
    assert duration(delta) == shown


def test_config_masks_secret_keys_and_any_secret_value() -> None:
    config = {
        "telegram": {"token": "123:abc", "users": {"1": "operator"}, "api_base_url": None},
        "database": {"url": "**********", "password": "pw"},
        "notes": {"motd": "the token is 123:abc"},
    }

    text = config_text(config, secrets=["123:abc"])

    assert "123:abc" not in text
    assert "pw" not in text.replace("password", "")
    assert "  token: **********" in text
    assert "  api_base_url: null" in text
    assert '  users: {"1": "operator"}' in text
    assert "  motd: the token is **********" in text


def test_long_text_is_cut_at_line_ends_within_the_limit() -> None:
    lines = [f"line {i:04d} " + "x" * 40 for i in range(300)]
    text = "\n".join(lines)

    pieces = chunks(text, limit=1000)

    assert all(len(p) <= 1000 for p in pieces)
    assert "\n".join(pieces) == text
    assert chunks("short") == ["short"]


def test_a_line_longer_than_the_limit_is_cut_hard() -> None:
    pieces = chunks("a\n" + "b" * 25, limit=10)

    assert pieces == ["a", "b" * 10, "b" * 10, "b" * 5]


def test_health_says_a_last_bar_from_the_future_is_in_the_future() -> None:
    from application.operator import Health
    from entrypoints.telegram.formatting import health_text

    health = Health(
        "degraded", "IDLE", 0, True, -600.0, 0, 0, ("last bar ends 600 s in the future",)
    )
    assert "last bar: ends 600 s in the future" in health_text(health)
    assert "-600" not in health_text(health)
