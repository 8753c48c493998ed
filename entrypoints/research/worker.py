"""What runs in a worker: one trial, a full replay of the shared bars (or of some of their rows, a
walk-forward window) with one configuration.

The bars travel to each worker once: the local pool hands them to :func:`keep_series` as its
initializer (so :func:`run_kept` finds them), Dask scatters them and Ray puts them in its object
store, both passing the same object to :func:`run_trial` for every trial on that worker. A trial's
result is its record as one canonical JSON line, built here, so the line written is the same
whichever executor ran it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import traceback
from dataclasses import dataclass
from typing import Any

from application.bar_series import BarSeries
from application.report import ordered
from application.research.sweep import canonical_json, flatten
from entrypoints.replay import run_replay
from entrypoints.report_output import summary_json, usd, utc
from entrypoints.research.window import Rows, take_rows
from entrypoints.settings import Settings

LIST_METRICS = frozenset({"daily_pnl_usd", "breaker_trip_log"})
"""Summary entries that are series, not figures: kept in the record, not in the table."""


def run_trial(key: str, settings: Settings, series: BarSeries, rows: Rows = None) -> str:
    """Replay ``rows`` of ``series`` (all of it by default) with ``settings``; the trial's record
    as one JSON line (no newline)."""
    result = asyncio.run(run_replay(settings, take_rows(series, rows)))
    document: dict[str, Any] = json.loads(summary_json(result.summary))
    trips = ordered(result.round_trips)
    record = {
        "key": key,
        "metrics": flatten(document, skip=lambda name: name in LIST_METRICS),
        "daily_pnl_usd": document["daily_pnl_usd"],
        "trade_pnl_usd": [usd(trip.net_pnl) for trip in trips],
        "trade_exit_utc": [utc(trip.exit_ts) for trip in trips],
    }
    return canonical_json(record)


@dataclass(frozen=True, slots=True)
class TrialFailed:
    """A trial's exception with the worker's traceback, returned instead of raised."""

    error: Exception
    traceback: str


def run_trial_or_failure(
    key: str, settings: Settings, series: BarSeries, rows: Rows = None
) -> str | TrialFailed:
    """:func:`run_trial`, its exception handed back as a value: a Dask worker logs a task that
    raises with its whole traceback, on the console of a local cluster, before the sweep can say
    what went wrong in one line."""
    try:
        return run_trial(key, settings, series, rows)
    except Exception as exc:
        return TrialFailed(exc, "".join(traceback.format_exception(exc)))


_kept: list[BarSeries] = []


def keep_series(series: BarSeries) -> None:
    """A process pool's initializer: keep the bars for this worker's trials. Ctrl-C is the parent's
    to handle (it stops the sweep, keeping every finished trial): a worker ignores it rather than
    die with a traceback mid-trial."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _kept[:] = [series]


def run_kept(key: str, settings: Settings, rows: Rows = None) -> str:
    """:func:`run_trial` on the bars this worker kept."""
    if not _kept:
        raise RuntimeError("run_kept: no bars kept in this worker (keep_series not run)")
    return run_trial(key, settings, _kept[0], rows)
