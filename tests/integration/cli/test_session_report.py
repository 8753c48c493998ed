"""``report --session``: the round trips of exactly one CME trade date (by exit time, sessions opening
at 18:00 New York time the evening before, weekends on Monday), with that session's breaker events,
recorded bars and the position left open at its end; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from domain.calendar import cme_trade_date
from domain.circuit_breaker import BreakerReset, BreakerRule, BreakerTripped
from domain.commands import BreakerRecord, FillRecord, RoundTripRecord
from domain.position import ExitReason, RoundTrip
from domain.values import Action, Side
from entrypoints.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, main
from entrypoints.report_output import trades_csv, usd
from tests.integration.cli.journal_store import Store, error_lines
from tests.support.builders import bar, fill

ET = ZoneInfo("America/New_York")


def et(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=ET).astimezone(UTC)


def trip(seq: int, exit_ts: datetime, ticks: int) -> RoundTrip:
    return RoundTrip(
        seq=seq,
        side=Side.LONG if ticks >= 0 else Side.SHORT,
        qty=1,
        entry_ts=exit_ts - timedelta(minutes=20),
        entry_price=Decimal("5000.25"),
        exit_ts=exit_ts,
        exit_price=Decimal("5000.25") + Decimal("0.25") * abs(ticks),
        exit_reason=ExitReason.SIGNAL,
        pnl_ticks=ticks,
        gross_pnl=Decimal("1.25") * ticks,
        commissions=Decimal("1.24"),
    )


# Exits around the 18:00 New York boundary, and a weekend across the 2025-03-09 DST change.
TRIPS = [
    trip(1, et(2025, 3, 3, 17, 59, 59), 4),
    trip(2, et(2025, 3, 3, 18, 0), -3),  # the 18:00 open: the next trade date
    trip(3, et(2025, 3, 4, 17, 30), 8),  # in the 17:00-18:00 halt, before the open: that date
    trip(4, et(2025, 3, 4, 17, 59, 59), -2),
    trip(5, et(2025, 3, 4, 18, 0), 1),
    trip(6, et(2025, 3, 7, 17, 0), 3),  # Friday
    trip(7, et(2025, 3, 7, 18, 30), 2),  # Friday evening: Monday's session
    trip(8, et(2025, 3, 9, 19, 0), -5),  # Sunday evening (EDT now): Monday's session
]

SESSIONS = {
    "2025-03-03": [1],
    "2025-03-04": [2, 3, 4],
    "2025-03-05": [5],
    "2025-03-07": [6],
    "2025-03-10": [7, 8],
}


def test_the_table_agrees_with_the_domains_trade_date_rule() -> None:
    for session, seqs in SESSIONS.items():
        day = date.fromisoformat(session)
        assert [t.seq for t in TRIPS if cme_trade_date(t.exit_ts) == day] == seqs, session


def test_a_session_report_selects_exactly_its_trade_dates_round_trips(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store.journal(RoundTripRecord(t) for t in TRIPS)
    for session, seqs in SESSIONS.items():
        folder = tmp_path / session
        argv = ["report", "--session", session, "--config", str(store.config)]
        assert main([*argv, "--report", str(folder)]) == EXIT_OK, session
        out = capsys.readouterr().out
        expected = [t for t in TRIPS if t.seq in seqs]
        assert (folder / "trades.csv").read_text() == trades_csv(expected), session
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["round_trips"] == len(seqs), session
        net = sum((t.net_pnl for t in expected), Decimal(0))
        assert summary["net_pnl_usd"] == usd(net), session
        assert summary["daily_pnl_usd"] == {session: usd(net)}, session
        assert f"Session {session} summary" in out
        shown = re.search(r"^  Round trips +(\d+)$", out, re.MULTILINE)
        assert shown is not None
        assert shown.group(1) == str(len(seqs)), session


def test_a_session_report_shows_its_breaker_events_bars_and_open_position(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tripped = BreakerTripped(
        BreakerRule.CONSECUTIVE_LOSSES,
        et(2025, 3, 4, 11, 0),
        "3 losses in a row",
        until=et(2025, 3, 4, 11, 30),
    )
    reset = BreakerReset(et(2025, 3, 3, 18, 0), "session_open")
    next_session = BreakerTripped(BreakerRule.DAILY_LOSS, et(2025, 3, 4, 18, 0), "-200.00")
    opening = fill("QS-1-entry", Action.BUY, "5001.25", at=et(2025, 3, 4, 16, 0))
    # 72 five-second bars: the first 60 make one 5-minute strategy bar, the rest an open bucket.
    bars = [bar(et(2025, 3, 4, 10, 0) + timedelta(seconds=5 * i), seconds=5) for i in range(72)]
    store.journal(
        [
            *(RoundTripRecord(t) for t in TRIPS),
            BreakerRecord(reset),
            BreakerRecord(tripped),
            BreakerRecord(next_session),
            FillRecord(opening, "entry"),
        ],
        [("MESM5", b) for b in bars],
    )
    folder = tmp_path / "report"
    argv = ["report", "--session", "2025-03-04", "--config", str(store.config)]
    assert main([*argv, "--report", str(folder)]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith(
        "Session 2025-03-04: CME trade date from 2025-03-03 18:00 to 2025-03-04 18:00 New York "
        "time (2025-03-03T23:00:00Z to 2025-03-04T23:00:00Z)\n"
    )
    assert out.index("Breaker events: 2\n") > out.index("Final position")
    assert "  2025-03-03T23:00:00Z  reset: session_open\n" in out
    assert (
        "  2025-03-04T16:00:00Z  tripped consecutive_losses until 2025-03-04T16:30:00Z: "
        "3 losses in a row\n"
    ) in out
    assert "daily_loss" not in out
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["breaker_trip_log"] == [
        {"time": "2025-03-04T16:00:00Z", "rule": "consecutive_losses"}
    ]
    assert summary["bars_in"] == 72
    assert summary["strategy_bars"] == 1
    assert summary["final_position"] == {
        "side": "LONG",
        "qty": 1,
        "avg_price": "5001.25",
        "opened_at": "2025-03-04T21:00:00Z",
    }
    assert (folder / "equity.png").read_bytes()[:4] == b"\x89PNG"

    # The session before ended flat: the entry came after it.
    assert main(["report", "--session", "2025-03-03", "--config", str(store.config)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "Breaker events: 0\n" in out
    assert "  flat\n" in out


def test_a_session_with_nothing_journaled_is_one_line(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    store.journal(RoundTripRecord(t) for t in TRIPS)
    argv = ["report", "--session", "2025-03-12", "--config", str(store.config)]
    assert main(argv) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = error_lines(captured.err)
    assert len(lines) == 1
    assert lines[0].startswith("error: nothing journaled for trade date 2025-03-12 in ")


def test_an_unwritable_report_folder_is_one_line(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store.journal(RoundTripRecord(t) for t in TRIPS)
    (tmp_path / "a-file").write_text("")
    folder = tmp_path / "a-file" / "report"
    argv = ["report", "--session", "2025-03-04", "--config", str(store.config)]
    assert main([*argv, "--report", str(folder)]) == EXIT_USAGE
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert lines[0].startswith(f"error: --report {folder}: cannot write: ")


def test_a_range_of_sessions_selects_the_round_trips_of_those_trade_dates(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store.journal(RoundTripRecord(t) for t in TRIPS)
    folder = tmp_path / "range"
    argv = ["report", "--from", "2025-03-04", "--to", "2025-03-07", "--config", str(store.config)]
    assert main([*argv, "--report", str(folder)]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("Sessions 2025-03-04 to 2025-03-07: CME trade dates 2025-03-04 to ")
    expected = [t for t in TRIPS if t.seq in (2, 3, 4, 5, 6)]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["round_trips"] == 5
    assert summary["net_pnl_usd"] == usd(sum((t.net_pnl for t in expected), Decimal(0)))
    assert list(summary["daily_pnl_usd"]) == ["2025-03-04", "2025-03-05", "2025-03-07"]
    assert (folder / "report.html").stat().st_size > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "2025-03-07"], "report needs --session D, or both --from D1 and --to D2"),
        (["--from", "2025-03-07", "--to", "2025-03-04"], "--to 2025-03-04 is before --from"),
        (["--session", "2025-03-07", "--to", "2025-03-10"], "--to goes with --from"),
        (["--from", "2025-03-08", "--to", "2025-03-10"], "--from 2025-03-08 is a Saturday"),
    ],
)
def test_a_bad_range_is_one_line(
    store: Store, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", *argv, "--config", str(store.config)]) == EXIT_USAGE
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert message in lines[0]


def test_a_journaled_run_reports_as_its_replay_does(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sample's replay journaled as a daemon journals (records and bars): report --from/--to
    over its trade dates gives the replay's figures and trades, MAE/MFE included."""
    from tests.integration.cli.journal_store import SAMPLE, SAMPLE_CONFIG, sample_replay

    result = sample_replay()
    store.journal(result.journal.records, [("ESZ3", b) for b in result.series.bars()])
    replayed, journaled = tmp_path / "replay", tmp_path / "journal"
    replay_argv = ["replay", str(SAMPLE), "--config", str(SAMPLE_CONFIG), "--no-progress"]
    assert main([*replay_argv, "--report", str(replayed)]) == EXIT_OK
    argv = ["report", "--from", "2013-10-07", "--to", "2013-10-15", "--config", str(store.config)]
    assert main([*argv, "--report", str(journaled)]) == EXIT_OK
    capsys.readouterr()
    ours, theirs = (json.loads((d / "summary.json").read_text()) for d in (journaled, replayed))
    for key in (
        "round_trips",
        "net_pnl_usd",
        "max_drawdown",
        "daily_pnl_usd",
        "long",
        "short",
        "sqn",
        "hold_seconds",
        "first_bar_at",
        "last_bar_at",
        "market_change",
        "final_position",
        "final_unrealized_usd",
    ):
        assert ours[key] == theirs[key], key
    assert (journaled / "trades.csv").read_text() == (replayed / "trades.csv").read_text()
    assert (journaled / "report.html").stat().st_size > 0
