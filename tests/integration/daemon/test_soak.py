"""Soak: the whole IB Gateway daemon for 48 hours of market time, with faults on the way.

One run (``tests/support/soak.py``), shared by the tests below: Thursday 2026-10-08 12:00 New York
to Saturday 12:00 on an accelerated clock (1920 times real time, about 90 s of wall time), real ES
minutes played as 5-second bars through the TWS test gateway, the journal and state store on a
PostgreSQL cluster of its own. Faults: dropped connections (Thursday afternoon, Friday evening), a
rejected entry, IB's connectivity lost with two minutes of data (1100, then 1101), the Gateway's
23:45 restart, and a PostgreSQL restart on Friday morning. At the end the daemon is stopped as a
signal would (flatten, cancel, flush, disconnect).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.support.soak import SoakPlan, SoakReport, dedicated_postgres, run_soak

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

RSS_GROWTH_LIMIT_MB = 10.0
SHUTDOWN_STEPS = [
    "entries stopped",
    "loose orders cancelled",
    "journal flushed",
    "alerts flushed",
    "disconnected",
]
"""Flat at the Saturday stop: there is nothing to flatten, so no "flattened" step."""


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> SoakReport:
    """The run; its figures are also left in ``soak-report.json`` in pytest's temp directory."""
    folder = tmp_path_factory.mktemp("soak")
    with dedicated_postgres() as database:
        report = asyncio.run(run_soak(SoakPlan(), database, folder))
    (folder / "soak-report.json").write_text(json.dumps(report.as_dict(), indent=1))
    return report


def _figures(report: SoakReport) -> str:
    return (
        f"wall {report.wall_s} s, {report.bars_pushed} bars pushed, {report.round_trips} trades, "
        f"RSS {report.rss_warmup_mb} -> {report.rss_end_mb} MB (max {report.rss_max_mb}), "
        f"faults {[(f.kind, f.step, f.market) for f in report.faults]}"
    )


def test_the_daemon_rides_out_every_fault_and_stops_cleanly_with_no_task_left(
    soak: SoakReport,
) -> None:
    assert soak.crashed is None, f"the daemon ended on its own: {soak.crashed}"
    assert soak.stopped_by == "signal"
    assert list(soak.shutdown) == SHUTDOWN_STEPS, soak.shutdown
    assert soak.leaked_tasks == [], "tasks left behind after the daemon and gateway stopped"
    steps = {(f.kind, f.step) for f in soak.faults}
    assert steps == {
        ("disconnect", "clients dropped"),
        ("reject", "armed"),
        ("data_lost", "1100, subscriptions dropped"),
        ("data_lost", "1101"),
        ("gateway_restart", "going down"),
        ("gateway_restart", "listening again"),
        ("postgres_restart", "stopping"),
        ("postgres_restart", "stopped"),
        ("postgres_restart", "started"),
    }, _figures(soak)
    # Two dropped connections and the Gateway restart: each one a reconnect.
    assert soak.reconnects >= 3, f"{soak.reconnects} reconnects; {_figures(soak)}"
    assert soak.rejections == 1
    [rejected] = soak.rejected_orders
    assert "soak test" in rejected
    journal_gate = [g for g in soak.gates if " journal: " in g]
    assert [g.split(" ", 1)[1] for g in journal_gate] == [
        "journal: the journal database is unreachable",
        "journal: open",
    ], "entries are gated while PostgreSQL is away, and reopened when it is back"
    assert soak.reconcile_required is None


def test_every_bar_is_journaled_once_and_every_ib_fill_is_in_the_journal(
    soak: SoakReport,
) -> None:
    # Thursday 16:00-21:00Z and Thursday 22:00Z to Friday 21:00Z, one bar per 5 s.
    assert soak.bars_pushed == soak.bars_unique == 28 * 720
    # The gaps of the disconnects, the 1101 and the Gateway restart were filled from IB's history.
    assert soak.bars_backfilled > 0
    assert soak.missing_count == 0, f"not in the journal: {soak.missing_from_journal}"
    assert soak.extra_in_journal == 0
    assert soak.journal_bars == soak.journal_bars_distinct == soak.bars_pushed
    assert soak.bars_in == soak.bars_pushed  # the trading service saw each bar once
    assert soak.round_trips > 0, "48 hours of real ES moves and not one trade"
    assert soak.journal_fills == soak.gateway_executions == 2 * soak.round_trips
    assert soak.fills_match, "the journal's execution ids differ from IB's"
    assert (soak.engine_position, soak.gateway_position) == (0, 0)
    assert soak.engine_state == "IDLE"


def test_the_weekend_is_quiet(soak: SoakReport) -> None:
    assert soak.stale_alerts_closed == []


def test_memory_grows_at_most_10_mb_after_the_first_four_market_hours(soak: SoakReport) -> None:
    assert soak.rss_growth_mb <= RSS_GROWTH_LIMIT_MB, _figures(soak)
