"""The weighted Grams ``sum_i c_i x_i x_i'`` behind a GLM's Hessian and meat (``_curvature._grams``), computed
as their upper block triangle from ``SPLIT_COLUMNS`` columns on (``_curvature._symmetric``).

Reference: the plain ``X' (c X)`` in NumPy float64 from the same inputs, within a rounding bound of the
sum's size, ``n eps sum_i |c_i| |x_i| |x_i|'``. Odd column counts, one column, widths below and above
the cut, float32 and float64, weights with zeros and (the Hessian's ``(c x)' x``, where a family that is
not log-concave has them) negatives; the meat's ``Z' Z`` with nonnegative weights; under ``vmap``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mle_jax import _curvature as C

N = 37
CUT = 4  # SPLIT_COLUMNS in the quick cases (the cut's arithmetic at small widths: quick to compile)
DEEP = pytest.mark.deep  # each case compiles its own small programs (0.5-1.3 s): one quick case in README's suite
CASES = [(np.float64, 7)] + [pytest.param(dtype, d, marks=DEEP) for dtype in (np.float32, np.float64)
                             for d in (1, 3, 4, 7, C.SPLIT_COLUMNS, 101) if (dtype, d) != (np.float64, 7)]


def _reference(x, c):
    x, c = np.asarray(x, np.float64), np.asarray(c, np.float64)
    return x.T @ (c[:, None] * x), np.abs(x).T @ (np.abs(c)[:, None] * np.abs(x))


def _close(got, x, c, dtype):
    ref, size = _reference(x, c)
    got = np.asarray(got, np.float64)
    assert got.shape == ref.shape
    bound = 4 * N * np.finfo(dtype).eps * size + np.finfo(dtype).tiny
    assert np.all(np.abs(got - ref) <= bound), np.max(np.abs(got - ref) / np.maximum(size, 1e-300))


@pytest.mark.parametrize("dtype,d", CASES)
def test_gram_is_the_plain_weighted_product(x64, monkeypatch, dtype, d):
    """1 and 3 columns as one product, 4 (even) and 7 (odd) cut in two below the default cut (``CUT``); 64 and
    101 at the default (deep: slow to compile)."""
    if d < C.SPLIT_COLUMNS:
        monkeypatch.setattr(C, "SPLIT_COLUMNS", CUT)
    rng = np.random.default_rng(d)
    x = rng.normal(size=(N, d)).astype(dtype)
    hess = rng.normal(size=N).astype(dtype)  # the Hessian's weights: some negative
    hess[::5] = 0.0
    meat = np.abs(rng.normal(size=N)).astype(dtype) * (rng.uniform(size=N) < 0.7)  # >= 0, with zeros
    weights = jnp.asarray(np.stack([hess, meat], axis=1))
    grams = C._grams(jnp.asarray(x), weights, roots=(1,))
    assert grams.dtype == dtype and grams.shape == (2, d, d)
    _close(grams[0], x, hess, dtype)
    _close(grams[1], x, meat, dtype)
    _close(C._symmetric(jnp.asarray(hess[:, None] * x), jnp.asarray(x)), x, hess, dtype)


@pytest.mark.deep
def test_gram_under_vmap_is_each_gram(x64, monkeypatch):
    """A vmapped inference (a simulation study) batches the weights: each batch member's Gram as alone."""
    d = 7
    monkeypatch.setattr(C, "SPLIT_COLUMNS", CUT)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(N, d))
    c = rng.normal(size=(3, N, 1))
    got = jax.vmap(lambda w: C._grams(jnp.asarray(x), w))(jnp.asarray(c))
    for j in range(3):
        _close(got[j, 0], x, c[j, :, 0], np.float64)
