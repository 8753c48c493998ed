"""Shutdown timings of the IB Gateway daemon as a real process: SIGTERM to exit.

Each sample starts ``quant-scalper run`` (daemon.broker: ibkr) against the TWS test gateway on
loopback, opens a LONG position with its bracket, sends SIGTERM and times the exit. Two modes:
``flatten`` (shutdown.flatten true, the default: the position is closed first) and ``keep`` (the
bracket stays at IB). The daemon's own step times (from its last stdout line) are reported too.
The issue's bound is exit 0 within 30 s; the daemon's budget is shutdown.timeout_s (25 s).

Prints one JSON object to stdout.

    python bench/shutdown_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import signal
import statistics
import tempfile
from pathlib import Path

from tests.support.live_process import daemon_env, open_a_long, start_daemon
from tests.support.tws import TwsGateway

STEP = re.compile(r"([a-z ]+?) (\d+\.\d+) s")


async def _sample(flatten: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        async with TwsGateway() as gateway:
            env = daemon_env(gateway.port, Path(tmp), QS_SHUTDOWN__FLATTEN=str(flatten).lower())
            proc = await start_daemon(env)
            con_id = await open_a_long(gateway, proc)
            loop = asyncio.get_running_loop()
            sent = loop.time()
            proc.send_signal(signal.SIGTERM)
            out, err = await proc.communicate()
            took = loop.time() - sent
            if proc.returncode != 0:
                raise RuntimeError(f"exit {proc.returncode}: {err.decode()[-2000:]}")
            if gateway.position(con_id) != (0 if flatten else 1):
                raise RuntimeError(f"position {gateway.position(con_id)} after the shutdown")
            last = out.decode().strip().splitlines()[-1]
            steps = {
                name.strip(" ,:;"): float(t) for name, t in STEP.findall(last.split(": ", 1)[1])
            }
            return {"sigterm_to_exit_s": took, **steps}


async def _measure(runs: int) -> dict[str, object]:
    result: dict[str, object] = {}
    for mode, flatten in (("flatten", True), ("keep", False)):
        samples = [await _sample(flatten) for _ in range(runs)]
        exits = sorted(s["sigterm_to_exit_s"] for s in samples)
        steps = {
            key: round(statistics.median(s[key] for s in samples), 4)
            for key in samples[0]
            if key != "sigterm_to_exit_s"
        }
        result[mode] = {
            "runs": runs,
            "sigterm_to_exit_p50_s": round(statistics.median(exits), 3),
            "sigterm_to_exit_max_s": round(exits[-1], 3),
            "daemon_steps_p50_s": steps,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    figures = asyncio.run(_measure(args.runs))
    print(
        json.dumps(
            {
                "benchmark": "daemon_shutdown",
                "transport": "TWS test gateway on loopback, ib_async, real process per sample",
                "bound_s": 30,
                **figures,
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
