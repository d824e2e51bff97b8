"""The Laplace distribution: robust regression (the NLL is the absolute error).

    Pr(y | mu, b) = exp(-|y - mu| / b) / (2 b),   y in R

scipy equivalent: ``scipy.stats.laplace(loc, scale)``.
Reference: Prince, *Understanding Deep Learning*, problem 5.8.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
from .registry import Param
import jax.numpy as jnp

from . import _twins, registry
from .._checks import check_event_shape
from .normal import _z, loc, loc_shape
from .special import nonnegative, expm1mx, log1p, log_ratio

LOG_2 = math.log(2.0)


class Laplace(NamedTuple):
    """Parameters of one example's Laplace: ``loc`` (mu) and ``scale`` (b > 0)."""

    loc: Param
    scale: Param


def standard_log_prob(z):
    """``log Pr`` of the standard Laplace at ``z = (y - mu)/b``, without ``-log b``."""
    return -jnp.abs(z) - LOG_2


def log_prob(theta: Laplace, y):
    """``-|y - mu|/b - log(2b)``; equals ``scipy.stats.laplace.logpdf``."""
    check_event_shape("Laplace", y, registry.batch_shape(theta))
    return standard_log_prob(_z(theta, y)) - jnp.log(theta.scale)


def log_cdf(theta: Laplace, y):
    """``log F(y)``: ``z - log 2`` below the location, ``log1p(-exp(-z)/2)`` above; ``laplace.logcdf``."""
    z = _z(theta, y)
    return jnp.where(z < 0, z - LOG_2, log1p(-0.5 * jnp.exp(-jnp.abs(z))))


def log_sf(theta: Laplace, y):
    """``log Pr(Y > y)``: the mirror image of ``log_cdf``; ``laplace.logsf``."""
    return log_cdf(Laplace(-theta.loc, theta.scale), -y)


def standard_quantile(q):
    """The standard Laplace's ``F^{-1}(q)``: ``log(2q)`` for ``q <= 1/2``, ``-log(2(1 - q))`` above.

    ``2q`` and ``1 - q`` (for q >= 1/2) are exact, so the lower tail is right to the smallest
    positive q (``-log1p(-2|q - 1/2|)`` rounds ``|q - 1/2|`` to 1/2 below q = 1e-17: -inf)."""
    lower = q <= 0.5
    return jnp.where(lower, jnp.log(2 * jnp.where(lower, q, 0.5)), -jnp.log(2 * (1 - jnp.where(lower, 0.5, q))))


def quantile(theta: Laplace, q):
    """``mu + b F^{-1}(q)`` with the standard ``F^{-1}`` above; ``laplace.ppf``."""
    return theta.loc + theta.scale * standard_quantile(q)


def isf(theta: Laplace, p):
    """The upper quantile ``F^{-1}(1 - p) = mu - b F^{-1}(p)`` (symmetry), exact for tiny p where
    ``1 - p`` rounds to 1; ``laplace.isf``."""
    return theta.loc - theta.scale * standard_quantile(p)


def kl(p: Laplace, q: Laplace):
    """``log(b_q/b_p) + |mu_p - mu_q|/b_q + (b_p/b_q) exp(-|mu_p - mu_q|/b_p) - 1``.

    With ``r = log(b_p/b_q)`` (``special.log_ratio``, not a difference of two logs), ``d = |mu_p - mu_q|`` and ``u = r - d/b_p``: ``exp(u) - 1 - r + d/b_q``,
    written ``expm1mx(u) + d (1/b_q - 1/b_p)`` where ``d/b_p < 1`` (no cancellation near KL = 0, and
    exactly ``expm1mx(r)`` at equal locations); never the ratio ``b_p/b_q`` itself.
    """
    d = jnp.abs(p.loc - q.loc)
    r = log_ratio(p.scale, q.scale)
    u = r - d / p.scale
    near = d < p.scale
    value = jnp.where(near, expm1mx(u) + d * (1 / q.scale - 1 / p.scale), jnp.expm1(u) - r + d / q.scale)
    return nonnegative(value)  # >= 0 exactly; rounding must not make it negative


def entropy(theta: Laplace):
    """``1 + log(2 b)``; ``laplace.entropy``."""
    return 1 + LOG_2 + jnp.log(theta.scale)


def variance(theta: Laplace):
    return 2 * jnp.square(theta.scale)


def crps(theta: Laplace, y):
    """``CRPS = |y - mu| + b exp(-|y - mu|/b) - 3b/4``; scoringrules' ``crps_laplace``.
    Reference: Jordan, Krueger and Lerch (2019), J. Stat. Softw. 90."""
    a = jnp.abs(y - theta.loc)
    return a + theta.scale * jnp.exp(-a / theta.scale) - 0.75 * theta.scale


def sample(key, theta: Laplace):
    """``mu + b e`` with ``e`` standard Laplace."""
    return theta.loc + theta.scale * jax.random.laplace(key, jnp.shape(theta.loc), jnp.result_type(theta.loc))


def fisher(theta: Laplace):
    """The expected information in ``(loc, scale)``: ``diag(1 / b^2, 1 / b^2)``, as ``E[s s']`` of the score
    ``s`` (log_prob has no second derivative in loc at y = loc; the score's variance is ``1 / b^2``)."""
    precision = 1.0 / jnp.square(theta.scale)
    return jnp.array([[precision, jnp.zeros_like(precision)], [jnp.zeros_like(precision), precision]])


def to_tfp(theta: Laplace):
    """TFP's twin: ``tfd.Laplace(loc, scale)``."""
    return _twins.tfd().Laplace(theta.loc, theta.scale)


def to_distrax(theta: Laplace):
    """distrax's twin: ``distrax.Laplace(loc, scale)``."""
    return _twins.distrax().Laplace(theta.loc, theta.scale)


def from_tfp(dist) -> Laplace:
    full = _twins.full(dist)
    return Laplace(full(dist.loc), full(dist.scale))


registry.register(Laplace, registry.Ops(
    domain={"loc": "real", "scale": "positive"},
    log_prob=log_prob,
    mode=loc,
    mean=loc,
    variance=variance,
    sample=sample,
    entropy=entropy,
    quantile=quantile,
    isf=isf,
    log_cdf=log_cdf,
    log_sf=log_sf,
    event_shape=loc_shape,
    fisher=fisher,
    to_tfp=to_tfp,
    to_distrax=to_distrax,
    tfp_names=('Laplace',),
    from_tfp=from_tfp,
    crps=crps,
))
registry.register_kl(Laplace, Laplace, kl)
