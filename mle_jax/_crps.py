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

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import betainc, gammaincc, gammaln, i0e, i1e, ndtr

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


def _student_t_spread(nu):
    """``E|T - T'| / 2 = 2 sqrt(nu) B(1/2, nu - 1/2) / ((nu - 1) B(1/2, nu/2)^2)`` for nu > 1, in logs as

        -log(pi)/2 - log1p(-1/nu) - log1p(-1/(2 nu))/2 + 2 g(nu/2) - g(nu - 1/2)

    (``log B(1/2, m) = log(pi)/2 - log m / 2 - g(m)``, g from ``_half_lgamma_rest``): every term is of the size
    of the result, so it tends to the Normal's ``1/sqrt(pi)`` as nu -> inf instead of cancelling lgamma(1e8)."""
    log_value = (-_LOG_SQRT_PI - jnp.log1p(-1.0 / nu) - 0.5 * jnp.log1p(-0.5 / nu)
                 + 2.0 * _half_lgamma_rest(0.5 * nu) - _half_lgamma_rest(nu - 0.5))
    return jnp.exp(log_value)


def _crps_student_t(t, y):
    """``s [z (2F(z) - 1) + 2 f(z) (nu + z^2)/(nu - 1) - 2 sqrt(nu) B(1/2, nu - 1/2) / ((nu - 1) B(1/2, nu/2)^2)]``;
    infinite for nu <= 1 (no mean). ``2F(z) - 1 = sign(z) (1 - 2F(-|z|))`` from the lower tail (exact when F ~ 1);
    ``(nu + z^2)/(nu - 1) = (1 + z^2/nu)/(1 - 1/nu)`` stays finite as nu -> inf."""
    nu = jnp.where(t.df > 1, jnp.minimum(t.df, _DF_CAP), 2.0)
    z = (y - t.loc) / t.scale
    standard = dist.StudentT(nu, jnp.zeros_like(z), jnp.ones_like(z))
    centred = jnp.sign(z) * (1.0 - 2.0 * jnp.exp(dist.log_cdf(standard, -jnp.abs(z))))
    density = jnp.exp(dist.log_prob(standard, z)) * (1.0 + z * z / nu) / (1.0 - 1.0 / nu)
    value = t.scale * (z * centred + 2.0 * density - _student_t_spread(nu))
    return jnp.where(t.df > 1, value, jnp.inf)


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


def _crps_poisson(t, y):
    """``(y - l)(2F(y) - 1) + 2 l f(y) - l e^{-2l} (I_0(2l) + I_1(2l))`` at a count y (Wei and Held, 2014);
    ``l = 0`` (``log_rate = -inf``) is the point mass at 0, whose CRPS is y."""
    lam = jnp.exp(t.log_rate)
    cdf = gammaincc(y + 1.0, lam)
    pmf = jnp.exp(dist.log_prob(t, y))
    lam_pmf = jnp.where(lam > 0, lam * pmf, 0.0)
    return (y - lam) * (2 * cdf - 1) + 2 * lam_pmf - lam * (i0e(2 * lam) + i1e(2 * lam))


_T = np.arange(-150, 151) * 0.03  # exp-sinh nodes in float64: s from e^-70 to e^70, step 0.03 in t


def _hyp2f1_nb(n, z_abs):
    """``2F1(n + 1, 1/2; 2; -z)`` for z >= 0, from ``(2/pi) int_0^inf (1 + s^2)^-2 ((1 + s^2)/(1 + (1 + z) s^2))^(n+1)
    2 ds`` (Euler's integral with t = sin^2, s = tan), by the exp-sinh rule, exact to double precision."""
    n, z_abs = jnp.asarray(n)[..., None], jnp.asarray(z_abs)[..., None]
    t = jnp.asarray(_T, n.dtype).reshape((1,) * (n.ndim - 1) + (-1,))
    s = jnp.exp(0.5 * math.pi * jnp.sinh(t))
    ds = s * 0.5 * math.pi * jnp.cosh(t) * 0.03
    log_s2 = jnp.log1p(s * s)
    log_g = -2.0 * log_s2 + (n + 1) * (log_s2 - jnp.log1p((1 + z_abs) * s * s))
    return (4.0 / math.pi) * jnp.sum(jnp.exp(log_g) * ds, axis=-1)


def _crps_negative_binomial(t, y):
    """``(y - mu)(2F(y) - 1) + 2 (q/p)(n + y) f(y) - (mu/p) 2F1(n + 1, 1/2; 2; -4q/p^2)`` at a count y, with
    p = ``sig(-logits)`` the success probability, q = 1 - p, ``mu = n q/p`` the mean, F and f the cdf and mass.

    This is Wei and Held's ``y (2F(y) - 1) - (mu/p) [p (2 F_{n+1}(y - 1) - 1) + 2F1(...)]`` with
    ``F_{n+1}(y - 1) = F(y) - f(y)(n + y)/n`` (``I_p(a + 1, b) = I_p(a, b) - p^a q^b / (a B(a, b))``): the two
    terms of the size of the mean no longer cancel."""
    n, odds = t.total_count, jnp.exp(t.logits)
    mu, p = n * odds, jax.nn.sigmoid(-t.logits)
    hyp = _hyp2f1_nb(n, 4.0 * odds / p)
    mass = jnp.exp(dist.log_prob(t, y))
    return (y - mu) * (2 * _nb_cdf(n, p, y) - 1) + 2 * odds * (n + y) * mass - mu / p * hyp


def _nb_cdf(r, success, y):
    """``Pr(Y <= y) = I_p(r, floor(y) + 1)`` with p the success probability (scipy's ``nbinom.cdf``)."""
    return jnp.where(y >= 0, betainc(r, jnp.floor(jnp.maximum(y, 0)) + 1, success), 0.0)


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
