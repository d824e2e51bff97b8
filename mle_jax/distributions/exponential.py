"""The Exponential distribution: waiting times, survival at a constant hazard.

    Pr(y | lambda) = lambda exp(-lambda y),   y >= 0,   S(y) = Pr(Y > y) = exp(-lambda y)

Parameterised by the rate, as the Gamma (an Exponential is ``Gamma(1, rate)``) and TFP's
``tfd.Exponential``. ``log_sf`` is ``-lambda y`` exactly, so a right-censored time far in the tail costs
its exact log survival; ``log_cdf`` is ``log(1 - exp(-lambda y))`` by ``log1mexp`` (exact at y = 1e-30).

scipy equivalent: ``scipy.stats.expon(scale=1/rate)``.
Reference: Klein and Moeschberger, *Survival Analysis* (2003), section 2.5; Lawless, *Statistical Models
and Methods for Lifetime Data* (2003), ch. 2.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import _support, _twins, registry
from .._checks import check_event_shape
from .registry import Param
from .special import expm1mx, log1mexp, log1p, log_ratio, safe_where, with_slope


class Exponential(NamedTuple):
    """Parameters of one example's Exponential: ``rate`` (lambda > 0; the mean is 1/lambda)."""

    rate: Param


def _target(theta: Exponential, y):
    return jnp.asarray(y, jnp.result_type(theta.rate))


def log_prob(theta: Exponential, y):
    """``log lambda - lambda y`` for y >= 0, ``-inf`` below; ``expon.logpdf(y, scale=1/rate)``."""
    check_event_shape("Exponential", y, jnp.shape(theta.rate))
    y = _target(theta, y)
    inside = jnp.log(theta.rate) - theta.rate * safe_where(y >= 0, y, 0.0)
    return jnp.where(y >= 0, inside, jnp.where(jnp.isnan(y), jnp.nan, -jnp.inf))


def log_sf(theta: Exponential, y):
    """``-lambda y`` for y >= 0 (exactly), 0 below; ``expon.logsf``."""
    y = _target(theta, y)
    return -theta.rate * jnp.maximum(y, 0.0)


def log_cdf(theta: Exponential, y):
    """``log(1 - exp(-lambda y))``, ``-inf`` for y <= 0; ``expon.logcdf``. From ``log(lambda y) = log lambda
    + log y`` (``lambda y`` underflows at 1e-20 * 1e-30): ``log_one_minus_exp_neg``."""
    y = _target(theta, y)
    pos = y > 0
    inside = log_one_minus_exp_neg(jnp.log(theta.rate) + jnp.log(safe_where(pos, y, 1.0)))
    return jnp.where(pos, inside, jnp.where(jnp.isnan(y), jnp.nan, -jnp.inf))


def _log_one_minus_exp_neg_parts(log_h):
    """``(log(1 - exp(-h)), h/expm1(h))``: the value and its slope in ``log h``."""
    h = jnp.exp(log_h)
    small = h < 1e-3
    hs, hl = safe_where(small, h, 0.0), safe_where(small, 1.0, h)
    value = jnp.where(small, log_h - 0.5 * hs + hs * hs / 24.0, log1mexp(-hl))
    # h/expm1(h) = exp(log h - h - log(1 - e^-h)): 0, not inf/inf, where h overflows
    slope = jnp.where(small, 1.0 - 0.5 * hs + hs * hs / 12.0, jnp.exp(log_h - hl - log1mexp(-hl)))
    return value, slope


#: ``log(1 - exp(-h))`` from ``log h`` (a cumulative hazard; the log cdf of the Exponential and the Weibull):
#: ``log h - h/2 + h^2/24`` below h = 1e-3 (exact where h itself underflows), ``log1mexp(-h)`` above. Its slope in
#: ``log h``, ``h/expm1(h)``, is written (``with_slope``): autodiff formed ``h dlog_h`` first, which overflows (float32
#: Weibull k = 3, s = 1e-30, y = 1e-27: ``h = 1e9`` times ``k/s``), and then times ``e^-h/(1 - e^-h) = 0`` was NaN.
log_one_minus_exp_neg = with_slope(_log_one_minus_exp_neg_parts)


def quantile(theta: Exponential, q):
    """``-log(1 - q) / lambda`` (``log1p``); ``expon.ppf``."""
    return -log1p(-jnp.asarray(q, jnp.result_type(theta.rate))) / theta.rate


def isf(theta: Exponential, p):
    """``-log(p) / lambda``, exact for tiny p; ``expon.isf``."""
    return -jnp.log(jnp.asarray(p, jnp.result_type(theta.rate))) / theta.rate


def mean(theta: Exponential):
    return 1.0 / theta.rate


def mode(theta: Exponential):
    """0 (the density decreases from y = 0)."""
    return jnp.zeros_like(jnp.asarray(theta.rate))


def variance(theta: Exponential):
    """``1 / lambda^2``, as ``(1/lambda)/lambda`` (``lambda^2`` underflows float32 at 1e-20)."""
    return 1.0 / theta.rate / theta.rate


def sample(key, theta: Exponential):
    """``E / lambda`` with ``E ~ Exponential(1)``."""
    rate = jnp.asarray(theta.rate)
    return jax.random.exponential(key, jnp.shape(rate), jnp.result_type(rate)) / rate


def entropy(theta: Exponential):
    """``1 - log lambda``; ``expon.entropy``."""
    return 1.0 - jnp.log(theta.rate)


def kl(p: Exponential, q: Exponential):
    """``log(lambda_p / lambda_q) + lambda_q / lambda_p - 1 = exp(u) - 1 - u >= 0``, ``u = log lambda_q
    - log lambda_p`` (``expm1mx``: no cancellation near p = q; ``special.log_ratio``: no overflowing ratio, and
    not a difference of two logs of 1e-20, which kept 2e-7 relative of a KL of 5e-17)."""
    return expm1mx(log_ratio(q.rate, p.rate))


def crps(theta: Exponential, y):
    """``|y| + (1/2 - 2 F(y)) / lambda``, F the cdf (``|y| + 1/(2 lambda)`` below 0): Baran and Lerch (2015);
    scoringrules' ``crps_exponential``; Jordan, Krueger and Lerch (2019), J. Stat. Softw. 90."""
    y = _target(theta, y)
    cdf = -jnp.expm1(-theta.rate * jnp.maximum(y, 0.0))
    return jnp.abs(y) + (0.5 - 2.0 * cdf) / theta.rate


def event_shape(theta: Exponential):
    return jnp.shape(theta.rate)


def fisher(theta: Exponential):
    """The expected information in ``rate``: ``[[1 / lambda^2]]``."""
    return jnp.reshape(1.0 / jnp.square(theta.rate), (1, 1))


def to_tfp(theta: Exponential):
    """TFP's twin: ``tfd.Exponential(rate)``."""
    return _twins.tfd().Exponential(theta.rate)


def from_tfp(dist) -> Exponential:
    return Exponential(_twins.full(dist)(dist.rate))


registry.register(Exponential, registry.Ops(
    domain={"rate": "positive"},
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
    tfp_names=("Exponential",),
    from_tfp=from_tfp,
    crps=crps,
    support=lambda theta: _support.positive,
))
registry.register_kl(Exponential, Exponential, kl)
