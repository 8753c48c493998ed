"""The composition root: simulated and live containers share provider names; selection is explicit."""

from __future__ import annotations

import pytest

from adapters.simulated.broker import SimulatedBroker
from adapters.zscore.reference import PythonZScoreEngine
from adapters.zscore.rust import RustZScoreEngine
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
    with pytest.raises(Exception, match="market_data") as raised:
        app.check_dependencies()
    for name in ("broker", "journal"):
        assert name in str(raised.value)


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
