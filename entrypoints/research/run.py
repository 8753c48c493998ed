"""Running a sweep's trials: skip what the results file holds, compute the rest, append each result
as it arrives."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from application.bar_series import BarSeries
from entrypoints.research.executors import ExecutorName, Job, Runner, open_runner
from entrypoints.research.plan import PlannedTrial, unique
from entrypoints.research.results import ResultsFile


@dataclass
class LazyRunner:
    """Opens the executor the first time a trial must be computed (a finished sweep starts no
    cluster), and closes it with the stack it is given."""

    name: ExecutorName
    series: BarSeries
    workers: int | None
    address: str | None
    stack: ExitStack
    _runner: Runner | None = field(default=None, init=False)

    def get(self) -> Runner:
        if self._runner is None:
            self._runner = self.stack.enter_context(
                open_runner(self.name, self.series, workers=self.workers, address=self.address)
            )
        return self._runner

    @property
    def opened(self) -> Runner | None:
        return self._runner


@dataclass
class Tally:
    computed: int = 0
    reused: int = 0


def complete(
    planned: Sequence[PlannedTrial],
    records: dict[str, dict[str, Any]],
    results: ResultsFile,
    runner: LazyRunner,
    tally: Tally,
    on_done: Callable[[int], None] | None = None,
) -> None:
    """Make sure every planned trial has a record in ``records`` (and in the results file)."""
    todo = [p for p in unique(planned) if p.trial.key not in records]
    tally.reused += len(unique(planned)) - len(todo)
    if not todo:
        return
    jobs = [Job(p.trial.key, p.settings, p.rows) for p in todo]
    for done, line in enumerate(runner.get().run(jobs), start=1):
        results.append(line)
        record = json.loads(line)
        records[record["key"]] = record
        tally.computed += 1
        if on_done is not None:
            on_done(done)
