"""Typed configuration: the schema (:mod:`.schema`) and how a file and the environment are read
into it (:mod:`.loading`). Settings are built once, in ``main()``, by :func:`load_settings`."""

from entrypoints.settings.loading import REDACTED, SettingsError, load_settings, settings_with
from entrypoints.settings.loading import _ConfigLoader as _ConfigLoader
from entrypoints.settings.schema import (
    ENV_PREFIX,
    DaemonSettings,
    DatabaseSettings,
    ExecutionSettings,
    IbkrSettings,
    InstrumentSettings,
    LoggingSettings,
    ObservabilitySettings,
    ReportSettings,
    RiskSettings,
    Role,
    SessionSettings,
    Settings,
    ShutdownSettings,
    StrategySettings,
    TelegramSettings,
    ZScoreSettings,
)

__all__ = [
    "ENV_PREFIX",
    "REDACTED",
    "DaemonSettings",
    "DatabaseSettings",
    "ExecutionSettings",
    "IbkrSettings",
    "InstrumentSettings",
    "LoggingSettings",
    "ObservabilitySettings",
    "ReportSettings",
    "RiskSettings",
    "Role",
    "SessionSettings",
    "Settings",
    "SettingsError",
    "ShutdownSettings",
    "StrategySettings",
    "TelegramSettings",
    "ZScoreSettings",
    "load_settings",
    "settings_with",
]
