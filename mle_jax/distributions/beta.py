"""The Beta distribution: data on the unit interval (proportions, rates).

    Pr(y | a, b) = y^(a-1) (1 - y)^(b-1) / B(a, b),   0 < y < 1

scipy equivalent: ``scipy.stats.beta(concentration1, concentration0)``.
Reference: Prince, *Understanding Deep Learning*, section 5.6.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import betainc, betaln, digamma, xlog1py, xlogy

from . import registry
from ..checks import check_event_shape


class Beta(NamedTuple):
    """Parameters of one example's Beta: ``concentration1`` (a > 0) and ``concentration0`` (b > 0)."""

    concentration1: jax.Array
    concentration0: jax.Array


def log_prob(theta: Beta, y):
    """``(a - 1) log y + (b - 1) log(1 - y) - log B(a, b)``; ``beta.logpdf``; -inf outside (0, 1)."""
    check_event_shape("Beta", y, jnp.shape(theta.concentration1))
    a, b = theta.concentration1, theta.concentration0
    inside = (y > 0) & (y < 1)
    safe = jnp.where(inside, y, 0.5 * jnp.ones_like(y))
    value = xlogy(a - 1, safe) + xlog1py(b - 1, -safe) - betaln(a, b)
    return jnp.where(inside, value, -jnp.inf)


def entropy(theta: Beta):
    """``log B(a, b) - (a - 1) psi(a) - (b - 1) psi(b) + (a + b - 2) psi(a + b)``."""
    a, b = theta.concentration1, theta.concentration0
    return betaln(a, b) - (a - 1) * digamma(a) - (b - 1) * digamma(b) + (a + b - 2) * digamma(a + b)


def kl(p: Beta, q: Beta):
    """``log B(a_q, b_q) - log B(a_p, b_p) + (a_p - a_q) psi(a_p) + (b_p - b_q) psi(b_p)
    + (a_q - a_p + b_q - b_p) psi(a_p + b_p)``."""
    ap, bp, aq, bq = p.concentration1, p.concentration0, q.concentration1, q.concentration0
    return (betaln(aq, bq) - betaln(ap, bp) + (ap - aq) * digamma(ap) + (bp - bq) * digamma(bp)
            + (aq - ap + bq - bp) * digamma(ap + bp))


def mode(theta: Beta):
    """``(a - 1)/(a + b - 2)`` for a, b > 1; the boundary (0 or 1) or NaN (bimodal) otherwise."""
    a, b = theta.concentration1, theta.concentration0
    interior = (a - 1) / (a + b - 2)
    return jnp.where((a > 1) & (b > 1), interior,
                     jnp.where((a <= 1) & (b > 1), 0.0, jnp.where((a > 1) & (b <= 1), 1.0, jnp.nan)))


def log_cdf(theta: Beta, y):
    """``log I_y(a, b)`` (the regularised incomplete beta); ``beta.logcdf``."""
    return jnp.log(betainc(theta.concentration1, theta.concentration0, jnp.clip(y, 0, 1)))


def log_sf(theta: Beta, y):
    """``log I_{1-y}(b, a)``; ``beta.logsf``."""
    return jnp.log(betainc(theta.concentration0, theta.concentration1, jnp.clip(1 - y, 0, 1)))


registry.register(Beta, registry.Ops(
    log_prob=log_prob,
    mode=mode,
    mean=lambda t: t.concentration1 / (t.concentration1 + t.concentration0),
    variance=lambda t: (t.concentration1 * t.concentration0
                        / (jnp.square(t.concentration1 + t.concentration0)
                           * (t.concentration1 + t.concentration0 + 1))),
    sample=lambda key, t: jax.random.beta(key, t.concentration1, t.concentration0),
    entropy=entropy,
    log_cdf=log_cdf,
    log_sf=log_sf,
    event_shape=lambda t: jnp.shape(t.concentration1),
))
registry.register_kl(Beta, Beta, kl)
