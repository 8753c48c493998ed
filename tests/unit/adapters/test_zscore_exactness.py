"""The z-score engines decide exact ties exactly, reject bad input cleanly and never drift."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pytest

from adapters.zscore.reference import PythonZScoreEngine
from adapters.zscore.reference import RollingZScore as ReferenceZScore
from adapters.zscore.rust import RustZScoreEngine
from application.ports import ZScoreEngineFactory
from domain.zscore import Threshold
from native_core import RollingZScore as RustZScore

Core = type[RustZScore] | type[ReferenceZScore]
CORES: list[Core] = [RustZScore, ReferenceZScore]
ENGINES: list[ZScoreEngineFactory] = [RustZScoreEngine, PythonZScoreEngine]
ENTRY = Threshold("2")
EXIT = Threshold("0.5")


def exact_z_squared(window: list[float]) -> Fraction | None:
    """``z**2`` of the last value, by rational arithmetic; None when the variance is 0."""
    n = len(window)
    s = sum(Fraction(v) for v in window)
    q = sum(Fraction(v) ** 2 for v in window)
    var = n * q - s * s
    if var == 0:
        return None
    num = n * Fraction(window[-1]) - s
    return num * num / var


def naive_z(window: list[float]) -> float:
    """The textbook float computation: numpy two-pass mean and population std."""
    a = np.array(window)
    return float((a[-1] - a.mean()) / a.std())


def tie_windows() -> list[tuple[list[float], Fraction]]:
    """Every 5-bar window of closes 5000.00..5000.75 whose |z| is exactly 2 or exactly 0.5."""
    found = []
    for ticks in itertools.product(range(4), repeat=5):
        window = [5000.0 + 0.25 * t for t in ticks]
        z2 = exact_z_squared(window)
        if z2 in (4, Fraction(1, 4)):
            found.append((window, z2))
    return found


TIES = tie_windows()


def test_the_search_finds_ties_at_both_thresholds() -> None:
    assert sum(1 for _, z2 in TIES if z2 == 4) >= 5
    assert sum(1 for _, z2 in TIES if z2 == Fraction(1, 4)) >= 5


@pytest.mark.parametrize("factory", ENGINES, ids=["rust", "python"])
def test_engines_classify_exact_ties_as_ties(factory: ZScoreEngineFactory) -> None:
    for window, z2 in TIES:
        engine = factory(len(window))
        z = None
        for close in window:
            z = engine.update(close)
        assert z is not None
        if z2 == 4:
            # |z| == 2: the entry fires on the side of the sign, and "at most 2" holds too.
            assert (z.at_or_above(ENTRY), z.at_or_below_negative(ENTRY)) == (z.num > 0, z.num < 0)
            assert z.abs_at_most(ENTRY)
            assert not z.abs_at_most(Threshold("1.99"))
        else:
            assert z.abs_at_most(EXIT), window
            assert (z.at_or_above(EXIT), z.at_or_below_negative(EXIT)) == (z.num > 0, z.num < 0)
            assert not z.abs_at_most(Threshold("0.49"))


def test_naive_float_zscore_misclassifies_exact_ties() -> None:
    """Why the engines carry exact terms: the textbook float z gets real ties wrong."""
    wrong = []
    for window, z2 in TIES:
        z = abs(naive_z(window))
        if (z2 == 4 and z < 2.0) or (z2 == Fraction(1, 4) and z > 0.5):
            wrong.append(window)
    assert [5000.0, 5000.0, 5000.0, 5000.0, 5000.25] in wrong
    assert naive_z([5000.0, 5000.0, 5000.0, 5000.0, 5000.25]) < 2.0
    assert len(wrong) >= 10


@pytest.mark.parametrize("cls", CORES, ids=["rust", "reference"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_input_is_rejected_and_leaves_state_unchanged(cls: Core, bad: float) -> None:
    good = [5000.0, 5000.25, 4999.5, 5001.0]
    z = cls(5, 2)
    z.update_many(good)
    before = (z.count, z.ready, z.mean, z.std)
    with pytest.raises(ValueError, match="finite"):
        z.update(bad)
    with pytest.raises(ValueError, match="finite"):
        z.update_exact(bad)
    with pytest.raises(ValueError, match=r"index 2 .*no value was applied"):
        z.update_many([5000.0, 5000.5, bad, 5000.0])
    with pytest.raises(ValueError, match="index 1 "):
        z.update_many(np.array([5000.0, bad, bad]))
    assert (z.count, z.ready, z.mean, z.std) == before
    fresh = cls(5, 2)
    fresh.update_many(good)
    assert z.update_exact(5000.75) == fresh.update_exact(5000.75)


@pytest.mark.parametrize("cls", CORES, ids=["rust", "reference"])
@pytest.mark.parametrize(
    ("window", "min_periods", "error", "match"),
    [
        (0, None, ValueError, "window must be between 1 and"),
        (-3, None, ValueError, "window must be between 1 and"),
        (2**32 + 1, None, ValueError, "window must be between 1 and"),
        (2**80, None, ValueError, "window must be between 1 and"),
        (5, 0, ValueError, "min_periods must be between 1 and"),
        (5, 6, ValueError, "min_periods must be between 1 and"),
        (2.5, None, TypeError, "integer"),
        ("5", None, TypeError, "integer"),
    ],
)
def test_bad_constructor_arguments_are_rejected(
    cls: Core, window: object, min_periods: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        cls(window, min_periods)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", CORES, ids=["rust", "reference"])
def test_properties_follow_the_window(cls: Core) -> None:
    z = cls(4, 2)
    assert (z.window, z.min_periods, z.count, z.ready, z.mean, z.std) == (
        4,
        2,
        0,
        False,
        None,
        None,
    )
    assert z.update(1.0) is None
    assert (z.count, z.ready, z.mean) == (1, False, None)
    for x in (2.0, 3.0, 4.0, 5.0):
        z.update(x)
    # Window [2, 3, 4, 5]: mean 3.5, population std sqrt(1.25).
    assert (z.count, z.ready, z.mean) == (4, True, 3.5)
    assert z.std == pytest.approx(math.sqrt(1.25), rel=1e-15)
    assert repr(z) == "RollingZScore(window=4, min_periods=2, count=4)"
    z.reset()
    assert (z.count, z.ready, z.mean) == (0, False, None)


def read_only_array(xs: list[float]) -> np.ndarray:
    a = np.array(xs)
    a.setflags(write=False)
    return a


@pytest.mark.parametrize("cls", CORES, ids=["rust", "reference"])
@pytest.mark.parametrize(
    "convert",
    [
        list,
        np.array,
        read_only_array,
        lambda xs: np.repeat(np.array(xs), 2)[::2],  # non-contiguous view
        lambda xs: np.array(xs, dtype=np.float32),
        lambda xs: tuple(np.float64(x) for x in xs),
    ],
    ids=["list", "ndarray", "read-only", "strided", "float32", "tuple-of-numpy-scalars"],
)
def test_update_many_accepts_arrays_and_sequences(
    cls: Core, convert: Callable[..., object]
) -> None:
    xs = [5000.0, 5000.25, 4999.5, 5001.0, 5000.5, 5000.0]
    expected = cls(3, 2).update_many(np.array(xs, dtype=np.float64))
    got = cls(3, 2).update_many(convert(xs))  # type: ignore[arg-type]
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("cls", CORES, ids=["rust", "reference"])
def test_update_many_rejects_two_dimensional_arrays(cls: Core) -> None:
    with pytest.raises(ValueError, match="one-dimensional"):
        cls(3).update_many(np.zeros((2, 2)))


def test_ten_million_mes_prices_do_not_drift() -> None:
    """update_many over 10M closes matches a fresh two-pass float computation at samples."""
    rng = np.random.default_rng(20240304)
    count = 10_000_000
    ticks = 20_000 + np.cumsum(rng.integers(-2, 3, size=count))
    closes = ticks * 0.25  # exact: the 0.25 grid around 5000
    for window in (20, 390):
        z = RustZScore(window).update_many(closes)
        assert np.isnan(z[: window - 1]).all()
        idx = np.unique(np.concatenate([rng.integers(window - 1, count, size=2000), [count - 1]]))
        windows = np.lib.stride_tricks.sliding_window_view(closes, window)[idx - window + 1]
        mean = windows.mean(axis=1)
        std = np.sqrt(((windows - mean[:, None]) ** 2).mean(axis=1))
        want = (windows[:, -1] - mean) / std
        got = z[idx]
        defined = std > 0
        assert defined.sum() > 1900
        assert np.isnan(got[~defined]).all()
        got, want = got[defined], want[defined]
        nonzero = want != 0
        rel = np.abs(got[nonzero] - want[nonzero]) / np.abs(want[nonzero])
        assert rel.max() <= 1e-9
        # An exactly-zero z has no relative error to speak of: compare it absolutely.
        assert np.abs(got[~nonzero]).max(initial=0.0) <= 1e-12
