"""/config shows what the daemon runs with: the command line's --speed over the file's, and how it
was started; secrets stay masked."""

from __future__ import annotations

from pathlib import Path

from entrypoints.settings import load_settings
from entrypoints.startup import RunOptions, run_config


def test_the_command_lines_speed_replaces_the_files() -> None:
    settings = load_settings(None, {"QS_DAEMON__SPEED": "60"})
    assert settings.daemon.speed == 60.0
    config = run_config(settings, RunOptions(speed=600.0, config_path=Path("c.yaml")))
    assert config["daemon"]["speed"] == 600.0
    assert config["run"] == {"config_file": "c.yaml", "exit_at_end": False, "dry_run": False}


def test_as_fast_as_possible_reads_max_and_secrets_stay_masked() -> None:
    settings = load_settings(None, {"QS_TELEGRAM__TOKEN": "123:secret-token"})
    config = run_config(settings, RunOptions(speed=None, dry_run=True))
    assert config["daemon"]["speed"] == "max"
    assert config["run"]["dry_run"] is True
    assert "secret-token" not in repr(config)
