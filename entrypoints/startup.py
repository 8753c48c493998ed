"""The daemon command's start-up names, free of any adapter: the start-up error with its exit codes,
the run's options and the configuration /config shows."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from entrypoints.settings import Settings

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 4
EXIT_IN_USE = 5
"""Another daemon owns the journal (or the spool in ``data_dir``)."""


class StartupError(Exception):
    """The daemon cannot start: one line for the user and the exit code that goes with it."""

    def __init__(self, line: str, exit_code: int) -> None:
        super().__init__(line)
        self.exit_code = exit_code


@dataclass(frozen=True)
class RunOptions:
    speed: float | None
    """Times faster than real time; None: as fast as possible."""
    exit_at_end: bool = False
    config_path: Path | None = None
    dry_run: bool = False
    """IB Gateway: signals, journal and alerts, but no orders."""


def run_config(settings: Settings, options: RunOptions) -> dict[str, Any]:
    """The settings the daemon actually runs with, for /config: the file's (secrets masked) with
    the command line's overrides applied (``--speed``), and how it was started."""
    config = settings.redacted()
    config["daemon"] = {
        **config["daemon"],
        "speed": "max" if options.speed is None else options.speed,
    }
    config["run"] = {
        "config_file": None if options.config_path is None else str(options.config_path),
        "exit_at_end": options.exit_at_end,
        "dry_run": options.dry_run,
    }
    return config


def daemon_version() -> str:
    try:
        return version("quant-scalper")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree not installed
        return "unknown"
