"""Position: FIFO P&L in whole ticks, round trips, flips, commission splits, open P&L, snapshots."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.position import ExitReason, Fill, OpenPosition, Position, RoundTrip
from domain.values import MES, Action, OffTickError, Side

T0 = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)
BUY, SELL = Action.BUY, Action.SELL

_seq = iter(range(10**9))


def fill(
    action: Action,
    qty: int,
    price: str,
    *,
    minute: int = 0,
    commission: str = "0.62",
    per_contract: bool = True,
) -> Fill:
    """A fill; ``commission`` is per contract unless ``per_contract`` is False."""
    c = Decimal(commission) * qty if per_contract else Decimal(commission)
    n = next(_seq)
    return Fill(f"x{n}", f"k{n}", action, qty, Decimal(price), T0 + timedelta(minutes=minute), c)


def book(*fills: Fill, reason: ExitReason = ExitReason.SIGNAL) -> tuple[Position, list[RoundTrip]]:
    position = Position(MES)
    trips: list[RoundTrip] = []
    for f in fills:
        trips += position.apply(f, reason)
    return position, trips


# ---------------------------------------------------------------- single round trips

# side, entry action, entry price, exit price, pnl_ticks
SIMPLE = [
    ("long win", BUY, "5000", "5002.50", 10),
    ("long loss", BUY, "5000", "4998.75", -5),
    ("long scratch", BUY, "5000", "5000", 0),
    ("short win", SELL, "5000", "4997.50", 10),
    ("short loss", SELL, "5000", "5001.25", -5),
    ("short scratch", SELL, "5000", "5000", 0),
]


@pytest.mark.parametrize(
    ("entry_action", "entry", "exit_", "ticks"), [c[1:] for c in SIMPLE], ids=[c[0] for c in SIMPLE]
)
def test_a_one_lot_round_trip_books_pnl_in_ticks(
    entry_action: Action, entry: str, exit_: str, ticks: int
) -> None:
    exit_action = SELL if entry_action is BUY else BUY
    position, trips = book(
        fill(entry_action, 1, entry, minute=0),
        fill(exit_action, 1, exit_, minute=7),
        reason=ExitReason.TARGET,
    )
    assert position.is_flat
    assert position.side is None
    assert position.snapshot() is None
    assert position.commissions_paid == 0
    [trip] = trips
    assert trip.side is (Side.LONG if entry_action is BUY else Side.SHORT)
    assert trip.qty == 1
    assert trip.seq == 1
    assert trip.entry_ts == T0
    assert trip.exit_ts == T0 + timedelta(minutes=7)
    assert trip.entry_price == Decimal(entry)
    assert trip.exit_price == Decimal(exit_)
    assert trip.exit_reason is ExitReason.TARGET
    assert trip.pnl_ticks == ticks
    assert trip.gross_pnl == Decimal("1.25") * ticks
    assert trip.commissions == Decimal("1.24")
    assert trip.net_pnl == Decimal("1.25") * ticks - Decimal("1.24")
    assert trip.is_loss is (trip.net_pnl < 0)


def test_a_scratch_trade_loses_its_commissions() -> None:
    _, [trip] = book(fill(BUY, 2, "5000"), fill(SELL, 2, "5000"))
    assert trip.pnl_ticks == 0
    assert trip.gross_pnl == 0
    assert trip.net_pnl == Decimal("-2.48")
    assert trip.is_loss


def test_a_free_scratch_trade_is_not_a_loss() -> None:
    _, [trip] = book(fill(BUY, 1, "5000", commission="0"), fill(SELL, 1, "5000", commission="0"))
    assert trip.net_pnl == 0
    assert not trip.is_loss


def test_a_one_tick_win_smaller_than_commissions_is_a_loss() -> None:
    _, [trip] = book(fill(SELL, 1, "5000"), fill(BUY, 1, "4999.75", commission="1"))
    assert trip.pnl_ticks == 1
    assert trip.gross_pnl == Decimal("1.25")
    assert trip.commissions == Decimal("1.62")
    assert trip.net_pnl == Decimal("-0.37")
    assert trip.is_loss


# ---------------------------------------------------------------- multiple entries, partial exits


def test_long_fifo_with_scale_in_and_partial_exits() -> None:
    position = Position(MES)
    assert position.apply(fill(BUY, 2, "5000", minute=0), ExitReason.SIGNAL) == []
    assert position.apply(fill(BUY, 1, "5001", minute=1), ExitReason.SIGNAL) == []
    assert (position.side, position.qty, position.signed_qty) == (Side.LONG, 3, 3)
    # FIFO: the first sell closes one lot of the 5000 entry (+4 ticks).
    assert position.apply(fill(SELL, 1, "5001", minute=2), ExitReason.SIGNAL) == []
    assert position.qty == 2
    assert position.opened_at == T0
    # Then one more of the 5000 lot (+8 ticks) and the 5001 lot (+4 ticks).
    [trip] = position.apply(fill(SELL, 2, "5002", minute=3), ExitReason.STOP)
    assert trip.pnl_ticks == 4 + 8 + 4
    assert trip.qty == 3
    assert trip.entry_price == (Decimal(5000) * 2 + Decimal(5001)) / 3
    assert trip.exit_price == (Decimal(5001) + Decimal(5002) * 2) / 3
    assert trip.gross_pnl == Decimal(20)
    assert trip.commissions == Decimal("0.62") * 6
    assert trip.exit_reason is ExitReason.STOP
    assert trip.entry_ts == T0
    assert trip.exit_ts == T0 + timedelta(minutes=3)
    assert position.is_flat


def test_short_fifo_matches_the_oldest_lot_first() -> None:
    # Short 1 @ 5000, add 1 @ 5010, cover 1 @ 5005: FIFO closes the 5000 lot (-20 ticks), leaving
    # the 5010 lot open; average-cost matching would say -0 ticks here.
    position, trips = book(fill(SELL, 1, "5000"), fill(SELL, 1, "5010"), fill(BUY, 1, "5005"))
    assert trips == []
    assert position.open_pnl(5005.0) == Decimal("1.25") * 20  # the 5010 lot is 20 ticks up
    [trip] = position.apply(fill(BUY, 1, "5005"), ExitReason.SIGNAL)
    assert trip.pnl_ticks == -20 + 20
    assert trip.side is Side.SHORT
    assert trip.entry_price == Decimal(5005)
    assert trip.exit_price == Decimal(5005)


def test_scale_back_in_after_a_partial_exit() -> None:
    _, [trip] = book(
        fill(BUY, 2, "100"),
        fill(SELL, 1, "101"),  # +4 ticks from the first 100 lot
        fill(BUY, 1, "102"),
        fill(SELL, 2, "103"),  # the remaining 100 lot (+12) then the 102 lot (+4)
    )
    assert trip.pnl_ticks == 4 + 12 + 4
    assert trip.qty == 3
    assert trip.entry_price == Decimal(302) / 3
    assert trip.exit_price == Decimal(307) / 3


@st.composite
def long_histories(draw: st.DrawFn) -> list[tuple[Action, int, int]]:
    """Random buys and sells (qty, price in ticks) that never go short and end flat."""
    steps: list[tuple[Action, int, int]] = []
    held = 0
    for _ in range(draw(st.integers(min_value=1, max_value=12))):
        price = draw(st.integers(min_value=19_000, max_value=21_000))
        if held and draw(st.booleans()):
            qty = draw(st.integers(min_value=1, max_value=held))
            steps.append((SELL, qty, price))
            held -= qty
        else:
            qty = draw(st.integers(min_value=1, max_value=5))
            steps.append((BUY, qty, price))
            held += qty
    if held:
        steps.append((SELL, held, draw(st.integers(min_value=19_000, max_value=21_000))))
    return steps


@given(long_histories())
def test_pnl_equals_sells_minus_buys_whatever_the_order_of_partial_fills(
    steps: list[tuple[Action, int, int]],
) -> None:
    # Once back to flat, FIFO P&L must equal proceeds minus cost, split at every return to flat.
    position = Position(MES)
    trips: list[RoundTrip] = []
    expected: list[int] = []
    cash = 0
    held = 0
    for action, qty, ticks in steps:
        trips += position.apply(
            Fill("x", "k", action, qty, MES.price(ticks), T0, Decimal(0)), ExitReason.SIGNAL
        )
        cash += qty * ticks * (-1 if action is BUY else 1)
        held += qty if action is BUY else -qty
        if held == 0:
            expected.append(cash)
            cash = 0
    assert [t.pnl_ticks for t in trips] == expected
    assert position.is_flat
    assert [t.seq for t in trips] == list(range(1, len(trips) + 1))


# ---------------------------------------------------------------- flips through zero


def test_a_fill_larger_than_the_position_closes_it_and_opens_the_other_side() -> None:
    position = Position(MES)
    position.apply(fill(BUY, 2, "5000", minute=0), ExitReason.SIGNAL)
    [trip] = position.apply(fill(SELL, 5, "5001", minute=4), ExitReason.EXTERNAL)
    assert trip.side is Side.LONG
    assert trip.qty == 2
    assert trip.pnl_ticks == 8
    assert trip.exit_reason is ExitReason.EXTERNAL
    assert trip.commissions == Decimal("0.62") * 2 + Decimal("0.62") * 2
    # The remaining 3 contracts open a short at the flip price, at the flip time.
    assert (position.side, position.qty, position.signed_qty) == (Side.SHORT, 3, -3)
    assert position.opened_at == T0 + timedelta(minutes=4)
    assert position.commissions_paid == Decimal("0.62") * 3
    assert position.snapshot() == OpenPosition(
        Side.SHORT, 3, Decimal(5001), T0 + timedelta(minutes=4)
    )
    [second] = position.apply(fill(BUY, 3, "5000", minute=9), ExitReason.SIGNAL)
    assert second.seq == 2
    assert second.side is Side.SHORT
    assert second.qty == 3
    assert second.pnl_ticks == 12
    assert second.entry_ts == T0 + timedelta(minutes=4)
    assert second.commissions == Decimal("0.62") * 6
    assert position.is_flat


def test_a_reopen_after_flat_starts_a_new_round_trip_with_fresh_counters() -> None:
    position, trips = book(
        fill(SELL, 1, "5000", minute=0),
        fill(BUY, 1, "4999", minute=1),
        fill(BUY, 2, "4999", minute=2),
        fill(SELL, 2, "4998", minute=3),
    )
    assert [(t.seq, t.side, t.qty, t.pnl_ticks) for t in trips] == [
        (1, Side.SHORT, 1, 4),
        (2, Side.LONG, 2, -8),
    ]
    assert trips[1].entry_ts == T0 + timedelta(minutes=2)
    assert trips[1].entry_price == Decimal(4999)
    assert trips[1].commissions == Decimal("0.62") * 4
    assert position.is_flat


# ---------------------------------------------------------------- commissions on partial fills

# Whole-fill commission, fill qty, held qty: what the closing part carries and what the reopened
# part carries. The two always add up to the fill's commission exactly.
COMMISSION_SPLITS = [
    ("1.86", 3, 3, Decimal("1.86"), None),
    ("1.00", 3, 3, Decimal("1.00"), None),  # 1/3*3 would be 0.999...: the whole fill closes
    ("0.07", 7, 7, Decimal("0.07"), None),
    ("1.86", 3, 1, Decimal("0.62"), Decimal("1.24")),
    ("1.00", 3, 2, Decimal(2) / 3, Decimal(1) - Decimal(2) / 3),
    ("1.00", 3, 1, Decimal(1) / 3, Decimal(1) - Decimal(1) / 3),
]


@pytest.mark.parametrize(("commission", "qty", "held", "closing", "reopened"), COMMISSION_SPLITS)
def test_a_closing_fill_books_its_share_of_commission_exactly(
    commission: str, qty: int, held: int, closing: Decimal, reopened: Decimal | None
) -> None:
    position = Position(MES)
    position.apply(fill(BUY, held, "5000", commission="0"), ExitReason.SIGNAL)
    exit_fill = fill(SELL, qty, "5000", commission=commission, per_contract=False)
    [trip] = position.apply(exit_fill, ExitReason.SIGNAL)
    assert trip.commissions == closing
    if reopened is None:
        assert position.is_flat
    else:
        assert position.commissions_paid == reopened
        assert trip.commissions + position.commissions_paid == Decimal(commission)


def test_partial_exit_commissions_accrue_to_the_round_trip() -> None:
    position = Position(MES)
    position.apply(fill(BUY, 3, "5000", commission="1", per_contract=False), ExitReason.SIGNAL)
    assert position.commissions_paid == Decimal(1)
    position.apply(fill(SELL, 1, "5001", commission="0.5", per_contract=False), ExitReason.SIGNAL)
    assert position.commissions_paid == Decimal("1.5")
    [trip] = position.apply(
        fill(SELL, 2, "5002", commission="1", per_contract=False), ExitReason.SIGNAL
    )
    assert trip.commissions == Decimal("2.5")
    assert trip.net_pnl == Decimal("1.25") * (4 + 8 + 8) - Decimal("2.5")


# ---------------------------------------------------------------- open P&L and snapshot

OPEN_PNL = [
    # entry action, entries [(qty, price)], mark, expected dollars
    (BUY, [(1, "5000")], 5000.0, Decimal(0)),
    (BUY, [(1, "5000")], 5001.25, Decimal("6.25")),
    (BUY, [(2, "5000"), (1, "5002")], 4999.0, Decimal("-25")),
    (SELL, [(1, "5000")], 5000.75, Decimal("-3.75")),
    (SELL, [(3, "5000")], 4990.0, Decimal("150")),
]


@pytest.mark.parametrize(("action", "entries", "mark", "dollars"), OPEN_PNL)
def test_open_pnl_at_a_mark_is_ticks_times_tick_value(
    action: Action, entries: list[tuple[int, str]], mark: float, dollars: Decimal
) -> None:
    position, _ = book(*(fill(action, q, p) for q, p in entries))
    assert position.open_pnl(mark) == dollars


def test_open_pnl_is_zero_when_flat_and_refuses_an_off_grid_mark() -> None:
    position = Position(MES)
    assert position.open_pnl(5000.1) == 0  # nothing to value
    position.apply(fill(BUY, 1, "5000"), ExitReason.SIGNAL)
    with pytest.raises(OffTickError):
        position.open_pnl(5000.1)


def test_open_pnl_after_a_partial_exit_values_only_the_remaining_lots() -> None:
    position, _ = book(fill(BUY, 1, "5000"), fill(BUY, 1, "5004"), fill(SELL, 1, "5002"))
    # FIFO left the 5004 lot: at 5004 it is flat.
    assert position.open_pnl(5004.0) == 0


def test_snapshot_shows_side_qty_average_entry_and_open_time() -> None:
    position = Position(MES)
    assert position.snapshot() is None
    position.apply(fill(SELL, 1, "5000", minute=3), ExitReason.SIGNAL)
    position.apply(fill(SELL, 2, "5001", minute=5), ExitReason.SIGNAL)
    snap = position.snapshot()
    assert snap == OpenPosition(Side.SHORT, 3, Decimal(15002) / 3, T0 + timedelta(minutes=3))


def test_signed_qty_and_flags_track_the_position() -> None:
    position = Position(MES)
    assert (position.side, position.qty, position.signed_qty, position.is_flat) == (
        None,
        0,
        0,
        True,
    )
    assert position.opened_at is None
    position.apply(fill(SELL, 2, "5000"), ExitReason.SIGNAL)
    assert (position.side, position.qty, position.signed_qty, position.is_flat) == (
        Side.SHORT,
        2,
        -2,
        False,
    )


# ---------------------------------------------------------------- refusing bad input


def test_an_off_grid_fill_is_refused_and_leaves_the_position_unchanged() -> None:
    position, _ = book(fill(BUY, 1, "5000"))
    with pytest.raises(OffTickError):
        position.apply(fill(SELL, 1, "5000.10"), ExitReason.SIGNAL)
    assert (position.side, position.qty, position.commissions_paid) == (
        Side.LONG,
        1,
        Decimal("0.62"),
    )
    [trip] = position.apply(fill(SELL, 1, "5000.25"), ExitReason.SIGNAL)
    assert trip.pnl_ticks == 1


@pytest.mark.parametrize(
    ("qty", "commission", "message"),
    [
        (0, "0", "quantity must be positive, got 0"),
        (-1, "0", "quantity must be positive, got -1"),
        (1, "-0.01", "negative commission -0.01"),
    ],
)
def test_a_fill_with_bad_quantity_or_commission_is_refused(
    qty: int, commission: str, message: str
) -> None:
    with pytest.raises(DomainError, match=f"fill x9: {message}"):
        Fill("x9", "k", BUY, qty, Decimal(5000), T0, Decimal(commission))


def test_a_zero_commission_fill_is_valid() -> None:
    f = Fill("x", "k", SELL, 1, Decimal(5000), T0, Decimal(0))
    assert f.commission == 0


def test_round_trip_net_pnl_and_is_loss() -> None:
    base = RoundTrip(
        seq=1,
        side=Side.LONG,
        qty=1,
        entry_ts=T0,
        entry_price=Decimal(5000),
        exit_ts=T0,
        exit_price=Decimal(5000),
        exit_reason=ExitReason.SIGNAL,
        pnl_ticks=1,
        gross_pnl=Decimal("1.25"),
        commissions=Decimal("1.25"),
    )
    assert base.net_pnl == 0
    assert not base.is_loss
    dearer = replace(base, commissions=Decimal(2))
    assert dearer.net_pnl == Decimal("-0.75")
    assert dearer.is_loss
