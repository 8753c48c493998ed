"""``quant-scalper montecarlo`` on the shipped sample's trades: the table and montecarlo.json, the
same bytes for the same seed, the observed figures equal to the replay's summary, and the journal
store's round trips (``--from-db``, SQLite and PostgreSQL) giving what the trades file gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entrypoints.cli import EXIT_BAD_INPUT, EXIT_OK, main
from tests.integration.cli.command import run_command
from tests.integration.cli.journal_store import SAMPLE, SAMPLE_CONFIG, Store, sample_replay


@pytest.fixture(scope="module")
def sample_trades(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """trades.csv of ``quant-scalper replay`` on the shipped sample (70 round trips)."""
    folder = tmp_path_factory.mktemp("replay") / "report"
    argv = ["replay", str(SAMPLE), "--config", str(SAMPLE_CONFIG), "--report", str(folder)]
    assert main([*argv, "--no-progress"]) == EXIT_OK
    return folder / "trades.csv"


def test_the_command_prints_a_table_and_writes_the_same_json_for_the_same_seed(
    sample_trades: Path, tmp_path: Path
) -> None:
    args = ["montecarlo", "--trades", str(sample_trades), "--config", str(SAMPLE_CONFIG)]
    code, errors = run_command(
        *args, "--paths", "2000", "--seed", "5", "--out", str(tmp_path / "a")
    )
    assert (code, errors) == (EXIT_OK, [])
    code, _ = run_command(*args, "--paths", "2000", "--seed", "5", "--out", str(tmp_path / "b"))
    assert code == EXIT_OK
    code, _ = run_command(*args, "--paths", "2000", "--seed", "6", "--out", str(tmp_path / "c"))
    assert code == EXIT_OK
    first = (tmp_path / "a" / "montecarlo.json").read_bytes()
    assert (tmp_path / "b" / "montecarlo.json").read_bytes() == first
    other = json.loads((tmp_path / "c" / "montecarlo.json").read_bytes())
    document = json.loads(first)
    assert other["trade_bootstrap"] != document["trade_bootstrap"]

    summary = sample_replay().summary
    assert document["trades"] == summary.round_trips == 70
    assert document["trade_days"] == summary.trading_days
    assert document["observed"] == {
        "final_pnl_usd": str(summary.net_pnl_usd),
        "max_drawdown_usd": str(summary.max_drawdown_usd),
        "days_at_daily_loss": 0,
        "longest_losing_streak": summary.max_losing_streak,
    }
    assert document["limits"] == {"max_daily_loss_usd": "200.00", "max_consecutive_losses": 3}
    assert document["paths"] == 2000
    for method in ("trade_bootstrap", "daily_block_bootstrap"):
        stats = document[method]
        finals = [float(v) for v in stats["final_pnl_usd"].values()]
        assert finals == sorted(finals)
        assert 0 <= stats["p_final_loss"] <= 1
        assert 0 <= stats["p_losing_streak"] <= 1


def test_the_table_names_both_methods_and_the_limits(
    sample_trades: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["montecarlo", "--trades", str(sample_trades), "--config", str(SAMPLE_CONFIG)]
    assert main([*argv, "--paths", "500", "--out", str(tmp_path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith(f"Monte Carlo of 70 round trips over 7 trade days ({sample_trades})\n")
    assert "observed: net P&L -43.05, max drawdown 97.13, longest losing streak 3" in out
    assert "P(a day at max_daily_loss 200.00)" in out
    assert "P(3 losing trades in a row)" in out
    assert out.rstrip().endswith(f"written: {tmp_path / 'montecarlo.json'}")


def test_the_journal_stores_round_trips_give_what_the_trades_file_gives(
    store: Store, sample_trades: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store.journal(sample_replay().journal.records)
    common = ["--paths", "1000", "--block", "3", "--seed", "11", "--config", str(store.config)]
    assert main(["montecarlo", "--from-db", *common, "--out", str(tmp_path / "db")]) == EXIT_OK
    argv = ["montecarlo", "--trades", str(sample_trades), *common, "--out", str(tmp_path / "f")]
    assert main(argv) == EXIT_OK
    from_db = json.loads((tmp_path / "db" / "montecarlo.json").read_text())
    from_file = json.loads((tmp_path / "f" / "montecarlo.json").read_text())
    assert from_db.pop("source") == "--from-db"
    assert from_file.pop("source") == str(sample_trades)
    assert from_db == from_file
    # A window without round trips is input that cannot be used.
    capsys.readouterr()
    window = ["--start", "2001-01-01", "--end", "2001-01-02", "--config", str(store.config)]
    assert main(["montecarlo", "--from-db", *window, "--out", str(tmp_path)]) == EXIT_BAD_INPUT
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("error: the journal store holds no round trips in that window")
    )
