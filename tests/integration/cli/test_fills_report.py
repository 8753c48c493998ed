"""``fills --from-db``: every journaled fill beside its bar and its aim (issue 16 item 6), on the
shipped sample's journal (next-open fills: an entry pays the gap from the signal close)."""

from __future__ import annotations

import csv
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from domain.commands import FillRecord, OrderIntentRecord, SignalAction, SignalRecord
from domain.values import Action
from entrypoints.cli import EXIT_BAD_INPUT, EXIT_OK, main
from tests.integration.cli.journal_store import Store, error_lines, sample_replay

TICK = Decimal("0.25")


def _journal_sample(store: Store) -> list[FillRecord]:
    result = sample_replay()
    store.journal(result.journal.records, [("ESZ3", bar) for bar in result.series.bars()])
    return [r for r in result.journal.records if isinstance(r, FillRecord)]


def test_every_fill_is_set_beside_its_bar_and_its_aim(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fills = _journal_sample(store)
    out_csv = tmp_path / "fills.csv"
    capsys.readouterr()
    code = main(["fills", "--from-db", "--config", str(store.config), "--csv", str(out_csv)])
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    assert error_lines(err) == []
    assert out.startswith(f"Paper-fill realism: {len(fills)} fills")
    for title in ("by side", "by role", "by hour (New York)"):
        assert title in out
    with out_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(fills)
    assert all(row["bar_start"] for row in rows)  # every sample fill found its recorded bar
    by_exec = {row["exec_id"]: row for row in rows}

    # The first entry, worked out by hand: next-open fill against its signal bar's close.
    records = sample_replay().journal.records
    entry = next(r for r in fills if r.role == "entry")
    intent = next(
        r for r in records if isinstance(r, OrderIntentRecord) and r.key == entry.fill.order_key
    )
    signal = next(
        r
        for r in records
        if isinstance(r, SignalRecord) and r.action is SignalAction.ENTER and r.ts == intent.ts
    )
    close = Decimal(repr(signal.close))
    cost = entry.fill.price - close if entry.fill.action is Action.BUY else close - entry.fill.price
    row = by_exec[entry.fill.exec_id]
    assert row["reference_kind"] == "signal close"
    assert Decimal(row["reference"]) == close
    assert Decimal(row["slippage_ticks"]) == cost / TICK
    # A stop fills at its price or worse (a gap through it), never better.
    stops = [r for r in rows if r["role"] == "stop"]
    assert len(stops) == 2
    assert all(r["reference_kind"] == "stop price" for r in stops)
    assert all(Decimal(r["slippage_ticks"]) >= 0 for r in stops)
    assert "No fill was at a price outside its bar's range." in out


def test_a_fill_at_a_price_its_bar_never_traded_is_called_optimistic(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    result = sample_replay()
    fills = [r for r in result.journal.records if isinstance(r, FillRecord)]
    entry = next(r for r in fills if r.role == "entry" and r.fill.action is Action.BUY)
    bar = next(
        b for b in result.series.bars() if b.epoch <= entry.fill.ts.timestamp() <= b.end_epoch
    )
    dreamt = replace(
        entry,
        fill=replace(entry.fill, exec_id="paper-dream", price=Decimal(repr(bar.low)) - 2 * TICK),
    )
    records = [dreamt if r is entry else r for r in result.journal.records]
    store.journal(records, [("ESZ3", b) for b in result.series.bars()])
    capsys.readouterr()
    assert main(["fills", "--from-db", "--config", str(store.config)]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"1 of {len(fills)} fills were at prices the market never offered" in out


def test_an_empty_journal_says_so(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fills", "--from-db", "--config", str(store.config)]) == EXIT_BAD_INPUT
    assert error_lines(capsys.readouterr().err) == [
        "error: the journal store holds no fills in that window"
    ]
