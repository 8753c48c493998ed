"""Typed configuration: a YAML file with ``${ENV}`` substitution, overridden by ``QS_*`` variables.

Precedence, highest first: environment variables ``QS_<SECTION>__<KEY>`` (case-insensitive; dict
and list values as JSON; ``null`` switches a nullable limit off), then the YAML file, then the
defaults below. Settings are built once, in ``main()``, by :func:`load_settings`; nothing in this
module reads a file or the environment at import time, and ``Settings()`` on its own reads nothing
either (it is the defaults). Every problem in a configuration is reported at once, each with its
dotted path, in one :class:`SettingsError`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self

import yaml  # type: ignore[import-untyped]
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as EnvSourceError
from pydantic_settings.sources.utils import parse_env_vars

from domain.bracket import stop_distance_ticks, target_distance_ticks
from domain.commands import AlertKind
from domain.errors import DomainError
from domain.values import MES

__all__ = [
    "ENV_PREFIX",
    "REDACTED",
    "DatabaseSettings",
    "ExecutionSettings",
    "IbkrSettings",
    "InstrumentSettings",
    "LoggingSettings",
    "RiskSettings",
    "Role",
    "SessionSettings",
    "Settings",
    "SettingsError",
    "StrategySettings",
    "TelegramSettings",
    "ZScoreSettings",
    "load_settings",
]

ENV_PREFIX: Final = "QS_"
ENV_NESTED_DELIMITER: Final = "__"
REDACTED: Final = "**********"

Role = Literal["viewer", "operator"]

MAX_MINUTES: Final = 7 * 24 * 60
"""The longest pause, close margin or heartbeat a setting may ask for: a week (larger values would
overflow the engine's date arithmetic at start, or mean the rule is off: use null for that)."""
MAX_HOURS: Final = Decimal(7 * 24)
"""The longest position a setting may allow: a week."""
MAX_LOOKBACK: Final = 100_000
"""The longest z-score window: the engine keeps it in memory."""

_SECTION = ConfigDict(extra="forbid", frozen=True)
_CROSS_FIELD: Final = "cross_field"


# ------------------------------------------------------------------ field validators


def _divides_sixty(value: int) -> int:
    if value < 1 or 60 % value != 0:
        allowed = ", ".join(str(m) for m in range(1, 61) if 60 % m == 0)
        raise ValueError(f"must divide 60 (one of {allowed}), got {value}")
    return value


_QUARTERLY_EXPIRY = re.compile(r"\d{4}(03|06|09|12)")


def _expiry(value: str) -> str:
    if value != "auto" and not _QUARTERLY_EXPIRY.fullmatch(value):
        raise ValueError(
            f"must be 'auto' or YYYYMM with a quarterly month (03, 06, 09, 12), got {value!r}"
        )
    return value


def _int_to_str(value: object) -> object:
    # An unquoted YYYYMM in YAML is an int; the user meant the text.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _empty_to_none(value: object) -> object:
    # `${VAR:-}`, the optional form of a substitution, yields "" when VAR is unset: that means none.
    return None if value == "" else value


def _http_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
    return value


def _at_least_a_second(hours: Decimal) -> Decimal:
    # The engine keeps the limit as a timedelta: one that rounds to nothing is refused at start.
    if hours * 3600 < 1:
        raise ValueError(f"must be at least one second (0.0003 hours), got {hours}")
    return hours


BarMinutes = Annotated[int, AfterValidator(_divides_sixty)]
PositionHours = Annotated[Decimal, AfterValidator(_at_least_a_second)]
Expiry = Annotated[str, BeforeValidator(_int_to_str), AfterValidator(_expiry)]
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_empty_to_none)]
OptionalText = Annotated[str | None, BeforeValidator(_empty_to_none)]


def _hh_mm(value: str | None) -> str | None:
    if value is None:
        return None
    match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", value)
    if match is None:
        raise ValueError(f"must be HH:MM on a 24-hour clock (New York time), got {value!r}")
    return value


RestartTime = Annotated[str | None, BeforeValidator(_empty_to_none), AfterValidator(_hh_mm)]


def _cross_field_error(field: str, message: str) -> PydanticCustomError:
    """The error a section's model validator raises; ``load_settings`` re-derives these itself."""
    return PydanticCustomError(
        _CROSS_FIELD, "{field}: {message}", {"field": field, "message": message}
    )


_SKIP_CROSS_CHECKS: Final = "skip_cross_checks"


def _run_cross_checks(section: BaseModel, info: ValidationInfo) -> None:
    """A section's model validator: the first of its cross-field checks that fails is raised
    (``load_settings`` runs them all itself, with this skipped, to report every one)."""
    if isinstance(info.context, dict) and info.context.get(_SKIP_CROSS_CHECKS):
        return
    for cross in _CROSS_CHECKS:
        if isinstance(section, cross.model) and (problem := cross.check(section)) is not None:
            raise _cross_field_error(*problem)


# ------------------------------------------------------------------ sections


class StrategySettings(BaseModel):
    """Z-score mean reversion on N-minute bars."""

    model_config = _SECTION

    bar_minutes: BarMinutes = Field(5, description="Bar length in minutes; must divide 60.")
    lookback_period: int = Field(
        20, ge=2, le=MAX_LOOKBACK, description="Closes in the rolling mean and std."
    )
    z_threshold_entry: Decimal = Field(
        Decimal("2.0"), gt=0, description="Enter when |z| reaches this (long below, short above)."
    )
    z_threshold_exit: Decimal = Field(
        Decimal("0.5"), ge=0, description="Exit when |z| falls to this; below the entry threshold."
    )
    min_volume: int = Field(0, ge=0, description="No entry on a bar with less volume than this.")

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> Self:
        _run_cross_checks(self, info)
        return self


class RiskSettings(BaseModel):
    """Position size, bracket and circuit breaker; null switches a limit off."""

    model_config = _SECTION

    max_position_size: int = Field(1, ge=1, description="Contracts per entry.")
    stop_loss_dollars: Decimal | None = Field(
        Decimal(50), gt=0, description="Stop-loss leg, in dollars for the whole position."
    )
    take_profit_dollars: Decimal | None = Field(
        Decimal(75), gt=0, description="Take-profit leg, in dollars for the whole position."
    )
    max_daily_loss: Decimal | None = Field(
        Decimal(200), gt=0, description="Halt for the session at this realized (or open) loss."
    )
    max_consecutive_losses: int | None = Field(
        3, ge=1, description="Pause entries after this many losing trades in a row."
    )
    pause_minutes: int = Field(
        30, ge=1, le=MAX_MINUTES, description="Length of the losing-streak pause."
    )
    max_trades_per_day: int | None = Field(50, ge=1, description="Entries allowed per session.")
    max_position_duration_hours: PositionHours | None = Field(
        Decimal(4), gt=0, le=MAX_HOURS, description="Close a position older than this."
    )

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> Self:
        _run_cross_checks(self, info)
        return self


class ExecutionSettings(BaseModel):
    """How the simulated broker fills, and what trading costs."""

    model_config = _SECTION

    fill_model: Literal["next_open", "signal_close"] = Field(
        "next_open", description="Simulated fills at the next bar's open or the signal bar's close."
    )
    slippage_ticks: int = Field(0, ge=0, description="Simulated adverse slippage per fill, ticks.")
    commission_per_side: Decimal = Field(
        Decimal("0.62"), ge=0, description="Dollars per contract per side."
    )


class SessionSettings(BaseModel):
    """Trading calendar and behaviour near halts and closes."""

    model_config = _SECTION

    calendar: Literal["cme_globex_equity", "none"] = Field(
        "cme_globex_equity", description="Session table; 'none' applies no session rules."
    )
    no_entry_minutes_before_close: int = Field(
        15, ge=0, le=MAX_MINUTES, description="No entries this close to a halt or close."
    )
    flatten_minutes_before_close: int | None = Field(
        5,
        ge=0,
        le=MAX_MINUTES,
        description="Flatten this long before a halt or close; null never flattens.",
    )
    no_entry_in_roll_week: bool = Field(
        True,
        description="No entries from the roll start (Monday of expiry week) until the expiring "
        "contract stops trading.",
    )

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> Self:
        _run_cross_checks(self, info)
        return self


class InstrumentSettings(BaseModel):
    """The traded contract."""

    model_config = _SECTION

    symbol: Literal["MES"] = Field("MES", description="Futures root symbol.")
    exchange: str = Field("CME", min_length=1, description="Exchange the contract trades on.")
    currency: str = Field("USD", min_length=1, description="Contract currency.")
    expiry: Expiry = Field(
        "auto", description="'auto' (front month by the roll rule) or a quarterly YYYYMM."
    )
    min_price: Decimal = Field(
        Decimal(100),
        gt=0,
        allow_inf_nan=False,
        description="A bar with a price below this is refused (price_range).",
    )
    max_price: Decimal = Field(
        Decimal(30000),
        gt=0,
        allow_inf_nan=False,
        description="A bar with a price above this is refused (price_range).",
    )
    max_jump_ticks: int = Field(
        2000,
        ge=1,
        le=1_000_000,
        description="A bar this many ticks or more beyond the last accepted close is refused "
        "(price_jump); three such bars in a row that agree are taken as the market's new level.",
    )

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> Self:
        _run_cross_checks(self, info)
        return self


class IbkrSettings(BaseModel):
    """Connection to IB Gateway / TWS."""

    model_config = _SECTION

    host: str = Field("127.0.0.1", min_length=1, description="Gateway host.")
    port: int = Field(4002, ge=1, le=65535, description="Gateway API port (4002: paper Gateway).")
    client_id: int = Field(17, ge=0, description="API client id, unique per connection.")
    account: OptionalText = Field(None, description="Account id; null uses the only one.")
    connect_timeout_s: float = Field(
        10.0, gt=0, allow_inf_nan=False, description="Seconds to wait for a connection."
    )
    readonly: bool = Field(False, description="Connect read-only (no orders).")
    request_timeout_s: float = Field(
        10.0, gt=0, allow_inf_nan=False, description="Seconds to wait for an answer to a request."
    )
    commission_wait_s: float = Field(
        2.0,
        ge=0,
        allow_inf_nan=False,
        description="Seconds a fill waits for IB's commission report before the configured rate "
        "is booked.",
    )
    stale_grace_s: float = Field(
        30.0,
        gt=0,
        allow_inf_nan=False,
        description="A 5-second bar this late, while the market is open, means a stale feed.",
    )
    watchdog_interval_s: float = Field(
        5.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds between feed and roll checks, on the daemon's clock (market time).",
    )
    reconnect_max_s: float = Field(
        60.0, gt=0, allow_inf_nan=False, description="Longest wait between reconnect attempts."
    )
    client_id_wait_s: float = Field(
        15.0,
        ge=0,
        allow_inf_nan=False,
        description="Wait after error 326 (client id in use) for the old session to clear.",
    )
    startup_attempts: int = Field(
        3,
        ge=1,
        description="Connect attempts at start-up before `run` gives up (exit 4); once running, "
        "reconnects never give up.",
    )
    restart_time: RestartTime = Field(
        "23:45",
        description="IB Gateway's daily restart (IBC AutoRestartTime), HH:MM New York time; "
        "null: none scheduled.",
    )
    restart_block_minutes: int = Field(
        10,
        ge=0,
        le=120,
        description="No entries this many minutes either side of restart_time.",
    )


class DatabaseSettings(BaseModel):
    """Journal and state store."""

    model_config = _SECTION

    url: OptionalSecret = Field(
        None, description="SQLAlchemy URL (PostgreSQL); null uses embedded SQLite in data_dir."
    )
    data_dir: Path = Field(Path("var"), description="Local data: SQLite file, journal spool.")


def _yaml_bool_to_on_off(value: object) -> object:
    # YAML 1.1 reads an unquoted on/off (and yes/no) as a bool: the user wrote the mode's name.
    if value is True:
        return "on"
    if value is False:
        return "off"
    return value


AlertMode = Annotated[Literal["on", "silent", "off"], BeforeValidator(_yaml_bool_to_on_off)]


class TelegramSettings(BaseModel):
    """Telegram alerts and commands."""

    model_config = _SECTION

    enabled: bool = Field(False, description="Run the bot and send alerts.")
    token: OptionalSecret = Field(None, description="Bot token; required when enabled.")
    users: dict[int, Role] = Field(
        default_factory=dict, description="Allowed Telegram user id -> role (viewer, operator)."
    )
    api_base_url: Annotated[OptionalText, AfterValidator(_http_url)] = Field(
        None, description="Bot API server URL; null uses Telegram's."
    )
    chat_ids: list[int] = Field(default_factory=list, description="Chats that receive alerts.")
    group_chats: list[int] = Field(
        default_factory=list,
        description="Group chats where the allowed users' commands are answered; none: commands "
        "are answered in private chats only.",
    )
    webhook_url: Annotated[OptionalText, AfterValidator(_http_url)] = Field(
        None,
        description="Public URL Telegram posts updates to (webhook mode); null: long polling.",
    )
    webhook_listen: str = Field("127.0.0.1", min_length=1, description="Webhook: listen address.")
    webhook_port: int = Field(8443, ge=1, le=65535, description="Webhook: listen port.")
    webhook_secret: OptionalSecret = Field(
        None, description="Webhook: the secret Telegram sends in X-Telegram-Bot-Api-Secret-Token."
    )
    alerts: dict[str, AlertMode] = Field(
        default_factory=dict,
        description="Per alert type (entry_filled, stale_data, ...): on, silent or off; types not "
        "named keep their defaults.",
    )
    rate_limit_per_minute: int = Field(
        20, ge=1, le=600, description="Alert messages per minute at most; the rest are batched."
    )
    queue_size: int = Field(
        1000, ge=10, description="Alerts waiting to be sent at most; beyond it the oldest go."
    )
    dedup_window_s: float = Field(
        60.0,
        ge=0,
        allow_inf_nan=False,
        description="Identical alerts within this many seconds collapse into one with a count.",
    )
    confirm_timeout_s: float = Field(
        60.0, gt=0, allow_inf_nan=False, description="Confirmation buttons expire after this."
    )

    @field_validator("alerts")
    @classmethod
    def _known_alert_types(cls, value: dict[str, str]) -> dict[str, str]:
        known = {kind.value for kind in AlertKind}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(
                f"unknown alert type(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return value

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> Self:
        _run_cross_checks(self, info)
        return self


class ObservabilitySettings(BaseModel):
    """The daemon's health and metrics endpoints."""

    model_config = _SECTION

    port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve GET /healthz and GET /metrics on 127.0.0.1 at this port; null: off.",
    )


class DaemonSettings(BaseModel):
    """What ``quant-scalper run`` trades against."""

    model_config = _SECTION

    broker: Literal["simulated", "ibkr"] = Field(
        "simulated",
        description="simulated: the simulated broker on a recorded feed (no IB Gateway needed); "
        "ibkr: IB Gateway at ibkr.*.",
    )
    feed: Path = Field(
        Path("data/sample/es_1min_20131006_20131014.csv"),
        description="The recorded bar file the simulated daemon plays.",
    )
    speed: float = Field(
        60.0,
        gt=0,
        allow_inf_nan=False,
        description="The simulated feed plays this many times faster than real time.",
    )


class ShutdownSettings(BaseModel):
    """What SIGTERM / SIGINT (and /stop's default) do before the daemon exits."""

    model_config = _SECTION

    flatten: bool = Field(
        True,
        description="Flatten the position before exiting; false leaves it with its broker-held "
        "bracket.",
    )
    timeout_s: float = Field(
        25.0,
        gt=0,
        le=120,
        allow_inf_nan=False,
        description="The whole graceful shutdown takes at most this long; then the daemon exits "
        "anyway.",
    )


class ZScoreSettings(BaseModel):
    """Which rolling z-score implementation runs."""

    model_config = _SECTION

    engine: Literal["rust", "python"] = Field(
        "rust", description="'rust' (native_core) or 'python' (the reference)."
    )


class LoggingSettings(BaseModel):
    """Log level, format and directory."""

    model_config = _SECTION

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["text", "json"] = Field("text", description="Human text or JSON lines.")
    dir: Path = Field(Path("logs"), description="Directory for log files.")
    heartbeat_minutes: int | None = Field(
        None,
        ge=0,
        le=MAX_MINUTES,
        description="The daemon's console says it is alive this often (market time); null: once "
        "per strategy bar; 0: never.",
    )


class ReportSettings(BaseModel):
    """What the replay and journal reports measure returns against."""

    model_config = _SECTION

    account_size_usd: Decimal = Field(
        Decimal(10_000),
        gt=0,
        description="Account size in USD: the report's return, CAGR and drawdown % are of it.",
    )


# ------------------------------------------------------------------ cross-field checks
# Plain functions of a validated section, shared by the sections' model validators (so a Settings
# built in code is checked too) and by load_settings' second pass (which still runs them when some
# other field of the section is invalid, where pydantic skips model validators).


def _check_exit_below_entry(s: StrategySettings) -> tuple[str, str] | None:
    if s.z_threshold_exit >= s.z_threshold_entry:
        return (
            "z_threshold_exit",
            f"must be less than strategy.z_threshold_entry ({s.z_threshold_entry}), "
            f"got {s.z_threshold_exit}",
        )
    return None


def _check_flatten_within_no_entry(s: SessionSettings) -> tuple[str, str] | None:
    flatten, no_entry = s.flatten_minutes_before_close, s.no_entry_minutes_before_close
    if flatten is not None and flatten > no_entry:
        return (
            "flatten_minutes_before_close",
            f"must not exceed session.no_entry_minutes_before_close ({no_entry}), got {flatten}",
        )
    return None


def _check_stop_at_least_one_tick(r: RiskSettings) -> tuple[str, str] | None:
    # The engine's own rule (domain.bracket), so config and run can never disagree.
    if r.stop_loss_dollars is None:
        return None
    try:
        stop_distance_ticks(MES, r.stop_loss_dollars, r.max_position_size)
    except DomainError:
        need = MES.tick_value * r.max_position_size
        return (
            "stop_loss_dollars",
            f"must be at least one tick for the whole position ({MES.tick_value} x "
            f"risk.max_position_size {r.max_position_size} = {need}), got {r.stop_loss_dollars}: "
            "lower max_position_size or raise the stop",
        )
    return None


def _check_target_at_least_one_tick(r: RiskSettings) -> tuple[str, str] | None:
    if r.take_profit_dollars is None:
        return None
    try:
        target_distance_ticks(MES, r.take_profit_dollars, r.max_position_size)
    except DomainError:
        need = MES.tick_value * r.max_position_size / 2
        return (
            "take_profit_dollars",
            f"must round to at least one tick for the whole position (at least {need} with "
            f"risk.max_position_size {r.max_position_size}), got {r.take_profit_dollars}",
        )
    return None


def _check_price_range(s: InstrumentSettings) -> tuple[str, str] | None:
    if s.max_price <= s.min_price:
        return (
            "max_price",
            f"must be above instrument.min_price ({s.min_price}), got {s.max_price}",
        )
    return None


def _check_token_when_enabled(s: TelegramSettings) -> tuple[str, str] | None:
    if s.enabled and s.token is None:
        return ("token", "required when telegram.enabled is true")
    return None


@dataclass(frozen=True)
class _CrossCheck:
    section: str
    inputs: tuple[str, ...]
    model: type[BaseModel]
    check: Callable[[Any], tuple[str, str] | None]


_CROSS_CHECKS: Final = (
    _CrossCheck(
        "strategy",
        ("z_threshold_entry", "z_threshold_exit"),
        StrategySettings,
        _check_exit_below_entry,
    ),
    _CrossCheck(
        "session",
        ("no_entry_minutes_before_close", "flatten_minutes_before_close"),
        SessionSettings,
        _check_flatten_within_no_entry,
    ),
    _CrossCheck(
        "risk",
        ("max_position_size", "stop_loss_dollars"),
        RiskSettings,
        _check_stop_at_least_one_tick,
    ),
    _CrossCheck(
        "risk",
        ("max_position_size", "take_profit_dollars"),
        RiskSettings,
        _check_target_at_least_one_tick,
    ),
    _CrossCheck("instrument", ("min_price", "max_price"), InstrumentSettings, _check_price_range),
    _CrossCheck("telegram", ("enabled", "token"), TelegramSettings, _check_token_when_enabled),
)


# ------------------------------------------------------------------ the settings


class Settings(BaseSettings):
    """The whole configuration; build it with :func:`load_settings` (``Settings()``: defaults)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        case_sensitive=False,
        env_parse_none_str="null",
        extra="forbid",
        frozen=True,
    )

    strategy: StrategySettings = Field(default_factory=StrategySettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    session: SessionSettings = Field(default_factory=SessionSettings)
    instrument: InstrumentSettings = Field(default_factory=InstrumentSettings)
    ibkr: IbkrSettings = Field(default_factory=IbkrSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    shutdown: ShutdownSettings = Field(default_factory=ShutdownSettings)
    zscore: ZScoreSettings = Field(default_factory=ZScoreSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)

    _load_warnings: tuple[str, ...] = PrivateAttr(default=())
    """What load_settings noticed in the environment (QS_ variables that set nothing)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the values passed in: load_settings reads the environment mapping it was given
        # (through _MappingEnvSource) and merges it over the YAML itself, so constructing
        # Settings never reads os.environ behind the caller's back.
        return (init_settings,)

    def redacted(self) -> dict[str, Any]:
        """Plain JSON-ready values with every secret shown as ``**********`` (for /config, logs)."""
        return self.model_dump(mode="json")

    def warnings(self) -> list[str]:
        """One line per safety feature switched off by this configuration, and per ``QS_``
        environment variable that sets nothing."""
        r, s = self.risk, self.session
        off = [
            (r.stop_loss_dollars, "risk.stop_loss_dollars", "positions carry no stop leg"),
            (r.take_profit_dollars, "risk.take_profit_dollars", "positions carry no target leg"),
            (r.max_daily_loss, "risk.max_daily_loss", "the daily loss limit is OFF"),
            (
                r.max_consecutive_losses,
                "risk.max_consecutive_losses",
                "no pause after a losing streak",
            ),
            (r.max_trades_per_day, "risk.max_trades_per_day", "the daily trade cap is OFF"),
            (
                r.max_position_duration_hours,
                "risk.max_position_duration_hours",
                "positions are never closed for age",
            ),
            (
                s.flatten_minutes_before_close,
                "session.flatten_minutes_before_close",
                "positions are held through halts and closes",
            ),
        ]
        lines = [
            f"{path} is null: {consequence}" for value, path, consequence in off if value is None
        ]
        if s.calendar == "none":
            lines.append(
                "session.calendar is none: no session rules "
                "(CME halts, holidays and early closes are not enforced)"
            )
        lines.extend(self._load_warnings)
        return lines


class SettingsError(Exception):
    """Every problem found in a configuration, each ``"<dotted.path>: <what is wrong>"``."""

    def __init__(self, errors: list[str], source: str = "<no config file>") -> None:
        self.errors = list(errors)
        self.source = source
        super().__init__(self.errors)

    def __str__(self) -> str:
        count = len(self.errors)
        head = f"{self.source}: {count} configuration problem{'s' if count != 1 else ''}"
        return "\n".join([head, *(f"  - {error}" for error in self.errors)])


# ------------------------------------------------------------------ loading


def load_settings(path: Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (or nothing), substitute ``${VAR}``, apply ``QS_*`` overrides, validate.

    ``environ`` defaults to ``os.environ``; it is the only environment consulted, both for
    ``${VAR}`` substitution and for overrides. Raises :class:`SettingsError` naming every problem.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    source = str(path) if path is not None else "<no config file>"
    problems: list[str] = []
    # Paths already reported (a missing ${VAR}, undecodable JSON): their stand-in value must not
    # produce a second, misleading report.
    reported: set[tuple[str, ...]] = set()

    tree: dict[str, Any] = {}
    # Every ${VAR} substituted, with the path it went to: which values came from secrets.
    used: list[tuple[str, tuple[str | int, ...]]] = []
    if path is not None:
        loaded = _read_yaml(path, problems)
        if loaded is None and problems:
            raise SettingsError(problems, source)
        tree = _sections(loaded, problems)
        tree = _substitute_tree(tree, (), env, problems, reported, used)

    overrides, env_origin = _env_overrides(env, problems, reported)
    merged = _deep_merge(tree, overrides)
    secrets = _secret_values(env, used, env_origin)

    try:
        settings = Settings(**merged)
    except ValidationError as exc:
        problems.extend(
            _describe(error, env_origin)
            for error in exc.errors(include_url=False)
            if error["type"] != _CROSS_FIELD and not _under(error["loc"], reported)
        )
    else:
        if not problems:
            settings._load_warnings = tuple(_unmatched_env(env, {name for name, _ in used}))
            return settings
    # The cross-field checks again, over the raw data: pydantic skips a section's model validator
    # when any field of the section fails, and we want those problems in this same report.
    problems.extend(_cross_field_problems(merged, env_origin, reported))
    raise SettingsError([_mask(problem, secrets) for problem in problems], source)


_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|PASSPHRASE|CREDENTIAL|PRIVATE|API_?KEY", re.I)


def _secret_values(
    env: Mapping[str, str],
    used: list[tuple[str, tuple[str | int, ...]]],
    env_origin: Mapping[tuple[str, ...], str],
) -> set[str]:
    """The values that came from a secret: a variable substituted into a secret setting anywhere,
    one whose name says it is secret, or a QS_ override of a secret setting."""
    names = {name for name, loc in used if _is_secret(loc) or _SECRET_NAME.search(name)}
    names |= {name for loc, name in env_origin.items() if loc and _is_secret(loc)}
    return {env[name] for name in names if env.get(name)}


def _mask(text: str, secrets: set[str]) -> str:
    """``text`` with every secret value in it shown as :data:`REDACTED` (longest first, so a secret
    inside another is not left half shown)."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _unmatched_env(env: Mapping[str, str], substituted: set[str]) -> list[str]:
    """One warning per ``QS_`` variable that sets nothing: not a section (``QS_<SECTION>`` or
    ``QS_<SECTION>__<KEY>``) and not used as a ``${VAR}`` in the config file."""
    prefix = ENV_PREFIX.lower()
    lines = []
    for name in sorted(env):
        if not name.lower().startswith(prefix) or name in substituted:
            continue
        parts = name[len(prefix) :].lower().split(ENV_NESTED_DELIMITER)
        if parts[0] in Settings.model_fields:
            continue  # a section: its keys are checked (an unknown one is an error)
        lines.append(
            f"environment variable {name} matches no setting and is ignored{_env_hint(name)}"
        )
    return lines


def _env_hint(name: str) -> str:
    rest = name[len(ENV_PREFIX) :].lower()
    for section in Settings.model_fields:
        if rest.startswith(section + "_") and not rest.startswith(section + ENV_NESTED_DELIMITER):
            key = rest[len(section) + 1 :]
            if key in _keys_at((section,)):
                suggestion = f"{ENV_PREFIX}{section}{ENV_NESTED_DELIMITER}{key}".upper()
                return f" (did you mean {suggestion}? a section and its key are joined by '__')"
    return f" (settings are {ENV_PREFIX}<SECTION>{ENV_NESTED_DELIMITER}<KEY>)"


def _under(loc: tuple[str | int, ...], paths: set[tuple[str, ...]]) -> bool:
    parts = tuple(str(part).lower() for part in loc)
    return any(parts[: len(path)] == path for path in paths)


class _AliasRefused(yaml.MarkedYAMLError):  # type: ignore[misc]
    """A YAML alias in the config: refused, since one can refer to itself (endless recursion) or
    fan out exponentially ("billion laughs"), and a config needs neither."""


class _ConfigLoader(yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader that keeps floats as the exact decimals written (2.1 is Decimal("2.1")) and
    refuses aliases (``*name``) before they are expanded."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _AliasRefused(
                problem=f"YAML aliases (*{event.anchor}) are not allowed in the configuration: "
                "write the value out",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_exact_decimal(self, node: yaml.ScalarNode) -> Decimal:
        text = str(self.construct_scalar(node)).replace("_", "")
        try:
            return Decimal(text)
        except InvalidOperation:
            # .inf, .nan and YAML 1.1 oddities: let YAML decide, then validation rejects them.
            return Decimal(repr(self.construct_yaml_float(node)))


_ConfigLoader.add_constructor("tag:yaml.org,2002:float", _ConfigLoader.construct_exact_decimal)


def _read_yaml(path: Path, problems: list[str]) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append("config file not found")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"cannot read config file: {exc}")
        return None
    loader = _ConfigLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None  # an empty file
        _report_duplicate_keys(node, (), problems, set())
        return loader.construct_document(node)
    except _AliasRefused as exc:
        mark = exc.problem_mark
        problems.append(f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}")
        return None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        context = f" ({exc.context})" if exc.context else ""
        problems.append(f"{where}: YAML syntax error: {exc.problem}{context}")
        return None
    except yaml.YAMLError as exc:
        problems.append(f"YAML error: {exc}")
        return None
    finally:
        loader.dispose()


def _report_duplicate_keys(
    node: yaml.Node, loc: tuple[str | int, ...], problems: list[str], seen_nodes: set[int]
) -> None:
    """A key written twice: YAML silently keeps the last value, which hides a mistake."""
    if id(node) in seen_nodes:  # an alias of a node already walked
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: set[tuple[str, str]] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = (key_node.tag, key_node.value)
            if key in keys:
                problems.append(
                    f"{_dotted((*loc, key_node.value))}: duplicate key on line "
                    f"{key_node.start_mark.line + 1} (YAML would silently keep the last value)"
                )
            keys.add(key)
            _report_duplicate_keys(value_node, (*loc, key_node.value), problems, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _report_duplicate_keys(item, (*loc, index), problems, seen_nodes)


def _sections(data: Any, problems: list[str]) -> dict[str, Any]:
    """The top level as ``{section: mapping}``; anything else is reported and dropped."""
    if data is None:
        return {}  # an empty file: the defaults
    if not isinstance(data, dict):
        problems.append(
            f"the top level must be a mapping of sections ({', '.join(Settings.model_fields)}), "
            f"got {_type_name(data)}"
        )
        return {}
    sections: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(key, str) and key in Settings.model_fields:
            # A section with every key commented out parses as null: it means "all defaults".
            sections[key] = {} if value is None else value
        else:
            problems.append(
                f"{key}: unknown section{_suggestion(key, list(Settings.model_fields))}"
            )
    return sections


_REFERENCE = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _substitute_tree(
    node: Any,
    loc: tuple[str | int, ...],
    env: Mapping[str, str],
    problems: list[str],
    reported: set[tuple[str, ...]],
    used: list[tuple[str, tuple[str | int, ...]]],
) -> Any:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in every string value; ``$$`` is a ``$``. Each
    variable substituted is added to ``used`` with the path it went to."""
    if isinstance(node, dict):
        return {
            k: _substitute_tree(v, (*loc, k), env, problems, reported, used)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [
            _substitute_tree(v, (*loc, i), env, problems, reported, used)
            for i, v in enumerate(node)
        ]
    if not isinstance(node, str) or "$" not in node:
        return node
    path = _dotted(loc)

    def report(message: str) -> None:
        problems.append(f"{path}: {message}")
        reported.add(tuple(str(part).lower() for part in loc))

    def replace(match: re.Match[str]) -> str:
        whole, body = match.group(0), match.group(1)
        if whole == "$$":
            return "$"
        if body is None:
            report("unterminated '${' (write $$ for a literal $)")
            return whole
        name, has_default, default = body.partition(":-")
        if not _VAR_NAME.fullmatch(name):
            report(f"malformed substitution {whole!r}: expected ${{NAME}} or ${{NAME:-default}}")
            return whole
        value = env.get(name)
        used.append((name, loc))
        if has_default:
            return value if value else default  # like the shell: unset or empty takes the default
        if value is None:
            report(
                f"environment variable {name} is not set (used as ${{{name}}}; "
                f"write ${{{name}:-}} to make it optional)"
            )
            return ""
        return value

    return _REFERENCE.sub(replace, node)


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


def _env_overrides(
    env: Mapping[str, str], problems: list[str], reported: set[tuple[str, ...]]
) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """The ``QS_*`` overrides as a nested dict, and which variable set each path."""
    prefix = ENV_PREFIX.lower()
    ours = {name: value for name, value in env.items() if name.lower().startswith(prefix)}
    origin: dict[tuple[str, ...], str] = {}
    for name in ours:
        parts = tuple(name[len(prefix) :].lower().split(ENV_NESTED_DELIMITER))
        if parts[0] in Settings.model_fields:
            origin[parts] = name
        elif len(parts) > 1:
            # QS_X__Y looks like an override; a bare QS_X may be a ${QS_X} substitution variable.
            problems.append(
                f"{name}: environment variable names no section "
                f"{parts[0]!r}{_suggestion(parts[0], list(Settings.model_fields))}"
            )
    try:
        return _MappingEnvSource(Settings, ours)(), origin
    except EnvSourceError:
        pass
    # Some value did not decode (bad JSON for a dict or list): find each culprit, keep the rest.
    usable: dict[str, str] = {}
    for name, value in ours.items():
        try:
            _MappingEnvSource(Settings, {name: value})()
        except EnvSourceError:
            problems.append(f"{name}: value is not valid JSON for {_dotted(_env_path(name))}")
            reported.add(_env_path(name))
        else:
            usable[name] = value
    return _MappingEnvSource(Settings, usable)(), origin


def _env_path(name: str) -> tuple[str, ...]:
    return tuple(name[len(ENV_PREFIX) :].lower().split(ENV_NESTED_DELIMITER))


def _deep_merge(
    base: dict[str, Any], override: Mapping[str, Any], loc: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``override`` over ``base``, section by section; a field's value (even a dict) is replaced."""
    merged = dict(base)
    for key, value in override.items():
        inner = (*loc, key)
        if (
            isinstance(value, Mapping)
            and isinstance(merged.get(key), dict)
            and _model_at(inner) is not None
        ):
            merged[key] = _deep_merge(merged[key], value, inner)
        else:
            merged[key] = value
    return merged


def _cross_field_problems(
    merged: Mapping[str, Any],
    env_origin: Mapping[tuple[str, ...], str],
    reported: set[tuple[str, ...]],
) -> list[str]:
    """Each cross-field check whose inputs are valid on their own, on the raw merged data."""
    problems: list[str] = []
    for cross in _CROSS_CHECKS:
        raw = merged.get(cross.section, {})
        if not isinstance(raw, Mapping) or any(
            _under((cross.section, key), reported) for key in cross.inputs
        ):
            continue
        inputs = {key: raw[key] for key in cross.inputs if key in raw}
        try:
            # Only the check's inputs, the rest defaulted, without the section's model validator:
            # each check runs here on its own, so a section with two problems shows both.
            section = cross.model.model_validate(inputs, context={_SKIP_CROSS_CHECKS: True})
        except ValidationError:
            continue  # an input invalid on its own: reported by the first pass
        problem = cross.check(section)
        if problem is not None:
            loc = (cross.section, problem[0])
            problems.append(f"{_dotted(loc)}: {problem[1]}{_from_env(loc, env_origin)}")
    return problems


# ------------------------------------------------------------------ describing problems


def _describe(error: Mapping[str, Any], env_origin: Mapping[tuple[str, ...], str]) -> str:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    kind = error["type"]
    key_problem = bool(loc) and loc[-1] == "[key]"
    if key_problem:
        loc = loc[:-1]
    path = _dotted(loc)
    if kind == "extra_forbidden":
        message = f"unknown key{_suggestion(loc[-1], _keys_at(loc[:-1]))}"
    elif kind == "value_error":
        message = str(error["ctx"]["error"])
    else:
        message = str(error["msg"])
        value = error.get("input")
        if not _is_secret(loc) and _is_scalar(value):
            message += f", got {_show(value)}"
    if key_problem:
        message = f"key {_show(loc[-1])}: {message}"
        path = _dotted(loc[:-1])
    return f"{path}: {message}{_from_env(loc, env_origin)}"


def _from_env(loc: tuple[str | int, ...], env_origin: Mapping[tuple[str, ...], str]) -> str:
    parts = tuple(str(p).lower() for p in loc)
    for env_path, name in env_origin.items():
        if parts[: len(env_path)] == env_path:
            return f" (from environment variable {name})"
    return ""


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Settings
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _keys_at(loc: tuple[str | int, ...]) -> list[str]:
    model = _model_at(loc)
    return list(model.model_fields) if model is not None else []


def _is_secret(loc: tuple[str | int, ...]) -> bool:
    model = _model_at(loc[:-1]) if loc else None
    field = model.model_fields.get(str(loc[-1])) if model is not None else None
    return field is not None and "SecretStr" in str(field.annotation)


def _suggestion(key: object, candidates: list[str]) -> str:
    close = difflib.get_close_matches(str(key), candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _dotted(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<top level>"


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | Decimal | bool)


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _type_name(value: object) -> str:
    names = {list: "a list", str: "a string", int: "a number", Decimal: "a number", bool: "a bool"}
    return names.get(type(value), type(value).__name__)


# ------------------------------------------------------------------ overrides (sweeps)


def settings_with(
    base: Settings,
    overrides: Mapping[str, object],
    source: str = "<overrides>",
    *,
    cross_checks: bool = True,
) -> Settings:
    """``base`` with dotted settings replaced (``{"strategy.lookback_period": 40}``), validated by
    the same model and cross-field checks as a config file. Raises :class:`SettingsError` naming
    every problem (an unknown name included). ``cross_checks=False`` checks each value on its own
    (a sweep checks its values one by one, then the combinations)."""
    data: dict[str, Any] = base.model_dump()
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[leaf] = value
    problems: list[str] = []
    try:
        if not cross_checks:
            return Settings.model_validate(data, context={_SKIP_CROSS_CHECKS: True})
        return Settings(**data)
    except ValidationError as exc:
        problems.extend(
            _describe(error, {})
            for error in exc.errors(include_url=False)
            if error["type"] != _CROSS_FIELD
        )
    if cross_checks:
        problems.extend(_cross_field_problems(data, {}, set()))
    raise SettingsError(problems, source)
