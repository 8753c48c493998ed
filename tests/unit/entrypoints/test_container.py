"""The composition root: simulated and live containers share provider names; selection is explicit."""

from __future__ import annotations

import pytest

from adapters.ibkr.broker import IbkrBroker
from adapters.ibkr.contracts import IbkrContractResolver
from adapters.ibkr.market_data import IbkrMarketData
from adapters.simulated.broker import SimulatedBroker
from adapters.zscore.reference import PythonZScoreEngine
from adapters.zscore.rust import RustZScoreEngine
from application.ports import Broker, ContractResolver, MarketData
from application.services import TradingService
from entrypoints.container import (
    LiveAdapters,
    SimulatedAdapters,
    build_container,
    zscore_factory,
)
from entrypoints.settings import load_settings


def test_live_and_simulated_adapters_offer_the_same_provider_names() -> None:
    shared = {"inbox", "clock", "market_data", "broker", "journal", "notifier", "bar_listeners"}
    assert shared <= set(SimulatedAdapters.providers)
    assert shared <= set(LiveAdapters.providers)


def test_the_simulated_container_wires_the_trading_service() -> None:
    from pathlib import Path

    from adapters.simulated.market_data import read_bar_file

    root = Path(__file__).resolve().parents[3]
    series = read_bar_file(root / "data" / "sample" / "es_1min_20131006_20131014.csv")
    app = build_container(load_settings(None, {}), "simulated", bar_source=series)
    app.check_dependencies()
    service = app.services.trading()
    assert isinstance(service, TradingService)
    assert isinstance(app.adapters.broker(), SimulatedBroker)
    assert service is app.services.trading()  # one service per container


def test_the_live_container_names_what_is_not_wired_yet() -> None:
    app = build_container(load_settings(None, {}), "live")
    with pytest.raises(Exception, match="journal") as raised:
        app.check_dependencies()
    for name in ("market_data", "broker"):
        assert name not in str(raised.value)


def test_the_live_container_wires_ib_gateway_adapters_from_settings() -> None:
    settings = load_settings(
        None,
        {"QS_IBKR__PORT": "4999", "QS_IBKR__CLIENT_ID": "5", "QS_INSTRUMENT__EXPIRY": "202612"},
    )
    adapters = build_container(settings, "live").adapters
    broker: Broker = adapters.broker()
    market_data: MarketData = adapters.market_data()
    resolver: ContractResolver = adapters.contracts()
    assert isinstance(broker, IbkrBroker)
    assert isinstance(market_data, IbkrMarketData)
    assert isinstance(resolver, IbkrContractResolver)
    client = adapters.ibkr_client()
    assert (client.host, client.port, client.client_id) == ("127.0.0.1", 4999, 5)
    assert adapters.session().client is client


@pytest.mark.parametrize(
    ("engine", "expected"), [("rust", RustZScoreEngine), ("python", PythonZScoreEngine)]
)
def test_the_zscore_engine_is_chosen_by_setting(engine: str, expected: type) -> None:
    assert zscore_factory(engine) is expected
    app = build_container(load_settings(None, {"QS_ZSCORE__ENGINE": engine}), "live")
    assert isinstance(app.services.zscore(), expected)


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        build_container(load_settings(None, {}), "paper")  # type: ignore[arg-type]
