"""Pure IB ↔ domain translation: brackets as DESIGN §3 wants them, fills booked exactly."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from ib_async import BarData, CommissionReport, Contract, ContractDetails, Execution, RealTimeBar

from adapters.ibkr.mapping import (
    MappingError,
    bar_from_historical,
    bar_from_realtime,
    bracket_orders,
    contract_from_details,
    domain_fill,
    exit_order,
    price,
)
from domain.commands import PlaceBracket, PlaceExit
from domain.events import ProtectiveKind, protective_kind
from domain.values import MES, Action, OffTickError, Side

T = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def _bracket(side: Side = Side.LONG, *, stop: bool = True, target: bool = True) -> PlaceBracket:
    return PlaceBracket(
        entry_key="QS-1-1-E",
        stop_key="QS-1-1-S" if stop else None,
        target_key="QS-1-1-T" if target else None,
        side=side,
        qty=2,
        reference_price=Decimal("5000.25"),
        stop_price=Decimal("4990.25") if stop else None,
        target_price=Decimal("5010.25") if target else None,
        oca_group="QS-1-1",
        ts=T,
    )


def test_a_bracket_transmits_only_with_its_last_order_and_protects_outside_regular_hours() -> None:
    parent, stop, target = bracket_orders(_bracket(), account="DU1")
    assert (parent.action, parent.orderType, parent.totalQuantity) == ("BUY", "MKT", 2)
    assert (stop.action, stop.orderType, stop.auxPrice) == ("SELL", "STP", 4990.25)
    assert (target.action, target.orderType, target.lmtPrice) == ("SELL", "LMT", 5010.25)
    assert [o.transmit for o in (parent, stop, target)] == [False, False, True]
    for child in (stop, target):
        assert (child.tif, child.outsideRth, child.ocaGroup, child.ocaType) == (
            "GTC",
            True,
            "QS-1-1",
            1,
        )
    assert [o.orderRef for o in (parent, stop, target)] == ["QS-1-1-E", "QS-1-1-S", "QS-1-1-T"]
    assert {o.account for o in (parent, stop, target)} == {"DU1"}


@pytest.mark.parametrize(
    ("stop", "target", "types"),
    [(True, False, ["MKT", "STP"]), (False, True, ["MKT", "LMT"]), (False, False, ["MKT"])],
)
def test_a_bracket_without_a_leg_still_transmits_its_last_order(
    stop: bool, target: bool, types: list[str]
) -> None:
    orders = bracket_orders(_bracket(Side.SHORT, stop=stop, target=target), account="")
    assert [o.orderType for o in orders] == types
    assert [o.transmit for o in orders] == [False] * (len(orders) - 1) + [True]
    assert orders[0].action == "SELL"


def test_an_exit_joins_the_bracket_oca_group() -> None:
    order = exit_order(PlaceExit("QS-9-X", Action.SELL, 1, "signal", "QS-1-1", None, T), account="")
    assert (order.orderType, order.ocaGroup, order.ocaType, order.transmit) == (
        "MKT",
        "QS-1-1",
        1,
        True,
    )
    alone = exit_order(PlaceExit("QS-9-X", Action.BUY, 1, "operator", None, None, T), account="")
    assert alone.ocaGroup == ""


def _execution(**over: object) -> Execution:
    fields: dict[str, object] = {
        "execId": "0001.01",
        "time": T,
        "side": "BOT",
        "shares": 2.0,
        "price": 5000.25,
        "orderRef": "QS-1-1-E",
    }
    fields.update(over)
    return Execution(**fields)  # type: ignore[arg-type]


def test_a_fill_books_ib_commission_when_its_report_came() -> None:
    report = CommissionReport(execId="0001.01", commission=1.24, currency="USD")
    fill = domain_fill(
        _execution(), report, instrument=MES, fallback_commission_per_contract=Decimal("0.62")
    )
    assert (fill.action, fill.qty, fill.price, fill.commission) == (
        Action.BUY,
        2,
        Decimal("5000.25"),
        Decimal("1.24"),
    )
    assert fill.ts == T


def test_a_fill_without_its_report_books_the_configured_rate() -> None:
    other = CommissionReport(execId="another", commission=9.0)
    fill = domain_fill(
        _execution(side="SLD"),
        other,
        instrument=MES,
        fallback_commission_per_contract=Decimal("0.62"),
    )
    assert (fill.action, fill.commission) == (Action.SELL, Decimal("1.24"))


def test_a_fill_time_in_another_zone_becomes_utc() -> None:
    eastern = timezone(timedelta(hours=-5))
    fill = domain_fill(
        _execution(time=T.astimezone(eastern)),
        None,
        instrument=MES,
        fallback_commission_per_contract=Decimal(0),
    )
    assert fill.ts == T
    assert fill.ts.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("over", "error"),
    [
        ({"price": 5000.3}, OffTickError),
        ({"side": "BUY"}, MappingError),
        ({"shares": 1.5}, MappingError),
        ({"shares": 0.0}, MappingError),
        ({"price": float("nan")}, MappingError),
        ({"time": datetime(2026, 11, 24, 15, 0)}, MappingError),
    ],
)
def test_a_fill_the_domain_cannot_book_is_refused_by_name(
    over: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        domain_fill(
            _execution(**over), None, instrument=MES, fallback_commission_per_contract=Decimal(0)
        )


def test_prices_become_exact_decimals() -> None:
    assert price(5000.25) == Decimal("5000.25")
    assert price(0.1 + 0.2) == Decimal("0.30000000000000004")  # shown as sent, never rounded
    with pytest.raises(MappingError):
        price(1.7976931348623157e308)


def test_keys_name_their_bracket_legs() -> None:
    assert protective_kind("QS-1-1-S") is ProtectiveKind.STOP
    assert protective_kind("QS-1-1-T") is ProtectiveKind.TARGET
    assert protective_kind("QS-1-1-E") is None
    assert protective_kind("QS-1-1-X") is None


def test_contract_details_give_the_listed_expiry_and_con_id() -> None:
    contract = Contract(
        secType="FUT",
        symbol="MES",
        localSymbol="MESZ6",
        conId=730283097,
        lastTradeDateOrContractMonth="20261218",
    )
    details = ContractDetails(contract=contract, realExpirationDate="20261218")
    mapped = contract_from_details(details)
    assert (mapped.local_symbol, mapped.con_id, mapped.expiry) == (
        "MESZ6",
        730283097,
        date(2026, 12, 18),
    )
    with pytest.raises(MappingError, match="YYYYMMDD"):
        contract_from_details(ContractDetails(contract=contract, realExpirationDate="2026-12"))


def test_bars_keep_their_start_and_size() -> None:
    rt = RealTimeBar(time=T, open_=5000.0, high=5001.0, low=4999.75, close=5000.5, volume=12.0)
    bar = bar_from_realtime(rt)
    assert (bar.ts, bar.seconds, bar.close, bar.volume) == (T, 5, 5000.5, 12)
    hist = BarData(date=T, open=1.0, high=2.0, low=1.0, close=2.0, volume=-1)
    assert bar_from_historical(hist, 5).volume == 0  # IB's -1: no volume
    with pytest.raises(MappingError, match="formatDate"):
        bar_from_historical(BarData(date=date(2026, 11, 24)), 5)
