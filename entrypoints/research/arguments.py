"""The ``sweep`` subcommand's arguments (light: the CLI builds its parser on every start)."""

from __future__ import annotations

import argparse
from pathlib import Path

from application.research.objectives import OBJECTIVES
from entrypoints.options import add_executor, add_progress, add_seed, add_trial_inputs, whole_number

SEARCHES = ("grid", "random", "optuna")
DEFAULT_OUT = Path("sweep")


def configure(sweep: argparse.ArgumentParser) -> None:
    """The ``sweep`` command's description and arguments (its name and one-line help are in
    the command table of :mod:`entrypoints.cli`)."""
    sweep.description = (
        "Replay one bar file once per trial, each trial the config with some "
        "strategy/risk/execution settings from a grid changed; results are kept by a hash of the "
        "effective config and the data, so a sweep resumes and never computes a trial twice."
    )
    add_trial_inputs(sweep)
    add_executor(sweep, "trials")
    sweep.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"results directory (default: {DEFAULT_OUT})",
    )
    sweep.add_argument(
        "--search",
        choices=SEARCHES,
        default="grid",
        help="every grid point (default), a seeded random sample, or Optuna TPE",
    )
    sweep.add_argument(
        "--trials", type=whole_number("--trials"), help="random/optuna: how many trials"
    )
    sweep.add_argument(
        "--objective",
        default="net_pnl",
        help=f"what to rank by: {', '.join(OBJECTIVES)} (default: net_pnl)",
    )
    add_seed(sweep, "random/optuna/bootstrap seed (default 0)")
    sweep.add_argument(
        "--storage",
        help="optuna: study storage URL (e.g. postgresql+psycopg://"
        "user@host/db; default: in memory)",
    )
    sweep.add_argument(
        "--study", help="optuna: study name (default: from the grid, data, objective and seed)"
    )
    sweep.add_argument(
        "--top", type=whole_number("--top"), default=5, help="best trials printed (default 5)"
    )
    add_progress(sweep)
