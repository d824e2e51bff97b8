"""Session 44: the incomplete gamma's forward-mode slope in ``x`` far out (``x >= 1/tiny``), against mpmath."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

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
