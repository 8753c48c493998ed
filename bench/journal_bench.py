"""Journal speed: events/s written to SQLite and PostgreSQL, and what ``append`` costs the caller.

Prints one JSON object on stdout:

* ``<backend>.events_per_s``: a burst of ``--events`` journal items (a cycle of bar, signal, order
  intent, order event, fill, round trip) appended at once, until ``flush()`` says all are durable;
  best of ``--repeat`` runs, each on a fresh database;
* ``<backend>.durable_write_ms``: ``append`` of one record then ``await flush()``, median and p99 (a
  commit's latency: what a caller pays if it chooses to wait for durability);
* ``<backend>.loop_stall_ms_max``: the longest the event loop was held while the writer wrote the
  burst (a 1 ms ticker's worst lateness; the burst's own objects are frozen out of the garbage
  collector, as a daemon's long-lived heap would be): the hot path's
  worst wait for its turn on the loop under a burst (a live session journals a few records per
  5-second bar, in batches of a few rows);
* ``append_ns``: ``SqlJournal.append`` in a tight loop (the writer never runs inside it: nothing
  is awaited), with ``InMemoryJournal.append`` for comparison.

PostgreSQL is the test suite's (``TEST_DATABASE_URL``, testcontainers, else a throwaway cluster of
this machine's binaries, here with fsync ON so commits are really durable); SQLite is a file in a
temporary directory (WAL, synchronous=FULL).

    .venv/bin/python bench/journal_bench.py [--events 60000] [--repeat 3] [--batch-size 500]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.simulated.repositories import InMemoryJournal
from adapters.sql import migrate
from adapters.sql.database import create_engine, database_url
from adapters.sql.journal import SqlJournal
from adapters.sql.serialization import RecordedBar
from adapters.sql.spool import Spool
from domain.bar import Bar
from domain.commands import (
    FillRecord,
    JournalRecord,
    OrderEventRecord,
    OrderIntentRecord,
    RoundTripRecord,
    SignalAction,
    SignalRecord,
)
from domain.position import ExitReason, Fill, RoundTrip
from domain.values import Action, Side
from tests.support.postgres import create_database, start_postgres

T0 = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)
Item = JournalRecord | RecordedBar


def items(count: int, offset: int = 0) -> list[Item]:
    """``count`` distinct journal items, a realistic mix of kinds."""
    out: list[Item] = []
    i = offset
    while len(out) < count:
        ts = T0 + timedelta(seconds=5 * i)
        close = 5000.0 + (i % 40) * 0.25
        key = f"QS-{i}"
        kind = i % 6
        if kind == 0:
            out.append(RecordedBar("MESH5", Bar(ts, 5, close, close + 0.5, close - 0.25, close, 7)))
        elif kind == 1:
            out.append(SignalRecord(ts, ts, close, -2.125, SignalAction.ENTER, Side.LONG, "bench"))
        elif kind == 2:
            out.append(
                OrderIntentRecord(key, "entry", Action.BUY, 1, "MKT", None, ts, "ref 5000.25")
            )
        elif kind == 3:
            out.append(OrderEventRecord(key, "accepted", ts, ""))
        elif kind == 4:
            fill = Fill(f"x{i}", key, Action.BUY, 1, Decimal("5000.25"), ts, Decimal("0.62"))
            out.append(FillRecord(fill, "entry"))
        else:
            trip = RoundTrip(
                i, Side.LONG, 1, ts - timedelta(minutes=5), Decimal("5000.25"), ts,
                Decimal("5001.50"), ExitReason.SIGNAL, 5, Decimal("6.25"), Decimal("1.24"),
            )  # fmt: skip
            out.append(RoundTripRecord(trip))
        i += 1
    return out


def _append(journal: SqlJournal, batch: list[Item]) -> None:
    for item in batch:
        if isinstance(item, RecordedBar):
            journal.append_bar(item.contract, item.bar)
        else:
            journal.append(item)


async def _ticker(stalls: list[float], stop: asyncio.Event) -> None:
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        stalls.append(now - last - 0.001)
        last = now


async def run_backend(url: str, events: int, batch_size: int, tmp: Path) -> dict[str, Any]:
    engine = create_engine(url)
    journal = SqlJournal(engine, Spool(tmp / f"spool-{time.monotonic_ns()}"), batch_size=batch_size)
    await journal.start()
    try:
        burst = items(events)
        # The burst is a far bigger live heap than a session's; frozen, the collector does not
        # re-walk it (un-frozen, a full collection of it stalls the loop ~90 ms on PostgreSQL runs).
        gc.collect()
        gc.freeze()
        stalls: list[float] = []
        stop = asyncio.Event()
        began = time.perf_counter()
        _append(journal, burst)  # nothing awaited: the writer runs only from the flush below
        ticker = asyncio.create_task(_ticker(stalls, stop))
        await journal.flush()
        elapsed = time.perf_counter() - began
        stop.set()
        await ticker
        gc.unfreeze()
        assert journal.backlog == 0
        assert journal.rejected == 0
        latencies = []
        for item in items(300, offset=events):
            t = time.perf_counter()
            _append(journal, [item])
            await journal.flush()
            latencies.append((time.perf_counter() - t) * 1000)
        latencies.sort()
        return {
            "events_per_s": round(events / elapsed),
            "durable_write_ms": {
                "p50": round(statistics.median(latencies), 3),
                "p99": round(latencies[int(len(latencies) * 0.99) - 1], 3),
            },
            "loop_stall_ms_max": round(max(stalls) * 1000, 2),
        }
    finally:
        await journal.close()
        await engine.dispose()


def append_ns(count: int, repeat: int) -> dict[str, float]:
    """The caller's cost of ``append``: nothing awaited, so the writer never runs in between."""
    records = [i for i in items(count * 6 // 5 + 6) if not isinstance(i, RecordedBar)][:count]

    async def sql() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            engine = create_engine(database_url(None, Path(tmp)))
            journal = SqlJournal(engine, Spool(Path(tmp) / "spool"))
            append = journal.append  # the writer is not started: nothing runs but the call itself
            t = time.perf_counter_ns()
            for r in records:
                append(r)
            ns = (time.perf_counter_ns() - t) / count
            await engine.dispose()
        return ns

    def memory() -> float:
        append = InMemoryJournal().append
        t = time.perf_counter_ns()
        for r in records:
            append(r)
        return (time.perf_counter_ns() - t) / count

    return {
        "sql_journal": round(min(asyncio.run(sql()) for _ in range(repeat)), 1),
        "in_memory_journal": round(min(memory() for _ in range(repeat)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    if args.events < 1000 or args.repeat < 1:
        parser.error("--events must be >= 1000 and --repeat >= 1")

    with tempfile.TemporaryDirectory(prefix="qs-journal-bench-") as tmp_dir:
        result = run_all(args.events, args.repeat, args.batch_size, Path(tmp_dir))
    json.dump(result, sys.stdout)
    print()


def run_all(events: int, repeat: int, batch_size: int, tmp: Path) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "journal",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "events": events,
        "batch_size": batch_size,
    }

    def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
        return max(runs, key=lambda r: r["events_per_s"])

    sqlite_runs = []
    for n in range(repeat):
        url = database_url(None, tmp / f"sqlite-{n}")
        migrate.upgrade(url)
        sqlite_runs.append(asyncio.run(run_backend(url, events, batch_size, tmp)))
    result["sqlite"] = {**best(sqlite_runs), "settings": "WAL, synchronous=FULL"}

    server = start_postgres(durable=True)
    try:
        pg_runs = []
        for _ in range(repeat):
            url = create_database(server.url, "qs_bench")
            migrate.upgrade(url)
            pg_runs.append(asyncio.run(run_backend(url, events, batch_size, tmp)))
        result["postgresql"] = {
            **best(pg_runs),
            "server": server.source + (" (fsync on)" if server.cluster is not None else ""),
            "server_start_s": round(server.started_in_s, 2),
        }
    finally:
        server.close()

    result["append_ns"] = append_ns(200_000, repeat)
    return result


if __name__ == "__main__":
    main()
