"""The one exponential backoff: ceilings from the attempt number, caps, jitter from an injected rng."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.backoff import REMINDERS, BackoffPolicy, Reminders, Retries


def test_ceilings_grow_by_the_factor_from_the_initial_delay_up_to_the_cap() -> None:
    policy = BackoffPolicy(initial_s=0.5, max_s=30.0)
    assert [policy.ceiling(n) for n in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    tenfold = BackoffPolicy(initial_s=1.0, max_s=300.0, factor=10.0)
    assert [tenfold.ceiling(n) for n in range(5)] == [1.0, 10.0, 100.0, 300.0, 300.0]


def test_a_constant_policy_never_grows() -> None:
    policy = BackoffPolicy(initial_s=2.0, max_s=60.0, factor=1.0)
    assert {policy.ceiling(n) for n in (0, 1, 10, 10**6)} == {2.0}


def test_an_endless_outage_neither_overflows_nor_exceeds_the_cap() -> None:
    policy = BackoffPolicy(initial_s=1.0, max_s=60.0, factor=2.0)
    assert policy.ceiling(10**9) == 60.0
    assert policy.ceiling(1_100) == 60.0  # 2.0**1100 alone would overflow a float


def test_without_jitter_the_delay_is_the_ceiling_and_needs_no_rng() -> None:
    retries = Retries(BackoffPolicy(initial_s=1.0, max_s=8.0))
    assert [retries.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert retries.attempts == 6


def test_reset_starts_over_from_the_initial_delay() -> None:
    retries = Retries(BackoffPolicy(initial_s=1.0, max_s=8.0))
    for _ in range(4):
        retries.next_delay()
    retries.reset()
    assert (retries.attempts, retries.ceiling_s) == (0, 1.0)
    assert retries.next_delay() == 1.0


@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=1, max_value=60))
def test_full_jitter_stays_within_zero_and_the_ceiling(seed: int, n: int) -> None:
    retries = Retries(BackoffPolicy(initial_s=1.0, max_s=60.0, jitter=True), random.Random(seed))
    for _ in range(n):
        ceiling = retries.ceiling_s
        assert 0.0 <= retries.next_delay() <= ceiling <= 60.0


def test_jitter_is_deterministic_for_a_seeded_rng() -> None:
    policy = BackoffPolicy(initial_s=1.0, max_s=60.0, jitter=True)
    a, b = Retries(policy, random.Random(7)), Retries(policy, random.Random(7))
    first = [a.next_delay() for _ in range(20)]
    assert first == [b.next_delay() for _ in range(20)]
    assert len(set(first)) == 20  # jittered, not the ladder of ceilings


def test_a_jittered_policy_refuses_to_run_without_an_rng() -> None:
    policy = BackoffPolicy(initial_s=1.0, max_s=60.0, jitter=True)
    with pytest.raises(ValueError, match=r"needs a random\.Random"):
        Retries(policy)
    with pytest.raises(ValueError, match=r"needs a random\.Random"):
        policy.delay(0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_s": 0.0}, "initial_s must be a finite number > 0"),
        ({"initial_s": math.nan}, "initial_s"),
        ({"factor": 0.5}, "factor must be a finite number >= 1"),
        ({"max_s": 0.5}, "max_s must be a finite number >= 1.0"),
        ({"max_s": math.inf}, "max_s"),
    ],
)
def test_bad_settings_are_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BackoffPolicy(**{"initial_s": 1.0, "max_s": 60.0, **kwargs})


def test_a_negative_attempt_is_refused() -> None:
    with pytest.raises(ValueError, match="attempt must be >= 0"):
        BackoffPolicy(initial_s=1.0, max_s=2.0).ceiling(-1)


def _reminder_times(reminders: Reminders, until: float, step: float = 1.0) -> list[float]:
    times: list[float] = []
    now = 0.0
    while now <= until:
        if reminders.due(now):
            times.append(now)
        now += step
    return times


def test_a_lasting_fault_is_reminded_at_once_then_after_5_10_20_40_min_then_hourly() -> None:
    reminders = Reminders(REMINDERS)
    reminders.start(0.0)
    times = _reminder_times(reminders, until=4 * 3600.0)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert times[0] == 0.0
    assert gaps[:6] == [300.0, 600.0, 1200.0, 2400.0, 3600.0, 3600.0]
    assert reminders.sent == len(times)
    assert reminders.elapsed(4 * 3600.0) == 4 * 3600.0


def test_a_fault_that_ends_is_not_reminded_and_the_next_one_starts_from_the_beginning() -> None:
    reminders = Reminders(BackoffPolicy(initial_s=10.0, max_s=40.0))
    reminders.start(0.0)
    assert reminders.due(0.0)
    reminders.start(5.0)  # still the same fault: its start is kept
    assert reminders.elapsed(7.0) == 7.0
    assert not reminders.due(9.0)
    assert reminders.due(10.0)
    reminders.clear()
    assert not reminders.active
    assert not reminders.due(1000.0)
    assert reminders.elapsed(1000.0) == 0.0
    reminders.start(2000.0)
    assert reminders.due(2000.0)
    assert reminders.sent == 1
    assert not reminders.due(2009.0)
    assert reminders.due(2010.0)


def test_reminders_refuse_a_jittered_policy() -> None:
    with pytest.raises(ValueError, match="do not jitter"):
        Reminders(BackoffPolicy(initial_s=1.0, max_s=2.0, jitter=True))
