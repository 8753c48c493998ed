"""IB historical-data pacing: the limiter's waits, FIFO order and open slots."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.ibkr.pacing import PacingLimiter


class VirtualTime:
    """A monotonic clock and a sleep that only move when :meth:`run` advances virtual time."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, fut))
        await fut

    async def run(self, *coros: Coroutine[Any, Any, object]) -> None:
        """Run ``coros`` as tasks, jumping to the next sleeper's wake time whenever all are idle."""
        tasks = [asyncio.ensure_future(c) for c in coros]
        while True:
            await settle()
            if all(t.done() for t in tasks):
                break
            live = [(w, f) for w, f in self._sleepers if not f.done()]
            if not live:
                raise AssertionError("deadlock: tasks wait but nobody sleeps")
            wake = min(w for w, _ in live)
            self.now = max(self.now, wake)
            self._sleepers = [(w, f) for w, f in live if w > wake]
            for w, f in live:
                if w <= wake:
                    f.set_result(None)
        for t in tasks:
            t.result()


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


def limiter(vt: VirtualTime, **kw: Any) -> PacingLimiter:
    return PacingLimiter(vt.clock, vt.sleep, **kw)


async def go(lim: PacingLimiter, key: str, contract: str = "MES", weight: int = 1) -> None:
    await lim.acquire(key, contract, weight=weight)
    lim.release()


async def test_61st_request_in_ten_minutes_waits_until_the_oldest_leaves_the_window() -> None:
    vt = VirtualTime(start=0.0)
    lim = limiter(vt)
    for i in range(60):
        vt.now = float(i)
        await vt.run(go(lim, f"k{i}"))
    vt.now = 100.0
    await vt.run(go(lim, "k60"))
    assert vt.now == 600.0  # request 0 was at t=0; [0, 600) already holds 60: a 500 s wait
    vt.now = 601.0  # request 1 (t=1) leaves at 601
    await vt.run(go(lim, "k61"))
    assert vt.now == 601.0


@pytest.mark.parametrize(
    ("gap", "expected_wait"),
    [(0.0, 15.0), (5.0, 10.0), (14.5, 0.5), (15.0, 0.0), (20.0, 0.0)],
)
async def test_identical_request_waits_out_fifteen_seconds(
    gap: float, expected_wait: float
) -> None:
    vt = VirtualTime()
    lim = limiter(vt)
    await vt.run(go(lim, "MES 5s TRADES 1D"))
    vt.now += gap
    asked = vt.now
    await vt.run(go(lim, "MES 5s TRADES 1D"))
    assert vt.now - asked == expected_wait


async def test_a_different_request_is_not_held_by_the_identical_rule() -> None:
    vt = VirtualTime()
    lim = limiter(vt)
    await vt.run(go(lim, "a"), go(lim, "b"))
    assert vt.now == 1000.0
    assert vt.sleeps == []


@pytest.mark.parametrize(
    ("burst", "weights", "waits_at"),
    [
        # IB: "six or more ... within two seconds" is a violation, so the sixth waits by default.
        (5, [1, 1, 1, 1, 1, 1], 5),
        # The brief's reading (burst=6): the seventh waits.
        (6, [1, 1, 1, 1, 1, 1, 1], 6),
        # BID_ASK counts twice: 2 + 2 fit in 5, the third would make 6.
        (5, [2, 2, 2], 2),
    ],
)
async def test_burst_for_one_contract_waits_for_the_two_second_window(
    burst: int, weights: list[int], waits_at: int
) -> None:
    vt = VirtualTime()
    lim = limiter(vt, burst=burst)
    for i, w in enumerate(weights[:waits_at]):
        await vt.run(go(lim, f"k{i}", "MES", w))
    await vt.run(go(lim, "other contract", "MNQ"))
    assert vt.now == 1000.0  # another contract's burst is its own
    await vt.run(go(lim, "next", "MES", weights[waits_at]))
    assert vt.now == 1002.0


async def test_burst_window_slides_from_the_oldest_request() -> None:
    vt = VirtualTime()
    lim = limiter(vt)
    for i, at in enumerate([1000.0, 1000.5, 1001.0, 1001.5, 1001.75]):
        vt.now = at
        await vt.run(go(lim, f"k{i}"))
    await vt.run(go(lim, "k5"))
    assert vt.now == 1002.0  # 1000.0 leaves at 1002.0
    await vt.run(go(lim, "k6"))
    assert vt.now == 1002.5  # then 1000.5 must leave


async def test_concurrent_acquirers_are_served_in_fifo_order() -> None:
    vt = VirtualTime()
    lim = limiter(vt)
    await vt.run(go(lim, "A"))
    order: list[tuple[str, float]] = []

    async def client(key: str) -> None:
        await lim.acquire(key, f"contract {key}")
        order.append((key, vt.now))
        lim.release()

    # A must wait 15 s (identical); B and C could go at once but queued behind A.
    await vt.run(client("A"), client("B"), client("C"))
    assert order == [("A", 1015.0), ("B", 1015.0), ("C", 1015.0)]


async def test_open_requests_are_capped_until_a_release() -> None:
    vt = VirtualTime()
    lim = limiter(vt, max_open=2)
    await lim.acquire("a", "MES")
    await lim.acquire("b", "MNQ")
    third = asyncio.ensure_future(lim.acquire("c", "M2K"))
    await settle()
    assert not third.done()
    lim.release()
    await settle()
    assert third.done()
    fourth = asyncio.ensure_future(lim.acquire("d", "MCL"))  # two open again: it waits
    await settle()
    assert not fourth.done()
    lim.release()
    await settle()
    assert fourth.done()
    assert vt.sleeps == []  # slots, not time, held them back


async def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    vt = VirtualTime()
    lim = limiter(vt)
    await vt.run(go(lim, "A"))
    head = asyncio.ensure_future(lim.acquire("A", "MES"))  # sleeps 15 s
    second = asyncio.ensure_future(lim.acquire("B", "MNQ"))
    await settle()
    assert not second.done()
    head.cancel()
    await settle()
    assert head.cancelled()
    assert second.done()
    assert vt.now == 1000.0
    await vt.run(go(lim, "C", "M2K"))  # nobody left queued ahead of it
    assert vt.now == 1000.0


async def test_a_cancelled_slot_waiter_leaves_the_queue_usable() -> None:
    vt = VirtualTime()
    lim = limiter(vt, max_open=1)
    await lim.acquire("a", "MES")
    head = asyncio.ensure_future(lim.acquire("b", "MES"))
    await settle()
    head.cancel()
    await settle()
    lim.release()
    await vt.run(go(lim, "c", "MNQ"))
    await vt.run(go(lim, "d", "M2K"))  # c gave its slot back
    assert vt.now == 1000.0


async def test_release_without_acquire_is_an_error() -> None:
    lim = limiter(VirtualTime())
    with pytest.raises(RuntimeError, match="without a matching acquire"):
        lim.release()


@pytest.mark.parametrize(
    ("key", "contract", "weight", "message"),
    [
        ("", "MES", 1, "non-empty"),
        ("k", "", 1, "non-empty"),
        ("k", "MES", 0, "weight must be an int in 1..5"),
        ("k", "MES", 6, "weight must be an int in 1..5"),
        ("k", "MES", True, "weight"),
    ],
)
async def test_bad_request_arguments_are_named(
    key: str, contract: str, weight: int, message: str
) -> None:
    vt = VirtualTime()
    lim = limiter(vt)
    with pytest.raises(ValueError, match=message):
        await lim.acquire(key, contract, weight=weight)
    await vt.run(go(lim, "fine", "MES"))  # the refused request holds no place in the queue
    assert vt.now == 1000.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_per_window": 0}, "max_per_window"),
        ({"burst": 1.5}, "burst"),
        ({"max_open": True}, "max_open"),
        ({"window_s": 0.0}, "window_s"),
        ({"identical_gap_s": math.nan}, "identical_gap_s"),
        ({"burst_window_s": -2.0}, "burst_window_s"),
    ],
)
def test_bad_limits_are_named(kwargs: dict[str, Any], message: str) -> None:
    vt = VirtualTime()
    with pytest.raises(ValueError, match=message):
        PacingLimiter(vt.clock, vt.sleep, **kwargs)


# ---------------------------------------------------------------- property: rules and minimality

MAX_PER_WINDOW, WINDOW_S, IDENTICAL_GAP_S, BURST, BURST_WINDOW_S = 8, 60.0, 15.0, 3, 2.0

# Quarter seconds keep every sum exact in binary floating point, so times compare exactly.
requests_strategy = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=40).map(lambda q: q / 4),  # gap after the previous
        st.sampled_from(["k0", "k1", "k2", "k3", "k4", "k5"]),
        st.sampled_from(["MES", "MNQ"]),
        st.sampled_from([1, 1, 1, 2]),
    ),
    min_size=1,
    max_size=40,
)


def allowed(
    history: list[tuple[float, str, str, int]], t: float, req: tuple[str, str, int]
) -> bool:
    key, contract, weight = req
    in_window = sum(w for s, _, _, w in history if s + WINDOW_S > t)
    if in_window + weight > MAX_PER_WINDOW:
        return False
    if any(k == key and s + IDENTICAL_GAP_S > t for s, k, _, _ in history):
        return False
    in_burst = sum(w for s, _, c, w in history if c == contract and s + BURST_WINDOW_S > t)
    return in_burst + weight <= BURST


def earliest(
    history: list[tuple[float, str, str, int]], lower: float, req: tuple[str, str, int]
) -> float:
    """Independent oracle: the rules only loosen with time, so the answer is the lower bound or
    the moment some earlier request stops counting."""
    gaps = (WINDOW_S, IDENTICAL_GAP_S, BURST_WINDOW_S)
    candidates = {lower} | {s + g for s, _, _, _ in history for g in gaps}
    return min(c for c in candidates if c >= lower and allowed(history, c, req))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests_strategy)
def test_any_schedule_keeps_every_rule_and_waits_no_longer_than_needed(
    requests: list[tuple[float, str, str, int]],
) -> None:
    vt = VirtualTime(start=0.0)
    lim = limiter(
        vt,
        max_per_window=MAX_PER_WINDOW,
        window_s=WINDOW_S,
        identical_gap_s=IDENTICAL_GAP_S,
        burst=BURST,
        burst_window_s=BURST_WINDOW_S,
    )
    admitted: list[tuple[float, str, str, int]] = []

    async def scenario() -> None:
        arrival = 0.0
        for gap, key, contract, weight in requests:
            arrival += gap
            lower = max(arrival, vt.now)  # FIFO: not before the one ahead was admitted
            vt.now = lower
            expected = earliest(admitted, lower, (key, contract, weight))
            await vt.run(go(lim, key, contract, weight))
            assert vt.now == expected
            admitted.append((vt.now, key, contract, weight))

    asyncio.run(scenario())

    # The schedule itself, checked window by window.
    times = [a for a, _, _, _ in admitted]
    assert times == sorted(times)
    for start, _, _, _ in admitted:
        window_load = sum(w for a, _, _, w in admitted if start <= a < start + WINDOW_S)
        assert window_load <= MAX_PER_WINDOW
        for contract in ("MES", "MNQ"):
            burst_load = sum(
                w
                for a, _, c, w in admitted
                if c == contract and start <= a < start + BURST_WINDOW_S
            )
            assert burst_load <= BURST
    for i, (a, key, _, _) in enumerate(admitted):
        for b, other, _, _ in admitted[i + 1 :]:
            if other == key:
                assert b - a >= IDENTICAL_GAP_S
    assert len(admitted) == len(requests)
