"""Command-line options several subcommands share, defined once (light: the CLI builds its parser
on every start, so nothing here imports more than argparse)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from application.research.objectives import OBJECTIVES
from entrypoints.progress import ProgressBar

EXECUTORS = ("local", "dask", "ray")


def whole_number(
    option: str, *, low: int = 1, high: int | None = None, unit: str | None = None
) -> Callable[[str], int]:
    """An argparse ``type``: a whole number from ``low`` (to ``high``), refused in one line that
    names ``option`` when it is not one."""
    what = f"a whole number of {unit}" if unit else "a whole number"
    if high is not None:
        bounds = f"from {low} to {high}"
    elif low == 0:
        bounds = ">= 0"
    else:
        bounds = f"of at least {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{option} must be {what} {bounds}, got {text!r}")
        return value

    return parse


seed = whole_number("--seed", low=0)
"""A seed for numpy's generators and the bootstrap: a whole number >= 0 (checked when the command
line is read, not after every trial has run)."""


def add_seed(parser: Any, help: str) -> None:
    parser.add_argument("--seed", type=seed, default=0, metavar="S", help=help)


def add_executor(parser: Any, what: str) -> None:
    """``--executor``, ``--address`` and ``--workers``: where ``what`` run."""
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help=f"where {what} run (default: a local process pool)",
    )
    parser.add_argument(
        "--address",
        help="dask: scheduler address (tcp://host:8786); ray: "
        "cluster address (ray://host:10001 or auto); default: a local cluster",
    )
    parser.add_argument(
        "--workers",
        type=whole_number("--workers"),
        help="workers (default: the CPUs here; with --address: the cluster's)",
    )


def add_progress(parser: Any) -> None:
    parser.add_argument(
        "--progress",
        action="store_true",
        help="draw the progress bar even when stderr is not a terminal",
    )
    parser.add_argument("--no-progress", action="store_true", help="never draw the progress bar")


def add_trial_inputs(parser: Any) -> None:
    """The bars, the base config and the grid of a command that runs trials."""
    parser.add_argument("path", type=Path, help="bar file (.csv or .parquet)")
    parser.add_argument("--config", type=Path, help="YAML config file (the base of every trial)")
    parser.add_argument("--grid", type=Path, required=True, help="grid YAML: setting: values|range")


def trial_problems(args: argparse.Namespace) -> list[str]:
    """What is wrong with ``--objective`` and the options :func:`add_executor` and
    :func:`add_progress` added."""
    problems: list[str] = []
    if args.objective not in OBJECTIVES:
        problems.append(f"--objective {args.objective!r}: choose one of {', '.join(OBJECTIVES)}")
    if args.address is not None and args.executor == "local":
        problems.append("--address applies to --executor dask or ray")
    if args.progress and args.no_progress:
        problems.append("--progress and --no-progress contradict each other")
    return problems


def progress_bar(label: str, args: argparse.Namespace, total: int) -> Callable[[int], None] | None:
    """The progress bar :func:`add_progress`'s options ask for (by default: on a terminal), or
    ``None``; called with how many of ``total`` are done."""
    if args.no_progress or total == 0 or not (args.progress or sys.stderr.isatty()):
        return None
    return ProgressBar(total, label, eta=True)
