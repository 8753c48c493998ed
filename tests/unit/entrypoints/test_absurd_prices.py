"""Absurd prices do not trade (issue 12 item 4): a row at 99999.75 or 1e20 in the sample is refused
and counted by reason, and the replay is the clean sample's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entrypoints.cli import EXIT_OK, main

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"
CONFIG = ROOT / "config" / "sample.yaml"


def _summary(tmp_path: Path, csv: Path, name: str) -> dict[str, object]:
    report = tmp_path / name
    assert main(["replay", str(csv), "--config", str(CONFIG), "--report", str(report)]) == EXIT_OK
    summary: dict[str, object] = json.loads((report / "summary.json").read_text())
    return summary


@pytest.mark.parametrize(
    ("price", "reason"),
    [("99999.75", "price_range"), ("1e20", "price_range"), ("2500.00", "price_jump")],
)
def test_one_absurd_row_in_the_sample_is_refused_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], price: str, reason: str
) -> None:
    lines = SAMPLE.read_text().splitlines(keepends=True)
    # A row in the middle of a trading day: the close (and the high) at the absurd price.
    row = lines[3000].rstrip("\n").split(",")
    ts, open_, _high, low, _close, volume = row[:6]
    lines[3000] = f"{ts},{open_},{price},{low},{price},{volume}\n"
    bad = tmp_path / "bad.csv"
    bad.write_text("".join(lines))
    lines.pop(3000)
    clean = tmp_path / "clean.csv"
    clean.write_text("".join(lines))

    refused = _summary(tmp_path, bad, "bad")
    expected = _summary(tmp_path, clean, "clean")
    capsys.readouterr()

    assert refused["rows_refused"] == {reason: 1}
    for key in ("round_trips", "net_pnl_usd", "max_drawdown_usd", "bars_in"):
        assert refused[key] == expected[key], key
