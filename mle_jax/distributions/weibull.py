"""The Weibull distribution: survival times with a monotone hazard (rising for k > 1, falling for k < 1).

    Pr(y | k, s) = (k / s) (y / s)^(k - 1) exp(-(y / s)^k),   y >= 0,   S(y) = exp(-(y / s)^k)

``(y/s)^k`` is ``exp(k (log y - log s))``, never a power of an under- or overflowing ratio; ``log_sf``
is ``-(y/s)^k`` exactly and ``log_cdf`` ``log1mexp(-(y/s)^k)``, exact in both tails. The KL divergence
is Bauckhage's closed form written as two non-negative terms; the CRPS has no closed form (the
registry's sampled estimate). ``k = 1`` is the Exponential with rate ``1/s``.

scipy equivalent: ``scipy.stats.weibull_min(c=concentration, scale=scale)``.
Reference: Lawless, *Statistical Models and Methods for Lifetime Data* (2003), section 1.3.2;
Bauckhage (2013), "Computing the Kullback-Leibler divergence between two Weibull distributions",
arXiv:1310.3713.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from . import _support, _twins, registry
from .._checks import check_event_shape
from .registry import Param
from .exponential import log_one_minus_exp_neg
from .special import nonnegative, expm1mx, lgamma_bregman, log1p, log_ratio, poly, safe_where

_EULER = 0.57721566490153286061
# (-1)^n zeta(n) / n, n = 2..25: lgamma(1 + x) = -gamma x + sum_n c_n x^n for |x| < 1 (DLMF 5.7.3)
_LGAMMA1 = (0.8224670334241132, -0.40068563438653143, 0.27058080842778454, -0.20738555102867398,
            0.1695571769974082, -0.1440498967688461, 0.12550966952474304, -0.11133426586956469,
            0.1000994575127818, -0.09095401714582904, 0.083353840546109, -0.0769325164113522,
            0.07143294629536133, -0.06666870588242046, 0.06250095514121304, -0.058823978658684585,
            0.055555767627403614, -0.05263167937961666, 0.05000004769810169, -0.047619070330142226,
            0.04545455629320467, -0.04347826605304026, 0.04166666915034121, -0.04000000119214014)
_SERIES_MAX = 0.2  # 0.2^26 / 26: the series' remainder is below float64's epsilon


def lgamma1_bregman(x):
    """``lgamma(1 + x) + gamma x = lgamma(1 + x) - lgamma(1) - x psi(1) >= 0`` for ``x > -1``: the series
    ``x^2 sum_n c_n x^(n-2)`` for ``|x| < 0.2`` (``gammaln`` near 1 loses the O(x^2) value), else direct."""
    small = jnp.abs(x) < _SERIES_MAX
    xs = safe_where(small, x, 0.0)
    xl = safe_where(~small, x, 1.0)
    return jnp.where(small, jnp.square(xs) * poly(_LGAMMA1, xs), lgamma_bregman(xl, jnp.ones_like(xl), 1.0 + xl))


class Weibull(NamedTuple):
    """Parameters of one example's Weibull: ``concentration`` (the shape k > 0) and ``scale`` (s > 0)."""

    concentration: Param
    scale: Param


def _log_z(theta: Weibull, y):
    """``(y, pos, log(y / s))`` with ``pos = 0 < y < inf``; ``log z`` of a safe 1 off ``pos``, from the ratio
    (``special.log_ratio``): ``log y - log s`` kept ``eps |log s|`` of it, which ``z^k = exp(k log z)`` multiplies by
    k (float32 k = 50, s = 1e-30, y = 3e-30: 1.2e-4 relative in ``z^k``)."""
    y = jnp.asarray(y, jnp.result_type(theta.concentration, theta.scale))
    pos = (y > 0) & (y < jnp.inf)
    return y, pos, log_ratio(safe_where(pos, y, 1.0), theta.scale)


def _edge(y, at_zero, at_inf, below):
    """The value off ``0 < y < inf``: ``at_zero`` at 0, ``at_inf`` at +inf, ``below`` for y < 0, NaN at NaN."""
    return jnp.where(y == 0, at_zero, jnp.where(y > 0, at_inf, jnp.where(jnp.isnan(y), jnp.nan, below)))


def log_prob(theta: Weibull, y):
    """``log k - log s + (k - 1) log z - z^k``, ``z = y/s``; ``weibull_min.logpdf``. ``-inf`` below 0;
    at y = 0 the limit: ``-log s`` for k = 1, ``+inf`` for k < 1, ``-inf`` for k > 1."""
    check_event_shape("Weibull", y, registry.batch_shape(theta))
    return log_density(theta.concentration, jnp.log(theta.scale), y, _log_z(theta, y)[2])


def log_density(k, log_s, y, log_z=None):
    """``log_prob`` from the shape k and ``log s`` (a family's log-linked scale, never exponentiated); ``log z =
    log(y/s)`` where the caller has it from the ratio (``_log_z``), else ``log y - log s``."""
    y = jnp.asarray(y, jnp.result_type(k, log_s))
    pos = (y > 0) & (y < jnp.inf)
    if log_z is None:
        log_z = jnp.log(safe_where(pos, y, 1.0)) - log_s
    inside = jnp.log(k) - log_s + (k - 1) * log_z - jnp.exp(k * log_z)
    at_zero = jnp.where(k == 1, -log_s, jnp.where(k < 1, jnp.inf, -jnp.inf))
    return jnp.where(pos, inside, _edge(y, at_zero, -jnp.inf, -jnp.inf))


def log_sf(theta: Weibull, y):
    """``-(y/s)^k`` (0 for y <= 0); ``weibull_min.logsf``."""
    y, pos, log_z = _log_z(theta, y)
    return jnp.where(pos, -jnp.exp(theta.concentration * log_z), _edge(y, 0.0, -jnp.inf, 0.0))


def log_cdf(theta: Weibull, y):
    """``log(1 - exp(-(y/s)^k))`` from ``k log(y/s)`` (exact where ``(y/s)^k`` underflows; -inf for y <= 0);
    ``weibull_min.logcdf``."""
    y, pos, log_z = _log_z(theta, y)
    return jnp.where(pos, log_one_minus_exp_neg(theta.concentration * log_z), _edge(y, -jnp.inf, 0.0, -jnp.inf))


def _scaled(scale, log_w):
    """``s exp(log_w)``, as ``exp(log s + log_w)`` where ``exp(log_w)`` under- or overflows: float32 k = 1/2,
    s = 1e30, q = 1e-30 is 1e-30, where ``exp(-138.2)`` is 0."""
    finfo = jnp.finfo(jnp.result_type(scale, log_w))
    normal = (log_w > float(np.log(finfo.tiny))) & (log_w < float(np.log(finfo.max)))
    return jnp.where(normal, scale * jnp.exp(safe_where(normal, log_w, 0.0)), jnp.exp(jnp.log(scale) + log_w))


def quantile(theta: Weibull, q):
    """``s (-log(1 - q))^(1/k)``; ``weibull_min.ppf``."""
    q = jnp.asarray(q, jnp.result_type(theta.concentration, theta.scale))
    return _scaled(theta.scale, jnp.log(-log1p(-q)) / theta.concentration)


def isf(theta: Weibull, p):
    """``s (-log p)^(1/k)``, exact for tiny p; ``weibull_min.isf``."""
    p = jnp.asarray(p, jnp.result_type(theta.concentration, theta.scale))
    return _scaled(theta.scale, jnp.log(-jnp.log(p)) / theta.concentration)


def mean(theta: Weibull):
    """``s Gamma(1 + 1/k)``; ``weibull_min.mean``."""
    t = 1.0 / theta.concentration
    small = t < _SERIES_MAX  # lgamma(1 + t) = B(t) - gamma t: exact where gammaln near 1 is not
    lgamma = jnp.where(small, lgamma1_bregman(safe_where(small, t, 0.0)) - _EULER * t, gammaln(1.0 + t))
    return theta.scale * jnp.exp(lgamma)


def mode(theta: Weibull):
    """``s ((k - 1)/k)^(1/k)`` for k > 1, else 0."""
    k = theta.concentration
    big = k > 1
    kb = safe_where(big, k, 2.0)
    return jnp.where(big, theta.scale * jnp.exp(log1p(-1.0 / kb) / kb), jnp.zeros_like(theta.scale * k))


def variance(theta: Weibull):
    """``s^2 [Gamma(1 + 2/k) - Gamma(1 + 1/k)^2] = s^2 Gamma(1 + 1/k)^2 expm1(d)``, with
    ``d = lgamma(1 + 2t) - 2 lgamma(1 + t) = B(2t) - 2 B(t)``, ``t = 1/k``, ``B`` the Bregman divergence of
    lgamma at 1 (``lgamma1_bregman``, each O(t^2)): no cancellation at large k, where the variance is ``(pi s / k)^2 / 6``."""
    t = 1.0 / theta.concentration
    d = lgamma1_bregman(2.0 * t) - 2.0 * lgamma1_bregman(t)
    return jnp.square(theta.scale * jnp.exp(gammaln(1.0 + t))) * jnp.expm1(d)


def sample(key, theta: Weibull):
    """``s E^(1/k)`` with ``E ~ Exponential(1)``."""
    k, s = jnp.asarray(theta.concentration), jnp.asarray(theta.scale)
    shape = jnp.broadcast_shapes(jnp.shape(k), jnp.shape(s))
    e = jax.random.exponential(key, shape, jnp.result_type(k, s))
    return s * jnp.exp(jnp.log(e) / k)


def entropy(theta: Weibull):
    """``gamma (1 - 1/k) + log(s / k) + 1`` (gamma: Euler's constant); ``weibull_min.entropy``."""
    k = theta.concentration
    return _EULER * (1.0 - 1.0 / k) + jnp.log(theta.scale) - jnp.log(k) + 1.0


def kl(p: Weibull, q: Weibull):
    """Bauckhage (2013): ``log(k1/s1^k1) - log(k2/s2^k2) + (k1 - k2)(log s1 - gamma/k1) + (s1/s2)^k2
    Gamma(k2/k1 + 1) - 1``, written with ``d = (k2 - k1)/k1`` (``k2/k1 - 1``, not rounded through the ratio)
    and ``u = k2 (log s1 - log s2) + lgamma(2 + d)`` as ``(exp(u) - 1 - u) + [lgamma(1 + d) + gamma d]``: two
    non-negative terms (the second the Bregman divergence of lgamma at 1), nothing cancelling at p = q;
    ``lgamma(2 + d) = log1p(d) + lgamma(1 + d)``."""
    d = (q.concentration - p.concentration) / p.concentration
    bregman = lgamma1_bregman(d)
    u = q.concentration * log_ratio(p.scale, q.scale) + log1p(d) + bregman - _EULER * d
    return nonnegative(expm1mx(u) + bregman)


def event_shape(theta: Weibull):
    return jnp.shape(theta.concentration)


def fisher(theta: Weibull):
    """The expected information in ``(concentration k, scale s)``:
    ``[[((1 - gamma)^2 + pi^2/6) / k^2, -(1 - gamma)/s], [-(1 - gamma)/s, k^2 / s^2]]``.
    Reference: Lawless (2003), section 5.2 (in the log-scale form)."""
    k, s = theta.concentration, theta.scale
    kk = ((1.0 - _EULER) ** 2 + math.pi ** 2 / 6.0) / jnp.square(k)
    ks = -(1.0 - _EULER) / s
    return jnp.array([[kk, ks], [ks, jnp.square(k / s)]])


def to_tfp(theta: Weibull):
    """TFP's twin: ``tfd.Weibull(concentration, scale)``."""
    return _twins.tfd().Weibull(theta.concentration, theta.scale)


def from_tfp(dist) -> Weibull:
    full = _twins.full(dist)
    return Weibull(full(dist.concentration), full(dist.scale))


registry.register(Weibull, registry.Ops(
    domain={"concentration": "positive", "scale": "positive"},
    log_prob=log_prob,
    mode=mode,
    mean=mean,
    variance=variance,
    sample=sample,
    entropy=entropy,
    quantile=quantile,
    isf=isf,
    log_cdf=log_cdf,
    log_sf=log_sf,
    event_shape=event_shape,
    fisher=fisher,
    to_tfp=to_tfp,
    tfp_names=("Weibull",),
    from_tfp=from_tfp,
    support=lambda theta: _support.positive,
))
registry.register_kl(Weibull, Weibull, kl)
