"""ZScore threshold decisions against an exact integer oracle, ties and near-ties included.

The oracle works on ``z = num / sqrt(var)`` and ``t = p / q`` with integers only: ``z >= t`` iff
``num >= 0 and num² q² >= p² var`` (for ``t >= 0``). The float ``value`` handed with the exact terms
is the correctly rounded z, or that value perturbed by up to the documented VALUE_REL_ERROR: the
decisions must not depend on which.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.zscore import VALUE_REL_ERROR, Threshold, ZScore

# ---------------------------------------------------------------- the oracle


def oracle_cmp_abs(num: int, var: int, t: Fraction) -> int:
    """Sign of |z| - t, exactly."""
    lhs = num * num * t.denominator**2
    rhs = t.numerator**2 * var
    return (lhs > rhs) - (lhs < rhs)


def oracle_at_or_above(num: int, var: int, t: Fraction) -> bool:
    return num >= 0 and oracle_cmp_abs(num, var, t) >= 0


def oracle_at_or_below_negative(num: int, var: int, t: Fraction) -> bool:
    return num <= 0 and oracle_cmp_abs(num, var, t) >= 0


def oracle_abs_at_most(num: int, var: int, t: Fraction) -> bool:
    return oracle_cmp_abs(num, var, t) <= 0


def rounded_z(num: int, var: int) -> float:
    """num / sqrt(var) correctly rounded to a float (80 significant digits, then one rounding)."""
    with localcontext() as ctx:
        ctx.prec = 80
        return float(Decimal(num) / Decimal(var).sqrt())


# Relative perturbations inside the engines' promise |value - z| <= VALUE_REL_ERROR * |z|.
# 0.999 keeps the float product itself (one more rounding) inside the promise.
PERTURBATIONS = (0.0, 0.999, -0.999, 0.5, -0.5, 1e-3, -1e-3)


def values_for(num: int, var: int) -> list[float]:
    z = rounded_z(num, var)
    return [z * (1.0 + k * VALUE_REL_ERROR) for k in PERTURBATIONS]


def check_all(num: int, var: int, t: Threshold) -> None:
    for value in values_for(num, var):
        z = ZScore(num, var, value)
        assert z.at_or_above(t) is oracle_at_or_above(num, var, t.exact), (num, var, t, value)
        assert z.at_or_below_negative(t) is oracle_at_or_below_negative(num, var, t.exact), (
            num,
            var,
            t,
            value,
        )
        assert z.abs_at_most(t) is oracle_abs_at_most(num, var, t.exact), (num, var, t, value)


# ---------------------------------------------------------------- strategies

# Thresholds as decimal text, the way config gives them: 0, 0.5, 2.0, 2.1, 1.75, 3.333, ...
decimal_thresholds = st.builds(
    lambda units, places: Threshold(Decimal(units).scaleb(-places)),
    st.integers(min_value=0, max_value=5000),
    st.integers(min_value=0, max_value=3),
)
usual_thresholds = st.sampled_from(["0", "0.5", "1", "1.5", "2", "2.0", "2.1", "2.5", "3"]).map(
    Threshold
)
thresholds = st.one_of(usual_thresholds, decimal_thresholds)


@st.composite
def exact_ties(draw: st.DrawFn) -> tuple[int, int, Threshold]:
    """(num, var, t) with |z| == t exactly: num = ±p·m, var = (q·m)² so num² q² == p² var."""
    t = draw(thresholds)
    m = draw(st.integers(min_value=1, max_value=10**15))
    sign = draw(st.sampled_from([1, -1]))
    p, q = t.exact.numerator, t.exact.denominator
    num, var = sign * p * m, (q * m) ** 2
    if p == 0:
        # |z| == 0: num must be 0 and var anything positive.
        var = draw(st.integers(min_value=1, max_value=10**30))
    assert num * num * q * q == p * p * var
    return num, var, t


@st.composite
def near_ties(draw: st.DrawFn) -> tuple[int, int, Threshold]:
    """An exact tie nudged by a unit in num or var: a hair either side of the threshold."""
    num, var, t = draw(exact_ties())
    dnum = draw(st.sampled_from([-1, 0, 1]))
    dvar = draw(st.sampled_from([-1, 0, 1]))
    return num + dnum, max(1, var + dvar), t


@st.composite
def window_z(draw: st.DrawFn) -> tuple[int, int]:
    """num and var of a real window of grid prices (integer ticks), last price scored."""
    n = draw(st.integers(min_value=2, max_value=30))
    base = draw(st.integers(min_value=4000 * 4, max_value=6000 * 4))
    steps = draw(st.lists(st.integers(min_value=-3, max_value=3), min_size=n, max_size=n))
    xs = [base + sum(steps[: i + 1]) for i in range(n)]
    s, q = sum(xs), sum(x * x for x in xs)
    var = n * q - s * s
    if var == 0:
        xs[0] += 1
        s, q = sum(xs), sum(x * x for x in xs)
        var = n * q - s * s
    return n * xs[-1] - s, var


# ---------------------------------------------------------------- the differential tests


@given(exact_ties())
@example((2, 1, Threshold("2")))
@example((-2, 1, Threshold("2")))
@example((1, 4, Threshold("0.5")))
@example((-1, 4, Threshold("0.5")))
@example((21, 100, Threshold("2.1")))
@example((0, 7, Threshold("0")))
def test_a_z_exactly_on_the_threshold_is_decided_inclusively(
    case: tuple[int, int, Threshold],
) -> None:
    num, var, t = case
    assert oracle_cmp_abs(num, var, t.exact) == 0
    for value in values_for(num, var):
        z = ZScore(num, var, value)
        assert z.abs_at_most(t)
        assert z.at_or_above(t) is (num >= 0)
        assert z.at_or_below_negative(t) is (num <= 0)


@given(near_ties())
def test_a_z_a_hair_from_the_threshold_matches_the_exact_oracle(
    case: tuple[int, int, Threshold],
) -> None:
    check_all(*case)


@given(window_z(), thresholds)
def test_z_of_real_grid_windows_matches_the_exact_oracle(zv: tuple[int, int], t: Threshold) -> None:
    check_all(zv[0], zv[1], t)


@given(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.integers(min_value=1, max_value=10**20),
    thresholds,
)
def test_arbitrary_terms_match_the_exact_oracle(num: int, var: int, t: Threshold) -> None:
    check_all(num, var, t)


def test_ties_at_the_default_thresholds_on_a_real_window() -> None:
    # Closes (in ticks) 0,0,0,0,x: the last point's z is 2.0 exactly for a window of 5.
    xs = [0, 0, 0, 0, 1]
    n, s, q = len(xs), sum(xs), sum(x * x for x in xs)
    num, var = n * xs[-1] - s, n * q - s * s
    assert Fraction(num * num, var) == 4  # z == 2 exactly
    for value in values_for(num, var):
        z = ZScore(num, var, value)
        assert z.at_or_above(Threshold("2.0"))
        assert not z.at_or_below_negative(Threshold("2.0"))
        assert not z.abs_at_most(Threshold("1.999999999999999"))
        assert z.abs_at_most(Threshold("2"))
        # The mirrored window gives exactly -2.
        neg = ZScore(-num, var, -value)
        assert neg.at_or_below_negative(Threshold("2.0"))
        assert not neg.at_or_above(Threshold("2.0"))


# A float a hair either side of the threshold, with exact terms that say otherwise: the exact
# terms decide (the engine promises value is within 1e-12 of the exact z).
FLOAT_SIDE_CASES = [
    # num, var, value, threshold, at_or_above, at_or_below_negative, abs_at_most
    (2, 1, 2.0 * (1 - 1e-15), "2", True, False, True),
    (2, 1, 2.0 * (1 + 1e-15), "2", True, False, True),
    (-2, 1, -2.0 * (1 + 1e-15), "2", False, True, True),
    (-2, 1, -2.0 * (1 - 1e-15), "2", False, True, True),
    (1, 4, 0.5 * (1 + 1e-13), "0.5", True, False, True),
    (21, 100, 2.1 * (1 - 1e-13), "2.1", True, False, True),
    (-21, 100, -2.1 * (1 - 1e-13), "2.1", False, True, True),
]


@pytest.mark.parametrize(
    ("num", "var", "value", "text", "above", "below_neg", "abs_most"), FLOAT_SIDE_CASES
)
def test_the_exact_terms_decide_when_the_float_sits_on_the_threshold(
    num: int, var: int, value: float, text: str, above: bool, below_neg: bool, abs_most: bool
) -> None:
    z = ZScore(num, var, value)
    t = Threshold(text)
    assert z.at_or_above(t) is above
    assert z.at_or_below_negative(t) is below_neg
    assert z.abs_at_most(t) is abs_most


ZERO_THRESHOLD = [
    # num, above (z >= 0), below_neg (z <= -0), abs_most (|z| <= 0)
    (0, True, True, True),
    (1, True, False, False),
    (-1, False, True, False),
    (10**12, True, False, False),
    (-(10**12), False, True, False),
]


@pytest.mark.parametrize(("num", "above", "below_neg", "abs_most"), ZERO_THRESHOLD)
def test_a_zero_threshold_splits_on_the_sign_of_z(
    num: int, above: bool, below_neg: bool, abs_most: bool
) -> None:
    t = Threshold("0")
    for var in (1, 7, 10**30):
        z = ZScore(num, var, rounded_z(num, var))
        assert (z.at_or_above(t), z.at_or_below_negative(t), z.abs_at_most(t)) == (
            above,
            below_neg,
            abs_most,
        )


# ---------------------------------------------------------------- Threshold and ZScore values

THRESHOLD_TEXT = [
    ("2.1", Fraction(21, 10)),
    ("2.0", Fraction(2)),
    ("0.5", Fraction(1, 2)),
    ("0", Fraction(0)),
    ("-0", Fraction(0)),
    ("1.333", Fraction(1333, 1000)),
    ("1e-3", Fraction(1, 1000)),
    (Decimal("2.1"), Fraction(21, 10)),
    (Decimal("0.10"), Fraction(1, 10)),
    (3, Fraction(3)),
]


@pytest.mark.parametrize(("given_value", "exact"), THRESHOLD_TEXT, ids=repr)
def test_a_threshold_keeps_the_exact_value_of_its_decimal_text(
    given_value: Decimal | int | str, exact: Fraction
) -> None:
    t = Threshold(given_value)
    assert t.exact == exact
    assert t.value == float(exact)


def test_threshold_2_1_is_21_tenths_not_the_float() -> None:
    t = Threshold("2.1")
    assert t.exact == Fraction(21, 10)
    assert t.exact != Fraction(2.1)
    assert repr(t) == "Threshold(21/10)"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("-0.5", "must be >= 0"),
        (Decimal("-2"), "must be >= 0"),
        (-1, "must be >= 0"),
        ("nan", "must be finite"),
        ("Infinity", "must be finite"),
        ("two", "is not a decimal number"),
        ("", "is not a decimal number"),
    ],
)
def test_a_bad_threshold_is_refused_with_a_domain_error(
    bad: Decimal | int | str, message: str
) -> None:
    with pytest.raises(DomainError, match=message):
        Threshold(bad)


def test_thresholds_equal_and_hash_by_exact_value() -> None:
    assert Threshold("2") == Threshold("2.000") == Threshold(2)
    assert hash(Threshold("2")) == hash(Threshold(Decimal("2.0")))
    assert Threshold("2.1") != Threshold("2.10000001")
    assert Threshold("2") != 2
    assert len({Threshold("0.5"), Threshold("0.50"), Threshold("2")}) == 2


@pytest.mark.parametrize("var", [0, -1])
def test_a_z_score_needs_a_positive_variance_term(var: int) -> None:
    with pytest.raises(DomainError, match="variance term must be positive"):
        ZScore(1, var, 1.0)


ZSCORE_EQUALITY = [
    (ZScore(2, 4, 1.0), ZScore(4, 16, 1.0), True),
    (ZScore(2, 4, 1.0), ZScore(3, 9, 1.0), True),
    (ZScore(-2, 4, -1.0), ZScore(-5, 25, -1.0), True),
    (ZScore(0, 4, 0.0), ZScore(0, 9, 0.0), True),
    (ZScore(2, 4, 1.0), ZScore(-2, 4, -1.0), False),
    (ZScore(2, 4, 1.0), ZScore(2, 5, 0.894), False),
    (ZScore(0, 4, 0.0), ZScore(1, 10**30, 1e-15), False),
]


@pytest.mark.parametrize(("a", "b", "equal"), ZSCORE_EQUALITY, ids=repr)
def test_z_scores_are_equal_when_their_exact_values_are(a: ZScore, b: ZScore, equal: bool) -> None:
    assert (a == b) is equal
    if equal:
        assert hash(a) == hash(b)


@given(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.integers(min_value=1, max_value=10**6),
    st.integers(min_value=1, max_value=1000),
)
def test_scaled_terms_give_an_equal_z_with_an_equal_hash(num: int, var: int, k: int) -> None:
    a = ZScore(num, var, rounded_z(num, var))
    b = ZScore(num * k, var * k * k, rounded_z(num * k, var * k * k))
    assert a == b
    assert hash(a) == hash(b)
    assert a.value == b.value


def test_z_score_is_not_equal_to_its_float() -> None:
    z = ZScore(2, 1, 2.0)
    assert z != 2.0
    assert z.__eq__(2.0) is NotImplemented
    assert repr(z) == "ZScore(2.0)"


def test_rounded_z_helper_is_correct_on_known_values() -> None:
    # The oracle's own float must be right, or the perturbation cases prove nothing.
    assert rounded_z(2, 1) == 2.0
    assert rounded_z(-1, 4) == -0.5
    assert rounded_z(1, 2) == math.sqrt(0.5)  # 1 / math.sqrt(2) rounds twice: one ulp low
    assert rounded_z(21, 100) == 2.1
