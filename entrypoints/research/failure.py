"""How ``sweep`` and ``walkforward`` fail: one line on standard error, and an exit code.

Both commands read a grid and bars, open a results file and run trials on an executor; each
failure on the way is mapped here, once, so the two say the same thing with the same code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from application.bar_series import BarFileError, BarSizeError
from application.research.grid import GridError
from domain.errors import DomainError
from entrypoints.research.executors import ExecutorUnavailable, MissingExtra
from entrypoints.research.results import ResultsFileError

EXIT_OK, EXIT_USAGE, EXIT_BAD_INPUT, EXIT_UNAVAILABLE = 0, 2, 3, 4

FAILURES = (
    GridError,
    BarFileError,
    DomainError,
    MissingExtra,
    ExecutorUnavailable,
    ResultsFileError,
    OSError,
)
"""What :func:`failed` maps: catch these around reading the inputs and running the trials."""


def error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def refused(problems: Sequence[str]) -> int:
    """Say each problem of the command line; the usage exit code."""
    for problem in problems:
        error(problem)
    return EXIT_USAGE


def failed(exc: Exception, args: argparse.Namespace) -> int:
    """Say why the command stops (``args.path``: the bars, ``args.out``: the results folder) and
    give its exit code: 2 for a usage problem (the grid, a missing extra, the results folder), 3
    for bars that cannot be used, 4 for a cluster that cannot be reached."""
    if isinstance(exc, GridError):  # its own report: a line per problem
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    if isinstance(exc, BarSizeError):
        error(str(exc))
        return EXIT_USAGE
    if isinstance(exc, BarFileError):
        error(str(exc))
        return EXIT_BAD_INPUT
    if isinstance(exc, DomainError):  # a domain rule refusing the bars with a trial's config
        error(f"{args.path}: {exc}")
        return EXIT_BAD_INPUT
    if isinstance(exc, ExecutorUnavailable):
        error(str(exc))
        return EXIT_UNAVAILABLE
    if isinstance(exc, MissingExtra | ResultsFileError):
        error(str(exc))
        return EXIT_USAGE
    if isinstance(exc, OSError):
        why = exc.strerror or str(exc)
        if _within(exc.filename, args.out):
            error(f"--out {args.out}: cannot write: {why}")
            return EXIT_USAGE
        # Not the results folder's (a cluster's files, a temporary file): named, exit 4.
        error(f"{exc.filename}: {why}")
        return EXIT_UNAVAILABLE
    raise exc


def _within(filename: object, folder: object) -> bool:
    """Whether an OSError is the results folder's: its file is ``folder`` or in it, or it names
    no file (a write that ran out of space: the results are what the command writes)."""
    if filename is None:
        return True
    if folder is None:
        return False
    path, root = Path(str(filename)).resolve(), Path(str(folder)).resolve()
    return path == root or root in path.parents
