"""The ZScoreEngine contract: the Rust engine equals the pure-Python reference, exactly.

Hypothesis drives both over 0.25-grid prices in small windows (where |z| lands exactly on
thresholds) and over arbitrary finite floats (huge, tiny, subnormal, negative, mixed). Undefined
positions must coincide, the exact ``(num, var)`` pairs must describe the same z, the floats must
agree to 1e-12, and every domain tie decision must come out the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.zscore.reference import PythonZScoreEngine
from adapters.zscore.reference import RollingZScore as ReferenceZScore
from adapters.zscore.rust import RustZScoreEngine
from application.ports import ZScoreEngine, ZScoreEngineFactory
from domain.zscore import Threshold, ZScore
from native_core import RollingZScore as RustZScore

THRESHOLDS = [Threshold(t) for t in ("0", "0.5", "1", "1.75", "2", "2.1", "3")]
REL_TOL = 1e-12
# Below the smallest normal float a z-score loses relative precision in any engine.
ABS_TOL = 1e-300

ENGINES: list[ZScoreEngineFactory] = [RustZScoreEngine, PythonZScoreEngine]

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A few ticks apart, exact ties are common (|z| = 0.5 in ~8% of 5-bar windows of 4 levels).
grid_prices = st.one_of(st.integers(20_000, 20_003), st.integers(19_980, 20_020)).map(
    lambda ticks: ticks * 0.25
)
any_finite = st.one_of(
    grid_prices,
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True, width=64).map(
        lambda v: v * 2.0**-1000
    ),
    st.sampled_from(
        [
            0.0,
            -0.0,
            5e-324,
            -5e-324,
            2.2250738585072014e-308,
            1e-300,
            1e300,
            1.7976931348623157e308,
            -1.7976931348623157e308,
            0.1,
            1 / 3,
            2.0**61,
            2.0**62,
            -(2.0**63),
        ]
    ),
)


@st.composite
def windows(draw: st.DrawFn, max_window: int) -> tuple[int, int]:
    window = draw(st.integers(1, max_window))
    return window, draw(st.integers(1, window))


def same_exact_z(a: tuple[float, int, int], b: tuple[float, int, int]) -> bool:
    """``a`` and ``b`` describe the same z: equal signs and ``num1**2 * var2 == num2**2 * var1``."""
    _, n1, v1 = a
    _, n2, v2 = b
    return (n1 > 0) == (n2 > 0) and (n1 < 0) == (n2 < 0) and n1 * n1 * v2 == n2 * n2 * v1


def decisions(z: ZScore) -> list[bool]:
    return [
        f(t) for t in THRESHOLDS for f in (z.at_or_above, z.at_or_below_negative, z.abs_at_most)
    ]


def assert_engines_agree(window: int, min_periods: int, xs: Sequence[float]) -> None:
    rust = RustZScore(window, min_periods)
    ref = ReferenceZScore(window, min_periods)
    for i, x in enumerate(xs):
        got = rust.update_exact(x)
        want = ref.update_exact(x)
        if want is None:
            assert got is None, f"step {i}: Rust defined {got}, reference undefined"
            continue
        assert got is not None, f"step {i}: Rust undefined, reference {want}"
        assert same_exact_z(got, want), f"step {i}: {got} vs {want}"
        assert math.isclose(got[0], want[0], rel_tol=REL_TOL, abs_tol=ABS_TOL), (i, got, want)
        z_rust = ZScore(got[1], got[2], got[0])
        z_ref = ZScore(want[1], want[2], want[0])
        assert z_rust == z_ref
        assert decisions(z_rust) == decisions(z_ref), f"step {i}: tie decisions differ"
    assert rust.count == ref.count
    assert rust.ready == ref.ready
    for a, b in ((rust.mean, ref.mean), (rust.std, ref.std)):
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL), (a, b)


@SETTINGS
@given(w=windows(12), xs=st.lists(grid_prices, min_size=20, max_size=150))
def test_rust_equals_reference_on_grid_prices(w: tuple[int, int], xs: list[float]) -> None:
    assert_engines_agree(*w, xs)


@SETTINGS
@given(w=windows(60), xs=st.lists(any_finite, min_size=20, max_size=150))
def test_rust_equals_reference_on_arbitrary_finite_floats(
    w: tuple[int, int], xs: list[float]
) -> None:
    assert_engines_agree(*w, xs)


@SETTINGS
@given(
    w=windows(60),
    xs=st.lists(st.one_of(grid_prices, grid_prices, any_finite), max_size=200),
    split=st.integers(0, 200),
)
def test_update_many_equals_the_update_sequence(
    w: tuple[int, int], xs: list[float], split: int
) -> None:
    window, min_periods = w
    for cls in (RustZScore, ReferenceZScore):
        one_by_one = cls(window, min_periods)
        expected = [one_by_one.update(x) for x in xs]
        batched = cls(window, min_periods)
        # Two batches (list, then numpy array) continue the same state.
        got = np.concatenate(
            [batched.update_many(xs[:split]), batched.update_many(np.array(xs[split:]))]
        )
        assert got.dtype == np.float64
        assert got.shape == (len(xs),)
        for e, g in zip(expected, got.tolist(), strict=True):
            if e is None:
                assert math.isnan(g)
            else:
                assert g == e, (cls, e, g)  # bit-identical to its own update
    rust_all = RustZScore(window, min_periods).update_many(xs)
    ref_all = ReferenceZScore(window, min_periods).update_many(xs)
    np.testing.assert_allclose(rust_all, ref_all, rtol=REL_TOL, atol=ABS_TOL)


@pytest.mark.parametrize("factory", ENGINES, ids=["rust", "python"])
def test_engine_turns_updates_into_domain_zscores(factory: ZScoreEngineFactory) -> None:
    engine: ZScoreEngine = factory(5)
    closes = [5000.0, 5000.0, 5000.0, 5000.0, 5000.25, 4999.75, 5000.0]
    got = [engine.update(c) for c in closes]
    assert got[:4] == [None] * 4
    z = got[4]
    assert z is not None
    # [5000]*4 + [5000.25]: z = 2 exactly, so "at or above 2" holds.
    assert (z.num, z.var, z.value) == (4, 4, 2.0)
    assert z.at_or_above(Threshold("2"))
    assert all(isinstance(v, ZScore) for v in got[4:])
    engine.reset()
    assert [engine.update(c) for c in closes[:4]] == [None] * 4


@SETTINGS
@given(w=st.integers(1, 30), xs=st.lists(grid_prices, min_size=20, max_size=150))
def test_rust_and_python_engines_give_equal_zscores(w: int, xs: list[float]) -> None:
    rust, python = (factory(w) for factory in ENGINES)
    for x in xs:
        a, b = rust.update(x), python.update(x)
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert a == b
            assert decisions(a) == decisions(b)
