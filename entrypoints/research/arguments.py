"""The ``sweep`` subcommand's arguments (light: the CLI builds its parser on every start)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from application.research.objectives import OBJECTIVES

EXECUTORS = ("local", "dask", "ray")
SEARCHES = ("grid", "random", "optuna")
DEFAULT_OUT = Path("sweep")


def add_parser(sub: Any) -> None:
    """The ``sweep`` subcommand's arguments."""
    sweep = sub.add_parser(
        "sweep",
        help="run the engine over a grid of parameters (grid, random or Optuna search)",
        description="Replay one bar file once per trial, each trial the config with some "
        "strategy/risk/execution settings from a grid changed; results are kept by a hash of the "
        "effective config and the data, so a sweep resumes and never computes a trial twice.",
    )
    sweep.add_argument("path", type=Path, help="bar file (.csv or .parquet)")
    sweep.add_argument("--config", type=Path, help="YAML config file (the base of every trial)")
    sweep.add_argument("--grid", type=Path, required=True, help="grid YAML: setting: values|range")
    sweep.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="where trials run (default: a local process pool)",
    )
    sweep.add_argument(
        "--address",
        help="dask: scheduler address (tcp://host:8786); ray: "
        "cluster address (ray://host:10001 or auto); default: a local cluster",
    )
    sweep.add_argument(
        "--workers",
        type=_positive,
        help="workers (default: the CPUs here; with --address: the cluster's)",
    )
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
    sweep.add_argument("--trials", type=_positive, help="random/optuna: how many trials")
    sweep.add_argument(
        "--objective",
        default="net_pnl",
        help=f"what to rank by: {', '.join(OBJECTIVES)} (default: net_pnl)",
    )
    sweep.add_argument(
        "--seed", type=seed, default=0, help="random/optuna/bootstrap seed (default 0)"
    )
    sweep.add_argument(
        "--storage",
        help="optuna: study storage URL (e.g. postgresql+psycopg://"
        "user@host/db; default: in memory)",
    )
    sweep.add_argument(
        "--study", help="optuna: study name (default: from the grid, data, objective and seed)"
    )
    sweep.add_argument("--top", type=_positive, default=5, help="best trials printed (default 5)")
    sweep.add_argument(
        "--progress",
        action="store_true",
        help="draw the progress bar even when stderr is not a terminal",
    )
    sweep.add_argument("--no-progress", action="store_true", help="never draw the progress bar")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def seed(text: str) -> int:
    """A seed for numpy's generators and the bootstrap: a whole number >= 0 (checked here, not
    after every trial has run)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"--seed must be a whole number >= 0, got {text!r}")
    return value
