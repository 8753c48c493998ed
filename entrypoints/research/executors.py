"""Where trials run: a local process pool (the default), a Dask cluster or a Ray cluster.

Each executor sends the bars to every worker once, runs :func:`entrypoints.research.worker.run_trial`
for each trial, and yields each trial's record line as it finishes (in finishing order; the sweep
writes its tables in plan order, so every executor gives the same files). At most a few trials per
worker are in flight, so a huge grid never floods the scheduler.

Dask and Ray are optional extras, imported only when chosen; a missing one is :class:`MissingExtra`.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Literal, NamedTuple, Protocol, TypeAlias

from application.bar_series import BarSeries
from entrypoints.research.window import Rows
from entrypoints.research.worker import (
    TrialFailed,
    keep_series,
    run_kept,
    run_trial,
    run_trial_or_failure,
)
from entrypoints.settings import Settings

ExecutorName: TypeAlias = Literal["local", "dask", "ray"]

_log = logging.getLogger(__name__)

IN_FLIGHT_PER_WORKER = 2
"""Trials submitted ahead per worker: enough to keep each busy, few enough to stay cheap."""


class Job(NamedTuple):
    """A trial to run: its key, its settings and the rows of the shipped bars it replays (all of
    them by default; a walk-forward window's rows, so one executor serves every window)."""

    key: str
    settings: Settings
    rows: Rows = None


class MissingExtra(Exception):
    """An executor's optional dependency is not installed; ``str()`` is one line."""

    def __init__(self, executor: str, extra: str) -> None:
        super().__init__(
            f"--executor {executor} needs the {extra} extra: pip install 'quant-scalper[{extra}]'"
        )


class ExecutorUnavailable(Exception):
    """The cluster at --address cannot be reached; ``str()`` is one line."""


class Runner(Protocol):
    workers: int

    def run(self, jobs: Sequence[Job]) -> Iterator[str]:
        """Each job's record line, as the jobs finish."""
        ...


def default_workers() -> int:
    return max(
        1,
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
    )


def open_runner(
    name: ExecutorName, series: BarSeries, *, workers: int | None, address: str | None
) -> AbstractContextManager[Runner]:
    """A runner of the named executor, its workers holding ``series``; closed on exit."""
    if name == "local":
        return _local(series, workers or default_workers())
    if name == "dask":
        return _dask(series, workers, address)
    return _ray(series, workers, address)


def _windowed(
    jobs: Sequence[Job],
    limit: int,
    submit: Callable[[Job], Any],
    next_done: Callable[[set[Any]], tuple[set[Any], set[Any]]],
    result: Callable[[Any], str],
) -> Iterator[str]:
    """Keep at most ``limit`` jobs in flight; yield results as they come."""
    pending: set[Any] = set()
    queue = iter(jobs)
    exhausted = False
    while True:
        while not exhausted and len(pending) < limit:
            job = next(queue, None)
            if job is None:
                exhausted = True
            else:
                pending.add(submit(job))
        if not pending:
            return
        done, pending = next_done(pending)
        for handle in done:
            yield result(handle)


# ---------------------------------------------------------------- local


class _LocalRunner:
    def __init__(self, pool: ProcessPoolExecutor, workers: int) -> None:
        self._pool = pool
        self.workers = workers

    def run(self, jobs: Sequence[Job]) -> Iterator[str]:
        def next_done(pending: set[Any]) -> tuple[set[Any], set[Any]]:
            done, rest = wait(pending, return_when=FIRST_COMPLETED)
            return set(done), set(rest)

        def result(future: Future[str]) -> str:
            return future.result()

        return _windowed(
            jobs,
            self.workers * IN_FLIGHT_PER_WORKER,
            lambda job: self._pool.submit(run_kept, *job),
            next_done,
            result,
        )


@contextmanager
def _local(series: BarSeries, workers: int) -> Iterator[Runner]:
    # The initializer hands the bars to each worker process once, when it starts.
    pool = ProcessPoolExecutor(max_workers=workers, initializer=keep_series, initargs=(series,))
    try:
        yield _LocalRunner(pool, workers)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------- dask


class _DaskRunner:
    def __init__(self, client: Any, series_future: Any, workers: int) -> None:
        self.client = client
        self._series = series_future
        self.workers = workers

    def run(self, jobs: Sequence[Job]) -> Iterator[str]:
        import distributed

        dask_wait: Any = distributed.wait

        def submit(job: Job) -> Any:
            return self.client.submit(
                run_trial_or_failure,
                job.key,
                job.settings,
                self._series,
                job.rows,
                key=f"trial-{job.key}",
                pure=False,
            )

        def next_done(pending: set[Any]) -> tuple[set[Any], set[Any]]:
            done, rest = dask_wait(list(pending), return_when="FIRST_COMPLETED")
            return set(done), set(rest)

        def result(future: Any) -> str:
            outcome: str | TrialFailed = future.result()
            future.release()
            if isinstance(outcome, TrialFailed):
                # The replay's own exception, as a local worker hands it back (its message is the
                # command's one line); the worker's traceback goes to the log file only.
                _log_remote_failure(outcome)
                raise outcome.error
            return outcome

        return _windowed(jobs, self.workers * IN_FLIGHT_PER_WORKER, submit, next_done, result)


def _log_remote_failure(failed: TrialFailed) -> None:
    from entrypoints import logs

    what = f"a trial failed on a Dask worker: {type(failed.error).__name__}: {failed.error}"
    logs.record_in_file(f"{what}\n{failed.traceback}", failed.error)
    _log.debug("%s\n%s", what, failed.traceback)


QUIET_DASK_WORKERS: dict[str, object] = {
    # A worker samples its task thread's stack every 10 ms for the dashboard's profile: a replay is
    # one long pure-Python task, and each sample takes the GIL from it (~10% of a trial's time).
    "distributed.worker.profile.enabled": False,
    # Its event loop checks for blocking every 20 ms and polls its memory every 100 ms, each a GIL
    # hand-off mid-replay; once a second still catches a blocked loop and a runaway worker.
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
}
"""Worker settings of the local Dask cluster a sweep starts (64 trials over 200k bars, 2 workers:
without them ~1.2-1.4x the local pool's time, with them ~0.9-1.15x). A cluster at --address keeps its own:
the README says how to start one's workers with them."""


@contextmanager
def _dask(series: BarSeries, workers: int | None, address: str | None) -> Iterator[Runner]:
    try:
        import dask
        import distributed
    except ImportError:
        raise MissingExtra("dask", "dask") from None
    # Typed as Any: dask.distributed's own annotations are partial.
    Client: Any = distributed.Client
    LocalCluster: Any = distributed.LocalCluster
    # The scheduler and workers log every step at INFO: only their warnings reach our stderr.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    cluster = None
    try:
        if address is None:
            with dask.config.set(QUIET_DASK_WORKERS):
                cluster = LocalCluster(
                    n_workers=workers or default_workers(),
                    threads_per_worker=1,
                    processes=True,
                    # Any free loopback port: the scheduler's HTTP server starts even without a
                    # dashboard, on 8787 when asked for none, which another cluster may hold.
                    dashboard_address="127.0.0.1:0",
                    silence_logs=logging.WARNING,
                )
            client = Client(cluster)
        else:
            _probe(address, "Dask scheduler", scheme="tcp")
            client = Client(address, timeout=15)
    except OSError as exc:
        raise ExecutorUnavailable(f"--address {address}: no Dask scheduler: {exc}") from exc
    try:
        count = workers or max(
            1, sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
        )
        # Scattered once to every worker; each trial's task refers to it.
        series_future = client.scatter(series, broadcast=True, hash=False)
        yield _DaskRunner(client, series_future, count)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ---------------------------------------------------------------- ray


class _RayRunner:
    def __init__(self, ray: Any, series_ref: Any, workers: int) -> None:
        self._ray = ray
        self._series = series_ref
        self._remote = ray.remote(num_cpus=1, max_retries=0)(run_trial)
        self.workers = workers

    def run(self, jobs: Sequence[Job]) -> Iterator[str]:
        ray = self._ray

        def submit(job: Job) -> Any:
            return self._remote.remote(job.key, job.settings, self._series, job.rows)

        def next_done(pending: set[Any]) -> tuple[set[Any], set[Any]]:
            done, rest = ray.wait(list(pending), num_returns=1)
            return set(done), set(rest)

        def result(ref: Any) -> str:
            try:
                text: str = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                # The replay's own exception, as a local worker or Dask hands it back: its message
                # is one line (Ray's wrapper's is the remote traceback, in colour).
                cause = exc.cause
                if isinstance(cause, Exception):
                    raise cause from None
                raise
            return text

        return _windowed(jobs, self.workers * IN_FLIGHT_PER_WORKER, submit, next_done, result)


def ray_unavailable(address: str | None, exc: BaseException) -> ExecutorUnavailable:
    """The one line for a Ray cluster ray.init could not join. A Ray Client that times out is
    most often one without the cluster's token: Ray 2.59+ clusters require one, and the client is
    told nothing (only the head's log says "Authentication required")."""
    hint = ""
    if address is not None and address.startswith("ray://") and "timeout" in str(exc).lower():
        hint = (
            " (a cluster with token authentication, Ray's default since 2.59, needs "
            "RAY_AUTH_MODE=token and its token: RAY_AUTH_TOKEN=$(ray get-auth-token) on the head)"
        )
    return ExecutorUnavailable(f"--address {address}: no Ray cluster: {exc}{hint}")


PROBE_TIMEOUT_S = 5.0


def _probe(address: str, cluster: str, scheme: str | None = None) -> None:
    """A cluster address (``host:port``, or ``scheme://host:port``) at which nothing accepts a
    connection, refused at once: ray.init retries such an address for minutes, logging every
    attempt, and a Dask client waits out its whole timeout. Other forms (a Ray Client's
    ``ray://``, ``auto``, Dask's ``tls://``) are left to the library."""
    target = address.removeprefix(f"{scheme}://") if scheme else address
    if "://" in target:
        return
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection(
            (host.strip("[]") or "127.0.0.1", int(port)), timeout=PROBE_TIMEOUT_S
        ):
            pass
    except OSError as exc:
        raise ExecutorUnavailable(
            f"--address {address}: no {cluster}: cannot connect: {exc.strerror or exc}"
        ) from exc


@contextmanager
def _ray(series: BarSeries, workers: int | None, address: str | None) -> Iterator[Runner]:
    try:
        import ray as ray_module
    except ImportError:
        raise MissingExtra("ray", "ray") from None
    ray: Any = ray_module
    try:
        if address is None:
            # "local": a new single-node cluster of our own, even when a `ray start` cluster (or a
            # stale record of one) is on this machine; ray.init() would join that one instead.
            ray.init(
                address="local",
                num_cpus=workers or default_workers(),
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        else:
            _probe(address, "Ray cluster")
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, OSError, RuntimeError) as exc:
        raise ray_unavailable(address, exc) from exc
    try:
        count = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        # Put once in the object store; every trial's task gets the same reference.
        series_ref = ray.put(series)
        yield _RayRunner(ray, series_ref, count)
    finally:
        ray.shutdown()
