"""Weights wider than the terms (float64 weights with a float32 model under x64) are read in their own dtype
(``_reductions.weights_as``): a mean's scaled by a power of two there before the cast to the terms', a sum's products
taken there and the result cast once. Cast first, weights below float32's smallest normal (1.2e-38) were 0 (XLA
flushes float32's subnormals), the weighted mean NLL 0 and the sum 0."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

import mle_jax as mj

N = 64
X = np.linspace(-1.0, 1.0, N, dtype=np.float32)[:, None]
Y = (300.0 * np.sin(np.arange(N))).astype(np.float32)  # far from the model: terms of about 1e4
U = 1.0 + np.arange(N) % 3  # weights 1, 2, 3


def _setup():
    r = mj.recipe(lambda p, x_i: p["b"] + p["a"] * x_i[0], mj.normal(2.0))
    p = r.init({"a": jnp.float32(0.5), "b": jnp.float32(-0.25)})
    mu = np.float32(-0.25) + np.float32(0.5) * X[:, 0]
    terms = -stats.norm.logpdf(Y.astype(np.float64), mu.astype(np.float64), 2.0)  # scipy at the float32 inputs
    return r, p, terms


def test_a_weighted_mean_with_float64_weights_below_float32s_tiny_is_the_unit_weighted_mean():
    with jax.enable_x64(True):
        r, p, terms = _setup()
        x, y = jnp.asarray(X), jnp.asarray(Y)
        ref = np.sum(U * terms) / np.sum(U)
        for c in (1.0, 1e-40, 1e-300):  # normal in float32, below its tiny, near float64's
            w = jnp.asarray(c * U, jnp.float64)
            np.testing.assert_allclose(float(r.mean_nll(p, x, y, weights=w)), ref, rtol=1e-5)
        np.testing.assert_allclose(float(r.mean_nll(p, x, y, weights=jnp.full(N, 1e-40))),
                                   np.mean(terms), rtol=1e-5)


def test_a_weighted_sum_with_float64_weights_below_float32s_tiny_is_scaled_back():
    """The sum is ``c sum_i u_i t_i``, taken in float64 and cast once, where it is a float32 normal number (1e-40
    times sums of about 1e6: 1e-34)."""
    with jax.enable_x64(True):
        r, p, terms = _setup()
        x, y = jnp.asarray(X), jnp.asarray(Y)
        for c in (1.0, 1e-40, 3e30):
            w = jnp.asarray(c * U, jnp.float64)
            got = r.nll(p, x, y, weights=w)
            assert got.dtype == jnp.float32
            np.testing.assert_allclose(float(got), c * np.sum(U * terms), rtol=1e-5)
