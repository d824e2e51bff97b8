"""A weighted mean does not depend on the weights' scale: ``sum_i w_i t_i / sum_i w_i`` with float32 weights of 1e38
(whose sum overflowed: NaN) or 1e-30 against terms of 1e-10 (whose products flushed to 0: a mean of 0) is the
float64 mean (NumPy); weights that the device reads as 0 (subnormal: below float32's 1.2e-38) are refused eagerly
with the reason, where the mean was a silent 0."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mle_jax as mj


@pytest.mark.parametrize("scale", [1.0, 1e-30, 3e-9, 1e37, 2e38])
def test_weighted_mean_is_invariant_to_the_weights_scale(scale):
    rng = np.random.default_rng(0)
    terms = rng.uniform(1e-10, 3e-10, 50).astype(np.float32)
    w = (rng.uniform(0.5, 1.5, 50) * scale).astype(np.float32)
    w[3] = 0.0
    want = np.sum(w.astype(np.float64) * terms) / np.sum(w.astype(np.float64))
    got = mj.reduce_terms(jnp.asarray(terms), weights=jnp.asarray(w), reduction="mean")
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # its derivative in the terms is w_i / sum_j w_j, at any scale
    grad = jax.grad(lambda t: mj.reduce_terms(t, weights=jnp.asarray(w), reduction="mean"))(jnp.asarray(terms))
    np.testing.assert_allclose(grad, w.astype(np.float64) / np.sum(w.astype(np.float64)), rtol=1e-6)


@pytest.mark.deep  # compiles the recipe's programs
def test_weights_the_device_reads_as_zero_are_refused():
    r = mj.recipe(lambda p, x_i: p["b"] + 0.0 * x_i[0], mj.normal(1.0))
    params = r.init({"b": jnp.float32(0.0)})
    x, y = jnp.ones((4, 1)), jnp.array([1.0, 2.0, 3.0, 4.0])
    tiny = jnp.full(4, 1e-40, jnp.float32)
    with pytest.raises(ValueError, match="smallest normal number"):
        r.mean_nll(params, x, y, weights=tiny)
    assert np.isfinite(r.nll(params, x, y, weights=tiny))  # a sum over them is 0, as the device reads them
    # huge weights: the mean NLL is the unweighted one (equal weights), (y - 0)^2 / 2 + log(2 pi) / 2
    want = np.mean(np.array([1.0, 2.0, 3.0, 4.0]) ** 2 / 2) + 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(r.mean_nll(params, x, y, weights=jnp.full(4, 3e38, jnp.float32)), want, rtol=1e-6)
