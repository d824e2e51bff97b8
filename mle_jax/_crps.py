"""Closed-form CRPS of the scalar theta types, in forms that stay exact at extreme parameters.

    CRPS(F, y) = int (F(t) - 1{y <= t})^2 dt = E|Y - y| - 1/2 E|Y - Y'|,   Y, Y' ~ F independent

Each closed form is written as ``(y - mean)(2F(y) - 1) + (a density term) - (half the mean
absolute difference)``, so that no two terms of the size of the mean cancel (they did for the
Gamma and negative binomial at large shapes), and the constants that are ratios of Gamma
functions (Student t, Gamma) come from Stirling differences (``distributions.special``) instead
of ``betaln`` differences (``betaln(1/2, 5e7)`` is -8.9 with an error of 1e-6 in float32, where
the Student t CRPS needs the difference of two of them). The cdf and density are the theta
type's own ``log_cdf`` / ``log_prob``, so the tails are those of the distribution module.

scoringrules: ``crps_normal``, ``crps_laplace``, ``crps_t``, ``crps_gamma``, ``crps_poisson``,
``crps_negbinom``, ``crps_mixnorm``. References: Gneiting and Raftery (2007), JASA 102; Jordan,
Krueger and Lerch (2019), J. Stat. Softw. 90; Wei and Held (2014), TEST 23 (counts).
"""

from __future__ import annotations

import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, i0e, i1e, ndtr, polygamma

from . import distributions as dist
from .distributions import special
from .distributions.categorical import log_probs as categorical_log_probs

_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_LOG_SQRT_PI = 0.5 * math.log(math.pi)
_DF_CAP = 1e30  # a Student t with more degrees of freedom is the Normal to every digit of float64


def _normal_abs_mean(m, s):
    """``E|X| for X ~ N(m, s^2)``: ``m (2 Phi(m/s) - 1) + 2 s phi(m/s)``."""
    z = m / s
    return m * (2.0 * ndtr(z) - 1.0) + 2.0 * s * _INV_SQRT_2PI * jnp.exp(-0.5 * z * z)


def _crps_normal(t, y):
    return _normal_abs_mean(y - t.loc, t.scale) - t.scale * _INV_SQRT_PI


def _crps_laplace(t, y):
    a = jnp.abs(y - t.loc)
    return a + t.scale * jnp.exp(-a / t.scale) - 0.75 * t.scale


def _half_lgamma_rest(m):
    """``g(m) = log Gamma(m + 1/2) - log Gamma(m) - (log m)/2`` (about ``-1/(8m)``), without the difference of
    two numbers of size ``m log m``: for m >= 10 the Stirling form ``m log1pmx(1/(2m)) + corr(m + 1/2) - corr(m)``
    (``special._stirling_rest``); m is capped at 1e30, where g is 0 to every digit."""
    m = jnp.minimum(m, _DF_CAP)
    big = m >= special.STIRLING_MIN
    mb = jnp.where(big, m, special.STIRLING_MIN)
    ms = jnp.where(big, 1.0, m)
    stirling = mb * special.log1pmx(0.5 / mb) + special.stirling_corr(mb + 0.5) - special.stirling_corr(mb)
    return jnp.where(big, stirling, gammaln(ms + 0.5) - gammaln(ms) - 0.5 * jnp.log(ms))


def _near_one(nu):
    """Where the t CRPS uses series about nu = 1: ``|nu - 1| < 0.02`` in float64, ``< 0.2`` in float32 (where
    the divided difference loses ``eps / |nu - 1|``); the series' error is below 1e-12 and 1e-7 there."""
    return jnp.abs(nu - 1.0) < (0.02 if jnp.finfo(jnp.result_type(nu)).bits == 64 else 0.2)


def _half_gamma_slope(nu):
    """``(G(nu - 1/2) - G(nu/2)) / h``, ``G(m) = log Gamma(m + 1/2) - log Gamma(m)``, ``h = (nu - 1)/2``; far from
    nu = 1 as ``g(nu - 1/2) - g(nu/2) + log(2 - 1/nu)/2`` (``_half_lgamma_rest``: no term grows with nu). 
    Near nu = 1 (``_near_one``) the midpoint series ``G1(m) + G3(m) h^2/24 + G5(m) h^4/1920`` at
    ``m = (3 nu - 1)/4``, ``Gk(m) = psi^(k-1)(m + 1/2) - psi^(k-1)(m)``."""
    near = _near_one(nu)
    nn = jnp.where(near, nu, 1.0)
    m, h2 = 0.25 * (3.0 * nn - 1.0), jnp.square(0.5 * (nn - 1.0))
    derivative = lambda k: polygamma(k, m + 0.5) - polygamma(k, m)  # noqa: E731  (G^(k+1))
    series = derivative(0) + derivative(2) * h2 / 24.0 + derivative(4) * h2 * h2 / 1920.0
    nf = jnp.minimum(jnp.where(near, 3.0, nu), _DF_CAP)
    difference = (_half_lgamma_rest(nf - 0.5) - _half_lgamma_rest(0.5 * nf)
                  + 0.5 * (math.log(2.0) + jnp.log1p(-0.5 / nf)))  # G(m) = g(m) + log(m)/2
    divided = difference / (0.5 * (nf - 1.0))
    return jnp.where(near, series, divided)


def _log1p_square(w):
    """``log(1 + w^2)`` without overflow of ``w^2`` (``2 log hypot(1, w)`` for ``|w| >= 1``)."""
    small = jnp.abs(w) < 1.0
    return jnp.where(small, jnp.log1p(jnp.square(jnp.where(small, w, 0.0))), 2.0 * jnp.log(jnp.hypot(1.0, w)))


def _student_t_excess(nu, z):
    """``E(nu, z) = 2 f(z) (nu + z^2)/(nu - 1) - C(nu)``,
    ``C = 2 sqrt(nu) B(1/2, nu - 1/2) / ((nu - 1) B(1/2, nu/2)^2)`` and f the standard t density: the two terms of the t CRPS that each have a pole at nu = 1, for every nu > 1/2.

    With ``A = log(2 f (nu + z^2))`` and ``B = log((nu - 1) C)``,
    ``A - B = G(nu - 1/2) - G(nu/2) - (nu - 1)/2 log(1 + z^2/nu)`` (``_half_gamma_slope``) vanishes at nu = 1,
    so ``E = e^B expm1(A - B) / (nu - 1)`` is finite there (the Cauchy CRPS is finite: the integral converges
    for nu > 1/2), and ``B = log nu - log(pi)/2 - log1p(-1/(2 nu))/2 + 2 g(nu/2) - g(nu - 1/2)``
    (``_half_lgamma_rest``) has no lgamma differences: E tends to the Normal's as nu -> inf."""
    q = 0.5 * (_half_gamma_slope(nu) - _log1p_square(z / jnp.sqrt(nu)))  # (A - B) / (nu - 1)
    x = (nu - 1.0) * q
    log_b = (jnp.log(nu) - _LOG_SQRT_PI - 0.5 * jnp.log1p(-0.5 / nu)
             + 2.0 * _half_lgamma_rest(0.5 * nu) - _half_lgamma_rest(nu - 0.5))
    near = _near_one(nu)
    tiny = jnp.abs(x) < 1e-30
    exprel = jnp.where(tiny, 1.0, jnp.expm1(x) / jnp.where(tiny, 1.0, x))  # expm1(x) / x
    return jnp.exp(log_b) * jnp.where(near, q * exprel, jnp.expm1(x) / jnp.where(near, 1.0, nu - 1.0))


def _crps_student_t(t, y):
    """``s [z (2F(z) - 1) + 2 f(z) (nu + z^2)/(nu - 1) - 2 sqrt(nu) B(1/2, nu - 1/2) / ((nu - 1) B(1/2, nu/2)^2)]``
    for nu > 1/2 (the formula continues analytically below nu = 1, where the integral still converges);
    infinite for nu <= 1/2. ``2F(z) - 1 = sign(z) (1 - 2F(-|z|))`` from the lower tail; the last two terms by
    ``_student_t_excess`` (finite at nu = 1 and as nu -> inf, where they tend to the Normal's)."""
    ok = t.df > 0.5
    nu = jnp.where(ok, jnp.minimum(t.df, _DF_CAP), 2.0)
    z = (y - t.loc) / t.scale
    standard = dist.StudentT(nu, jnp.zeros_like(z), jnp.ones_like(z))
    centred = jnp.sign(z) * (1.0 - 2.0 * jnp.exp(dist.log_cdf(standard, -jnp.abs(z))))
    value = t.scale * (z * centred + _student_t_excess(nu, z))
    return jnp.where(ok, value, jnp.inf)


def _crps_gamma(t, y):
    """``(y - a/b)(2F(y) - 1) + (2 y f(y) - 1 / B(1/2, a)) / b``, F and f the Gamma(a, b) cdf and density.

    This is Gneiting's ``y (2F_a(y) - 1) - (a/b)(2F_{a+1}(y) - 1) - 1/(b B(1/2, a))`` with
    ``F_{a+1}(y) = F_a(y) - y f(y) / a`` (DLMF 8.8.5): no two terms of the size of the mean cancel.
    ``1/B(1/2, a) = exp(lgamma(a + 1/2) - lgamma(a)) / sqrt(pi)`` by ``special.lgamma_diff`` (exact at a = 1e8).
    """
    a, b = t.concentration, t.rate
    centred = 2.0 * jnp.exp(dist.log_cdf(t, y)) - 1.0
    y_density = jnp.exp(jnp.log(y) + dist.log_prob(t, y))
    inv_beta = jnp.exp(special.lgamma_diff(0.5, a) - _LOG_SQRT_PI)
    return (y - a / b) * centred + (2.0 * y_density - inv_beta) / b


def _kummer(a, b, n):
    """The coefficient of x^n in ``M(a, b, -2x)``: ``(a)_n / ((b)_n n!) (-2)^n``, exactly."""
    rising = lambda c: math.prod(Fraction(c) + k for k in range(n))  # noqa: E731
    return rising(a) / (rising(b) * math.factorial(n)) * (-2) ** n


# 1 - e^{-x} (I_0(x) + I_1(x)) = x sum_n _BESSEL_TAIL[n] x^n
_BESSEL_TAIL = [float(-_kummer(Fraction(1, 2), 1, n + 1) - _kummer(Fraction(3, 2), 3, n) / 2) for n in range(20)]


def _one_minus_bessel_tail(x):
    """``1 - e^{-x} (I_0(x) + I_1(x))`` for x >= 0 (``= x/2 - x^2/4 + ...``): below 1/2 its Taylor series, whose
    coefficients come from Kummer's ``e^{-x} I_0(x) = M(1/2, 1, -2x)`` and ``e^{-x} I_1(x) = (x/2) M(3/2, 3, -2x)``."""
    small = x < 0.5
    xs = jnp.where(small, x, 0.0)
    xl = jnp.where(small, 1.0, x)
    return jnp.where(small, xs * special._poly(_BESSEL_TAIL, xs), 1.0 - i0e(xl) - i1e(xl))


def _crps_poisson(t, y):
    """``(y - l)(2F(y) - 1) + 2 l f(y) - l e^{-2l} (I_0(2l) + I_1(2l))`` at a count y (Wei and Held, 2014); at
    y = 0 it is ``l (1 - e^{-2l} (I_0(2l) + I_1(2l)))`` (about ``l^2`` for small l, where the general form
    cancels to a negative number). F by ``poisson_cdf``; ``l = 0``
    (``log_rate = -inf``) is the point mass at 0, whose CRPS is y."""
    lam = jnp.exp(t.log_rate)
    cdf = poisson_cdf(t, y)
    lam_pmf = jnp.where(lam > 0, lam * jnp.exp(dist.log_prob(t, y)), 0.0)
    general = (y - lam) * (2 * cdf - 1) + 2 * lam_pmf - lam * (i0e(2 * lam) + i1e(2 * lam))
    return jnp.where(y == 0, lam * _one_minus_bessel_tail(2 * lam), general)


_T = np.arange(-150, 151) * 0.03  # exp-sinh nodes in float64: s from e^-70 to e^70, step 0.03 in t


def _hyp2f1_nb(n, z):
    """``H_n = 2F1(n + 1, 1/2; 2; -z)`` and ``H_0 - H_n`` for z >= 0 (``H_0 = 2 (sqrt(1 + z) - 1) / z``).

    Euler's integral with t = sin^2, s = tan: ``H_n = (4/pi) int_0^inf (1 + s^2)^-2 r(s)^(n+1) ds`` with
    ``r = 1 / (1 + z s^2/(1 + s^2))``, so ``H_0 - H_n = (4/pi) int (1 + s^2)^-2 r (1 - r^n) ds``, every term
    positive (``1 - r^n = -expm1(n log r)``). By the exp-sinh rule (exact to double precision), in logs:
    ``log(1 + s^2) = softplus(2 log s)`` (s reaches e^70, whose square overflows float32) and
    ``log r = -log1p(z sig(2 log s))`` (not the difference of two logs, which (n + 1) = 1e6 would magnify)."""
    n, z = jnp.asarray(n)[..., None], jnp.asarray(z)[..., None]
    t = jnp.asarray(_T, n.dtype).reshape((1,) * (n.ndim - 1) + (-1,))
    log_s = 0.5 * math.pi * jnp.sinh(t)
    log_weight = -2.0 * jax.nn.softplus(2.0 * log_s) + log_s + jnp.log(2.0 * 0.03 * jnp.cosh(t))  # (4/pi) ds
    log_r = -jnp.log1p(z * jax.nn.sigmoid(2.0 * log_s))
    hyp = jnp.sum(jnp.exp(log_weight + (n + 1) * log_r), axis=-1)
    gap = jnp.sum(jnp.exp(log_weight + log_r) * -jnp.expm1(n * log_r), axis=-1)
    return hyp, gap


def _crps_negative_binomial(t, y):
    """``(y - mu)(2F(y) - 1) + 2 (q/p)(n + y) f(y) - (mu/p) H_n`` at a count y, ``H_n = 2F1(n + 1, 1/2; 2; -4q/p^2)``,
    with p = ``sig(-logits)`` the success probability, q = 1 - p, ``mu = n q/p`` the mean, F and f the cdf and mass.

    This is Wei and Held's ``y (2F(y) - 1) - (mu/p) [p (2 F_{n+1}(y - 1) - 1) + H_n]`` with
    ``F_{n+1}(y - 1) = F(y) - f(y)(n + y)/n`` (``I_p(a + 1, b) = I_p(a, b) - p^a q^b / (a B(a, b))``): the two
    terms of the size of the mean no longer cancel. At y = 0 it is ``(mu/p)(p - H_n) = (mu/p)(H_0 - H_n)``
    (``H_0 = p``), summed from positive terms (the general form cancels to about ``mu^2``, or below 0)."""
    n, odds = t.total_count, jnp.exp(t.logits)
    mu, p = n * odds, jax.nn.sigmoid(-t.logits)
    hyp, gap = _hyp2f1_nb(n, 4.0 * odds / p)
    mass = jnp.exp(dist.log_prob(t, y))
    general = (y - mu) * (2 * nb_cdf(t, y) - 1) + 2 * odds * (n + y) * mass - mu / p * hyp
    return jnp.where(y == 0, mu / p * gap, general)


def poisson_cdf(theta, y):
    """``Pr(Y <= y) = Pr(Gamma(floor(y) + 1, 1) > lambda)`` (scipy's ``poisson.cdf``), by the Gamma's
    ``log_sf``; 0 below 0."""
    k = jnp.floor(jnp.maximum(y, 0.0))
    lam = jnp.exp(theta.log_rate)
    return jnp.where(y >= 0, jnp.exp(dist.log_sf(dist.Gamma(k + 1.0, jnp.ones_like(lam)), lam)), 0.0)


def nb_cdf(theta, y):
    """``Pr(Y <= y) = I_p(n, floor(y) + 1) = Pr(Beta(floor(y) + 1, n) > q)`` with p = ``sig(-logits)`` the success
    and q = ``sig(logits)`` the failure probability (scipy's ``nbinom.cdf``), by the Beta's ``log_sf``; 0 below 0."""
    k = jnp.floor(jnp.maximum(y, 0.0))
    beta = dist.Beta(k + 1.0, jnp.broadcast_to(theta.total_count, jnp.shape(k)))
    upper = dist.log_sf(beta, jax.nn.sigmoid(theta.logits))
    return jnp.where(y >= 0, jnp.exp(upper), 0.0)


def _crps_mixture(t, y):
    """``sum_i w_i A(y - mu_i, s_i) - 1/2 sum_ij w_i w_j A(mu_i - mu_j, sqrt(s_i^2 + s_j^2))``, A = E|N(m, s^2)|;
    ``w = softmax(logits)`` with ``+inf`` logits at their limit (equal weights on those components)."""
    w = jnp.exp(categorical_log_probs(dist.Categorical(t.logits)))
    first = jnp.sum(w * _normal_abs_mean(jnp.asarray(y)[..., None] - t.loc, t.scale), axis=-1)
    pair = _normal_abs_mean(t.loc[..., :, None] - t.loc[..., None, :],
                            jnp.sqrt(jnp.square(t.scale[..., :, None]) + jnp.square(t.scale[..., None, :])))
    return first - 0.5 * jnp.sum(w[..., :, None] * w[..., None, :] * pair, axis=(-2, -1))


def _crps_bernoulli(t, y):
    return jnp.square(jax.nn.sigmoid(t.logits) - y)


CLOSED_FORM = {
    dist.Normal: _crps_normal, dist.Laplace: _crps_laplace, dist.StudentT: _crps_student_t,
    dist.Gamma: _crps_gamma, dist.Poisson: _crps_poisson, dist.NegativeBinomial: _crps_negative_binomial,
    dist.MixtureNormal: _crps_mixture, dist.Bernoulli: _crps_bernoulli,
}
