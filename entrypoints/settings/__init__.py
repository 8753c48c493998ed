"""Typed configuration: the schema (:mod:`.schema`); the config file read and substituted
(:mod:`.yaml_file`); the file and the environment loaded into the schema (:mod:`.loading`); every
problem reported at once (:mod:`.problems`). Settings are built once, in ``main()``, by
:func:`load_settings`."""

from entrypoints.settings.loading import load_settings, settings_with
from entrypoints.settings.problems import REDACTED, SettingsError
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
from entrypoints.settings.yaml_file import ConfigLoader

_ConfigLoader = ConfigLoader  # the name entrypoints.research.plan imports

__all__ = [
    "ENV_PREFIX",
    "REDACTED",
    "ConfigLoader",
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
