"""``--search optuna``: Optuna's TPE sampler (seeded) chooses the grid points, trials run on the
sweep's executor.

Trials are asked in batches of the executor's worker count, run together, then told in the order
they were asked, so the same seed, grid and workers choose the same trials on every executor. Each
parameter is suggested as an index into its grid values (``suggest_int``: TPE sees the values'
order), the values themselves kept as the trial's user attribute ``params``. A point already in the
results file is told without being computed. With ``--storage`` (an RDB URL such as
``postgresql+psycopg://user@host/db``, or ``sqlite:///study.db``) the study lives in that database
and several machines can work on it together (``--study`` names it).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from collections.abc import Callable
from typing import Any

from application.research.grid import Grid, ParamValue
from application.research.objectives import Objective
from application.research.sweep import Trial, canonical_json, param_text
from entrypoints.research.executors import default_workers
from entrypoints.research.plan import plan
from entrypoints.research.results import ResultsFile, trade_pnls
from entrypoints.research.run import LazyRunner, Tally, complete
from entrypoints.settings import Settings


class MissingOptuna(Exception):
    def __init__(self) -> None:
        super().__init__(
            "--search optuna needs the optuna extra: pip install 'quant-scalper[optuna]'"
        )


class StudyUnavailable(Exception):
    """The --storage database cannot hold the study; ``str()`` is one line."""


class StudyMismatch(Exception):
    """The named study is another search (grid, data, objective or direction); ``str()`` is one
    line. Joining it would have TPE learn from trials whose indexes name other values, or steer
    by figures of the opposite sense."""


SIGNATURE_ATTR = "sweep"
"""The study's user attribute holding what it searches (:func:`study_signature`)."""


def study_signature(grid: Grid, data_key: str, objective: Objective) -> str:
    """What a study searches: the grid's axes and values, the data and the objective (not the
    seed: machines sharing a study each bring their own)."""
    return canonical_json(
        {
            "grid": [[a.key, [param_text(v) for v in a.values]] for a in grid.axes],
            "data": data_key,
            "objective": objective.name,
        }
    )


def study_name(grid: Grid, data_key: str, objective: Objective, seed: int) -> str:
    text = canonical_json(
        {
            "grid": [[a.key, [param_text(v) for v in a.values]] for a in grid.axes],
            "data": data_key,
            "objective": objective.name,
            "seed": seed,
        }
    )
    return "sweep-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def optuna_search(
    grid: Grid,
    base: Settings,
    data_key: str,
    objective: Objective,
    args: argparse.Namespace,
    records: dict[str, dict[str, Any]],
    results: ResultsFile,
    runner: LazyRunner,
    tally: Tally,
    on_done: Callable[[int], None] | None,
) -> list[Trial]:
    """Run ``args.trials`` TPE trials; the trials in the order they were asked."""
    try:
        import optuna
    except ImportError:
        raise MissingOptuna() from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = args.study or study_name(grid, data_key, objective, args.seed)
    storage = _with_our_driver(args.storage)
    try:
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=optuna.samplers.TPESampler(seed=args.seed),
            direction="maximize" if objective.higher_is_better else "minimize",
            load_if_exists=True,
        )
    except Exception as exc:  # optuna wraps the database's own errors in many types
        why = _one_line(exc)
        password = _password(storage)
        if password:
            why = why.replace(password, "***")
        raise StudyUnavailable(f"--storage: cannot open study {name!r}: {why}") from exc
    _check_study(study, optuna, name, study_signature(grid, data_key, objective), objective)
    print(
        f"optuna: study {name}" + (f" in {_safe(args.storage)}" if args.storage else ""),
        file=sys.stderr,
    )
    batch = args.workers or default_workers()
    asked: list[Trial] = []
    done = 0
    while len(asked) < args.trials:
        size = min(batch, args.trials - len(asked))
        handles = [study.ask() for _ in range(size)]
        points: list[dict[str, ParamValue]] = []
        for handle in handles:
            point = {
                axis.key: axis.values[handle.suggest_int(axis.key, 0, len(axis.values) - 1)]
                for axis in grid.axes
            }
            handle.set_user_attr("params", {k: param_text(v) for k, v in point.items()})
            points.append(point)
        planned = plan(base, points, data_key, str(args.grid))
        for p in planned:
            asked.append(Trial(len(asked), p.trial.params, p.trial.key))

        def counted(n: int, before: int = done) -> None:
            if on_done is not None:
                on_done(before + n)

        computed_before = tally.computed
        complete(planned, records, results, runner, tally, counted)
        done += tally.computed - computed_before
        for handle, p in zip(handles, planned, strict=True):
            handle.set_user_attr("key", p.trial.key)
            value = objective(trade_pnls(records[p.trial.key]))
            if value is None or not math.isfinite(value):
                study.tell(handle, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(handle, value)
    if on_done is not None and done < args.trials:
        on_done(args.trials)
    return asked


def _check_study(study: Any, optuna: Any, name: str, signature: str, objective: Objective) -> None:
    """Refuse a loaded study of another search; mark a new one (or an unmarked one) as ours."""
    wanted = "maximize" if objective.higher_is_better else "minimize"
    held = study.direction.name.lower()
    if held != wanted:
        raise StudyMismatch(
            f"--study {name!r}: it {held}s, --objective {objective.name} needs a study that "
            f"{wanted}s: name another --study"
        )
    mark = study.user_attrs.get(SIGNATURE_ATTR)
    if mark is None:
        study.set_user_attr(SIGNATURE_ATTR, signature)
    elif mark != signature:
        raise StudyMismatch(
            f"--study {name!r}: it is a search of another grid, data or objective; name another "
            "--study (or the same grid, bars and --objective)"
        )


def _with_our_driver(url: str | None) -> str | None:
    """A plain ``postgresql://`` URL with the project's PostgreSQL driver (psycopg 3), which is
    installed, rather than SQLAlchemy's default (psycopg2), which is not."""
    if url is None:
        return None
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def _password(url: str | None) -> str | None:
    _, sep, tail = (url or "").partition("://")
    auth = tail.rpartition("@")[0] if sep else ""
    return auth.split(":", 1)[1] if ":" in auth else None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _safe(url: str) -> str:
    """The storage URL without a password."""
    head, sep, tail = url.partition("://")
    if sep and "@" in tail:
        auth, _, host = tail.rpartition("@")
        user = auth.split(":", 1)[0]
        return f"{head}://{user}:***@{host}" if ":" in auth else url
    return url
