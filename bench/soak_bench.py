"""Soak: memory, completeness and recovery of the whole IB Gateway daemon over days of market time.

The harness of the soak test (``tests/support/soak.py``): the daemon (``run_daemon``, ``daemon.broker:
ibkr``) on an accelerated clock against the TWS test gateway, with real ES minutes played as 5-second
bars from Thursday 2026-10-08 12:00 New York, the journal and state store on a PostgreSQL cluster of
its own (fsync on with ``--durable``), and faults at fixed market times: dropped connections, a
rejected entry, IB's connectivity lost with a 2-minute data gap (1100, then 1101), the Gateway's 23:45
restart coming back waiting 35 minutes for its login, a PostgreSQL restart, a Gateway that answers
nothing for 20 minutes (``outages`` has each one's reminders, refused logins and recovery) and a plain
restart. RSS is VmRSS of this process (daemon and gateway together), sampled every 15 market minutes;
growth is the last sample minus the one at the end of warm-up.

Prints one JSON object to stdout (``--samples`` adds every RSS sample).

    python -m bench.soak_bench [--hours 48] [--speed 1920] [--warmup-hours 4] [--durable]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from tests.support.soak import DEFAULT_FAULTS, SoakPlan, dedicated_postgres, run_soak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=48.0, help="market hours (at most 48)")
    parser.add_argument(
        "--speed", type=float, default=1920.0, help="market seconds per wall second"
    )
    parser.add_argument("--warmup-hours", type=float, default=4.0)
    parser.add_argument("--durable", action="store_true", help="PostgreSQL with fsync on")
    parser.add_argument("--samples", action="store_true", help="print every RSS sample")
    parser.add_argument("--progress", action="store_true", help="faults to stderr as they happen")
    args = parser.parse_args()
    if not 0 < args.hours <= 48:
        parser.error(
            f"--hours must be in (0, 48] (the sample data ends on Friday), got {args.hours}"
        )
    window = timedelta(hours=args.hours)
    lasts = SoakPlan().lasts
    plan = SoakPlan(
        hours=args.hours,
        speed=args.speed,
        warmup_hours=args.warmup_hours,
        faults=tuple(f for f in DEFAULT_FAULTS if f.at + lasts(f) < window),
    )
    progress = (lambda line: print(line, file=sys.stderr)) if args.progress else None
    with dedicated_postgres(durable=args.durable) as database, tempfile.TemporaryDirectory() as tmp:
        report = asyncio.run(run_soak(plan, database, Path(tmp), on_progress=progress))
    result = {
        "benchmark": "soak",
        "transport": "TWS test gateway on loopback, ib_async 2.1, server version 178",
        "store": f"PostgreSQL (local cluster, fsync {'on' if args.durable else 'off'})",
        "window": f"{plan.start.isoformat()} + {plan.hours} h",
        **report.as_dict(),
        "rss_limit_mb": 10.0,
        "python": platform.python_version(),
    }
    if not args.samples:
        result["rss"] = [s for i, s in enumerate(result["rss"]) if i % 8 == 0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
