"""Waiting in tests: poll for a condition with a generous deadline, never sleep a fixed time.

A fixed sleep is either too short on a busy machine (the test flakes) or too long everywhere (the
suite crawls); a poll ends as soon as the condition holds and fails, naming what it waited for,
only when the deadline passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

DEADLINE_S = 60.0
"""Generous: a loaded 2-core CI machine must never reach it; a hang still ends in a minute."""


async def eventually(
    condition: Callable[[], bool],
    what: str,
    *,
    timeout_s: float = DEADLINE_S,
    every_s: float = 0.01,
    unless_done: asyncio.Future[Any] | None = None,
) -> None:
    """Return as soon as ``condition()`` holds; AssertionError naming ``what`` after ``timeout_s``.

    ``unless_done``: a task that must keep running meanwhile (a daemon): if it ends first, the
    wait fails at once with its result or exception rather than at the deadline.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if unless_done is not None and unless_done.done():
            outcome = unless_done.exception() or unless_done.result()
            raise AssertionError(f"ended while waiting for {what}: {outcome!r}")
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(every_s)
