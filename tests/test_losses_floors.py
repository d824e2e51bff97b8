"""A positive value given wider than the raw outputs is read by the kernels in the raw outputs' dtype (float32 at
least), where a value at or below that dtype's floor ``eps`` reads as the floor: ``mj.losses`` refuses a concrete
one there (a float64 scale of 1e-10 with float32 raw outputs was 1.19e-7 in the kernel and 1e-10 in the affine:
an NLL of -22.0 for scipy's -14.95) and computes one above it as scipy does."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import mle_jax as mj


def test_a_float64_scale_below_float32s_floor_with_float32_raw_outputs_is_refused():
    with jax.enable_x64(True):
        raw, y = jnp.zeros(1, jnp.float32), jnp.asarray([1e-9], jnp.float32)
        with pytest.raises(ValueError, match=r"mj.losses.student_t: scale 1e-10 is at or below 1.19e-07, the floor "
                                             r"of the dtype the loss computes in \(float32"):
            mj.losses.student_t(raw, y, df=3.0, scale=jnp.asarray(1e-10, jnp.float64))
        # in float64 raw outputs the same scale is scipy's value
        got = mj.losses.student_t(raw.astype(jnp.float64), y.astype(jnp.float64), df=3.0,
                                  scale=jnp.asarray(1e-10, jnp.float64))
        np.testing.assert_allclose(np.asarray(got), -stats.t.logpdf(float(np.float32(1e-9)), 3, 0, 1e-10), rtol=1e-12)
        # above float32's floor it is computed, as scipy at float32's rounding of y
        above = mj.losses.student_t(raw, y, df=3.0, scale=jnp.asarray(2e-7, jnp.float64))
        np.testing.assert_allclose(np.asarray(above), -stats.t.logpdf(float(np.float32(1e-9)), 3, 0, 2e-7),
                                   rtol=1e-5)
