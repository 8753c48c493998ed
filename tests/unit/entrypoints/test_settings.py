"""Loading, validating and reporting the configuration (entrypoints.settings)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]
from pydantic import ValidationError

from entrypoints.settings import REDACTED, Settings, SettingsError, load_settings

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path | None, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(path, {} if environ is None else environ)
    return caught.value.errors


# ------------------------------------------------------------------ defaults and shipped files


def test_defaults_without_a_file_match_the_documented_schema() -> None:
    s = load_settings(None, {})

    assert s == Settings()
    assert (s.strategy.bar_minutes, s.strategy.lookback_period, s.strategy.min_volume) == (5, 20, 0)
    assert s.strategy.z_threshold_entry == Decimal("2.0")
    assert s.strategy.z_threshold_exit == Decimal("0.5")
    assert s.risk.model_dump() == {
        "max_position_size": 1,
        "stop_loss_dollars": Decimal(50),
        "take_profit_dollars": Decimal(75),
        "max_daily_loss": Decimal(200),
        "max_consecutive_losses": 3,
        "pause_minutes": 30,
        "max_trades_per_day": 50,
        "max_rejects_per_day": 3,
        "max_position_duration_hours": Decimal(4),
        "lost_leg": "flatten",
    }
    assert (s.execution.fill_model, s.execution.slippage_ticks) == ("next_open", 0)
    assert s.execution.commission_per_side == Decimal("0.62")
    assert s.session.model_dump() == {
        "calendar": "cme_globex_equity",
        "no_entry_minutes_before_close": 15,
        "flatten_minutes_before_close": 5,
        "no_entry_in_roll_week": True,
    }
    assert s.shutdown.model_dump() == {"flatten": True, "timeout_s": 25.0}
    assert s.instrument.model_dump() == {
        "symbol": "MES",
        "exchange": "CME",
        "currency": "USD",
        "expiry": "auto",
        "min_price": Decimal(100),
        "max_price": Decimal(30000),
        "max_jump_ticks": 2000,
    }
    assert s.ibkr.model_dump() == {
        "host": "127.0.0.1",
        "port": 4002,
        "client_id": 17,
        "account": None,
        "connect_timeout_s": 10.0,
        "readonly": False,
        "request_timeout_s": 10.0,
        "commission_wait_s": 2.0,
        "stale_grace_s": 30.0,
        "watchdog_interval_s": 5.0,
        "reconnect_max_s": 60.0,
        "client_id_wait_s": 15.0,
        "startup_attempts": 3,
        "restart_time": "23:45",
        "restart_block_minutes": 10,
        "weekly_login": "Sun 01:00",
        "weekly_login_reminder_hours": 12.0,
        "paper": True,
        "heartbeat_s": 30.0,
        "max_clock_skew_s": 5.0,
        "outage_reminder_s": 300.0,
        "outage_reminder_max_s": 3600.0,
    }
    assert (s.database.url, s.database.data_dir) == (None, Path("var"))
    assert s.telegram.model_dump() == {
        "enabled": False,
        "token": None,
        "users": {},
        "api_base_url": None,
        "chat_ids": [],
        "group_chats": [],
        "webhook_url": None,
        "webhook_listen": "127.0.0.1",
        "webhook_port": 8443,
        "webhook_secret": None,
        "alerts": {},
        "rate_limit_per_minute": 20,
        "queue_size": 1000,
        "dedup_window_s": 60.0,
        "confirm_timeout_s": 60.0,
    }
    assert s.zscore.engine == "rust"
    assert (s.logging.level, s.logging.format, s.logging.dir) == ("INFO", "text", Path("logs"))
    assert s.warnings() == []


def test_every_field_documents_itself() -> None:
    sections = Settings.model_fields
    undocumented = [
        f"{name}.{field}"
        for name, section in sections.items()
        for field, info in section.annotation.model_fields.items()  # type: ignore[union-attr]
        if not info.description
    ]

    assert undocumented == []


def test_example_config_loads_to_the_defaults_with_no_environment() -> None:
    assert load_settings(CONFIG_DIR / "config.yaml.example", {}) == Settings()


def test_example_config_names_every_section_and_key() -> None:
    raw = yaml.safe_load((CONFIG_DIR / "config.yaml.example").read_text(encoding="utf-8"))

    assert {section: set(keys) for section, keys in raw.items()} == {
        name: set(field.annotation.model_fields)  # type: ignore[union-attr]
        for name, field in Settings.model_fields.items()
    }


def test_example_config_takes_its_secrets_from_the_variables_named_like_the_settings() -> None:
    environ = {
        "QS_TELEGRAM__TOKEN": "123:telegram-secret",
        "QS_DATABASE__URL": "postgresql+psycopg://bot:db-secret@localhost/qs",
        "QS_TELEGRAM__WEBHOOK_SECRET": "hook-secret",
        "QS_TELEGRAM__ENABLED": "true",
    }

    s = load_settings(CONFIG_DIR / "config.yaml.example", environ)

    assert s.telegram.enabled
    assert s.telegram.token is not None
    assert s.telegram.token.get_secret_value() == "123:telegram-secret"
    assert s.database.url is not None
    assert s.database.url.get_secret_value() == environ["QS_DATABASE__URL"]
    assert s.telegram.webhook_secret is not None
    assert s.telegram.webhook_secret.get_secret_value() == "hook-secret"


def test_every_environment_variable_the_shipped_files_name_is_a_setting() -> None:
    """The example config, the env examples and the deployment guide name only QS_ variables that
    the settings read (QS_DATABASE__URL, not QS_DATABASE_URL)."""
    root = CONFIG_DIR.parent
    texts = [
        CONFIG_DIR / "config.yaml.example",
        root / "README.md",
        root / "deploy" / "README.md",
        root / "deploy" / "compose.yaml",
        root / "deploy" / "quant-scalper.service",
        *sorted((root / "deploy" / "env").glob("*.example")),
    ]
    names = {
        name
        for path in texts
        for name in re.findall(r"\bQS_[A-Z0-9_]+", path.read_text(encoding="utf-8"))
    }
    settings_names = {
        f"QS_{section.upper()}__{key.upper()}"
        for section, field in Settings.model_fields.items()
        for key in field.annotation.model_fields  # type: ignore[union-attr]
    }
    patterns = {"QS_", "QS_SECTION__KEY"}  # the docs' placeholders
    assert sorted(names - settings_names - patterns) == []


def test_sample_config_is_the_defaults_with_the_live_session_rules() -> None:
    s = load_settings(CONFIG_DIR / "sample.yaml", {})

    assert s.session == Settings().session
    assert s.session.calendar == "cme_globex_equity"
    assert s.strategy == Settings().strategy
    assert s.risk == Settings().risk
    assert s.execution.fill_model == "next_open"
    assert s.execution.commission_per_side == Decimal("0.62")
    assert s.warnings() == []


# ------------------------------------------------------------------ sources and precedence


def test_environment_overrides_a_nested_key_from_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "risk:\n  max_daily_loss: 100\n  pause_minutes: 10\n")

    s = load_settings(path, {"QS_RISK__MAX_DAILY_LOSS": "300"})

    assert s.risk.max_daily_loss == Decimal(300)
    assert s.risk.pause_minutes == 10  # the file still counts where the environment is silent


@pytest.mark.parametrize(
    "name", ["QS_RISK__MAX_DAILY_LOSS", "qs_risk__max_daily_loss", "Qs_Risk__Max_Daily_Loss"]
)
def test_environment_names_are_case_insensitive(name: str) -> None:
    assert load_settings(None, {name: "300"}).risk.max_daily_loss == Decimal(300)


def test_environment_sets_a_dict_and_a_list_as_json_replacing_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "telegram:\n  users: {1: viewer}\n  chat_ids: [1]\n")
    environ = {
        "QS_TELEGRAM__USERS": '{"123456789": "operator", "42": "viewer"}',
        "QS_TELEGRAM__CHAT_IDS": "[-100200, 7]",
    }

    s = load_settings(path, environ)

    assert s.telegram.users == {123456789: "operator", 42: "viewer"}
    assert s.telegram.chat_ids == [-100200, 7]


def test_environment_null_switches_a_limit_off(tmp_path: Path) -> None:
    s = load_settings(
        write(tmp_path, "risk:\n  max_daily_loss: 100\n"), {"QS_RISK__MAX_DAILY_LOSS": "null"}
    )

    assert s.risk.max_daily_loss is None


def test_an_explicit_environ_is_the_only_environment_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QS_RISK__MAX_DAILY_LOSS", "999")
    monkeypatch.setenv("QS_STRATEGY__BAR_MINUTES", "7")  # would be an error if it leaked
    monkeypatch.setenv("LEAKED_TOKEN", "from-process")
    path = write(tmp_path, "telegram:\n  token: ${LEAKED_TOKEN:-fallback}\n")

    s = load_settings(path, {})

    assert s.risk.max_daily_loss == Decimal(200)
    assert s.strategy.bar_minutes == 5
    assert s.telegram.token is not None
    assert s.telegram.token.get_secret_value() == "fallback"
    assert Settings().risk.max_daily_loss == Decimal(200)  # constructing reads no environment


def test_environ_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QS_RISK__MAX_DAILY_LOSS", "321")

    assert load_settings(None).risk.max_daily_loss == Decimal(321)


# ------------------------------------------------------------------ ${VAR} substitution


@pytest.mark.parametrize(
    ("value", "environ", "expected"),
    [
        ("${TOKEN}", {"TOKEN": "abc"}, "abc"),
        ("${TOKEN:-dflt}", {"TOKEN": "abc"}, "abc"),
        ("${TOKEN:-dflt}", {}, "dflt"),
        ("${TOKEN:-dflt}", {"TOKEN": ""}, "dflt"),
        ("pre-${A}-${B:-b}-post", {"A": "a"}, "pre-a-b-post"),
        ("pa$$word-$x", {}, "pa$word-$x"),
        ("${TOKEN}", {"TOKEN": "${NOT_EXPANDED_AGAIN}"}, "${NOT_EXPANDED_AGAIN}"),
    ],
)
def test_substitution_in_string_values(
    tmp_path: Path, value: str, environ: dict[str, str], expected: str
) -> None:
    path = write(tmp_path, f"telegram:\n  token: '{value}'\n")

    token = load_settings(path, environ).telegram.token

    assert token is not None
    assert token.get_secret_value() == expected


def test_a_whole_value_substitution_is_coerced_by_the_field_type(tmp_path: Path) -> None:
    path = write(tmp_path, "risk:\n  max_daily_loss: ${LOSS}\nibkr:\n  port: ${IB_PORT:-4001}\n")

    s = load_settings(path, {"LOSS": "250.5"})

    assert s.risk.max_daily_loss == Decimal("250.5")
    assert s.ibkr.port == 4001


def test_an_optional_substitution_left_empty_means_none(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  url: ${DB_URL:-}\ntelegram:\n  token: ${TOK:-}\n")

    s = load_settings(path, {})

    assert (s.database.url, s.telegram.token) == (None, None)


def test_substitution_happens_after_parsing_so_values_cannot_inject_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "ibkr:\n  account: ${ACCOUNT}\n")

    s = load_settings(path, {"ACCOUNT": "DU1\nreadonly: true"})

    assert s.ibkr.account == "DU1\nreadonly: true"
    assert s.ibkr.readonly is False


def test_a_missing_variable_is_named_with_the_path_that_uses_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "telegram:\n  enabled: true\n  token: ${QS_TELEGRAM_TOKEN}\n"
        "database:\n  url: postgresql://bot:${DB_PASSWORD}@db/qs\n"
        "ibkr:\n  port: ${IB_PORT}\n",
    )

    errors = problems_of(path)

    # One report per mistake: the empty stand-in trips neither "token required" nor "not an int".
    assert len(errors) == 3, errors
    assert errors[0].startswith("telegram.token: environment variable QS_TELEGRAM_TOKEN is not set")
    assert errors[1].startswith("database.url: environment variable DB_PASSWORD is not set")
    assert errors[2].startswith("ibkr.port: environment variable IB_PORT is not set")


# ------------------------------------------------------------------ reporting


def test_a_yaml_syntax_error_names_the_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "strategy:\n  bar_minutes: 5\n  lookback_period: x: 3\n")

    with pytest.raises(SettingsError) as caught:
        load_settings(path, {})

    assert caught.value.errors == [
        "line 3, column 21: YAML syntax error: mapping values are not allowed here"
    ]
    assert str(caught.value).startswith(f"{path}: 1 configuration problem\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- strategy\n- risk\n", "the top level must be a mapping of sections"),
        ("just words\n", "the top level must be a mapping of sections"),
        ("stratgy:\n  bar_minutes: 5\n", "stratgy: unknown section (did you mean 'strategy'?)"),
        (
            "risk:\n  max_daily_loss: 100\n  max_daily_loss: 300\n",
            "risk.max_daily_loss: duplicate key on line 3",
        ),
    ],
)
def test_file_level_mistakes_are_reported(tmp_path: Path, text: str, expected: str) -> None:
    errors = problems_of(write(tmp_path, text))

    assert len(errors) == 1
    assert errors[0].startswith(expected)


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"

    with pytest.raises(SettingsError) as caught:
        load_settings(path, {})

    assert str(caught.value) == f"{path}: 1 configuration problem\n  - config file not found"


def test_an_empty_file_or_empty_section_means_the_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, ""), {}) == Settings()
    assert load_settings(write(tmp_path, "telegram:\n# token: x\n"), {}) == Settings()


def test_five_mistakes_are_all_named_with_their_paths(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
strategy:
  lookbak_period: 30        # unknown key
  bar_minutes: 7            # out of range: does not divide 60
  z_threshold_entry: 1.0
  z_threshold_exit: 1.5     # cross-field: not below the entry threshold
risk:
  max_daily_loss: lots      # wrong type
execution:
  fill_model: next_bar      # bad literal
""",
    )

    with pytest.raises(SettingsError) as caught:
        load_settings(path, {})

    errors = caught.value.errors
    assert len(errors) == 5
    assert sorted(e.split(":")[0] for e in errors) == [
        "execution.fill_model",
        "risk.max_daily_loss",
        "strategy.bar_minutes",
        "strategy.lookbak_period",
        "strategy.z_threshold_exit",
    ]
    by_path = {e.split(":")[0]: e for e in errors}
    assert "did you mean 'lookback_period'" in by_path["strategy.lookbak_period"]
    assert "must divide 60" in by_path["strategy.bar_minutes"]
    assert (
        "less than strategy.z_threshold_entry (1.0), got 1.5"
        in by_path["strategy.z_threshold_exit"]
    )
    assert "'lots'" in by_path["risk.max_daily_loss"]
    assert "'next_open' or 'signal_close'" in by_path["execution.fill_model"]
    message = str(caught.value)
    assert message.startswith(f"{path}: 5 configuration problems\n")
    assert all(f"  - {e}" in message for e in errors)


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("strategy:\n  lookback_period: 1\n", {}, "strategy.lookback_period:"),
        ("strategy:\n  z_threshold_entry: 0\n", {}, "strategy.z_threshold_entry:"),
        ("strategy:\n  z_threshold_exit: -0.1\n", {}, "strategy.z_threshold_exit:"),
        ("strategy:\n  min_volume: -1\n", {}, "strategy.min_volume:"),
        ("strategy:\n  bar_minutes: 2.5\n", {}, "strategy.bar_minutes:"),
        ("risk:\n  max_position_size: null\n", {}, "risk.max_position_size:"),
        ("risk:\n  stop_loss_dollars: 0\n", {}, "risk.stop_loss_dollars:"),
        ("risk:\n  max_consecutive_losses: 0\n", {}, "risk.max_consecutive_losses:"),
        ("risk:\n  pause_minutes: 0\n", {}, "risk.pause_minutes:"),
        ("execution:\n  commission_per_side: -0.01\n", {}, "execution.commission_per_side:"),
        ("session:\n  calendar: nyse\n", {}, "session.calendar:"),
        ("session:\n  flatten_minutes_before_close: 30\n", {}, "session.flatten_minutes_before"),
        ("instrument:\n  symbol: ES\n", {}, "instrument.symbol:"),
        ("instrument:\n  expiry: '202504'\n", {}, "instrument.expiry:"),
        ("ibkr:\n  port: 70000\n", {}, "ibkr.port:"),
        ("ibkr:\n  connect_timeout_s: .inf\n", {}, "ibkr.connect_timeout_s:"),
        ("telegram:\n  enabled: true\n", {}, "telegram.token: required when telegram.enabled"),
        ("telegram:\n  users: {12: admin}\n", {}, "telegram.users.12:"),
        ("telegram:\n  users: {alice: viewer}\n", {}, "telegram.users: key 'alice'"),
        ("telegram:\n  api_base_url: localhost:8081\n", {}, "telegram.api_base_url:"),
        ("logging:\n  level: TRACE\n", {}, "logging.level:"),
        ("", {"QS_RISK__PAUSE_MINUTES": "0"}, "risk.pause_minutes:"),
        ("", {"QS_RISK__PAUSE_MINUTS": "5"}, "risk.pause_minuts: unknown key"),
        ("", {"QS_RSIK__PAUSE_MINUTES": "5"}, "QS_RSIK__PAUSE_MINUTES:"),
        ("", {"QS_TELEGRAM__USERS": "{not json"}, "QS_TELEGRAM__USERS: value is not valid JSON"),
    ],
)
def test_each_invalid_value_is_reported_at_its_path(
    tmp_path: Path, text: str, environ: dict[str, str], expected: str
) -> None:
    errors = problems_of(write(tmp_path, text), environ)

    assert len(errors) == 1, errors
    assert errors[0].startswith(expected), errors


def test_a_problem_set_by_the_environment_names_the_variable() -> None:
    errors = problems_of(None, {"QS_RISK__PAUSE_MINUTES": "0"})

    assert errors[0].endswith("(from environment variable QS_RISK__PAUSE_MINUTES)")


@pytest.mark.parametrize(
    ("section", "key", "written", "expected"),
    [
        ("instrument", "expiry", "202512", "202512"),
        ("instrument", "expiry", "'202603'", "202603"),
        ("session", "flatten_minutes_before_close", "null", None),
        ("session", "flatten_minutes_before_close", "15", 15),
        ("strategy", "z_threshold_exit", "0", Decimal(0)),
        ("strategy", "lookback_period", "2", 2),
        ("ibkr", "port", "65535", 65535),
        ("ibkr", "account", "DU1234567", "DU1234567"),
        ("ibkr", "connect_timeout_s", "0.5", 0.5),
        ("telegram", "api_base_url", "http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        ("zscore", "engine", "python", "python"),
    ],
)
def test_boundary_and_alternative_values_are_accepted(
    tmp_path: Path, section: str, key: str, written: str, expected: object
) -> None:
    s = load_settings(write(tmp_path, f"{section}:\n  {key}: {written}\n"), {})

    assert getattr(getattr(s, section), key) == expected


@pytest.mark.parametrize("minutes", [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60])
def test_every_divisor_of_sixty_is_a_bar_length(minutes: int) -> None:
    assert (
        load_settings(None, {"QS_STRATEGY__BAR_MINUTES": str(minutes)}).strategy.bar_minutes
        == minutes
    )


def test_cross_field_checks_also_hold_for_settings_built_in_code() -> None:
    with pytest.raises(ValidationError, match="z_threshold_exit"):
        Settings(strategy={"z_threshold_entry": "1", "z_threshold_exit": "1"})


def test_settings_are_frozen() -> None:
    s = Settings()

    with pytest.raises(ValidationError):
        s.risk.max_daily_loss = None


# ------------------------------------------------------------------ exactness, secrets, warnings


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2.1", "2.1"),
        ("0.3", "0.3"),
        ("1.15", "1.15"),
        ("2.10", "2.10"),
        ("2", "2"),
        ("0.30000000000000000001", "0.30000000000000000001"),
    ],
)
def test_thresholds_are_the_exact_decimals_written(
    tmp_path: Path, written: str, expected: str
) -> None:
    path = write(tmp_path, f"strategy:\n  z_threshold_entry: 9\n  z_threshold_exit: {written}\n")

    exit_threshold = load_settings(path, {}).strategy.z_threshold_exit

    # Same digits and exponent, not merely equal: Decimal(2.1) would be 2.100000000000000088...
    assert exit_threshold.as_tuple() == Decimal(expected).as_tuple()


def test_thresholds_from_environment_json_are_exact_too() -> None:
    s = load_settings(None, {"QS_STRATEGY": '{"z_threshold_entry": 2.1, "z_threshold_exit": 0.1}'})

    assert (s.strategy.z_threshold_entry, s.strategy.z_threshold_exit) == (
        Decimal("2.1"),
        Decimal("0.1"),
    )


def test_secrets_never_appear_in_str_repr_or_redacted() -> None:
    token, url = "123456:super-secret-token", "postgresql://bot:hunter2@db/qs"
    s = load_settings(
        None,
        {"QS_TELEGRAM__ENABLED": "true", "QS_TELEGRAM__TOKEN": token, "QS_DATABASE__URL": url},
    )
    redacted = s.redacted()

    for text in (str(s), repr(s), repr(redacted), str(s.telegram), repr(s.database)):
        assert "super-secret" not in text
        assert "hunter2" not in text
    assert redacted["telegram"]["token"] == REDACTED
    assert redacted["database"]["url"] == REDACTED
    assert redacted["risk"]["max_daily_loss"] == "200"
    assert s.telegram.token is not None
    assert s.telegram.token.get_secret_value() == token


def test_secrets_never_appear_in_error_messages(tmp_path: Path) -> None:
    path = write(tmp_path, "telegram:\n  token: [hunter2]\n  enabled: maybe\n")

    with pytest.raises(SettingsError) as caught:
        load_settings(path, {})

    assert "hunter2" not in str(caught.value)
    assert any(e.startswith("telegram.token:") for e in caught.value.errors)


def test_warnings_name_every_switched_off_limit(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
risk:
  stop_loss_dollars: null
  take_profit_dollars: null
  max_daily_loss: null
  max_consecutive_losses: null
  max_trades_per_day: null
  max_rejects_per_day: null
  max_position_duration_hours: null
session:
  calendar: none
  flatten_minutes_before_close: null
""",
    )

    assert load_settings(path, {}).warnings() == [
        "risk.stop_loss_dollars is null: positions carry no stop leg",
        "risk.take_profit_dollars is null: positions carry no target leg",
        "risk.max_daily_loss is null: the daily loss limit is OFF",
        "risk.max_consecutive_losses is null: no pause after a losing streak",
        "risk.max_trades_per_day is null: the daily trade cap is OFF",
        "risk.max_rejects_per_day is null: entries go on however often the broker refuses them",
        "risk.max_position_duration_hours is null: positions are never closed for age",
        "session.flatten_minutes_before_close is null: positions are held through halts and closes",
        "session.calendar is none: no session rules "
        "(CME halts, holidays and early closes are not enforced)",
    ]


def test_an_unknown_alert_type_is_named_with_the_known_ones() -> None:
    with pytest.raises(SettingsError, match="unknown alert type\\(s\\) fils") as raised:
        load_settings(None, {"QS_TELEGRAM__ALERTS": '{"fils": "off", "stale_data": "silent"}'})
    assert "stale_data" in str(raised.value)
    ok = load_settings(None, {"QS_TELEGRAM__ALERTS": '{"stale_data": "silent"}'})
    assert ok.telegram.alerts == {"stale_data": "silent"}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ('"24:00"', "must be HH:MM on a 24-hour clock (New York time), got '24:00'"),
        ('"7:5"', "must be HH:MM"),
        ("1425", "valid string"),  # YAML 1.1 reads an unquoted 23:45 as 1425 (base 60)
    ],
)
def test_a_bad_ib_restart_time_is_named(tmp_path: Path, value: str, fragment: str) -> None:
    [error] = problems_of(write(tmp_path, f"ibkr:\n  restart_time: {value}\n"))
    assert error.startswith("ibkr.restart_time:")
    assert fragment in error


def test_the_ib_restart_time_can_be_switched_off_and_shutdown_keeps_the_bracket() -> None:
    s = load_settings(None, {"QS_IBKR__RESTART_TIME": "null", "QS_SHUTDOWN__FLATTEN": "false"})
    assert s.ibkr.restart_time is None
    assert s.shutdown.flatten is False


@pytest.mark.parametrize("bad", ["Funday 01:00", "Sun 25:00", "Sunday 01:00", "01:00"])
def test_a_weekly_login_that_is_not_a_weekday_and_time_is_named(bad: str) -> None:
    [problem] = problems_of(None, {"QS_IBKR__WEEKLY_LOGIN": bad})
    assert problem.startswith("ibkr.weekly_login")
    assert "Sun 01:00" in problem


def test_a_weekly_login_is_read_in_any_case_and_null_turns_the_reminder_off() -> None:
    assert load_settings(None, {"QS_IBKR__WEEKLY_LOGIN": "sat 23:30"}).ibkr.weekly_login == (
        "Sat 23:30"
    )
    assert load_settings(None, {"QS_IBKR__WEEKLY_LOGIN": "null"}).ibkr.weekly_login is None
