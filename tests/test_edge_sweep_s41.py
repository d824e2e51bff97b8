"""Session 41's edge sweep: values and slopes at extreme parameters, each against mpmath (40 digits) at the
parameters as rounded to the dtype under test.

- The asymmetric Laplace's ``log_cdf`` above mu was ``log1p(-(1 - q) exp(-q u))`` and its ``log_sf`` below mu
  ``log1p(-q exp((1 - q) u))``: at a quantile level q = 1e-8 (or 1 - 1e-7) the argument rounds to -1 in float32
  and the value was -inf (true: -17.7), 1e-3 kept 4 digits.
- ``special.log_ratio``'s derivative was autodiff's ``-a / b^2``: ``b^2`` underflows float32 below b = 1e-19, and
  the Weibull's log density at scale 1e-20 had a NaN slope in the scale.
- The Gamma's log density at y = 0, a = 1 is ``log b``; its slope in the rate was 0 (true: 1/b).
"""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import mle_jax.distributions as D

mp.mp.dps = 40


def _r(x, dtype):
    return float(np.asarray(x, dtype))


def _close(got, ref, rtol, atol=0.0):
    assert np.isfinite(got), (got, ref)
    assert abs(got - ref) <= atol + rtol * abs(ref), (got, ref)


def _ald_log_cdf(mu, b, q, y):
    mu, b, q, y = map(mp.mpf, (mu, b, q, y))
    u = (y - mu) / b
    return mp.log(q) + (1 - q) * u if u < 0 else mp.log(-mp.expm1(mp.log1p(-q) - q * u))


def _ald_log_sf(mu, b, q, y):
    mu, b, q, y = map(mp.mpf, (mu, b, q, y))
    u = (y - mu) / b
    return mp.log1p(-q) - q * u if u >= 0 else mp.log(-mp.expm1(mp.log(q) + (1 - q) * u))


def test_asymmetric_laplace_cdfs_at_extreme_quantile_levels():
    """float32 ``log_cdf`` and ``log_sf`` within 1e-5 relative of mpmath at q = 1e-8, 1e-3, 0.999, 1 - 1e-7 (the
    sides where ``F`` or ``1 - F`` is of the size of q or 1 - q: was -inf, or 1e-4 off)."""
    cases = [(1e-8, (0.0, 1.0, 80.0, -1.0)), (1e-3, (0.0, 0.5, 3.0)),
             (1 - 1e-7, (0.0, -1.0, -0.3, -80.0, 1.0)), (0.999, (0.0, -0.5, -3.0))]
    for q, ys in cases:
        qd = _r(q, np.float32)
        th = D.AsymmetricLaplace(jnp.float32(0.0), jnp.float32(1.0), jnp.float32(qd))
        for y in ys:
            _close(float(D.log_cdf(th, jnp.float32(y))), float(_ald_log_cdf(0.0, 1.0, qd, y)), 1e-5, 1e-6)
            _close(float(D.log_sf(th, jnp.float32(y))), float(_ald_log_sf(0.0, 1.0, qd, y)), 1e-5, 1e-6)


@pytest.mark.deep  # compiles a family's value and gradient (seconds on a loaded 2-core machine)
@pytest.mark.parametrize("scale", [1e-20, 1e-30])
def test_weibull_slope_in_a_tiny_scale_is_finite_and_exact(scale):
    """d/ds of the Weibull log density, ``(k z^k - k)/s`` with ``z = y/s``, in float32 at s = 1e-20, 1e-30 (NaN before:
    ``log_ratio``'s autodiff squared s)."""
    k, y = 3.0, 2.0 * scale
    s32 = _r(scale, np.float32)
    y32 = _r(y, np.float32)
    got = jax.grad(lambda s: D.log_prob(D.Weibull(jnp.float32(k), s), jnp.float32(y32)))(jnp.float32(s32))
    k_, s_, y_ = mp.mpf(k), mp.mpf(s32), mp.mpf(y32)
    ref = (k_ * (y_ / s_) ** k_ - k_) / s_
    _close(float(got), float(ref), 1e-5)


@pytest.mark.deep  # compiles a family's value and gradient (seconds on a loaded 2-core machine)
@pytest.mark.parametrize("rate", [1e-30, 1.0, 3.5, 1e30])
def test_gamma_slope_in_the_rate_at_zero(rate):
    """Gamma(1, b) at y = 0: ``log b``, whose slope in b is 1/b (was 0)."""
    b = _r(rate, np.float32)
    got = jax.grad(lambda b: D.log_prob(D.Gamma(jnp.float32(1.0), b), jnp.float32(0.0)))(jnp.float32(b))
    _close(float(got), 1.0 / b, 1e-6)


@pytest.mark.deep  # compiles a family's value and gradient (seconds on a loaded 2-core machine)
def test_beta_cdfs_with_a_tiny_concentration_float64():
    """``Beta(a, 1)``: ``F = y^a``, ``S = -expm1(a log y)``; ``Beta(1, b)``: ``F = -expm1(b log1p(-y))``. At a (or b) =
    1e-8 the incomplete beta took its a >> b form (``Q(b, u)``, valid for large a only): float64 ``log_sf`` of
    Beta(1e-8, 1) at 1e-7 read -15.6336 for -15.6407 (4.6e-4 relative), ``log_cdf`` of Beta(1, 1e-8) at 1 - 1e-12
    4e-3 off."""
    with jax.enable_x64(True):
        for a, y in ((1e-8, 1e-7), (1e-8, 1e-30), (1e-6, 1e-3)):
            ref = float(mp.log(-mp.expm1(mp.mpf(a) * mp.log(mp.mpf(y)))))
            _close(float(D.log_sf(D.Beta(jnp.float64(a), jnp.float64(1.0)), jnp.float64(y))), ref, 1e-9)
        for b, y in ((1e-8, 1 - 1e-12), (1e-8, 1 - 1e-8), (1e-8, 1 - 1e-5)):
            ref = float(mp.log(-mp.expm1(mp.mpf(b) * mp.log1p(-mp.mpf(y)))))
            _close(float(D.log_cdf(D.Beta(jnp.float64(1.0), jnp.float64(b)), jnp.float64(y))), ref, 1e-9)


@pytest.mark.deep  # compiles a family's value and gradient (seconds on a loaded 2-core machine)
def test_beta_cdf_with_a_small_concentration_float32():
    """float32 ``log_cdf`` of Beta(0.5, 1e-4) at 0.99 was -6.577 (true -7.421: the a >> b form at a = 1/2, where
    ``t = a + (b - 1)/2`` is 5e-5), of Beta(1, 1e-4) at 0.999 -7.261 (true -7.278); mpmath and the closed form."""
    a, b, y = (_r(v, np.float32) for v in (0.5, 1e-4, 0.99))
    ref = float(mp.log(mp.betainc(a, b, 0, y, regularized=True)))
    _close(float(D.log_cdf(D.Beta(jnp.float32(a), jnp.float32(b)), jnp.float32(y))), ref, 3e-4)
    b, y = _r(1e-4, np.float32), _r(0.999, np.float32)
    ref = float(mp.log(-mp.expm1(mp.mpf(b) * mp.log1p(-mp.mpf(y)))))
    _close(float(D.log_cdf(D.Beta(jnp.float32(1.0), jnp.float32(b)), jnp.float32(y))), ref, 2e-4)


def test_weibull_quantiles_where_the_unit_quantile_underflows():
    """``s (-log1p(-q))^(1/k)`` and ``s (-log p)^(1/k)`` (mpmath) where the unit Weibull's quantile is below float32's
    range but the scaled one is not: Weibull(1/2, 1e30) at q = 1e-30 is 1e-30 and Weibull(0.1, 1e30)'s ``isf(0.9999)``
    1.0e-10 (both were 0)."""
    f = lambda v: _r(v, np.float32)
    k, s, q = f(0.5), f(1e30), f(1e-30)
    ref = mp.mpf(s) * (-mp.log1p(-mp.mpf(q))) ** (1 / mp.mpf(k))
    _close(float(D.quantile(D.Weibull(jnp.float32(k), jnp.float32(s)), jnp.float32(q))), float(ref), 1e-5)
    k, p = f(0.1), f(0.9999)
    ref = mp.mpf(s) * (-mp.log(mp.mpf(p))) ** (1 / mp.mpf(k))
    _close(float(D.isf(D.Weibull(jnp.float32(k), jnp.float32(s)), jnp.float32(p))), float(ref), 1e-4)
