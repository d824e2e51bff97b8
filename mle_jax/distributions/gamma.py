"""The Gamma distribution: positive data (durations, amounts).

    Pr(y | a, b) = b^a y^(a-1) exp(-b y) / Gamma(a),   y > 0

scipy equivalent: ``scipy.stats.gamma(a=concentration, scale=1/rate)``.
Reference: Prince, *Understanding Deep Learning*, section 5.6 (choosing the distribution).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma, gammainc, gammaincc, gammaln, xlogy

from . import registry
from ..checks import check_event_shape


class Gamma(NamedTuple):
    """Parameters of one example's Gamma: ``concentration`` (a > 0) and ``rate`` (b > 0)."""

    concentration: jax.Array
    rate: jax.Array


def log_prob(theta: Gamma, y):
    """``a log b + (a - 1) log y - b y - log Gamma(a)``; ``gamma.logpdf``; -inf for y <= 0."""
    check_event_shape("Gamma", y, jnp.shape(theta.concentration))
    a, b = theta.concentration, theta.rate
    safe = jnp.where(y > 0, y, jnp.ones_like(y))
    value = a * jnp.log(b) + xlogy(a - 1, safe) - b * safe - gammaln(a)
    return jnp.where(y > 0, value, -jnp.inf)


def entropy(theta: Gamma):
    """``a - log b + log Gamma(a) + (1 - a) psi(a)``."""
    a = theta.concentration
    return a - jnp.log(theta.rate) + gammaln(a) + (1 - a) * digamma(a)


def kl(p: Gamma, q: Gamma):
    """``(a_p - a_q) psi(a_p) - lnG(a_p) + lnG(a_q) + a_q (log b_p - log b_q) + a_p (b_q - b_p)/b_p``."""
    ap, bp, aq, bq = p.concentration, p.rate, q.concentration, q.rate
    return ((ap - aq) * digamma(ap) - gammaln(ap) + gammaln(aq) + aq * (jnp.log(bp) - jnp.log(bq))
            + ap * (bq - bp) / bp)


def log_cdf(theta: Gamma, y):
    """``log P(a, b y)`` (the regularised lower incomplete gamma); ``gamma.logcdf``."""
    return jnp.log(gammainc(theta.concentration, theta.rate * jnp.maximum(y, 0)))


def log_sf(theta: Gamma, y):
    """``log Q(a, b y)`` (the regularised upper incomplete gamma); ``gamma.logsf``."""
    return jnp.log(gammaincc(theta.concentration, theta.rate * jnp.maximum(y, 0)))


registry.register(Gamma, registry.Ops(
    log_prob=log_prob,
    mode=lambda t: jnp.maximum(t.concentration - 1, 0) / t.rate,
    mean=lambda t: t.concentration / t.rate,
    variance=lambda t: t.concentration / jnp.square(t.rate),
    sample=lambda key, t: jax.random.gamma(key, t.concentration) / t.rate,
    entropy=entropy,
    log_cdf=log_cdf,
    log_sf=log_sf,
    event_shape=lambda t: jnp.shape(t.concentration),
))
registry.register_kl(Gamma, Gamma, kl)
