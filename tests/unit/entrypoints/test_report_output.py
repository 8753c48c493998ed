"""The replay report's renderings: terminal table, summary.json, trades.csv and equity.png."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from application.report import PriceBars, ReplayInputs, ReplaySummary, summarize
from domain.position import ExitReason, OpenPosition, RoundTrip
from domain.values import Side
from entrypoints.report_output import (
    _CHART_BUCKETS,
    _decimate,
    format_summary,
    price,
    summary_json,
    trades_csv,
    trading_axis,
    usd,
    utc,
    write_equity_chart,
    write_report,
)

D = Decimal
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)

TRIPS = [
    RoundTrip(
        seq=1,
        side=Side.LONG,
        qty=2,
        entry_ts=T0,
        entry_price=D("5000.125"),
        exit_ts=T0 + timedelta(minutes=25),
        exit_price=D("5002.25"),
        exit_reason=ExitReason.TARGET,
        pnl_ticks=17,
        gross_pnl=D("21.25"),
        commissions=D("2.48"),
    ),
    RoundTrip(
        seq=2,
        side=Side.SHORT,
        qty=1,
        entry_ts=T0 + timedelta(days=1),
        entry_price=D("5010.00"),
        exit_ts=T0 + timedelta(days=1, minutes=5, microseconds=250000),
        exit_price=D("5012.50"),
        exit_reason=ExitReason.STOP,
        pnl_ticks=-10,
        gross_pnl=D("-12.50"),
        commissions=D("1.24"),
    ),
]
OPEN = OpenPosition(Side.SHORT, 1, D("5011.75"), T0 + timedelta(days=1, hours=2))


def summary_of(
    trips: Sequence[RoundTrip], final_position: OpenPosition | None = None
) -> ReplaySummary:
    return summarize(
        ReplayInputs(
            round_trips=trips,
            trade_dates=[date(2024, 3, 4), date(2024, 3, 5)],
            trade_date_of=lambda ts: ts.date(),
            bars_in=600,
            strategy_bars=120,
            breaker_trips=[(T0 + timedelta(hours=1), "max_consecutive_losses")],
            final_position=final_position,
            rows_refused={"nan": 2},
        )
    )


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (D("1.005"), "1.00"),  # half-even
        (D("1.015"), "1.02"),
        (D("-8.74"), "-8.74"),
        (D("-0.004"), "0.00"),  # no "-0.00"
        (D(3), "3.00"),
        (D(10) / D(3), "3.33"),
    ],
)
def test_dollars_render_with_two_decimals(amount: Decimal, text: str) -> None:
    assert usd(amount) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("5000"), "5000.00"),
        (D("5000.25"), "5000.25"),
        (D("5000.125"), "5000.125"),
        (D(15001) / D(3), "5000.333333"),
    ],
)
def test_prices_render_with_two_to_six_decimals(value: Decimal, text: str) -> None:
    assert price(value) == text


def test_times_render_as_utc_with_z() -> None:
    eastern = datetime(2024, 3, 4, 9, 30, tzinfo=ZoneInfo("America/New_York"))
    assert utc(eastern) == "2024-03-04T14:30:00Z"
    assert utc(T0 + timedelta(microseconds=5)) == "2024-03-04T14:30:00.000005Z"


def test_summary_json_has_the_documented_keys_and_values() -> None:
    document = json.loads(summary_json(summary_of(TRIPS)))
    assert {
        "bars_in",
        "strategy_bars",
        "round_trips",
        "net_pnl_usd",
        "commissions_usd",
        "max_drawdown_usd",
        "win_rate",
        "profit_factor",
        "final_position",
        "expectancy_usd",
        "sharpe_daily",
        "sortino_daily",
        "max_losing_streak",
        "by_exit_reason",
        "breaker_trips",
        "breaker_trips_by_rule",
        "rows_refused",
    } <= document.keys()
    # nets: +18.77 then -13.74
    assert document["net_pnl_usd"] == "5.03"
    assert document["commissions_usd"] == "3.72"
    assert document["max_drawdown_usd"] == "13.74"
    assert document["win_rate"] == 0.5
    assert document["profit_factor"] == round(18.77 / 13.74, 6)
    assert document["final_position"] is None
    assert document["by_exit_reason"]["stop"] == {
        "trades": 1,
        "wins": 0,
        "losses": 1,
        "net_pnl_usd": "-13.74",
    }
    assert document["breaker_trips_by_rule"] == {"max_consecutive_losses": 1}
    assert document["last_trade_at"] == "2024-03-05T14:35:00.250000Z"


def test_summary_json_floats_are_rounded_to_six_decimals() -> None:
    document = json.loads(summary_json(summary_of(TRIPS)))
    for key in ("win_rate", "profit_factor", "sharpe_daily", "sortino_daily"):
        value = document[key]
        assert value is None or round(value, 6) == value, key


def test_summary_json_shows_an_open_position_without_counting_it() -> None:
    document = json.loads(summary_json(summary_of(TRIPS, final_position=OPEN)))
    assert document["final_position"] == {
        "side": "SHORT",
        "qty": 1,
        "avg_price": "5011.75",
        "opened_at": "2024-03-05T16:30:00Z",
    }
    assert document["net_pnl_usd"] == "5.03"


def test_summary_json_is_sorted_indented_and_newline_terminated() -> None:
    text = summary_json(summary_of(TRIPS))
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"


def test_trades_csv_has_one_row_per_round_trip() -> None:
    assert trades_csv(reversed(TRIPS)) == (
        "seq,side,qty,entry_time,entry_price,exit_time,exit_price,exit_reason,pnl_ticks,"
        "gross_pnl_usd,commissions_usd,net_pnl_usd,held_seconds,entry_z,stop_price,"
        "target_price,mae_usd,mfe_usd\n"
        "1,LONG,2,2024-03-04T14:30:00Z,5000.125,2024-03-04T14:55:00Z,5002.25,target,17,"
        "21.25,2.48,18.77,1500,,,,,\n"
        "2,SHORT,1,2024-03-05T14:30:00Z,5010.00,2024-03-05T14:35:00.250000Z,5012.50,stop,-10,"
        "-12.50,1.24,-13.74,300,,,,,\n"
    )


def test_write_report_writes_three_files_into_a_new_directory(tmp_path: Path) -> None:
    directory = tmp_path / "reports" / "run-1"
    paths = write_report(directory, summary_of(TRIPS), TRIPS)
    assert paths == [directory / "summary.json", directory / "trades.csv", directory / "equity.png"]
    assert paths[0].read_text(encoding="utf-8") == summary_json(summary_of(TRIPS))
    assert paths[1].read_bytes() == trades_csv(TRIPS).encode()
    png = paths[2].read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 1000


def test_write_report_is_byte_identical_for_identical_input(tmp_path: Path) -> None:
    first = write_report(tmp_path / "a", summary_of(TRIPS, OPEN), TRIPS)
    second = write_report(tmp_path / "b", summary_of(TRIPS, OPEN), TRIPS)
    for one, other in zip(first[:2], second[:2], strict=True):
        assert one.read_bytes() == other.read_bytes()
    assert b"\r\n" not in first[1].read_bytes()


def test_write_report_overwrites_an_existing_report(tmp_path: Path) -> None:
    write_report(tmp_path, summary_of(TRIPS), TRIPS)
    write_report(tmp_path, summary_of([]), [])
    assert (tmp_path / "trades.csv").read_text(encoding="utf-8").count("\n") == 1


@pytest.mark.parametrize(
    "trips",
    [
        [],
        [TRIPS[0]],
        # a trade opened and closed at the same instant: the chart's time axis has no width
        [
            RoundTrip(
                1, Side.LONG, 1, T0, D("5000"), T0, D("5000"), ExitReason.OPERATOR, 0, D(0), D(0)
            )
        ],
    ],
)
def test_report_works_with_few_trades(tmp_path: Path, trips: list[RoundTrip]) -> None:
    summary = summary_of(trips)
    paths = write_report(tmp_path, summary, trips)
    assert paths[2].read_bytes().startswith(PNG_SIGNATURE)
    document = json.loads(paths[0].read_text(encoding="utf-8"))
    assert document["round_trips"] == len(trips)
    rows = paths[1].read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + len(trips)


def test_zero_trade_report_renders_undefined_metrics_as_null() -> None:
    document = json.loads(summary_json(summary_of([], final_position=OPEN)))
    assert document["round_trips"] == 0
    assert document["net_pnl_usd"] == "0.00"
    assert document["max_drawdown_usd"] == "0.00"
    assert (document["win_rate"], document["profit_factor"], document["sharpe_daily"]) == (
        None,
        None,
        None,
    )
    assert document["first_trade_at"] is None
    assert document["final_position"]["side"] == "SHORT"


def test_format_summary_shows_every_section() -> None:
    table = format_summary(summary_of(TRIPS, final_position=OPEN))
    for heading in (
        "Overview",
        "P&L (USD, net of commissions)",
        "Risk ratios",
        "By exit reason",
        "Breaker trips: 1",
        "Final position",
        "Refused input rows: 2",
    ):
        assert f"\n{heading}\n" in table
    lines = table.splitlines()
    assert any(line.split() == ["Net", "P&L", "5.03"] for line in lines)
    assert any(line.split() == ["Win", "rate", "50.00%"] for line in lines)
    assert any(line.split() == ["stop", "1", "0", "1", "-13.74"] for line in lines)
    assert "SHORT 1 @ 5011.75 since 2024-03-05T16:30:00Z" in table


def test_format_summary_without_trades_says_so() -> None:
    table = format_summary(summary_of([]))
    lines = table.splitlines()
    assert any(line.split() == ["Profit", "factor", "n/a"] for line in lines)
    assert "(no round trips)" in table
    assert any(line.strip() == "flat" for line in lines)


def test_chart_decimation_keeps_every_bucket_extreme_in_time_order() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    values = [Decimal((i * 7919) % 1000) - 500 for i in range(50_000)]
    values[12_345] = Decimal(-10_000)  # the deepest trough must survive
    values[40_000] = Decimal(10_000)  # and the highest peak
    points = [(start + timedelta(minutes=i), v) for i, v in enumerate(values)]
    kept = _decimate(points)
    assert len(kept) <= 4 * _CHART_BUCKETS
    assert kept[0] == points[0]
    assert kept[-1] == points[-1]
    assert [t for t, _ in kept] == sorted(t for t, _ in kept)
    assert min(v for _, v in kept) == Decimal(-10_000)
    assert max(v for _, v in kept) == Decimal(10_000)
    short = points[:100]
    assert _decimate(short) == short


def test_equity_chart_with_many_trades_is_written(tmp_path: Path) -> None:
    start = datetime(2030, 1, 7, tzinfo=UTC)
    trips = [
        RoundTrip(
            seq=i,
            side=Side.LONG,
            qty=1,
            entry_ts=start + timedelta(minutes=10 * i),
            entry_price=Decimal(5000),
            exit_ts=start + timedelta(minutes=10 * i + 5),
            exit_price=Decimal(5000),
            exit_reason=ExitReason.SIGNAL,
            pnl_ticks=(i * 37) % 11 - 5,
            gross_pnl=Decimal("1.25") * ((i * 37) % 11 - 5),
            commissions=Decimal("1.24"),
        )
        for i in range(1, 20_001)
    ]
    path = tmp_path / "equity.png"
    write_equity_chart(path, trips)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trading_time_gives_a_gap_between_sessions_no_room() -> None:
    """Ten bars in 2012 and ten in 2013: a point after each session's fifth bar sits five bars
    into that session, whatever the calendar time between them."""
    first = int(datetime(2012, 1, 3, 14, 30, tzinfo=UTC).timestamp())
    second = int(datetime(2013, 1, 3, 14, 30, tzinfo=UTC).timestamp())
    starts = [first + 60 * i for i in range(10)] + [second + 60 * i for i in range(10)]
    prices = PriceBars(starts, 60, [1.0] * 20, [1.0] * 20, [1.0] * 20, [1.0] * 20)
    points = [
        datetime.fromtimestamp(first + 4 * 60 + 30, UTC),
        datetime.fromtimestamp(second + 4 * 60 + 30, UTC),
    ]
    xs, ticks, labels, title = trading_axis(points, prices)
    assert xs == [5, 15]
    assert ticks == [0, 10]
    assert labels == ["2012-01-03", "2013-01-03"]
    assert "trading time" in title


def test_the_equity_chart_takes_the_bars_for_its_axis(tmp_path: Path) -> None:
    start = int(TRIPS[0].entry_ts.timestamp())
    prices = PriceBars([start, start + 86400 * 30], 60, [1.0] * 2, [1.0] * 2, [1.0] * 2, [1.0] * 2)
    path = tmp_path / "equity.png"
    write_equity_chart(path, TRIPS, prices)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
