"""Start-up accepts nothing the engine then rejects: every rule the engine enforces when it is built
is a settings check (exit 2, named), and an error nobody expected is one line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.calendar import build_calendar
from domain.engine import Engine
from entrypoints import cli, logs
from entrypoints.cli import EXIT_BUG, EXIT_USAGE, main
from entrypoints.container import engine_config
from entrypoints.settings import SettingsError, load_settings


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError) as caught:
        load_settings(path, {})
    return caught.value.errors


def test_a_position_too_large_for_the_stop_is_a_settings_error(tmp_path: Path) -> None:
    # 41 contracts x $1.25 a tick = $51.25 > the default $50 stop: the engine would refuse it.
    errors = _errors(tmp_path, "risk:\n  max_position_size: 41\n")

    assert len(errors) == 1
    assert errors[0].startswith("risk.stop_loss_dollars: must be at least one tick")
    assert "51.25" in errors[0]


def test_a_stop_under_one_tick_value_and_a_target_under_half_a_tick_are_both_named(
    tmp_path: Path,
) -> None:
    errors = _errors(
        tmp_path,
        "risk:\n  stop_loss_dollars: 1.24\n  take_profit_dollars: 0.5\n"
        "strategy:\n  z_threshold_entry: 1\n  z_threshold_exit: 1\n",
    )

    assert sorted(e.split(":")[0] for e in errors) == [
        "risk.stop_loss_dollars",
        "risk.take_profit_dollars",
        "strategy.z_threshold_exit",
    ]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("risk:\n  pause_minutes: 100000000000000\n", "risk.pause_minutes"),
        ("risk:\n  max_position_duration_hours: 1e300\n", "risk.max_position_duration_hours"),
        ("risk:\n  max_position_duration_hours: 1e-10\n", "risk.max_position_duration_hours"),
        ("session:\n  no_entry_minutes_before_close: 99999999999\n", "session.no_entry_minutes"),
        ("strategy:\n  lookback_period: 10000000000000\n", "strategy.lookback_period"),
    ],
)
def test_values_the_engine_cannot_hold_are_settings_errors(
    tmp_path: Path, text: str, path: str
) -> None:
    errors = _errors(tmp_path, text)

    assert len(errors) == 1
    assert errors[0].startswith(path)


@pytest.mark.parametrize(
    "text",
    [
        "risk:\n  max_position_size: 40\n",  # 40 x 1.25 = 50: exactly one tick
        "risk:\n  stop_loss_dollars: 1.25\n  take_profit_dollars: 0.625\n",
        "risk:\n  max_position_size: 100\n  stop_loss_dollars: null\n  take_profit_dollars: null\n",
    ],
)
def test_what_the_settings_accept_the_engine_builds(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    settings = load_settings(path, {})

    Engine(engine_config(settings, build_calendar(settings.session.calendar)))


def test_config_command_refuses_what_run_would_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("risk:\n  max_position_size: 41\n")

    assert main(["config", "--config", str(path)]) == EXIT_USAGE
    assert main(["run", "--config", str(path), "--exit-at-end"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "risk.stop_loss_dollars" in err
    assert "Traceback" not in err


def test_an_unexpected_error_in_run_is_one_line_and_the_traceback_goes_to_the_log_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> int:
        raise RuntimeError("something nobody foresaw\nsecond line")

    monkeypatch.setattr(cli, "_run", broken)
    monkeypatch.setenv("QS_LOGGING__DIR", str(tmp_path / "logs"))
    try:
        code = main(["run", "--exit-at-end"])
    finally:
        logs.uninstall()

    assert code == EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert "RuntimeError: something nobody foresaw second line" in lines[0]
    log_file = tmp_path / "logs" / logs.LOG_FILE
    assert str(log_file) in lines[0]
    text = log_file.read_text()
    assert "Traceback" in text
    assert "something nobody foresaw" in text


def test_an_unexpected_error_in_another_command_keeps_its_traceback_in_a_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> int:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(cli, "_replay", broken)

    assert main(["replay", "whatever.csv"]) == EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = err.splitlines()
    kept = Path(line.rsplit("the traceback is in ", 1)[1])
    try:
        assert "ZeroDivisionError: oops" in kept.read_text()
    finally:
        kept.unlink()


def test_ctrl_c_before_the_daemon_handles_signals_is_one_word_and_exit_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_replay", interrupted)
    assert main(["replay", "whatever.csv"]) == 130
    assert capsys.readouterr().err == "interrupted\n"
