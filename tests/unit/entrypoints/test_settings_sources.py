"""load_settings hands its sources to pydantic-settings for one build only: a Settings built in
code afterwards (by a sweep's settings_with, a test) reads neither the file nor the environment."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from entrypoints.settings import Settings, SettingsError, load_settings


def test_settings_built_after_a_failed_load_are_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QS_RISK__MAX_DAILY_LOSS", "999")
    path = tmp_path / "config.yaml"
    path.write_text("strategy:\n  lookback_period: 40\n  bar_minutes: 7\n", encoding="utf-8")

    with pytest.raises(SettingsError):
        load_settings(path)

    assert Settings() == Settings.model_validate({})
    assert Settings().strategy.lookback_period == 20
    assert Settings().risk.max_daily_loss == Decimal(200)


def test_settings_built_after_a_load_are_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("strategy:\n  lookback_period: 40\n", encoding="utf-8")

    loaded = load_settings(path, {"QS_RISK__MAX_DAILY_LOSS": "999"})

    assert (loaded.strategy.lookback_period, loaded.risk.max_daily_loss) == (40, Decimal(999))
    assert (Settings().strategy.lookback_period, Settings().risk.max_daily_loss) == (
        20,
        Decimal(200),
    )
