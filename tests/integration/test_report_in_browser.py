"""report.html in a real headless Chromium, from disk, with the network off: no JavaScript error, no
request leaves the machine, the charts are painted, and the trade marks match trades.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from entrypoints.cli import EXIT_OK, main
from tests.support.browser import visit

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"
CONFIG = ROOT / "config" / "sample.yaml"

CHARTS = 4
"""Price, z-score, equity and drawdown."""


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    argv = ["replay", str(SAMPLE), "--config", str(CONFIG), "--no-progress", "--report"]
    assert main([*argv, str(folder)]) == EXIT_OK
    return folder


def test_the_sample_report_renders_offline_with_its_trades_marked(
    sample_report: Path, tmp_path: Path
) -> None:
    page = sample_report / "report.html"
    shot = tmp_path / "report.png"
    seen = visit(
        page,
        screenshot=shot,
        sources=("entries", "exits", "trades", "equity", "bars", "breaker"),
        painted=CHARTS,
    )
    assert seen.errors == []
    assert seen.blocked == []
    assert all(url.startswith("file:") for url in seen.requests), seen.requests
    painted = [c for c in seen.canvases if c[0] > 0 and c[2] > 0]
    assert len(painted) >= CHARTS, seen.canvases
    with (sample_report / "trades.csv").open(newline="") as rows:
        trades = list(csv.DictReader(rows))
    assert len(trades) == 70
    assert seen.models["entries"] == len(trades)
    assert seen.models["exits"] == len(trades)
    assert seen.models["trades"] == len(trades)
    assert seen.models["equity"] == len(trades) + 1  # the 0 start, then each exit
    assert seen.models["bars"] == 1656  # one per strategy bar, as the summary counts them
    assert seen.models["breaker"] == 1
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_page_that_fetches_from_the_network_is_caught(tmp_path: Path) -> None:
    """The check itself: a page asking for a remote script has that request blocked and seen."""
    page = tmp_path / "fetching.html"
    page.write_text(
        "<html><head><script src='https://cdn.example.invalid/lib.js'></script></head>"
        "<body><script>window.Bokeh = {documents: [1]};"
        "const c = document.createElement('canvas'); c.width = 10; c.height = 10;"
        "c.getContext('2d').fillRect(0, 0, 10, 10); document.body.appendChild(c);</script>"
        "</body></html>",
        encoding="utf-8",
    )
    seen = visit(page)
    assert seen.blocked == ["https://cdn.example.invalid/lib.js"]


def test_a_javascript_error_is_caught(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        "<html><body><script>window.Bokeh = {documents: [1]};"
        "const c = document.createElement('canvas'); c.width = 10; c.height = 10;"
        "c.getContext('2d').fillRect(0, 0, 10, 10); document.body.appendChild(c);</script>"
        "<script>undefinedFunction();</script></body></html>",
        encoding="utf-8",
    )
    seen = visit(page)
    assert any("undefinedFunction" in e for e in seen.errors), seen.errors
