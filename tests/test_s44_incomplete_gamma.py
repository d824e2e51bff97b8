"""Session 44: the incomplete gamma's forward-mode slope in ``x`` far out (``x >= 1/tiny``), and a Gamma's float64 tails
at shapes 0.2-1.2 near ``x = 1``, against mpmath."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from mle_jax.distributions import gamma
from mle_jax.distributions.incomplete import log_gammaincc


def _mp_slope_log_q(a, x):
    """``d log Q(a, x) / dx = -x^(a - 1) e^-x / (Gamma(a) Q)`` at 50 digits."""
    with mp.workdps(50):
        a, x = mp.mpf(float(a)), mp.mpf(float(x))
        return float(-mp.exp((a - 1) * mp.log(x) - x - mp.loggamma(a)) / mp.gammainc(a, x, mp.inf, regularized=True))


@pytest.mark.deep  # one compile of the slope over 7 points (~1.3 s)
def test_log_gammaincc_forward_slope_in_x_where_its_log_tangent_is_subnormal():
    """float32 ``x`` from 1e37 to 3e38: ``log x``'s tangent ``1/x`` is subnormal (flushed to 0), so ``jacfwd`` read 0
    where the slope of ``log Q`` is -1; and ordinary points, where nothing changed."""
    a = np.array([0.5, 2.0, 30.0, 2.0, 0.5, 3.0, 150.0], np.float32)
    x = np.array([1e37, 1e38, 3e38, 0.3, 2.0, 1.0, 140.0], np.float32)
    got = np.asarray(jax.jit(jax.vmap(jax.jacfwd(log_gammaincc, 1)))(jnp.asarray(a), jnp.asarray(x)))
    want = np.array([_mp_slope_log_q(u, v) for u, v in zip(a, x)])
    np.testing.assert_allclose(got, want, rtol=2e-5)


@pytest.mark.deep  # one float64 compile of both tails over 120 points (~1 s)
def test_gamma_log_cdf_and_log_sf_float64_below_shape_one_near_x_one():
    """``log P`` and ``log Q`` at ``a`` in (0.2, 1.2), ``x`` in (0.7, 1.1) within 20 ulps: Lanczos's ``lgamma(1 + a)``
    (an absolute 2.4e-15, where it is near 0) and XLA's ``log1p`` (128 ulps near -0.4) had them 130 and 37 ulps off."""
    a, x = (v.ravel() for v in np.meshgrid(np.linspace(0.21, 1.19, 12), np.linspace(0.71, 1.09, 5), indexing="ij"))
    with jax.enable_x64(True), mp.workdps(40):
        theta = gamma.Gamma(jnp.asarray(np.concatenate([a, a])), jnp.ones(2 * a.size))
        upper = jnp.asarray(np.repeat([False, True], a.size))
        got = np.asarray(jax.jit(gamma.log_tail)(theta, jnp.asarray(np.concatenate([x, x])), upper))
        p = [mp.gammainc(mp.mpf(float(u)), 0, mp.mpf(float(v)), regularized=True) for u, v in zip(a, x)]
        want = np.array([float(mp.log(v)) for v in p] + [float(mp.log(1 - v)) for v in p])
    np.testing.assert_array_less(np.abs(got - want), 20 * np.spacing(np.abs(want)))
