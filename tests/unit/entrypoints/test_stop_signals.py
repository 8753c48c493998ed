"""The daemon's stop signals: the first asks for a graceful stop, a second forces the exit, and a
SIGTERM repeated at once by a supervisor is still the first.

Each test runs its own event loop: the forced exit is a SystemExit raised from the loop's signal
callback, which leaves ``run_until_complete`` as it would leave ``asyncio.run`` in the daemon.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable

import pytest

from entrypoints import daemon
from entrypoints.daemon import install_stop_signals


async def _deliver(signum: int) -> None:
    os.kill(os.getpid(), signum)
    for _ in range(100):  # the loop runs the handler within its next turns
        await asyncio.sleep(0)


def _run(scenario: Callable[[asyncio.Event], Awaitable[None]]) -> asyncio.Event:
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        install_stop_signals(stop)
        await scenario(stop)

    try:
        loop.run_until_complete(main())
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        loop.close()
    return stop


def test_a_sigterm_repeated_at_once_is_one_graceful_stop() -> None:
    async def twice(stop: asyncio.Event) -> None:
        await _deliver(signal.SIGTERM)
        assert stop.is_set()
        await _deliver(signal.SIGTERM)  # within REPEAT_WINDOW_S: the same stop

    assert _run(twice).is_set()


def test_a_sigterm_after_the_repeat_window_forces_the_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def twice(stop: asyncio.Event) -> None:
        await _deliver(signal.SIGTERM)
        monkeypatch.setattr(daemon, "REPEAT_WINDOW_S", 0.0)  # as if the window had passed
        await _deliver(signal.SIGTERM)

    with pytest.raises(SystemExit) as exited:
        _run(twice)
    assert exited.value.code == 130


def test_a_second_ctrl_c_always_forces_the_exit() -> None:
    async def twice(stop: asyncio.Event) -> None:
        await _deliver(signal.SIGINT)
        assert stop.is_set()
        await _deliver(signal.SIGINT)

    with pytest.raises(SystemExit) as exited:
        _run(twice)
    assert exited.value.code == 130
