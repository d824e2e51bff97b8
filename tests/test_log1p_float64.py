"""``special.log1p``: XLA's float64 ``log1p`` is up to 128 ulps off for x in [-0.4142, -0.35] (float32 is within 2
ulps); ``log u - ((u - 1) - x)/u``, ``u = 1 + x``, there, compiled and op by op. Reference: mpmath at 40 digits, for ``log1p`` itself,
``special.log_ratio`` (a ratio a/b near 0.6), ``special.log1mexp`` and the Beta log-density at y near 0.4."""

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

from mle_jax.distributions import (AsymmetricLaplace, Beta, Exponential, Laplace, Weibull, isf, log_cdf, log_prob, log_sf,
                                  quantile)
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
    assert _ulps(jax.jit(special.log1p)(jnp.asarray(xs)), ref).max() <= 2
    mid = ref[:X.size]  # compiled, the corrected form: 1 ulp (XLA folding (1 + x) - 1 to x leaves log(1 + x): 2)
    assert _ulps(jax.jit(special.log1p)(jnp.asarray(X)), mid).max() <= 1
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


Q = -X  # probabilities in [0.25, 0.5]: log(1 - q) = log1p(-q) with -q in XLA's bad stretch


def _mp(f, xs):
    return np.array([float(f(mpmath.mpf(float(v)))) for v in xs])


def test_the_distributions_log1p_sites_near_minus_0_4(x64):
    """Every public function whose float64 value goes through ``log1p`` of a negative argument: the Laplace's and
    asymmetric Laplace's log CDF and survival, their quantiles, the exponential's and Weibull's quantiles. Each
    within a few roundings of its size (all were up to 128 ulps off with XLA's ``log1p``)."""
    mpmath.mp.dps = 40
    one = jnp.ones_like(jnp.asarray(Q))
    zero = jnp.zeros_like(one)
    cases = []
    z = -np.log(2 * Q)  # Laplace above its location: log F = log1p(-exp(-z)/2) = log1p(-q)
    cases.append((log_cdf(Laplace(zero, one), jnp.asarray(z)), _mp(lambda v: mpmath.log(1 - mpmath.exp(-v) / 2), z)))
    cases.append((quantile(Exponential(one), jnp.asarray(Q)), _mp(lambda v: -mpmath.log1p(-v), Q)))
    cases.append((quantile(Weibull(1.5 * one, one), jnp.asarray(Q)),
                  _mp(lambda v: (-mpmath.log1p(-v)) ** (1 / mpmath.mpf(1.5)), Q)))
    half = 0.5 * one  # q = 1/2: below mu, log S = log1p(-exp(u/2)/2); above, log F = log1p(-exp(-u/2)/2)
    u = 2 * np.log(2 * Q)
    cases.append((log_sf(AsymmetricLaplace(zero, one, half), jnp.asarray(u)),
                  _mp(lambda v: mpmath.log(1 - mpmath.exp(v / 2) / 2), u)))
    cases.append((log_cdf(AsymmetricLaplace(zero, one, half), jnp.asarray(-u)),
                  _mp(lambda v: mpmath.log(1 - mpmath.exp(-v / 2) / 2), -u)))
    low = 0.2 * one  # p above q = 0.2: u = -log((1 - p)/(1 - q)) / q
    cases.append((quantile(AsymmetricLaplace(zero, one, low), jnp.asarray(Q)),
                  _mp(lambda v: -(mpmath.log1p(-v) - mpmath.log(mpmath.mpf(0.8))) / mpmath.mpf(0.2), Q)))
    high = 0.6 * one  # the isf: log((1 - p)/q) / (1 - q) where 1 - p <= q, -log(p/(1 - q)) / q above
    q6 = mpmath.mpf(0.6)
    cases.append((isf(AsymmetricLaplace(zero, one, high), jnp.asarray(Q)),
                  _mp(lambda v: (mpmath.log1p(-v) - mpmath.log(q6)) / (1 - q6) if 1 - v <= q6
                      else -mpmath.log(v / (1 - q6)) / q6, Q)))
    # the quantiles' difference of two logs cancels near p = q: the error's scale is the terms', not the result's
    terms = [None] * 5 + [(np.abs(np.log1p(-Q)) + abs(np.log(0.8))) / 0.2, (np.abs(np.log(Q)) + np.abs(np.log1p(-Q)) + 1) / 0.4]
    for i, (got, ref) in enumerate(cases):
        size = np.abs(ref) if terms[i] is None else terms[i]
        err = np.abs(np.asarray(got) - ref) / (np.finfo(np.float64).eps * size)
        assert err.max() <= 8, (i, err.max())


def test_log_q_half_where_minus_erf_is_in_the_band(x64):
    """``incomplete._log_q_half(u) = log Q(1/2, u) = log erfc(sqrt u)`` (the Student t's a >> b tail form) takes
    ``log1p(-erf(sqrt u))`` below ``sqrt u = 1/2``: for ``sqrt u`` in (0.27, 0.39) ``-erf`` is in XLA's bad stretch
    (114 ulps with ``jnp.log1p``). Within 3 ulps of mpmath on both sides of the switch at ``u = 1/4``, and its
    derivative ``-e^-u / (sqrt(pi u) Q)`` within 8."""
    from mle_jax.distributions import incomplete
    mpmath.mp.dps = 40
    u = np.linspace(0.05, 0.3, 251)
    ref = _mp(lambda v: mpmath.log(mpmath.erfc(mpmath.sqrt(v))), u)
    slope_ref = _mp(lambda v: -mpmath.exp(-v) / (mpmath.sqrt(mpmath.pi * v) * mpmath.erfc(mpmath.sqrt(v))), u)
    got, slope = jax.jit(jax.vmap(jax.value_and_grad(incomplete._log_q_half)))(jnp.asarray(u))
    assert _ulps(got, ref).max() <= 3
    assert _ulps(slope, slope_ref).max() <= 8


def test_gamma_kl_between_shapes_a_ratio_near_0_6(x64):
    """``special.lgamma_bregman(d, a) = lgamma(a + d) - lgamma(a) - d psi(a)`` by Stirling's series (a, a + d >= 10)
    takes ``log1p(d/a)``: a shape ratio ``(a + d)/a`` in (0.586, 0.707) put it in XLA's bad stretch (110 ulps). The
    Gamma's KL at equal rates is that Bregman term: within 8 ulps of mpmath."""
    from mle_jax.distributions import Gamma, kl
    mpmath.mp.dps = 40
    ap = np.linspace(30.0, 300.0, 91)
    aq = np.round(0.6 * ap, 3)  # d/a = -0.4
    ref = np.array([float(mpmath.loggamma(mpmath.mpf(q)) - mpmath.loggamma(mpmath.mpf(p))
                          - (mpmath.mpf(q) - mpmath.mpf(p)) * mpmath.digamma(mpmath.mpf(p))) for p, q in zip(ap, aq)])
    one = jnp.ones_like(jnp.asarray(ap))
    got = jax.jit(lambda p, q: kl(Gamma(p, one), Gamma(q, one)))(jnp.asarray(ap), jnp.asarray(aq))
    assert _ulps(got, ref).max() <= 8
