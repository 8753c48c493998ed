"""Reconnect backoff (full jitter, 326 waits) and the classification of failed connects."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.ibkr.backoff import (
    Backoff,
    ConnectFailure,
    ConnectionClosedEarly,
    classify_connect_failure,
)


class TopRandom(random.Random):
    """Always draws the top of the range, so delays equal their ceilings."""

    def uniform(self, a: float, b: float) -> float:
        return b


class BottomRandom(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return a


def test_ceilings_double_from_one_second_and_stop_at_sixty() -> None:
    backoff = Backoff(TopRandom())
    delays = [backoff.next_delay() for _ in range(9)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert backoff.attempts == 9


def test_same_seed_gives_the_same_delays() -> None:
    a = Backoff(random.Random(42))
    b = Backoff(random.Random(42))
    first = [a.next_delay() for _ in range(20)]
    assert first == [b.next_delay() for _ in range(20)]
    assert len(set(first)) == 20  # jittered, not a fixed ladder


@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=1, max_value=60))
def test_full_jitter_stays_within_zero_and_the_ceiling(seed: int, n: int) -> None:
    backoff = Backoff(random.Random(seed))
    for _ in range(n):
        ceiling = backoff.ceiling_s
        delay = backoff.next_delay()
        assert 0.0 <= delay <= ceiling <= 60.0


def test_reset_starts_over_from_the_initial_delay() -> None:
    backoff = Backoff(TopRandom())
    for _ in range(5):
        backoff.next_delay()
    backoff.after_client_id_in_use()
    backoff.reset()
    assert (backoff.attempts, backoff.client_id_in_use_count, backoff.ceiling_s) == (0, 0, 1.0)
    assert backoff.next_delay() == 1.0


def test_a_long_outage_neither_overflows_nor_exceeds_the_cap() -> None:
    backoff = Backoff(TopRandom(), factor=10.0, max_s=300.0)
    delays = [backoff.next_delay() for _ in range(5000)]
    assert delays[:4] == [1.0, 10.0, 100.0, 300.0]
    assert delays[-1] == 300.0


@pytest.mark.parametrize(
    ("rng", "expected"),
    [
        (BottomRandom(), [15.0, 15.0, 15.0]),  # never sooner than the old session needs to clear
        (TopRandom(), [16.0, 17.0, 19.0]),  # and it keeps backing off when 326 repeats
    ],
)
def test_client_id_in_use_waits_for_the_old_session_to_clear(
    rng: random.Random, expected: list[float]
) -> None:
    backoff = Backoff(rng)
    assert [backoff.after_client_id_in_use() for _ in range(3)] == expected
    assert backoff.client_id_in_use_count == 3
    assert backoff.attempts == 3


def test_client_id_wait_is_configurable() -> None:
    backoff = Backoff(BottomRandom(), client_id_wait_s=40.0)
    assert backoff.after_client_id_in_use() == 40.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_s": 0.0}, "initial_s must be a finite number > 0"),
        ({"initial_s": math.inf}, "initial_s"),
        ({"factor": 0.5}, "factor must be a finite number >= 1"),
        ({"max_s": 0.5}, "max_s must be a finite number >= 1.0"),
        ({"client_id_wait_s": -1.0}, "client_id_wait_s"),
        ({"client_id_wait_s": math.nan}, "client_id_wait_s"),
    ],
)
def test_bad_backoff_settings_are_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(random.Random(0), **kwargs)


@pytest.mark.parametrize(
    ("exc", "codes", "server_version", "expected"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), (), None, ConnectFailure.REFUSED),
        (TimeoutError(), (), None, ConnectFailure.TIMEOUT),
        # IB says 326, then the socket closes or the handshake times out: the code wins.
        (TimeoutError(), (326,), None, ConnectFailure.CLIENT_ID_IN_USE),
        (ConnectionError("Socket disconnect"), (2104, 326), 178, ConnectFailure.CLIENT_ID_IN_USE),
        (
            ConnectionError("Peer closed connection. clientId 7 already in use?"),
            (),
            None,
            ConnectFailure.CLIENT_ID_IN_USE,
        ),
        (ConnectionError("Socket disconnect"), (), 187, ConnectFailure.VERSION_REFUSED),
        (ConnectionError("Socket disconnect"), (), 100, ConnectFailure.VERSION_REFUSED),
        (
            ConnectionError("TWS/gateway version must be >= 972"),
            (),
            None,
            ConnectFailure.VERSION_REFUSED,
        ),
        (ConnectionRefusedError(), (), 178, ConnectFailure.REFUSED),
        (ConnectionClosedEarly(), (), None, ConnectFailure.CLOSED),
        (ConnectionClosedEarly(), (326,), None, ConnectFailure.CLIENT_ID_IN_USE),
        (OSError(101, "Network is unreachable"), (), None, ConnectFailure.OTHER),
        (None, (), None, ConnectFailure.OTHER),
    ],
)
def test_connect_failures_are_classified(
    exc: BaseException | None,
    codes: tuple[int, ...],
    server_version: int | None,
    expected: ConnectFailure,
) -> None:
    assert (
        classify_connect_failure(exc, error_codes=codes, server_version=server_version) is expected
    )


def test_refused_message_tells_what_to_check() -> None:
    assert ConnectFailure.REFUSED.message("127.0.0.1", 4002, 1) == (
        "nothing is listening on 127.0.0.1:4002: is IB Gateway running and is the API port right?"
    )


@pytest.mark.parametrize("kind", list(ConnectFailure))
def test_every_failure_has_a_one_line_message_naming_the_endpoint(kind: ConnectFailure) -> None:
    text = kind.message("gw.local", 4001, 17, detail="server version 187")
    assert "\n" not in text
    assert "gw.local:4001" in text
    if kind is ConnectFailure.CLIENT_ID_IN_USE:
        assert "client id 17" in text
        assert "326" in text
    if kind in (ConnectFailure.VERSION_REFUSED, ConnectFailure.OTHER):
        assert "server version 187" in text
