"""The ``walkforward`` subcommand's arguments (light: the CLI builds its parser on every start)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from application.research.objectives import OBJECTIVES
from entrypoints.options import add_executor, add_progress, add_seed, add_trial_inputs

DEFAULT_OUT = Path("walkforward")
_SPAN = re.compile(r"(\d+)d?")


def configure(wf: argparse.ArgumentParser) -> None:
    """The ``walkforward`` command's description and arguments (its name and one-line help are in
    the command table of :mod:`entrypoints.cli`)."""
    wf.description = (
        "Walk-forward analysis on CME trade dates: on each train window run every "
        "trial of the grid (the sweep's trials, on any executor), trade the best parameters on "
        "the test window that follows, then move on by --step. Prints each window's choice, the "
        "stitched out-of-sample result, walk-forward efficiency (annualised out-of-sample vs "
        "in-sample objective) and how stable the chosen parameters are."
    )
    add_trial_inputs(wf)
    wf.add_argument(
        "--train", type=_span("--train"), required=True, metavar="Nd", help="train trade days"
    )
    wf.add_argument(
        "--test", type=_span("--test"), required=True, metavar="Nd", help="test trade days"
    )
    wf.add_argument(
        "--step", type=_span("--step"), metavar="Nd", help="move on by this (default: --test)"
    )
    wf.add_argument(
        "--anchored",
        action="store_true",
        help="every train window starts at the first trade date (default: rolling windows)",
    )
    wf.add_argument(
        "--objective",
        default="net_pnl",
        help=f"what to choose by: {', '.join(OBJECTIVES)} (default: net_pnl)",
    )
    add_executor(wf, "the trials")
    wf.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"results directory (default: {DEFAULT_OUT}); its results.jsonl makes a re-run "
        "compute nothing",
    )
    add_seed(wf, "seed of the out-of-sample bootstrap (default 0)")
    add_progress(wf)


def _span(option: str) -> Any:
    def parse(text: str) -> int:
        match = _SPAN.fullmatch(text.strip())
        value = int(match.group(1)) if match is not None else 0
        if value < 1:
            raise argparse.ArgumentTypeError(
                f"{option} must be a number of trade days such as 20d, at least 1, got {text!r}"
            )
        return value

    return parse
