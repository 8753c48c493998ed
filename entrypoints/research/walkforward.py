"""``quant-scalper walkforward``: walk-forward analysis with the sweep's trials.

    quant-scalper walkforward DATA --config CFG --grid GRID.yaml --train 60d --test 20d
        [--step 20d] [--anchored] [--objective NAME] [--executor local|dask|ray] [--address ADDR]
        [--workers N] [--out DIR] [--seed S]

The bars are read once and cut on CME trade dates. For each window every grid point runs as a
sweep trial (a full replay, the engine the daemon runs) of the train window's bars on the chosen
executor; the best by ``--objective`` (ties: the earlier grid point) then runs on the test window's
bars. One executor serves the whole run: the bars go to its workers once, each trial names its
window's rows, every window's train trials run as one batch and then every test trial. Each window is
replayed on its own, starting flat with a cold z-score, as a fresh start of the daemon with new
parameters would. Every trial's record goes to ``DIR/results.jsonl``, keyed by its effective
config and its window's data, so a re-run (or a sweep sharing the file) computes nothing twice.
Writes ``walkforward.json`` and ``oos_trades.csv`` (the stitched out-of-sample equity curve).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from application.bar_series import BarSeries
from application.research.grid import ParamValue
from application.research.objectives import OBJECTIVES, Objective
from application.research.significance import BootstrapInterval, bootstrap_ci
from application.research.sweep import Trial, canonical_json, objective_values, param_text, ranked
from application.research.walkforward import (
    ParamStability,
    WalkForward,
    Window,
    WindowResult,
    split_windows,
    walk_forward,
)
from entrypoints.options import progress_bar, trial_problems
from entrypoints.research.failure import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_USAGE,
    FAILURES,
    error,
    failed,
    refused,
)
from entrypoints.research.plan import PlannedTrial, check_values, data_hash, plan, read_grid
from entrypoints.research.results import RESULTS_NAME, open_results, trade_pnls
from entrypoints.research.run import LazyRunner, Tally, complete
from entrypoints.research.window import take_rows, trade_date_ordinals, window_rows
from entrypoints.settings import Settings

RESULT_JSON = "walkforward.json"
TRADES_CSV = "oos_trades.csv"


def walkforward_command(settings: Settings, args: argparse.Namespace) -> int:
    problems = trial_problems(args)
    if problems:
        return refused(problems)
    objective = OBJECTIVES[args.objective]
    try:
        grid = read_grid(args.grid)
        check_values(settings, grid, str(args.grid))
        points = list(grid.points())
        # Every combination checked before any replay (trial keys depend on the data, not here).
        plan(settings, points, "", str(args.grid))
        from entrypoints.replay import load_series

        series = load_series(settings, args.path)
    except FAILURES as exc:
        return failed(exc, args)
    if not len(series):
        error(f"{args.path}: no bars to walk forward over")
        return EXIT_BAD_INPUT
    ordinals = trade_date_ordinals(series.epochs)
    try:
        split = split_windows(
            [date.fromordinal(int(d)) for d in np.unique(ordinals)],
            train=args.train,
            test=args.test,
            step=args.step,
            anchored=args.anchored,
        )
    except ValueError as exc:
        error(f"{args.path}: {exc}")
        return EXIT_USAGE
    try:
        results, records = open_results(args.out)
    except FAILURES as exc:
        return failed(exc, args)
    tally = Tally()
    progress = progress_bar("walkforward", args, len(split.windows) * (len(points) + 1))

    def counted(_: int) -> None:
        if progress is not None:
            progress(tally.computed + tally.reused)

    windows: list[WindowResult] = []
    test_keys: list[str] = []
    try:
        # One executor serves every window: the whole series goes to its workers once, and each
        # trial names its window's rows. It opens at the first trial to compute, closes at the end.
        with ExitStack() as stack:
            runner = LazyRunner(args.executor, series, args.workers, args.address, stack)
            trains = [
                _planned(settings, points, series, ordinals, w.train_first, w.train_last, args)
                for w in split.windows
            ]
            # Every window's train trials at once: a window's choice waits for no other window.
            complete([p for t in trains for p in t], records, results, runner, tally, counted)
            counted(0)
            chosen: list[tuple[Window, int, Trial, float | None, PlannedTrial]] = []
            for window, train in zip(split.windows, trains, strict=True):
                trials = [p.trial for p in train]
                pnls = {t.key: trade_pnls(records[t.key]) for t in trials}
                values = objective_values(trials, pnls, objective)
                best = ranked(trials, values, objective)[0]
                (test,) = _planned(
                    settings,
                    [best.params],
                    series,
                    ordinals,
                    window.test_first,
                    window.test_last,
                    args,
                )
                chosen.append((window, len(trials), best, values[best.key], test))
            complete([c[-1] for c in chosen], records, results, runner, tally, counted)
            counted(0)
    except FAILURES as exc:
        return failed(exc, args)
    for window, trials_run, best, in_sample, test in chosen:
        test_keys.append(test.trial.key)
        windows.append(
            WindowResult(
                window=window,
                params=dict(best.params),
                trials=trials_run,
                in_sample=in_sample,
                out_of_sample_pnls=tuple(trade_pnls(records[test.trial.key])),
            )
        )
    result = walk_forward(objective, windows, split.unused_days)
    interval = bootstrap_ci(list(result.oos_pnls), objective, seed=args.seed)
    document = result_json(result, interval, args, test_keys)
    exits = {
        w.window.index: records[key]["trade_exit_utc"]
        for w, key in zip(windows, test_keys, strict=True)
    }
    try:
        written = write_outputs(args.out, document, result, exits)
    except OSError as exc:
        return failed(exc, args)
    print(
        f"walkforward: {len(windows)} windows x {len(points)} trials, {tally.computed} replays "
        f"computed, {tally.reused} already in {results.path}"
    )
    print(format_result(result, interval, args, objective))
    print("written: " + ", ".join(str(p) for p in written))
    return EXIT_OK


# ---------------------------------------------------------------- planning a window


def _planned(
    settings: Settings,
    points: Sequence[Mapping[str, ParamValue]],
    series: BarSeries,
    ordinals: np.ndarray[Any, Any],
    first: date,
    last: date,
    args: argparse.Namespace,
) -> list[PlannedTrial]:
    """The trials of ``points`` on the bars of trade dates ``first``..``last``, keyed by those
    bars and naming their rows of ``series`` (which the executor's workers hold)."""
    rows = window_rows(ordinals, first, last)
    return plan(settings, points, data_hash(take_rows(series, rows)), str(args.grid), rows)


# ---------------------------------------------------------------- output


def _param_json(value: ParamValue) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _money(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


def result_json(
    result: WalkForward,
    interval: BootstrapInterval,
    args: argparse.Namespace,
    test_keys: Sequence[str],
) -> dict[str, Any]:
    """The walk-forward as JSON (the same for every executor: no executor, no timings)."""
    target = OBJECTIVES[result.objective]
    equity = result.oos_equity
    return {
        "data": str(args.path),
        "grid": str(args.grid),
        "objective": result.objective,
        "train_days": args.train,
        "test_days": args.test,
        "step_days": args.step if args.step is not None else args.test,
        "anchored": args.anchored,
        "windows": [
            {
                "index": w.window.index,
                "train": [w.window.train_first.isoformat(), w.window.train_last.isoformat()],
                "test": [w.window.test_first.isoformat(), w.window.test_last.isoformat()],
                "train_days": w.window.train_days,
                "test_days": w.window.test_days,
                "trials": w.trials,
                "params": {k: _param_json(v) for k, v in w.params.items()},
                "in_sample": w.in_sample,
                "out_of_sample": w.out_of_sample(target),
                "oos_trades": len(w.out_of_sample_pnls),
                "oos_net_pnl_usd": _money(sum(w.out_of_sample_pnls, Decimal(0))),
                "efficiency": w.efficiency(target),
                "test_trial_key": key,
            }
            for w, key in zip(result.windows, test_keys, strict=True)
        ],
        "unused_days": result.unused_days,
        "out_of_sample": {
            "trades": len(result.oos_pnls),
            "trade_days": result.oos_days,
            "net_pnl_usd": _money(equity[-1] if equity else Decimal(0)),
            "max_drawdown_usd": _money(
                Decimal(str(OBJECTIVES["max_drawdown"](list(result.oos_pnls)) or 0))
            ),
            "objective": result.oos_value,
            "annualised": result.oos_annualised,
            "bootstrap": {
                "confidence": interval.confidence,
                "low": interval.low,
                "high": interval.high,
                "resamples": interval.resamples,
                "seed": interval.seed,
                "significant": interval.significant,
                "reason": interval.reason,
            },
        },
        "in_sample_annualised": result.in_sample_annualised,
        "efficiency": result.efficiency,
        "stability": [_stability_json(s) for s in result.stability],
    }


def _stability_json(s: ParamStability) -> dict[str, Any]:
    return {
        "name": s.name,
        "chosen": [_param_json(v) for v in s.chosen],
        "changes": s.changes,
        "distinct": s.distinct,
        "mode": _param_json(s.mode),
        "mode_share": s.mode_share,
        "low": None if s.low is None else str(s.low),
        "high": None if s.high is None else str(s.high),
        "relative_spread": s.relative_spread,
    }


def oos_trades_csv(result: WalkForward, exits: Mapping[int, Sequence[str]]) -> str:
    """The stitched out-of-sample round trips, one row each, with the running equity; ``exits``
    holds each window's exit times (UTC, by window index), so the file feeds ``montecarlo``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ("trade", "window", "test_first", "test_last", "exit_time", "net_pnl_usd", "equity_usd")
    )
    seq, equity = 0, Decimal(0)
    for w in result.windows:
        for pnl, exit_time in zip(w.out_of_sample_pnls, exits[w.window.index], strict=True):
            seq += 1
            equity += pnl
            writer.writerow(
                (
                    seq,
                    w.window.index,
                    w.window.test_first.isoformat(),
                    w.window.test_last.isoformat(),
                    exit_time,
                    _money(pnl),
                    _money(equity),
                )
            )
    return buffer.getvalue()


def write_outputs(
    out: Path,
    document: Mapping[str, Any],
    result: WalkForward,
    exits: Mapping[int, Sequence[str]],
) -> list[Path]:
    json_path, csv_path = out / RESULT_JSON, out / TRADES_CSV
    json_path.write_text(
        json.dumps(json.loads(canonical_json(document)), indent=2) + "\n", encoding="utf-8"
    )
    csv_path.write_text(oos_trades_csv(result, exits), encoding="utf-8", newline="")
    return [out / RESULTS_NAME, json_path, csv_path]


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def _dates(first: date, last: date) -> str:
    return first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"


def format_result(
    result: WalkForward, interval: BootstrapInterval, args: argparse.Namespace, target: Objective
) -> str:
    step = args.step if args.step is not None else args.test
    kind = "anchored" if args.anchored else "rolling"
    windows = result.windows
    lines = [
        f"{len(windows)} windows: {args.train} train + {args.test} test trade days, {kind}, "
        f"step {step}; objective {target.name} ({target.description})",
    ]
    if result.unused_days:
        lines.append(
            f"note: the last {result.unused_days} trade day"
            f"{'s are' if result.unused_days != 1 else ' is'} after the last whole test window"
        )
    rows = [
        (
            "window",
            "train",
            "test",
            f"IS {target.name}",
            f"OOS {target.name}",
            "trades",
            "OOS net",
            "efficiency",
            "chosen",
        ),
    ]
    for w in windows:
        rows.append(
            (
                str(w.window.index),
                _dates(w.window.train_first, w.window.train_last),
                _dates(w.window.test_first, w.window.test_last),
                _fmt(w.in_sample),
                _fmt(w.out_of_sample(target)),
                str(len(w.out_of_sample_pnls)),
                _money(sum(w.out_of_sample_pnls, Decimal(0))),
                _fmt(w.efficiency(target), 3),
                ", ".join(f"{k}={param_text(v)}" for k, v in w.params.items()),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        cells = [
            r[i].ljust(widths[i]) if i < 3 else r[i].rjust(widths[i]) for i in range(len(widths))
        ]
        lines.append("  ".join([*cells, r[-1]]))
    equity = result.oos_equity
    drawdown = OBJECTIVES["max_drawdown"](list(result.oos_pnls))
    lines.append(
        f"out of sample, stitched: {len(result.oos_pnls)} trades over {result.oos_days} trade "
        f"days, net P&L {_money(equity[-1] if equity else Decimal(0))}, max drawdown "
        f"{_money(Decimal(str(drawdown or 0)))}, {target.name} {_fmt(result.oos_value)}"
    )
    if result.efficiency is not None:
        lines.append(
            f"walk-forward efficiency {_fmt(result.efficiency, 3)}: annualised out-of-sample "
            f"{target.name} {_fmt(result.oos_annualised)} vs in-sample "
            f"{_fmt(result.in_sample_annualised)} (mean of the windows)"
        )
    else:
        lines.append(
            f"walk-forward efficiency n/a: annualised out-of-sample {target.name} "
            f"{_fmt(result.oos_annualised)} vs in-sample {_fmt(result.in_sample_annualised)} "
            "(defined for an objective where higher is better, in-sample above 0)"
        )
    lines.append(f"out-of-sample {target.name}: {interval.reason}")
    lines.append("parameter stability:")
    for s in result.stability:
        values = ", ".join(param_text(v) for v in s.chosen)
        spread = (
            "" if s.relative_spread is None else f", spread {s.relative_spread:.0%} of the median"
        )
        lines.append(
            f"  {s.name}: {values}: {s.changes} change{'s' if s.changes != 1 else ''}, "
            f"{s.distinct} value{'s' if s.distinct != 1 else ''}, {param_text(s.mode)} in "
            f"{s.mode_share:.0%} of windows{spread}"
        )
    return "\n".join(lines)
