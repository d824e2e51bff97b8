"""``special.log1p``: XLA's float64 ``log1p`` is up to 128 ulps off for x in [-0.4142, -0.35] (float32 is within 2
ulps); ``log u - ((u - 1) - x)/u``, ``u = 1 + x``, there. Reference: mpmath at 40 digits, for ``log1p`` itself,
``special.log_ratio`` (a ratio a/b near 0.6), ``special.log1mexp`` and the Beta log-density at y near 0.4."""

import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

from mle_jax.distributions import Beta, log_prob
from mle_jax.distributions import special

pytestmark = pytest.mark.deep  # mpmath sweeps and the Beta program: 2-4 s each

X = np.linspace(-0.5, -0.25, 2001)  # the corrected range, XLA's bad stretch inside it


def _ulps(got, ref):
    return np.abs(np.asarray(got, np.float64) - ref) / np.spacing(np.abs(ref))


def test_log1p_is_within_two_ulps_of_mpmath_where_xlas_is_not(x64):
    mpmath.mp.dps = 40
    xs = np.concatenate([X, np.linspace(-0.9, 3.0, 401)])
    ref = np.array([float(mpmath.log1p(mpmath.mpf(float(v)))) for v in xs])
    assert _ulps(special.log1p(jnp.asarray(xs)), ref).max() <= 2
    x32 = X.astype(np.float32)  # float32 is jnp.log1p's own
    ref32 = np.array([float(mpmath.log1p(mpmath.mpf(float(v)))) for v in x32])
    assert (np.abs(np.asarray(special.log1p(jnp.asarray(x32)), np.float64) - ref32)
            <= 2 * np.spacing(np.abs(ref32).astype(np.float32))).all()


def test_log_ratio_log1mexp_and_the_beta_density_near_minus_0_4(x64):
    mpmath.mp.dps = 40
    b = np.full_like(X, 3.0)
    a = b * (1.0 + X)  # a/b - 1 in the bad stretch (to a rounding: the reference takes a, b as they are)
    ref = np.array([float(mpmath.log(mpmath.mpf(float(u)) / mpmath.mpf(float(v)))) for u, v in zip(a, b)])
    assert _ulps(special.log_ratio(jnp.asarray(a), jnp.asarray(b)), ref).max() <= 4
    w = np.log(-X)  # log(1 - e^w) = log1p(-e^w), -e^w in the bad stretch
    ref = np.array([float(mpmath.log(1 - mpmath.exp(mpmath.mpf(float(v))))) for v in w])
    assert _ulps(special.log1mexp(jnp.asarray(w)), ref).max() <= 4
    y = -X  # log(1 - y) at y in [0.25, 0.5]; Beta(1, 7): log 7 + 6 log(1 - y)
    ref = np.array([float(mpmath.log(7) + 6 * mpmath.log1p(-mpmath.mpf(float(v)))) for v in y])
    got = log_prob(Beta(jnp.ones_like(jnp.asarray(y)), jnp.full_like(jnp.asarray(y), 7.0)), jnp.asarray(y))
    size = np.log(7.0) + 6 * np.abs(np.log1p(-y))  # the terms' size: the sum cancels near y = 0.28
    assert (np.abs(np.asarray(got) - ref) <= 8 * np.finfo(np.float64).eps * size).all()
