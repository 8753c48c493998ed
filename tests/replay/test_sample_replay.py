"""The shipped sample through the replay: golden figures, the three report files, determinism,
and the same decisions when the bars arrive one at a time as from a live feed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.simulated.repositories import InMemoryJournal
from application.report import ReplaySummary
from domain.bar import Bar
from domain.commands import SignalRecord
from entrypoints.cli import main
from entrypoints.container import build_container
from entrypoints.replay import load_series, run_replay
from entrypoints.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"
CONFIG = ROOT / "config" / "sample.yaml"


def test_the_sample_replay_prints_the_summary_and_writes_the_report_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["replay", str(SAMPLE), "--config", str(CONFIG), "--report", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "Replay summary" in out
    assert "Round trips" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    # Golden figures of the sample (ES 1-minute bars, 2013-10-06..14, config/sample.yaml).
    assert summary["bars_in"] == 8198
    assert summary["strategy_bars"] == 1656
    assert summary["round_trips"] == 70
    assert summary["net_pnl_usd"] == "-43.05"
    assert summary["commissions_usd"] == "86.80"
    assert summary["max_drawdown_usd"] == "97.13"
    assert summary["final_position"]["side"] == "SHORT"
    trades = (tmp_path / "trades.csv").read_text().splitlines()
    assert len(trades) == 1 + 70
    assert trades[0].startswith("seq,side,qty,entry_time,entry_price,exit_time,exit_price")
    assert (tmp_path / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Net P&L is the sum of completed round trips only; the open position adds nothing.
    net_column = trades[0].split(",").index("net_pnl_usd")
    net = sum(Decimal(line.split(",")[net_column]) for line in trades[1:])
    assert net == Decimal(summary["net_pnl_usd"])
    # The trader's metrics of the sample.
    assert (summary["first_bar_at"], summary["last_bar_at"]) == (
        "2013-10-06T22:00:00Z",
        "2013-10-15T00:00:00Z",
    )
    assert summary["return_pct"] == -0.4305  # of the default account, 10,000 USD
    assert summary["cagr_pct"] is None  # a week is no base for a compounded year
    assert summary["long"] == {"trades": 31, "wins": 24, "net_pnl_usd": "30.31"}
    assert summary["short"] == {"trades": 39, "wins": 26, "net_pnl_usd": "-73.36"}
    assert summary["hold_seconds"] == {
        "average": 2802,
        "average_win": 1908,
        "average_loss": 5037,
        "max": 8820,
    }
    assert summary["max_drawdown"] == {
        "usd": "97.13",
        "pct": 0.966919,
        "peak_at": "2013-10-09T15:50:00Z",
        "bottom_at": "2013-10-14T18:07:00Z",
        "recovered_at": None,
        "duration_seconds": 460200,
    }
    assert (summary["calmar"], summary["sqn"]) == (-20.117909, -0.368339)
    assert summary["best_day"] == {"date": "2013-10-08", "net_pnl_usd": "28.86"}
    assert summary["worst_day"] == {"date": "2013-10-10", "net_pnl_usd": "-59.86"}
    assert (summary["days_won"], summary["days_lost"]) == (4, 3)
    assert summary["final_unrealized_usd"] == "-11.25"
    assert summary["market_change"] == {
        "first_open": "1676.75",
        "last_close": "1709.00",
        "points": "32.25",
        "pct": 1.923364,
        "usd_per_contract": "161.25",
    }
    # Every trade has its holding time, entry z, bracket prices and excursions.
    first = dict(zip(trades[0].split(","), trades[1].split(","), strict=True))
    assert first["held_seconds"] == "1200"
    assert (first["stop_price"], first["target_price"]) == ("1665.50", "1690.50")
    assert (first["mae_usd"], first["mfe_usd"]) == ("-1.25", "7.50")
    assert float(first["entry_z"]) <= -2.0
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert len(html.encode()) <= 5_000_000


def test_the_replay_is_byte_for_byte_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for target in (first, second):
        assert main(["replay", str(SAMPLE), "--config", str(CONFIG), "--report", str(target)]) == 0
    for name in ("summary.json", "trades.csv", "report.html"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


class _OneBarAtATime:
    """A MarketData that hands bars over one by one, as a live feed does."""

    def __init__(self, bars: Sequence[Bar]) -> None:
        self._bars = bars

    async def batches(self) -> AsyncIterator[Sequence[Bar]]:
        for bar in self._bars:
            yield [bar]


@pytest.mark.parametrize("engine", ["rust", "python"])
def test_a_live_style_feed_makes_the_same_decisions_as_the_replay(engine: str) -> None:
    settings = load_settings(CONFIG, {"QS_ZSCORE__ENGINE": engine})
    series = load_series(settings, SAMPLE)

    async def journal_of(feed_one_by_one: bool) -> list[object]:
        container = build_container(settings, "simulated", bar_source=series)
        service = container.services.trading()
        if feed_one_by_one:
            await service.run(_OneBarAtATime(series.bars()))
        else:
            await service.run(container.adapters.market_data())
        journal = container.adapters.journal()
        assert isinstance(journal, InMemoryJournal)
        return list(journal.records)

    live, replay = asyncio.run(journal_of(True)), asyncio.run(journal_of(False))
    assert len(live) > 500
    assert live == replay


def test_the_rust_and_python_engines_give_the_same_replay() -> None:
    """Same decisions, same summary. The z recorded with a signal may differ in its last bit: the
    reference rounds correctly, Rust promises a few ulps (both far inside 1e-12 relative)."""

    def comparable(record: object) -> object:
        if isinstance(record, SignalRecord) and record.z is not None:
            return replace(record, z=float(f"{record.z:.12e}"))
        return record

    def rounded(summary: ReplaySummary) -> ReplaySummary:
        """Each trade's entry z is the signal's (above)."""
        trades = tuple(
            replace(t, entry_z=None if t.entry_z is None else float(f"{t.entry_z:.12e}"))
            for t in summary.trades
        )
        return replace(summary, trades=trades)

    results = []
    for engine in ("rust", "python"):
        settings = load_settings(CONFIG, {"QS_ZSCORE__ENGINE": engine})
        result = asyncio.run(run_replay(settings, load_series(settings, SAMPLE)))
        results.append((rounded(result.summary), [comparable(r) for r in result.journal.records]))
    assert results[0] == results[1]


def test_the_last_strategy_bar_is_built_when_the_input_ends_inside_its_bucket(
    tmp_path: Path,
) -> None:
    """A recording that stops at 23:58 still makes its 23:55 bar, as resampling it would."""
    lines = SAMPLE.read_text().splitlines()
    assert lines[-1].startswith("2013-10-14T23:59:00Z")
    cut = tmp_path / "ends_at_23_58.csv"
    cut.write_text("\n".join(lines[:-1]) + "\n")
    settings = load_settings(CONFIG)
    series = load_series(settings, cut)
    # An independent aggregation: clock-aligned 5-minute buckets of the rows (each lies inside one
    # session: the 2013 halts start on 5-minute boundaries).
    buckets = {int(epoch) // 300 for epoch in series.epochs}
    result = asyncio.run(run_replay(settings, series))
    assert result.summary.strategy_bars == len(buckets) == 1656
    assert result.aggregation.bars_out == len(buckets)


def test_the_sample_summary_counts_the_signals_the_session_rules_refused(tmp_path: Path) -> None:
    assert main(["replay", str(SAMPLE), "--config", str(CONFIG), "--report", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["signals_blocked"] == {"too close to the session close": 4}
    assert summary["signals_blocked_total"] == 4
