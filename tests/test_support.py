"""mle_jax.distributions._support: the named supports and the one validator (re-exported where the families import them)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mle_jax.distributions import _support as S
from mle_jax.families import Support, validate

# each support against an independent statement of its rule, on a grid with the edges
RULES = {
    "real": (S.real, lambda y: np.zeros(y.shape, bool)),
    "positive": (S.positive, lambda y: ~(y > 0)),
    "unit_interval": (S.unit_interval, lambda y: ~((0 < y) & (y < 1))),
    "probability": (S.probability, lambda y: ~((0 <= y) & (y <= 1))),
    "binary": (S.binary, lambda y: ~((y == 0) | (y == 1))),
    "nonnegative_integer": (S.nonnegative_integer, lambda y: ~((y >= 0) & (np.mod(y, 1) == 0))),
    "labels(3)": (S.labels(3), lambda y: ~((y >= 0) & (y < 3) & (np.mod(y, 1) == 0))),
    "side": (S.side, lambda y: ~np.isin(y, [-1, 0, 1])),
}
GRID = np.array([-2.0, -1.0, -0.5, 0.0, 1e-30, 0.3, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 7.0, 1e6])


@pytest.mark.parametrize("name", sorted(RULES))
def test_off_matches_the_rule(name):
    support, rule = RULES[name]
    assert support.name == name if name != "side" else support.what == "side"
    np.testing.assert_array_equal(support.off(GRID), rule(GRID))
    assert not support.off(np.array([support.inside()])).any()
    assert support.off(np.array(support.outside())).all()


@pytest.mark.parametrize("name", sorted(RULES))
def test_validate_names_family_rule_count_index_and_value(name):
    support, rule = RULES[name]
    y = np.array([support.inside()] * 5)
    validate("fam()", support, y.astype(np.float32) if "float" in support.dtypes else y.astype(np.int32))
    if not support.outside():
        return
    bad = support.outside()[0]
    y[1] = y[3] = bad
    y = y.astype(np.float32) if "float" in support.dtypes or bad != int(bad) else y.astype(np.int32)
    with pytest.raises(ValueError) as error:
        validate("fam()", support, y)
    message = str(error.value)
    assert message.startswith("fam(): ") and "index 1" in message and "2 bad entries" in message
    assert (support.rule in message) or "got dtype" in message


def test_non_finite_and_bfloat16():
    y = jnp.array([0.5, jnp.nan, 0.2, jnp.inf], jnp.bfloat16)
    with pytest.raises(ValueError, match=r"fam\(\): y nan at index 1 is not finite .*2 bad entries"):
        validate("fam()", S.unit_interval, y)
    validate("fam()", S.unit_interval, jnp.array([0.5, 0.25], jnp.bfloat16))
    validate("fam()", S.nonnegative_integer, jnp.array([0.0, 3.0, 250.0], jnp.bfloat16))


@pytest.mark.parametrize("support, value, dtype, becomes", [
    (S.real, 1e39, np.float64, "inf"),
    (S.real, -3e38 * 10, np.float64, "-inf"),
    (S.positive, 1e-50, np.float64, "0.0"),
    (S.positive, 1e-40, np.float64, "0.0"),          # a float32 subnormal: XLA flushes it to 0
    (S.unit_interval, 1 - 1e-10, np.float64, "1.0"),
    (S.unit_interval, 1e-60, np.float64, "0.0"),
    (S.nonnegative_integer, 2**40 + 3, np.int64, "3"),
    (S.nonnegative_integer, 2**31, np.int64, "-2147483648"),
    (S.nonnegative_integer, 2**25 + 1, np.float64, "33554432.0"),
    (S.nonnegative_integer, 2**25 + 1, np.int64, "33554432"),  # whole in int32, not in float32
])
def test_values_are_checked_as_the_computation_sees_them(support, value, dtype, becomes):
    y = np.array([support.inside(), value], dtype)
    with pytest.raises(ValueError, match=rf"fam\(\): y .* at index 1 is not kept by the cast to \w+32.*"
                                         rf"becomes {becomes}\b.*jax_enable_x64"):
        validate("fam()", support, y)
    with jax.enable_x64(True):  # the same values are kept in 64-bit mode
        validate("fam()", support, y)


def test_values_that_round_harmlessly_pass():
    validate("fam()", S.real, np.array([0.1, 1e-50, 1 / 3], np.float64))  # rounding on the real line is fine
    validate("fam()", S.positive, np.array([1e-30, 3e38], np.float64))
    validate("fam()", S.nonnegative_integer, np.array([0, 2**24], np.int64))


def test_dtype_rules():
    with pytest.raises(ValueError, match=r"y must be real numbers .*\(real\); got dtype bool"):
        validate("fam()", S.real, np.array([True, False]))
    with pytest.raises(ValueError, match=r"labels must be integers \(labels\(3\)\); got dtype float32 \(cast with"):
        validate("fam()", S.labels(3), np.array([0.0, 1.0], np.float32))
    with pytest.raises(ValueError, match="got dtype complex64"):
        validate("fam()", S.real, np.array([1j], np.complex64))
    validate("fam()", S.labels(3), np.array([True, False]))
    validate("fam()", S.binary, np.array([True, False]))


def test_censored_pairs():
    support = S.censored_pair(S.positive)
    validate("fam()", support, np.array([[1.0, 0.0], [2.0, 1.0], [0.5, -1.0]], np.float32))
    with pytest.raises(ValueError, match=r"y must have shape \(N, 2\).*got \(3,\)"):
        validate("fam()", support, np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"side 2\.0 at index 1 is not -1, 0 or \+1"):
        validate("fam()", support, np.array([[1.0, 0.0], [2.0, 2.0]], np.float32))
    with pytest.raises(ValueError, match=r"y -2\.0 at index 1 is not > 0"):
        validate("fam()", support, np.array([[1.0, 0.0], [-2.0, 1.0]], np.float32))


def test_a_new_support_is_data():
    integer_interval = Support("integer_interval(1, 6)", "a die face in [1, 6]", lower=1.0, upper=6.0, integer=True)
    np.testing.assert_array_equal(integer_interval.off(np.array([0.0, 1.0, 3.5, 6.0, 7.0])),
                                  [True, False, True, False, True])
    assert integer_interval.exact and not S.real.exact and math.isinf(S.real.upper)


def test_the_families_import_the_same_supports():
    from mle_jax.families import _support as families_support
    assert families_support.real is S.real and families_support.validate is S.validate
