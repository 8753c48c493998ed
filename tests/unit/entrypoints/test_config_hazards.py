"""Config hazards (issue 12 item 8): YAML aliases (self-reference, fan-out) are refused before they
expand; the README's unquoted on/off alert modes are accepted; a QS_ variable that sets nothing is
warned about; a value from a secret variable is never echoed in an error."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from entrypoints.cli import EXIT_OK, EXIT_USAGE, main
from entrypoints.settings import REDACTED, SettingsError, load_settings


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def _errors(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ or {})
    return caught.value.errors


def test_a_self_referencing_alias_is_refused_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "telegram:\n  chat_ids: &ids [1, *ids]\n")
    assert _errors(path) == [
        "line 2, column 22: YAML aliases (*ids) are not allowed in the configuration: "
        "write the value out"
    ]


def test_an_alias_fan_out_is_refused_before_it_expands(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    lines.append("telegram:\n  chat_ids: *a11")
    path = _write(tmp_path, "\n".join(lines) + "\n")
    started = time.monotonic()
    errors = _errors(path)
    assert time.monotonic() - started < 30  # 10^12 items if expanded: a gross bound, not a timing
    assert errors == [
        "line 2, column 10: YAML aliases (*a0) are not allowed in the configuration: "
        "write the value out"
    ]


def test_the_readme_alerts_example_with_unquoted_on_and_off_is_accepted(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "telegram:\n  alerts: {bracket_live: silent, stale_data: on, daily_summary: off}\n",
    )
    alerts = load_settings(path, {}).telegram.alerts
    assert alerts == {"bracket_live": "silent", "stale_data": "on", "daily_summary": "off"}


def test_a_qs_variable_with_one_underscore_is_warned_about_with_the_right_name(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        None, {"QS_RISK_MAX_POSITION_SIZE": "3", "QS_RISK__PAUSE_MINUTES": "9"}
    )
    assert settings.risk.max_position_size == 1
    assert settings.warnings() == [
        "environment variable QS_RISK_MAX_POSITION_SIZE matches no setting and is ignored "
        "(did you mean QS_RISK__MAX_POSITION_SIZE? a section and its key are joined by '__')"
    ]


def test_a_qs_variable_used_as_a_substitution_is_not_warned_about(tmp_path: Path) -> None:
    path = _write(tmp_path, "telegram:\n  token: ${QS_BOT_TOKEN}\n")
    assert load_settings(path, {"QS_BOT_TOKEN": "123:abc"}).warnings() == []
    assert load_settings(None, {"QS_WHATEVER": "1"}).warnings() == [
        "environment variable QS_WHATEVER matches no setting and is ignored "
        "(settings are QS_<SECTION>__<KEY>)"
    ]


def test_the_config_command_prints_the_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QS_RISK_MAX_POSITION_SIZE", "3")
    assert main(["config"]) == EXIT_OK
    assert "warning: environment variable QS_RISK_MAX_POSITION_SIZE matches no setting" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("text", "environ"),
    [
        # A secret variable substituted into a key that is not secret.
        ("ibkr:\n  port: ${TELEGRAM_TOKEN}\n", {"TELEGRAM_TOKEN": "123456:hunter2-secret"}),
        # A variable that also fills a secret setting: every use of it is masked.
        (
            "telegram:\n  token: ${TG}\nibkr:\n  client_id: ${TG}\n  port: ${TG}\n",
            {"TG": "123456:hunter2-secret"},
        ),
        ("ibkr:\n  host: ''\n  port: x${DB_PASSWORD}\n", {"DB_PASSWORD": "hunter2-secret"}),
    ],
)
def test_a_value_from_a_secret_variable_is_never_echoed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, environ: dict[str, str]
) -> None:
    path = _write(tmp_path, text)
    errors = _errors(path, environ)
    assert errors
    assert not any("hunter2" in e for e in errors), errors
    assert any(REDACTED in e for e in errors), errors


def test_the_installed_command_masks_it_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "ibkr:\n  port: ${TELEGRAM_TOKEN}\n")
    monkeypatch.setenv("TELEGRAM_TOKEN", "123456:hunter2-secret")
    assert main(["config", "--config", str(path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "hunter2" not in err
    assert "ibkr.port" in err
