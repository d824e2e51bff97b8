"""The fused family kernels with written derivatives (issue 22): the MVN Cholesky's unrolled forward
substitution, the ordinal's interval at the observed class, the zero-inflated count's two cases.
Each against scipy (or a brute-force sum) for the value, and against jax autodiff of a plain reference
formula for the gradient (and the Hessian, since the rules must themselves be differentiable), at the
branch edges, in float32 and float64."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from jax.scipy.linalg import solve_triangular
from scipy import stats

import mle_jax as mj

DTYPES = [jnp.float32, jnp.float64]


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == jnp.float32 else dict(rtol=1e-11, atol=1e-11)


def _summed(family, fp, raw, y):
    return jnp.sum(jax.vmap(lambda r, t: family.kernel(fp, r, t))(raw, y))


# ----------------------------------------------------------------------------- MVN Cholesky

def _mvn_reference(d):
    """The plain formula: build L, one triangular solve (the theta's form before the unrolled kernel)."""
    rows, cols = np.tril_indices(d)
    diag = rows == cols

    def one(raw, y):
        entries = raw[d:]
        entries = jnp.where(diag, mj.links.softplus.forward(entries), entries)
        tril = jnp.zeros((d, d), raw.dtype).at[rows, cols].set(entries)
        z = solve_triangular(tril, y - raw[:d], lower=True)
        return -0.5 * jnp.sum(z * z) - jnp.sum(jnp.log(jnp.diagonal(tril))) - d * 0.5 * np.log(2 * np.pi)
    return one


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [3])
def test_mvn_cholesky_kernel_value_gradient_hessian(dtype, d):
    with jax.enable_x64(dtype == jnp.float64):
        family = mj.mvn_cholesky(d)
        rng = np.random.default_rng(d)
        p = d + d * (d + 1) // 2
        raw = rng.normal(size=(6, p)) * 0.7
        raw[0, d:] = -4.0  # small diagonals (softplus 0.018), off-diagonals -4
        raw[1, d:] = 25.0  # large diagonals (softplus = identity) and off-diagonals
        y = rng.normal(size=(6, d))
        raw_j, y_j = jnp.asarray(raw, dtype), jnp.asarray(y, dtype)
        value = jax.jit(jax.vmap(lambda r, t: family.kernel({}, r, t)))(raw_j, y_j)
        theta = jax.jit(jax.vmap(lambda r: family.theta({}, r)))(raw_j)
        loc, tril = np.asarray(theta.loc, np.float64), np.asarray(theta.scale_tril, np.float64)
        # the closed form in float64 by scipy's triangular solve at every row (row 0's covariance is too
        # ill-conditioned for scipy.stats' eigendecomposition), scipy.stats at the others
        z = [scipy.linalg.solve_triangular(tril[i], y[i] - loc[i], lower=True) for i in range(len(raw))]
        closed = [-0.5 * zi @ zi - np.sum(np.log(np.diag(li))) - d * 0.5 * np.log(2 * np.pi) for zi, li in zip(z, tril)]
        rtol = 1e-4 if dtype == jnp.float32 else 1e-9
        np.testing.assert_allclose(value, closed, rtol=rtol)
        scipy_value = [stats.multivariate_normal(loc[i], tril[i] @ tril[i].T).logpdf(y[i]) for i in range(2, len(raw))]
        np.testing.assert_allclose(value[2:], scipy_value, rtol=rtol)
        ref = _mvn_reference(d)
        np.testing.assert_allclose(value, jax.vmap(ref)(raw_j, y_j), **_tol(dtype))
        got = jax.jit(jax.grad(lambda r, t: _summed(family, {}, r, t), argnums=(0, 1)))(raw_j, y_j)
        want = jax.jit(jax.grad(lambda r, t: jnp.sum(jax.vmap(ref)(r, t)), argnums=(0, 1)))(raw_j, y_j)
        for a, b in zip(got, want):
            scale = max(1.0, float(jnp.max(jnp.abs(b))))
            np.testing.assert_allclose(np.asarray(a) / scale, np.asarray(b) / scale, **_tol(dtype))
        i = 3
        h_got = jax.jit(jax.hessian(lambda r: family.kernel({}, r, y_j[i])))(raw_j[i])
        h_want = jax.jit(jax.hessian(lambda r: ref(r, y_j[i])))(raw_j[i])
        np.testing.assert_allclose(h_got, h_want, rtol=1e-3 if dtype == jnp.float32 else 1e-9,
                                   atol=1e-3 if dtype == jnp.float32 else 1e-9)
