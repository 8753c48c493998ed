"""report.html's pieces: strategy bars from the input bars, candles grouped on long runs, the header
with the data file's hash and the effective config (secrets masked)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from application.report import PriceBars
from entrypoints import report_html
from entrypoints.replay import ReplayResult, load_series, run_replay
from entrypoints.report_html import ReportContext, file_sha256, replay_context, strategy_bars
from entrypoints.report_output import metrics_html
from entrypoints.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"
CONFIG = ROOT / "config" / "sample.yaml"


def test_strategy_bars_are_the_clock_aligned_buckets_of_the_input() -> None:
    # One-minute bars at 10:00..10:06 and, after a gap, 11:02: buckets 10:00, 10:05, 11:00.
    base = 1_700_000_400  # a multiple of 300 s
    starts = [base + 60 * i for i in range(7)] + [base + 3600 + 120]
    prices = PriceBars(
        starts=starts,
        seconds=60,
        opens=[1.0, 2, 3, 4, 5, 6, 7, 8],
        highs=[10.0, 11, 12, 13, 14, 15, 16, 17],
        lows=[0.5, 0.25, 1, 2, 3, 4, 5, 6],
        closes=[1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5],
    )
    bars = strategy_bars(prices, 300)
    assert bars.starts.tolist() == [base, base + 300, base + 3600]
    assert bars.opens.tolist() == [1.0, 6.0, 8.0]
    assert bars.highs.tolist() == [14.0, 16.0, 17.0]
    assert bars.lows.tolist() == [0.25, 4.0, 6.0]
    assert bars.closes.tolist() == [5.5, 7.5, 8.5]


@pytest.fixture(scope="module")
def sample_run() -> tuple[ReplayResult, ReportContext]:
    settings = load_settings(CONFIG)
    result = asyncio.run(run_replay(settings, load_series(settings, SAMPLE)))
    return result, replay_context(settings, result, SAMPLE)


def test_the_header_names_the_data_file_its_hash_and_the_config(
    sample_run: tuple[ReplayResult, ReportContext],
) -> None:
    result, context = sample_run
    page = report_html.report_html(
        result.summary, result.round_trips, context, metrics_html(result.summary)
    )
    assert file_sha256(SAMPLE) in page
    assert "es_1min_20131006_20131014.csv" in page
    assert "z_threshold_entry" in page  # the effective config
    assert "Max drawdown" in page  # the metric tables
    assert "SQN" in page
    assert "each candle" not in page
    assert "https://" not in page.split("<body>")[0]  # no library fetched from the network


def test_a_long_run_draws_candles_of_several_bars(
    sample_run: tuple[ReplayResult, ReportContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    result, context = sample_run
    monkeypatch.setattr(report_html, "MAX_CANDLES", 500)
    page = report_html.report_html(
        result.summary, result.round_trips, context, metrics_html(result.summary)
    )
    assert "each candle: 4 strategy bars" in page  # 1656 bars in at most 500 candles


def test_z_scores_come_one_per_strategy_bar(sample_run: tuple[ReplayResult, ReportContext]) -> None:
    _, context = sample_run
    assert context.zscores is not None
    assert len(context.zscores) == 1656
    assert np.isnan(context.zscores[0])  # warming up
    assert not np.isnan(context.zscores[-1])


def test_ids_are_renamed_in_the_pages_own_part_only() -> None:
    from entrypoints.report_html import _canonical_ids

    library = (
        '<script>var a = "p42", u = "12345678-1234-1234-1234-123456789abc", b = "<body>";</script>'
    )
    own = (
        '<div id="aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee" data-root-id="p1696"></div>'
        '<script type="application/json">{"id":"p1697","root":{"id":"p1696"}}</script>'
    )
    page = _canonical_ids(f"<html><head>{library}</head><body>{own}</body></html>")
    assert library in page  # the library is untouched
    assert (
        '<div id="00000000-0000-4000-8000-000000000000" data-root-id="p1000"></div>'
        '<script type="application/json">{"id":"p1001","root":{"id":"p1000"}}</script>'
    ) in page
