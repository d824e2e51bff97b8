"""The log-normal distribution: positive magnitudes whose logarithm is Normal (incomes, sizes, times).

    Pr(y | mu, sigma) = N(log y | mu, sigma) / y,   y > 0

Everything goes through the Normal of ``log y``: ``log_cdf`` / ``log_sf`` are ``log_ndtr(+-(log y - mu)/sigma)``,
exact in both tails; KL is the Normal's (a change of variables leaves it unchanged). The CRPS is Baran and
Lerch's closed form.

scipy equivalent: ``scipy.stats.lognorm(s=scale, scale=exp(loc))``.
Reference: Crow and Shimizu, *Lognormal Distributions* (1988); Baran and Lerch (2015), "Log-normal
distribution based EMOS models", Q. J. R. Meteorol. Soc. 141.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr, ndtri

from . import _support, _twins, registry
from . import normal as _normal
from .normal import log_ndtr
from .._checks import check_event_shape
from .registry import Param
from .special import HALF_LOG_2PI, safe_where


class LogNormal(NamedTuple):
    """Parameters of one example's log-normal: ``loc`` (mu) and ``scale`` (sigma > 0) of ``log y``."""

    loc: Param
    scale: Param


def _z(theta: LogNormal, y):
    """``(y, pos, z = (log y - mu)/sigma)`` with ``pos = 0 < y < inf`` (z of a safe 1 off ``pos``)."""
    y = jnp.asarray(y, jnp.result_type(theta.loc, theta.scale))
    pos = (y > 0) & (y < jnp.inf)
    log_y = jnp.log(safe_where(pos, y, 1.0))
    return y, pos, log_y, (log_y - theta.loc) / theta.scale


def _edge(y, at_zero_or_below, at_inf):
    return jnp.where(jnp.isnan(y), jnp.nan, jnp.where(y > 0, at_inf, at_zero_or_below))


def log_prob(theta: LogNormal, y):
    """``-z^2/2 - log sigma - log(2 pi)/2 - log y``, ``z = (log y - mu)/sigma``; ``-inf`` for y <= 0;
    ``lognorm.logpdf(y, sigma, scale=exp(mu))``."""
    check_event_shape("LogNormal", y, registry.batch_shape(theta))
    y, pos, log_y, z = _z(theta, y)
    inside = -0.5 * jnp.square(z) - jnp.log(theta.scale) - HALF_LOG_2PI - log_y
    return jnp.where(pos, inside, _edge(y, -jnp.inf, -jnp.inf))


def log_cdf(theta: LogNormal, y):
    """``log Phi(z)`` (``log_ndtr``); ``lognorm.logcdf``."""
    y, pos, _, z = _z(theta, y)
    return jnp.where(pos, log_ndtr(z), _edge(y, -jnp.inf, 0.0))


def log_sf(theta: LogNormal, y):
    """``log Phi(-z)`` (``log_ndtr``); ``lognorm.logsf``."""
    y, pos, _, z = _z(theta, y)
    return jnp.where(pos, log_ndtr(-z), _edge(y, 0.0, -jnp.inf))


def _as_normal(theta: LogNormal) -> _normal.Normal:
    return _normal.Normal(theta.loc, theta.scale)


def quantile(theta: LogNormal, q):
    """``exp(mu + sigma Phi^{-1}(q))``; ``lognorm.ppf``."""
    return jnp.exp(theta.loc + theta.scale * ndtri(q))


def isf(theta: LogNormal, p):
    """``exp(mu - sigma Phi^{-1}(p))``, exact for tiny p; ``lognorm.isf``."""
    return jnp.exp(theta.loc - theta.scale * ndtri(p))


def mean(theta: LogNormal):
    """``exp(mu + sigma^2/2)``."""
    return jnp.exp(theta.loc + 0.5 * jnp.square(theta.scale))


def mode(theta: LogNormal):
    """``exp(mu - sigma^2)``."""
    return jnp.exp(theta.loc - jnp.square(theta.scale))


def variance(theta: LogNormal):
    """``(exp(sigma^2) - 1) exp(2 mu + sigma^2)``, as ``exp(2 mu + sigma^2 + log expm1(sigma^2))`` (finite where
    the product is, exact at small sigma)."""
    s2 = jnp.square(theta.scale)
    return jnp.exp(2.0 * theta.loc + s2 + jnp.log(jnp.expm1(s2)))


def sample(key, theta: LogNormal):
    """``exp(mu + sigma eps)``, ``eps ~ N(0, 1)``."""
    return jnp.exp(_normal.sample(key, _as_normal(theta)))


def entropy(theta: LogNormal):
    """``mu + 1/2 + log sigma + log(2 pi)/2``; ``lognorm.entropy``."""
    return theta.loc + _normal.entropy(_as_normal(theta))


def kl(p: LogNormal, q: LogNormal):
    """The KL of the Normals of ``log y`` (invariant under ``y = exp(x)``)."""
    return _normal.kl(_as_normal(p), _as_normal(q))


def crps(theta: LogNormal, y):
    """``y (2 Phi(w) - 1) - 2 exp(mu + sigma^2/2) [Phi(w - sigma) + Phi(sigma/sqrt 2) - 1]``, ``w = (log y - mu)
    /sigma`` (``w = -inf`` for y <= 0); Baran and Lerch (2015), eq. 5; scoringrules' ``crps_lognormal``."""
    y, pos, _, z = _z(theta, y)
    w = jnp.where(pos, z, jnp.where(y > 0, jnp.inf, -jnp.inf))
    s = theta.scale
    centred = ndtr(w) - ndtr(-w)
    return y * centred - 2.0 * mean(theta) * (ndtr(w - s) - ndtr(-s / math.sqrt(2.0)))


def event_shape(theta: LogNormal):
    return jnp.shape(theta.loc)


def fisher(theta: LogNormal):
    """The expected information in ``(loc, scale)``: ``diag(1 / sigma^2, 2 / sigma^2)`` (the Normal's)."""
    return _normal.fisher(_as_normal(theta))


def to_tfp(theta: LogNormal):
    """TFP's twin: ``tfd.LogNormal(loc, scale)``."""
    return _twins.tfd().LogNormal(theta.loc, theta.scale)


def from_tfp(dist) -> LogNormal:
    full = _twins.full(dist)
    return LogNormal(full(dist.loc), full(dist.scale))


registry.register(LogNormal, registry.Ops(
    domain={"loc": "real", "scale": "positive"},
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
    tfp_names=("LogNormal",),
    from_tfp=from_tfp,
    crps=crps,
    support=lambda theta: _support.positive,
))
registry.register_kl(LogNormal, LogNormal, kl)
