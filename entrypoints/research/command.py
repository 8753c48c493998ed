"""``quant-scalper sweep``: the command line of a parameter sweep.

    quant-scalper sweep DATA --config CFG --grid GRID.yaml [--executor local|dask|ray]
        [--address ADDR] [--workers N] [--out DIR] [--search grid|random|optuna] [--trials N]
        [--objective NAME] [--seed S] [--storage URL] [--study NAME] [--top K] [--progress]

The bars are read once; every trial is a full replay (the engine the daemon runs) of those bars
with the base configuration and the trial's settings. Results go to ``DIR/results.jsonl`` as each
trial finishes, so an interrupted sweep resumes and a repeated one computes nothing; then
``results.csv``, ``results.parquet`` and ``heatmap.png`` are written and the best trials printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

from application.research.grid import Grid
from application.research.objectives import OBJECTIVES, Objective
from application.research.significance import assess
from application.research.sweep import (
    Metrics,
    Trial,
    heatmap,
    importance,
    objective_values,
    param_text,
    ranked,
    table_columns,
    table_rows,
)
from entrypoints.options import progress_bar, trial_problems
from entrypoints.research.failure import (
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    FAILURES,
    error,
    failed,
    refused,
)
from entrypoints.research.plan import data_hash, plan, read_grid
from entrypoints.research.results import RESULTS_NAME, open_results, trade_pnls
from entrypoints.research.run import LazyRunner, Tally, complete
from entrypoints.settings import Settings


def sweep_command(settings: Settings, args: argparse.Namespace) -> int:
    problems = _argument_problems(args)
    if problems:
        return refused(problems)
    objective = OBJECTIVES[args.objective]
    try:
        grid = read_grid(args.grid, settings)
        from entrypoints.replay import load_series

        series = load_series(settings, args.path)
        data_key = data_hash(series)
        results, records = open_results(args.out)
    except FAILURES as exc:
        return failed(exc, args)
    tally = Tally()
    try:
        with ExitStack() as stack:
            runner = LazyRunner(args.executor, series, args.workers, args.address, stack)
            if args.search == "optuna":
                from entrypoints.research.optuna_search import (
                    MissingOptuna,
                    StudyMismatch,
                    StudyUnavailable,
                    optuna_search,
                )

                try:
                    trials = optuna_search(
                        grid,
                        settings,
                        data_key,
                        objective,
                        args,
                        records,
                        results,
                        runner,
                        tally,
                        progress_bar("sweep", args, args.trials),
                    )
                except (MissingOptuna, StudyMismatch) as exc:
                    error(str(exc))
                    return EXIT_USAGE
                except StudyUnavailable as exc:
                    error(str(exc))
                    return EXIT_UNAVAILABLE
                trials = _first_of_each_key(trials)
            else:
                points = (
                    list(grid.points())
                    if args.search == "grid"
                    else grid.sample(args.trials, args.seed)
                )
                if args.search == "random" and args.trials > grid.size:
                    print(
                        f"note: --trials {args.trials} is more than the grid's {grid.size} "
                        "points: running them all",
                        file=sys.stderr,
                    )
                planned = plan(settings, points, data_key, str(args.grid))
                missing = sum(1 for p in planned if p.trial.key not in records)
                complete(
                    planned, records, results, runner, tally, progress_bar("sweep", args, missing)
                )
                trials = [p.trial for p in planned]
            workers = runner.opened.workers if runner.opened is not None else 0
    except FAILURES as exc:
        return failed(exc, args)
    ran = f" on {args.executor} with {workers} workers" if workers else ""
    print(
        f"sweep: {len(trials)} trials, {tally.computed} computed{ran}, {tally.reused} already "
        f"in {results.path}"
    )
    metrics: dict[str, Metrics] = {t.key: records[t.key]["metrics"] for t in trials}
    pnls = {t.key: trade_pnls(records[t.key]) for t in trials}
    values = objective_values(trials, pnls, objective)
    try:
        written = _write_outputs(args.out, grid, trials, metrics, values, objective)
    except OSError as exc:
        return failed(exc, args)
    print(_top_text(trials, metrics, values, objective, args.top))
    for line in _significance_lines(trials, pnls, values, objective, args.seed):
        print(line)
    print("written: " + ", ".join(str(p) for p in written))
    return EXIT_OK


def _first_of_each_key(trials: Sequence[Trial]) -> list[Trial]:
    seen: set[str] = set()
    kept = []
    for t in trials:
        if t.key not in seen:
            seen.add(t.key)
            kept.append(t)
    return kept


def _argument_problems(args: argparse.Namespace) -> list[str]:
    problems: list[str] = []
    if args.search in ("random", "optuna") and args.trials is None:
        problems.append(f"--search {args.search} needs --trials N")
    if args.search == "grid" and args.trials is not None:
        problems.append("--trials applies to --search random or optuna")
    if args.search != "optuna" and (args.storage is not None or args.study is not None):
        problems.append("--storage and --study apply to --search optuna")
    return [*trial_problems(args), *problems]


def _write_outputs(
    out: Path,
    grid: Grid,
    trials: Sequence[Trial],
    metrics: dict[str, Metrics],
    values: dict[str, float | None],
    objective: Objective,
) -> list[Path]:
    from entrypoints.research.output import (
        CSV_NAME,
        HEATMAP_NAME,
        PARQUET_NAME,
        typed_rows,
        write_csv,
        write_heatmap,
        write_parquet,
    )

    columns = table_columns(grid.keys, list(metrics.values()))
    rows = typed_rows(columns, table_rows(trials, metrics, columns))
    write_csv(out / CSV_NAME, columns, rows)
    write_parquet(out / PARQUET_NAME, columns, rows)
    written = [out / RESULTS_NAME, out / CSV_NAME, out / PARQUET_NAME]
    ranking = importance(trials, values)
    varied = [key for key, _ in ranking if len({param_text(t.params[key]) for t in trials}) > 1]
    if ranking:
        shown = ", ".join(f"{key} {spread:.4g}" for key, spread in ranking)
        print(f"importance (spread of mean {objective.name} across a parameter's values): {shown}")
    if len(varied) >= 2:
        x_key, y_key = varied[0], varied[1]
        xs, ys, cells = heatmap(trials, values, x_key, y_key)
        write_heatmap(out / HEATMAP_NAME, objective, x_key, y_key, xs, ys, cells)
        written.append(out / HEATMAP_NAME)
    else:
        print(
            "note: no heatmap: it needs two parameters that take more than one value",
            file=sys.stderr,
        )
    return written


def _top_text(
    trials: Sequence[Trial],
    metrics: dict[str, Metrics],
    values: dict[str, float | None],
    objective: Objective,
    top: int,
) -> str:
    best = ranked(trials, values, objective)[:top]
    head = f"top {len(best)} by {objective.name} ({objective.description}):"
    lines = [head]
    for rank, t in enumerate(best, start=1):
        m = metrics[t.key]
        params = ", ".join(f"{k}={param_text(v)}" for k, v in t.params.items())
        value = values[t.key]
        lines.append(
            f"  {rank}. {params}: {objective.name} {_fmt(value)}, trades {m.get('round_trips')}, "
            f"net {m.get('net_pnl_usd')}, daily sharpe {_fmt(m.get('sharpe_daily'))}, "
            f"max dd {m.get('max_drawdown_usd')}  [trial {t.index}, {t.key[:12]}]"
        )
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _significance_lines(
    trials: Sequence[Trial],
    pnls: dict[str, list[Decimal]],
    values: dict[str, float | None],
    objective: Objective,
    seed: int,
) -> list[str]:
    """The overfitting guard for the best trial: a bootstrap interval of the objective and the
    deflated Sharpe ratio given how many trials were tried (application.research.significance)."""
    best = ranked(trials, values, objective)
    if not best:
        return []
    top = best[0]
    sharpe = OBJECTIVES["sharpe"]
    verdict = assess(pnls[top.key], objective, [sharpe(pnls[t.key]) for t in trials], seed=seed)
    ci, dsr = verdict.bootstrap, verdict.deflated
    interval = f"[{_fmt(ci.low)}, {_fmt(ci.high)}]" if ci.low is not None else "none"
    return [
        f"best trial {top.index} ({top.key[:12]}): "
        + ("SIGNIFICANT" if verdict.significant else "NOT SIGNIFICANT")
        + f": {verdict.reason.split(': ', 1)[-1]}",
        f"  bootstrap {ci.confidence:.0%} interval of {objective.name} over {ci.trades} trades "
        f"({ci.resamples:,} resamples, seed {ci.seed}): {interval}",
        f"  deflated Sharpe ratio {_fmt(dsr.deflated_sharpe)} (per-trade Sharpe "
        f"{_fmt(dsr.sharpe)}; best of {dsr.trials} trials expected by luck "
        f"{_fmt(dsr.expected_max_sharpe)})",
    ]
