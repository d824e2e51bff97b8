"""mle_jax._checks: value checks of x, weights and masks as the computation sees them; batch checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mle_jax import _checks as checks


def test_check_finite_sees_bfloat16_nan_and_inf():
    with pytest.raises(ValueError, match=r"r: x nan at index 2 is not finite .*1 bad entry"):
        checks.check_finite("r", jnp.array([1.0, 2.0, jnp.nan], jnp.bfloat16), "x")
    with pytest.raises(ValueError, match=r"r: weights inf at index 0"):
        checks.check_weights("r", jnp.array([jnp.inf, 1.0], jnp.float16), None)
    checks.check_finite("r", jnp.array([1.0, 2.0], jnp.bfloat16), "x")


def test_check_finite_sees_overflow_and_wrapping_in_the_cast():
    with pytest.raises(ValueError, match=r"x \[0\.0, 1e\+39\] at index 1 is not kept by the cast to float32"):
        checks.check_finite("r", np.array([[0.0, 0.0], [0.0, 1e39]]), "x")
    with pytest.raises(ValueError, match=r"x 1099511627779 at index 0 is not kept by the cast to int32.*becomes 3"):
        checks.check_finite("r", np.array([2**40 + 3], np.int64), "x")
    with jax.enable_x64(True):
        checks.check_finite("r", np.array([1e39, 2.0**40]), "x")
    checks.check_finite("r", np.array([1e-50, 0.1]), "x")  # an underflow on the real line is harmless


def test_computed_flushes_subnormals_and_keeps_normal_values():
    got = checks.computed(np.array([1e-40, -1e-39, 1.5e-38, 2.0], np.float64))
    np.testing.assert_array_equal(got, [0.0, 0.0, np.float32(1.5e-38), 2.0])
    assert checks.computed(np.array([2**31], np.int64))[0] == -(2**31)


def test_fail_entries_counts_rows_and_shows_the_first():
    bad = np.array([[False, False], [True, True], [False, True]])
    with pytest.raises(ValueError, match=r"f: y \[1, 2\] at index 1 is not fine \(2 bad examples; the first is shown\)"):
        checks.fail_entries("f", "fine", bad, np.array([[0, 0], [1, 2], [3, 4]]))
    checks.fail_entries("f", "fine", np.zeros(3, bool), np.zeros(3))


def test_check_batch_says_what_a_list_is():
    with pytest.raises(ValueError, match=r"r: x is a Python list, which JAX reads as a pytree"):
        checks.check_batch("r", [1.0, 2.0], np.zeros(2))
    with pytest.raises(ValueError, match=r"r: y is a Python tuple"):
        checks.check_batch("r", np.zeros((2, 1)), (0, 1))
    assert checks.check_batch("r", (np.zeros((2, 1)), np.zeros((2, 3))), np.zeros(2)) == 2  # a pytree of arrays
    with pytest.raises(ValueError, match="needs a leading batch axis; got a scalar"):
        checks.check_batch("r", np.float32(1.0), np.zeros(2))


def test_bfloat16_weights_are_checked():
    with pytest.raises(ValueError, match=r"weights -1\.0 at index 1 is not >= 0"):
        checks.check_weights("r", jnp.array([1.0, -1.0], jnp.bfloat16), None)
    checks.check_weights("r", jnp.array([1.0, 0.5], jnp.bfloat16), jnp.array([True, False]))
