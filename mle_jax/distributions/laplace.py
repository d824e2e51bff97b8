"""The Laplace distribution: robust regression (the NLL is the absolute error).

    Pr(y | mu, b) = exp(-|y - mu| / b) / (2 b),   y in R

scipy equivalent: ``scipy.stats.laplace(loc, scale)``.
Reference: Prince, *Understanding Deep Learning*, problem 5.8.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import registry
from ..checks import check_event_shape

LOG_2 = math.log(2.0)


class Laplace(NamedTuple):
    """Parameters of one example's Laplace: ``loc`` (mu) and ``scale`` (b > 0)."""

    loc: jax.Array
    scale: jax.Array


def standard_log_prob(z):
    """``log Pr`` of the standard Laplace at ``z = (y - mu)/b``, without ``-log b``."""
    return -jnp.abs(z) - LOG_2


def log_prob(theta: Laplace, y):
    """``-|y - mu|/b - log(2b)``; equals ``scipy.stats.laplace.logpdf``."""
    check_event_shape("Laplace", y, jnp.shape(theta.loc))
    return standard_log_prob((y - theta.loc) / theta.scale) - jnp.log(theta.scale)


def log_cdf(theta: Laplace, y):
    """``log F(y)``: ``z - log 2`` below the location, ``log1p(-exp(-z)/2)`` above; ``laplace.logcdf``."""
    z = (y - theta.loc) / theta.scale
    return jnp.where(z < 0, z - LOG_2, jnp.log1p(-0.5 * jnp.exp(-jnp.abs(z))))


def log_sf(theta: Laplace, y):
    """``log Pr(Y > y)``: the mirror image of ``log_cdf``; ``laplace.logsf``."""
    return log_cdf(Laplace(-theta.loc, theta.scale), -y)


def quantile(theta: Laplace, q):
    """``mu - b sign(q - 1/2) log(1 - 2|q - 1/2|)``; ``laplace.ppf``."""
    return theta.loc - theta.scale * jnp.sign(q - 0.5) * jnp.log1p(-2 * jnp.abs(q - 0.5))


def kl(p: Laplace, q: Laplace):
    """``log(b_q/b_p) + |mu_p - mu_q|/b_q + (b_p/b_q) exp(-|mu_p - mu_q|/b_p) - 1``."""
    d = jnp.abs(p.loc - q.loc)
    return jnp.log(q.scale / p.scale) + d / q.scale + p.scale / q.scale * jnp.exp(-d / p.scale) - 1


registry.register(Laplace, registry.Ops(
    log_prob=log_prob,
    mode=lambda t: t.loc,
    mean=lambda t: t.loc,
    variance=lambda t: 2 * jnp.square(t.scale),
    sample=lambda key, t: t.loc + t.scale * jax.random.laplace(key, jnp.shape(t.loc), jnp.result_type(t.loc)),
    entropy=lambda t: 1 + LOG_2 + jnp.log(t.scale),
    quantile=quantile,
    log_cdf=log_cdf,
    log_sf=log_sf,
    event_shape=lambda t: jnp.shape(t.loc),
))
registry.register_kl(Laplace, Laplace, kl)
