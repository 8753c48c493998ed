"""The configuration's schema: its sections, fields, defaults and every rule a value must meet.

Reading a file and the environment into it is :mod:`entrypoints.settings.loading`. Nothing here
reads a file or the environment: ``Settings()`` on its own is the defaults.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from application.weekly_login import WEEKDAYS
from domain.bracket import stop_distance_ticks, target_distance_ticks
from domain.commands import AlertKind
from domain.errors import DomainError
from domain.values import MES

ENV_PREFIX: Final = "QS_"
ENV_NESTED_DELIMITER: Final = "__"

Role = Literal["viewer", "operator"]

MAX_MINUTES: Final = 7 * 24 * 60
"""The longest pause, close margin or heartbeat a setting may ask for: a week (larger values would
overflow the engine's date arithmetic at start, or mean the rule is off: use null for that)."""
MAX_HOURS: Final = Decimal(7 * 24)
"""The longest position a setting may allow: a week."""
MAX_LOOKBACK: Final = 100_000
"""The longest z-score window: the engine keeps it in memory."""

_SECTION = ConfigDict(extra="forbid", frozen=True)
CROSS_FIELD: Final = "cross_field"
"""The error type of a failed cross-field check (the loader reports those itself)."""


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


def _weekday_hh_mm(value: str | None) -> str | None:
    if value is None:
        return None
    day, _, clock = value.strip().partition(" ")
    day, clock = day[:1].upper() + day[1:].lower(), clock.strip()
    if day not in WEEKDAYS or re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", clock) is None:
        raise ValueError(
            f"must be a weekday and HH:MM (New York time) like 'Sun 01:00', got {value!r}"
        )
    return f"{day} {clock}"


WeeklyTime = Annotated[str | None, BeforeValidator(_empty_to_none), AfterValidator(_weekday_hh_mm)]


def _cross_field_error(field: str, message: str) -> PydanticCustomError:
    """The error a section's model validator raises; the loader re-derives these itself."""
    return PydanticCustomError(
        CROSS_FIELD, "{field}: {message}", {"field": field, "message": message}
    )


SKIP_CROSS_CHECKS: Final = "skip_cross_checks"
"""Validation context key: skip the sections' cross-field checks (the loader runs them all)."""


def _run_cross_checks(section: BaseModel, info: ValidationInfo) -> None:
    """A section's model validator: the first of its cross-field checks that fails is raised
    (``load_settings`` runs them all itself, with this skipped, to report every one)."""
    if isinstance(info.context, dict) and info.context.get(SKIP_CROSS_CHECKS):
        return
    for cross in CROSS_CHECKS:
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
    max_rejects_per_day: int | None = Field(
        3,
        ge=1,
        description="Entry orders the broker may refuse per session (margin, permissions...) "
        "before entries halt until the next session; a refusal is never retried.",
    )
    max_position_duration_hours: PositionHours | None = Field(
        Decimal(4), gt=0, le=MAX_HOURS, description="Close a position older than this."
    )
    lost_leg: Literal["flatten", "replace"] = Field(
        "flatten",
        description="An open position whose stop or target the broker no longer holds: "
        "flatten closes it at market; replace places the leg again at its price (once per leg "
        "and position; a second loss, or a price unknown after a restart, closes it).",
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
    weekly_login: WeeklyTime = Field(
        "Sun 01:00",
        description="When IB Gateway's weekly restart needs a full login with two-factor "
        "authentication, weekday and HH:MM New York time; null: no reminder.",
    )
    weekly_login_reminder_hours: float = Field(
        12.0,
        gt=0,
        le=72,
        description="Remind the operator this many hours before weekly_login.",
    )
    paper: bool = Field(
        True,
        description="Trade a paper account only: logged in to any account whose id does not "
        "start with DU, the daemon sends no order and says which account it found.",
    )
    heartbeat_s: float | None = Field(
        30.0,
        gt=0,
        description="Ask IB Gateway the time this often; unanswered within request_timeout_s "
        "(the socket open): entries stop, no order is sent, the operator is alerted. null: off.",
    )
    max_clock_skew_s: float | None = Field(
        5.0,
        ge=0,
        description="At connect, alert when our clock and IB Gateway's differ by more than "
        "this. null: not checked.",
    )
    outage_reminder_s: float = Field(
        300.0,
        gt=0,
        le=86400,
        description="While IB Gateway is out of reach or answers nothing, alert at once, again "
        "after this many seconds, then twice as long each time up to outage_reminder_max_s.",
    )
    outage_reminder_max_s: float = Field(
        3600.0,
        gt=0,
        le=86400,
        description="The longest gap between two reminders of a lasting IB Gateway outage.",
    )

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> Self:
        _run_cross_checks(self, info)
        return self


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


def _check_reminder_gaps(s: IbkrSettings) -> tuple[str, str] | None:
    if s.outage_reminder_max_s < s.outage_reminder_s:
        return (
            "outage_reminder_max_s",
            f"must not be below ibkr.outage_reminder_s ({s.outage_reminder_s:g}), "
            f"got {s.outage_reminder_max_s:g}",
        )
    return None


def _check_token_when_enabled(s: TelegramSettings) -> tuple[str, str] | None:
    if s.enabled and s.token is None:
        return ("token", "required when telegram.enabled is true")
    return None


@dataclass(frozen=True)
class CrossCheck:
    section: str
    inputs: tuple[str, ...]
    model: type[BaseModel]
    check: Callable[[Any], tuple[str, str] | None]


CROSS_CHECKS: Final = (
    CrossCheck(
        "strategy",
        ("z_threshold_entry", "z_threshold_exit"),
        StrategySettings,
        _check_exit_below_entry,
    ),
    CrossCheck(
        "session",
        ("no_entry_minutes_before_close", "flatten_minutes_before_close"),
        SessionSettings,
        _check_flatten_within_no_entry,
    ),
    CrossCheck(
        "risk",
        ("max_position_size", "stop_loss_dollars"),
        RiskSettings,
        _check_stop_at_least_one_tick,
    ),
    CrossCheck(
        "risk",
        ("max_position_size", "take_profit_dollars"),
        RiskSettings,
        _check_target_at_least_one_tick,
    ),
    CrossCheck("instrument", ("min_price", "max_price"), InstrumentSettings, _check_price_range),
    CrossCheck("telegram", ("enabled", "token"), TelegramSettings, _check_token_when_enabled),
    CrossCheck(
        "ibkr",
        ("outage_reminder_s", "outage_reminder_max_s"),
        IbkrSettings,
        _check_reminder_gaps,
    ),
)


# ------------------------------------------------------------------ the settings


@dataclass(frozen=True)
class ReadSources:
    """What load_settings read for one build, as pydantic-settings sources."""

    environment: PydanticBaseSettingsSource
    """The ``QS_*`` variables of the environment mapping load_settings was given."""
    file: PydanticBaseSettingsSource
    """The config file, read and ``${VAR}``-substituted."""
    merged: PydanticBaseSettingsSource
    """Adds nothing: keeps the merged input, for load_settings' cross-field pass."""


_READ: ContextVar[ReadSources | None] = ContextVar("settings_read_sources", default=None)


class Settings(BaseSettings):
    """The whole configuration; build it with ``load_settings`` (``Settings()``: the defaults)."""

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
        # Highest first: the values passed in, then what load_settings read for this one build
        # (its environment mapping, then the config file). Otherwise nothing: constructing
        # Settings never reads os.environ or a file behind the caller's back.
        read = _READ.get()
        if read is None:
            return (init_settings,)
        return (init_settings, read.environment, read.file, read.merged)

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
                r.max_rejects_per_day,
                "risk.max_rejects_per_day",
                "entries go on however often the broker refuses them",
            ),
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


def settings_from(read: ReadSources) -> Settings:
    """Settings from what load_settings read, over the defaults: pydantic-settings merges the
    sources, section by section, in the order :meth:`Settings.settings_customise_sources` gives."""
    token = _READ.set(read)
    try:
        return Settings()
    finally:
        _READ.reset(token)
