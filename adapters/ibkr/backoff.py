"""Reconnect pacing for the IB connection, and what a failed connect attempt means.

Operations §2 #1 and #11: reconnecting too fast after a Gateway restart gets error 326 (client id
in use) because the old session has not cleared yet, so a 326 waits at least
``client_id_wait_s`` before the next try.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection
from enum import Enum

from application.backoff import BackoffPolicy, Retries

# ib_async 2.1.0 sends "v157..178"; a server answering outside that range cannot be spoken to
# (reference/tws-protocol.md §1).
MIN_SERVER_VERSION = 157
MAX_SERVER_VERSION = 178
CLIENT_ID_IN_USE_CODE = 326


class Backoff:
    """The reconnect backoff: full jitter, attempt n waits uniform(0, min(max_s, initial_s·f^n))
    (:class:`application.backoff.BackoffPolicy`), and error 326 waits ``client_id_wait_s`` more.

    Deterministic for a seeded ``rng``. :meth:`reset` after a connection that stuck.
    """

    def __init__(
        self,
        rng: random.Random,
        *,
        initial_s: float = 1.0,
        factor: float = 2.0,
        max_s: float = 60.0,
        client_id_wait_s: float = 15.0,
    ) -> None:
        policy = BackoffPolicy(initial_s=initial_s, max_s=max_s, factor=factor, jitter=True)
        if not (math.isfinite(client_id_wait_s) and client_id_wait_s >= 0.0):
            raise ValueError(
                f"Backoff: client_id_wait_s must be a finite number >= 0.0, got {client_id_wait_s!r}"
            )
        self._steps = Retries(policy, rng)
        self._client_id_wait_s = client_id_wait_s
        self._client_id_in_use = 0

    @property
    def attempts(self) -> int:
        """Delays handed out since the last :meth:`reset`."""
        return self._steps.attempts

    @property
    def client_id_in_use_count(self) -> int:
        """326 answers seen since the last :meth:`reset`."""
        return self._client_id_in_use

    @property
    def ceiling_s(self) -> float:
        """The upper bound of the next :meth:`next_delay`."""
        return self._steps.ceiling_s

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt, in ``[0, ceiling_s]``; the ceiling then grows."""
        return self._steps.next_delay()

    def after_client_id_in_use(self) -> float:
        """Delay after error 326: ``client_id_wait_s`` plus the next jittered backoff step."""
        self._client_id_in_use += 1
        return self._client_id_wait_s + self.next_delay()

    def reset(self) -> None:
        self._steps.reset()
        self._client_id_in_use = 0


class ConnectionClosedEarly(ConnectionError):
    """The socket was closed before the API session started (no IB error said why)."""

    def __init__(self) -> None:
        super().__init__("the connection was closed before the API handshake")


class ConnectFailure(Enum):
    """Why a connect attempt failed, as far as the socket and IB told us."""

    REFUSED = "refused"
    CLOSED = "closed"
    TIMEOUT = "timeout"
    CLIENT_ID_IN_USE = "client id in use"
    VERSION_REFUSED = "version refused"
    OTHER = "other"

    def message(self, host: str, port: int, client_id: int, detail: str = "") -> str:
        """One line for a human (CLI, alert); ``detail`` is the exception or server version."""
        at = f"{host}:{port}"
        if self is ConnectFailure.REFUSED:
            return f"nothing is listening on {at}: is IB Gateway running and is the API port right?"
        if self is ConnectFailure.CLOSED:
            return (
                f"{at} took the connection and closed it before the API handshake: IB Gateway is "
                "starting, or waiting for its login (each week, with two-factor) behind a relay "
                "such as the Docker image's socat (log in on the Gateway), or this host is not in "
                "its Trusted IPs"
            )
        if self is ConnectFailure.TIMEOUT:
            return (
                f"{at} accepted the connection but no API session started in time: is the Gateway "
                "logged in, with no dialog open, and is this host in its Trusted IPs?"
            )
        if self is ConnectFailure.CLIENT_ID_IN_USE:
            return (
                f"client id {client_id} is already in use on {at} (IB error 326): another program "
                "holds it or the previous session has not cleared yet; wait, or use another id"
            )
        if self is ConnectFailure.VERSION_REFUSED:
            shown = f" ({detail})" if detail else ""
            return (
                f"{at} refused the API version handshake{shown}: this bot speaks server versions "
                f"{MIN_SERVER_VERSION}..{MAX_SERVER_VERSION}; check the Gateway and ib_async versions"
            )
        shown = detail or "unknown error"
        return f"connecting to {at} as client id {client_id} failed: {shown}"


def classify_connect_failure(
    exc: BaseException | None,
    *,
    error_codes: Collection[int] = (),
    server_version: int | None = None,
) -> ConnectFailure:
    """Classify a failed connect from the exception, IB error codes seen meanwhile, server version.

    IB's own answers win over the socket symptom: a 326 usually surfaces as a closed socket or a
    timeout, and a bad server version as a disconnect.
    """
    if CLIENT_ID_IN_USE_CODE in error_codes:
        return ConnectFailure.CLIENT_ID_IN_USE
    if server_version is not None and not (
        MIN_SERVER_VERSION <= server_version <= MAX_SERVER_VERSION
    ):
        return ConnectFailure.VERSION_REFUSED
    text = str(exc).lower() if exc is not None else ""
    # ib_async's own words: "clientId N already in use?" and "TWS/gateway version must be >= 972".
    if "already in use" in text:
        return ConnectFailure.CLIENT_ID_IN_USE
    if "version must be" in text:
        return ConnectFailure.VERSION_REFUSED
    if isinstance(exc, ConnectionRefusedError):
        return ConnectFailure.REFUSED
    if isinstance(exc, ConnectionClosedEarly):
        return ConnectFailure.CLOSED
    if isinstance(exc, TimeoutError):
        return ConnectFailure.TIMEOUT
    return ConnectFailure.OTHER
