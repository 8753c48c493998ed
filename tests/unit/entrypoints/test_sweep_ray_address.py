"""A Ray cluster address nothing answers at is one line and exit 4 in seconds: ray.init itself
retries a dead GCS address for minutes, logging every attempt."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from entrypoints.replay import load_series
from entrypoints.research.executors import ExecutorUnavailable, open_runner
from entrypoints.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"
SAMPLE_CONFIG = ROOT / "config" / "sample.yaml"


@pytest.mark.timeout(60)
def test_a_ray_address_nothing_listens_on_is_unavailable() -> None:
    pytest.importorskip("ray")
    series = load_series(load_settings(SAMPLE_CONFIG, {}), SAMPLE)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"127.0.0.1:{port}"
    refused = pytest.raises(ExecutorUnavailable, match=f"--address {address}: no Ray cluster")
    with refused, open_runner("ray", series, workers=1, address=address):
        pass
