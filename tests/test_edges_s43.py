"""Session 43's edges of the Student t, Beta, Weibull and von Mises against independent references (mpmath at
high precision, closed forms): one jitted call over a whole grid per test."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import mle_jax as mj
from mle_jax.distributions import student_t

# ----------------------------------------------------------------------------- Student t: d log F / d nu

T_DF = np.array([200.0, 1e4, 3e6, 6e6, 1e8])
T_Z = np.array([-40.0, -30.0, -3.0, 3.0, 30.0])


@functools.lru_cache(maxsize=None)
def _t_slope_reference(dtype):
    """``d/d nu log F(z; nu)`` by mpmath (30 digits: ``I_x(nu/2, 1/2)/2``, a central difference) at the grid rounded
    to ``dtype``."""
    out = np.zeros((T_DF.size, T_Z.size))
    with mp.workdps(30):
        for i, nu in enumerate(np.asarray(T_DF, dtype).astype(float)):
            for j, z in enumerate(np.asarray(T_Z, dtype).astype(float)):
                zz = mp.mpf(z)

                def log_f(n):
                    lower = mp.betainc(n / 2, 0.5, 0, n / (n + zz * zz), regularized=True) / 2
                    return mp.log(lower) if zz < 0 else mp.log1p(-lower)
                out[i, j] = float(mp.diff(log_f, mp.mpf(nu), h=mp.mpf(nu) * mp.mpf("1e-10")))
    return out


@jax.jit
def _t_slopes(df, z):
    one = jnp.zeros((), z.dtype)
    slope = jax.grad(lambda d, y: student_t.log_cdf(mj.StudentT(d, one, one + 1), y))
    return jax.vmap(jax.vmap(slope, (None, 0)), (0, None))(df, z)


@pytest.mark.deep  # mpmath's 25 points (1 s) and one compile of log_cdf's slope in nu (7 s: the traced df's branches)
@pytest.mark.parametrize("dtype", ["float32"])  # float64 (4e-6 at worst) in the session's sweep, nu 1..1e8, z -40..40
def test_student_t_log_cdf_slope_in_df_at_huge_df(dtype, request):
    """The censored Student t's slope in nu where the incomplete beta takes its a >> b form: through the fraction's
    prefix the slopes in a = nu/2 and in x cancelled to z^2/nu of each, and float32 read 1.1e-10 (the wrong sign)
    for -6.4e-11 at nu = 1e8, z = -40, 17-43% off at nu = 3e6-6e6, z = -30. Now ``log Phi(-v)`` in z and 1/nu
    (``student_t._wallace``)."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    got = np.asarray(_t_slopes(jnp.asarray(T_DF, dtype), jnp.asarray(T_Z, dtype)), float)
    want = _t_slope_reference(dtype)
    tiny = 1e-30 if dtype == "float32" else 1e-290  # the upper tail's slopes underflow below these
    rtol = 1e-2 if dtype == "float32" else 1e-5  # the a >> b form's own slope error: 3e-3 / 4e-6 at its edge
    np.testing.assert_array_less(np.abs(got - want), rtol * np.abs(want) + tiny)


# ----------------------------------------------------------------------------- Beta: a >> b, x near 1

@pytest.mark.deep  # one compile of the Beta's log_tail (the incomplete beta: fraction, series and a >> b form)
def test_beta_log_sf_near_one_with_a_huge_and_b_small():
    """``log_sf = log I_(1-x)(b, a)`` at ``a >> b``, ``x`` near 1: the incomplete beta's a >> b form was taken only
    with ``a`` first, so ``I_(1-x)(b, a)`` ran the fraction's complement ``1 - I_x(a, b)`` (eps a/10 of a CDF of
    2e-3): Beta(1e6, 1e-3) at x = 0.99999 read 15% off in float32, 22% at b = 0.01, x = 1 - 1e-6. Now the form's
    mirror image ``P(a, u)``. Reference: scipy's float64 ``betainc`` (Boost), at the float32-rounded inputs."""
    from scipy import special
    a, b, x = (v.ravel() for v in np.meshgrid([1e4, 1e5, 1e6, 1e7, 1e8], [1e-4, 1e-3, 1e-2, 0.1, 0.5, 1.0],
                                              [0.99, 0.9999, 0.99999, 1 - 1e-6], indexing="ij"))
    a, b, x = (np.asarray(v, np.float32) for v in (a, b, x))
    upper = np.arange(a.size) % 2 == 0  # log_sf and log_cdf in one call
    got = np.asarray(jax.jit(lambda t, y, u: mj.log_tail(t, y, u))(mj.Beta(a, b), x, upper), float)
    a64, b64, x64 = (v.astype(float) for v in (a, b, x))
    ref = np.where(upper, special.betainc(b64, a64, 1 - x64), special.betainc(a64, b64, x64))
    kept = ref > 1e-300  # a CDF of e^-1e6 (a = 1e8 at 0.99) underflows in float64 too
    assert kept[upper].all() and kept.sum() > 0.8 * kept.size
    np.testing.assert_allclose(got[kept], np.log(ref[kept]), rtol=2e-5, atol=1e-30)


# ----------------------------------------------------------------------------- Weibull: log_cdf's slopes

@pytest.mark.deep  # 0.8 s: mpmath at 70 points and one compile
def test_weibull_log_cdf_slopes_where_the_hazard_times_its_slope_overflows():
    """``log F = log(1 - e^-h)``, ``h = (y/s)^k``: ``d log F = h/expm1(h) d log h`` with ``d log h = log(y/s) dk +
    k dy/y - k ds/s``. Autodiff formed ``h d log h`` first (float32: ``1e9 * 3e30`` at k = 3, s = 1e-30, y = 1e-27
    overflows) and then times ``e^-h/(1 - e^-h) = 0``: NaN where the slope is 0. Reference: mpmath (40 digits)."""
    k, s, r = (v.ravel() for v in np.meshgrid([1e-3, 0.5, 3.0, 50.0], [1e-30, 1e-3, 1.0, 1e30],
                                              [1e-20, 0.3, 1.0, 3.0, 1e3], indexing="ij"))
    y = s * r
    k32, s32, y32 = (np.asarray(v, np.float32) for v in (k, s, y))
    keep = np.isfinite(y32) & (y32 > 0)
    k32, s32, y32 = k32[keep], s32[keep], y32[keep]
    slope = jax.jit(jax.vmap(jax.grad(lambda k, s, y: mj.log_cdf(mj.Weibull(k, s), y), argnums=(0, 1, 2))))
    got = np.stack([np.asarray(g, float) for g in slope(k32, s32, y32)], -1)
    want = np.zeros_like(got)
    with mp.workdps(40):
        for i, (kk, ss, yy) in enumerate(zip(*(v.astype(float) for v in (k32, s32, y32)))):
            kk, ss, yy = mp.mpf(kk), mp.mpf(ss), mp.mpf(yy)
            h = (yy / ss) ** kk
            g = h / mp.expm1(h)
            want[i] = [float(g * mp.log(yy / ss)), float(-g * kk / ss), float(g * kk / yy)]
    big = np.abs(want) > 3e38  # beyond float32: inf is the right answer there
    assert np.isfinite(got[~big]).all()
    np.testing.assert_allclose(got[~big], want[~big], rtol=2e-5, atol=1e-37)


@pytest.mark.deep  # one compile of the Beta's and one of the Student t's log_cdf (a batch of four each)
def test_an_entry_of_a_batch_is_its_value_alone():
    """The incomplete beta's loop runs every entry while any runs: a converged entry's value was multiplied on by
    deltas within an ulp of 1 (Beta(2, 3)'s log CDF at 0.3 drifted 40 float32 ulps beside a Beta(1e6, 1e6) near its
    mean), and a Student t's Fisher entry (nu = 1e6) ran the fraction ~3,000 steps: beside it a df = 3 entry's log
    CDF moved 2e-5 and its quantile 5.6e-5. Now each entry is bit for bit its value alone (and scipy's)."""
    from scipy import stats
    f32 = np.float32
    beta = mj.Beta(jnp.asarray([2.0, 1e6, 1e4, 5.0], f32), jnp.asarray([3.0, 1e6, 1e4, 0.5], f32))
    y = jnp.asarray([0.3, 0.5 - 0.5e-3, 0.5 - 0.5e-2, 0.9], f32)
    t = mj.StudentT(jnp.asarray([3.0, 1e6, 3e4, 0.7], f32), jnp.zeros(4, f32), jnp.ones(4, f32))
    z = jnp.asarray([-0.764935, -8.0, -8.0, -0.2], f32)
    for theta, at in ((beta, y), (t, z)):
        batch = np.asarray(jax.jit(mj.log_cdf)(theta, at))
        alone = [float(jax.jit(mj.log_cdf)(jax.tree.map(lambda v: v[i], theta), at[i])) for i in range(4)]
        np.testing.assert_array_equal(batch, np.asarray(alone, f32))
    np.testing.assert_allclose(batch, stats.t.logcdf(np.asarray(z, np.float64), np.asarray(t.df, np.float64)),
                               rtol=3e-6)
