"""The Student t quantile and isf near (not at) the median: the bisection of the tails ends where ``F``'s rounding
(an absolute eps/2) stops it, which near 1/2 is all of ``q - 1/2`` (float32 ``q = 0.5 - 3e-8`` was 50% off, ``0.5 -
9e-8`` 17%; float64 ``0.5 + 1e-15`` 3%); a Newton step on ``F - 1/2 = sign(z) I_x(1/2, nu/2) / 2`` makes it a few
roundings. References: scipy's ``t.ppf`` / ``t.isf`` (double) for float32 values, and mpmath (the root of
``betainc(1/2, nu/2, 0, z^2/(nu + z^2)) / 2 = q - 1/2`` at 40 digits) for float64: scipy's own double ``t.ppf`` is
itself 1% off at ``q = 0.5 + 1e-15``, df = 1 (it inverts the rounded CDF too)."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
import scipy.stats as st

from mle_jax.distributions import StudentT, isf, quantile

pytestmark = pytest.mark.deep  # a root per point in mpmath, and the t's quantile compiles for seconds

DFS = (0.3, 1.0, 3.0, 30.0, 1e5, 1e9)
OFFSETS = {np.float32: (0.1, 0.06, 1e-2, 1e-4, 1e-6, 9e-8, 3e-8),
           np.float64: (0.1, 0.06, 1e-2, 1e-6, 3e-8, 1e-12, 1e-15)}


def _mpmath_ppf(q, df):
    mp.mp.dps = 40
    d, nu = mp.mpf(float(q)) - mp.mpf(0.5), mp.mpf(df)
    f0 = mp.gamma((nu + 1) / 2) / (mp.sqrt(nu * mp.pi) * mp.gamma(nu / 2))
    start = mp.mpf(st.t.ppf(float(q), df)) if abs(d) > 1e-6 else d / f0
    return float(mp.findroot(lambda z: mp.sign(z) * mp.betainc(0.5, nu / 2, 0, z * z / (nu + z * z),
                                                              regularized=True) / 2 - d, start))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
def test_quantile_and_isf_near_the_median_to_a_few_roundings(dtype, x64):
    eps = float(np.finfo(dtype).eps)
    offsets = np.asarray(OFFSETS[dtype])
    q = np.concatenate([0.5 - offsets, 0.5 + offsets]).astype(dtype)
    shape = (len(DFS), len(q))  # one program: every df against every q (the thetas given the levels' shape)
    df = np.broadcast_to(np.asarray(DFS, dtype)[:, None], shape)
    theta = StudentT(jnp.asarray(df), jnp.zeros(shape, dtype), jnp.ones(shape, dtype))
    qs = jnp.asarray(np.broadcast_to(q[None, :], shape))
    got = np.asarray(jax.jit(quantile)(theta, qs), np.float64)
    upper = np.asarray(jax.jit(isf)(theta, qs), np.float64)
    for i, nu in enumerate(DFS):
        if dtype == np.float32:
            ref, ref_isf = st.t.ppf(q.astype(np.float64), nu), st.t.isf(q.astype(np.float64), nu)
        else:
            ref = np.array([_mpmath_ppf(v, nu) for v in q])
            ref_isf = -ref  # isf(p) = -ppf(p): the t is symmetric
        for name, g, r in (("ppf", got[i], ref), ("isf", upper[i], ref_isf)):
            err = np.abs(g - r) / (eps * np.abs(r))
            assert err.max() <= 32, (name, nu, q[err.argmax()], g[err.argmax()], r[err.argmax()], err.max())


def test_the_median_loc_scale_and_the_derivative_are_kept(x64):
    """A control (passes before the fix too): at q = 1/2 the value is loc exactly; off it loc + scale z to the
    spacing of floats at loc; d quantile / dq = 1 / f (the implicit one), as before."""
    theta = StudentT(jnp.float32(4.0), jnp.float32(3.0), jnp.float32(2.5))
    q = np.float32(0.5 - 9e-8)
    at = jax.jit(jax.vmap(jax.value_and_grad(lambda u: quantile(theta, u))))
    values, slopes = at(jnp.asarray([0.5, q, 0.3], jnp.float32))
    assert float(values[0]) == 3.0
    ref = 3.0 + 2.5 * st.t.ppf(float(q), 4.0)
    assert abs(float(values[1]) - ref) <= float(np.spacing(np.float32(3.0)))  # within one float32 spacing at loc
    assert float(slopes[2]) == pytest.approx(1 / st.t.pdf(st.t.ppf(0.3, 4.0, 3.0, 2.5), 4.0, 3.0, 2.5), rel=1e-4)
