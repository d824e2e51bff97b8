"""Adversarial checks of session 40's binomial and Student t kernels against mpmath.

The full-batch binomial objective (``log_prob_free``, ``fit``'s and ``newton(curvature="hvp")``'s) differentiated its
slope's centred form ``-+ n p q expm1(w) / (1 + p expm1(w))`` by autodiff: ``eps n p q`` off, of either sign, and
``-n q`` where ``1 / (1 + x)^2`` underflows (float32 w = 45, float64 w = 355), for a curvature of ``n e^-w``.
The counts' own logit ``z0 = log1p((y - (n - y)) / (n - y))`` went through XLA:CPU's float64 ``log1p``, which is 120
roundings off on ``[1 - sqrt(2), sqrt(1/2) - 1]`` (y / n from 0.37 to 0.41): 2e-4 of the slope at n = 1e12.
The Student t's CDF took Fisher's expansion with the quantile's g2 and g3 (Abramowitz and Stegun 26.7.5)."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from mle_jax.distributions import binomial as b


def _mp_slope_curvature(n, y, z):
    """mpmath's ``(y sig(-z) - (n - y) sig(z), -n sig(z) sig(-z))`` of ``Binomial(n, sigmoid(z))``."""
    with mp.workdps(60):
        n, y, z = mp.mpf(float(n)), mp.mpf(float(y)), mp.mpf(float(z))
        sig, sig_neg = 1 / (1 + mp.exp(-z)), 1 / (1 + mp.exp(z))
        return float(y * sig_neg - (n - y) * sig), float(-n * sig * sig_neg)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binomial_full_batch_curvature_far_from_the_counts_own_logit_is_mpmaths(dtype):
    """d2/dz2 (``jax.hessian``) of ``log_prob_free`` (the full-batch objective's free part) at n = 1000, y = 500 and
    y = 30, w = z - z0 from 20 to 400: ``-n sig(z) sig(-z)`` to 8 roundings (mpmath), as ``log_prob``'s. Autodiff of
    the centred slope gave float32 -5e-6 for -2e-6 at w = 20, +7e-6 at w = 40 and -500 from w = 45 (float64: -500
    from w = 360, for a curvature of 5e-154)."""
    ws = (20.0, 40.0, 45.0, 60.0, -50.0) if dtype == "float32" else (20.0, 100.0, 360.0, 400.0, -400.0)
    rows = np.array([[1000.0, y, np.log(y / (1000.0 - y)) + w] for y in (500.0, 30.0) for w in ws])
    rows = rows.astype(dtype).astype(float)
    with jax.enable_x64(dtype == "float64"):
        n, y, z = (jnp.asarray(c, dtype) for c in rows.T)
        free, full = jax.jit(jax.vmap(lambda n, z, y: (jax.hessian(b.log_prob_free, argnums=1)(n, z, y),
                                                       jax.hessian(lambda z: b.log_prob(b.Binomial(n, z), y))(z))))(
            n, z, y)
    curvature = np.array([_mp_slope_curvature(*r) for r in rows])[:, 1]
    eps = float(np.finfo(dtype).eps)
    np.testing.assert_allclose(np.asarray(full, float), curvature, rtol=8 * eps)
    np.testing.assert_allclose(np.asarray(free, float), curvature, rtol=8 * eps)


def test_binomial_slope_where_xlas_log1p_is_off_is_within_the_inputs_rounding():
    """d/dz of ``log_prob`` and ``log_prob_free`` (float64) at ``z = z0 + 1e-11``, y / n = 0.38, 0.41, 0.59, 0.62
    (n = 1e12, 1e6), where ``(y - (n - y)) / (n - y)`` falls in XLA's inexact ``log1p`` band: within 4 times what the
    rounding of z moves it (``eps (|d/dz| + |z d2/dz2|)``, mpmath). It was 21 times (2.2e-4 of the slope at n = 1e12,
    y = 3.8e11), the plain ``y - n sig(z)``'s 1.8e-5 bettered."""
    rows = []
    for n, f in ((1e12, 0.38), (1e12, 0.41), (1e12, 0.59), (1e12, 0.62), (1e6, 0.38)):
        y = np.floor(n * f)
        with mp.workdps(40):
            rows.append([n, y, float(mp.log(mp.mpf(y) / (n - y)) + 1e-11)])
    rows = np.array(rows)
    with jax.enable_x64(True):
        n, y, z = (jnp.asarray(c, jnp.float64) for c in rows.T)
        got = jax.jit(jax.vmap(lambda n, z, y: (jax.grad(lambda z: b.log_prob(b.Binomial(n, z), y))(z),
                                                jax.grad(b.log_prob_free, argnums=1)(n, z, y))))(n, z, y)
    slope, curvature = np.array([_mp_slope_curvature(*r) for r in rows]).T
    rounding = float(np.finfo(np.float64).eps) * (np.abs(slope) + np.abs(rows[:, 2] * curvature))
    for form in got:
        error = np.abs(np.asarray(form, float) - slope)
        assert np.all(error <= 4 * rounding), error / rounding


def _mp_t_log_cdf(z, nu):
    """mpmath's ``log F(z)`` of the standard t (``I_x(nu/2, 1/2) / 2``, ``x = nu / (nu + z^2)``, of the tail) and its
    derivative in nu (``mp.diff``)."""
    with mp.workdps(50):
        z = mp.mpf(float(z))

        def log_cdf(nu):
            tail = mp.betainc(nu / 2, mp.mpf(1) / 2, 0, nu / (nu + z * z), regularized=True) / 2
            return mp.log(tail) if z < 0 else mp.log1p(-tail)
        nu = mp.mpf(float(nu))
        return float(log_cdf(nu)), float(mp.diff(log_cdf, nu))


@pytest.mark.deep  # log_cdf's value and slope in a traced df compile every branch (~4 s)
def test_student_t_log_cdf_in_fishers_region_and_its_slope_in_df_are_mpmaths():
    """``log_cdf`` of a float64 Student t at nu = 1e7, where Fisher's expansion is taken (nu >= 1e7, z^4/nu < 1e-3;
    float32's takes its first two terms from nu = 1e4), and its derivative in df (a learned df's censored rows),
    against mpmath's incomplete beta: the slope in nu to 1e-9, the value to 1e-13. The expansion's g2 and g3 were the
    quantile's (Abramowitz and Stegun 26.7.5): the slope in nu was 2e-4 off (float32 at nu = 1e4: 3e-3), the value
    1e-11."""
    from mle_jax.distributions import student_t as t
    with jax.enable_x64(True):
        def log_cdf(df, z):
            return t.log_cdf(t.StudentT(df, jnp.zeros((), jnp.float64), jnp.ones((), jnp.float64)), z)
        z = jnp.asarray([-5.5, -2.0, 0.8, 3.0], jnp.float64)
        value, slope = jax.jit(jax.vmap(lambda df, z: (log_cdf(df, z), jax.grad(log_cdf)(df, z))))(
            jnp.full(z.shape, 1e7, jnp.float64), z)
    truth, truth_slope = np.array([_mp_t_log_cdf(v, 1e7) for v in np.asarray(z, float)]).T
    np.testing.assert_allclose(np.asarray(slope, float), truth_slope, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(value, float), truth, rtol=1e-13)
