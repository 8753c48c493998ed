"""The daemon command's start-up names (options, the start-up error and its exit codes), for the
commands and tests that use them; the store pieces behind them are the composition root's
(:mod:`entrypoints.container.runtime`)."""

from entrypoints.container.runtime import (
    EXIT_IN_USE,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    SNAPSHOT_FALLBACK_FILE,
    SPOOL_FILE,
    BarRecorder,
    DaemonHandle,
    RunOptions,
    RunResult,
    StartupError,
    daemon_version,
    gated_journal,
    journal_owner,
    prepare_store,
    run_config,
)

__all__ = [
    "EXIT_IN_USE",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "SNAPSHOT_FALLBACK_FILE",
    "SPOOL_FILE",
    "BarRecorder",
    "DaemonHandle",
    "RunOptions",
    "RunResult",
    "StartupError",
    "daemon_version",
    "gated_journal",
    "journal_owner",
    "prepare_store",
    "run_config",
]
