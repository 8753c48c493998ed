"""A Ray or Dask cluster address nothing answers at is one line and exit 4 at once: ray.init
itself retries a dead GCS address for minutes, logging every attempt, and a Dask client waits out
its whole timeout."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from entrypoints.replay import load_series
from entrypoints.research.executors import ExecutorUnavailable, open_runner, ray_unavailable
from entrypoints.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "data" / "sample" / "es_1min_20131006_20131014.csv"
SAMPLE_CONFIG = ROOT / "config" / "sample.yaml"


def _dead_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.timeout(60)
def test_a_ray_address_nothing_listens_on_is_unavailable() -> None:
    pytest.importorskip("ray")
    series = load_series(load_settings(SAMPLE_CONFIG, {}), SAMPLE)
    port = _dead_port()
    address = f"127.0.0.1:{port}"
    refused = pytest.raises(ExecutorUnavailable, match=f"--address {address}: no Ray cluster")
    with refused, open_runner("ray", series, workers=1, address=address):
        pass


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scheme", ["tcp://", ""])
def test_a_dask_address_nothing_listens_on_is_unavailable(scheme: str) -> None:
    pytest.importorskip("distributed")
    series = load_series(load_settings(SAMPLE_CONFIG, {}), SAMPLE)
    port = _dead_port()
    address = f"{scheme}127.0.0.1:{port}"
    refused = pytest.raises(
        ExecutorUnavailable, match=f"--address {address}: no Dask scheduler: cannot connect: "
    )
    with refused, open_runner("dask", series, workers=1, address=address):
        pass


def test_a_ray_client_that_times_out_is_told_about_the_cluster_token() -> None:
    """Ray 2.59+ clusters require a token; a Ray Client without it times out with no word of
    why (checked by hand against `ray start --head`: the head logs "Authentication required")."""
    line = str(
        ray_unavailable("ray://head:10001", ConnectionError("ray client connection timeout"))
    )
    assert line.startswith("--address ray://head:10001: no Ray cluster: ray client connection")
    assert "RAY_AUTH_MODE=token" in line
    assert "ray get-auth-token" in line
    other = str(ray_unavailable("10.0.0.1:6379", ConnectionError("refused")))
    assert "RAY_AUTH" not in other  # only a Ray Client's timeout gets the hint
