"""The Poisson distribution on the log-rate: counts.

    Pr(y | lambda) = lambda^y exp(-lambda) / y!,   y in {0, 1, 2, ...},   lambda = exp(log_rate)

scipy equivalent: ``scipy.stats.poisson(exp(log_rate))``.
Reference: Prince, *Understanding Deep Learning*, problem 5.5 (Poisson regression).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

from . import registry
from ..checks import check_event_shape


class Poisson(NamedTuple):
    """Parameters of one example's Poisson: ``log_rate`` = log(lambda)."""

    log_rate: jax.Array


def log_prob(theta: Poisson, y):
    """``y log lambda - lambda - log y!``; equals ``scipy.stats.poisson.logpmf``; -inf off the support.

    The three terms cancel for large counts: in float32 the absolute error is about
    ``1e-7 * y log y`` (1e-4 at y = 400); enable float64 for large counts.
    """
    check_event_shape("Poisson", y, jnp.shape(theta.log_rate))
    y = jnp.asarray(y, jnp.result_type(theta.log_rate))
    value = y * theta.log_rate - jnp.exp(theta.log_rate) - gammaln(y + 1)
    on_support = (y >= 0) & (y == jnp.floor(y))
    return jnp.where(on_support, value, -jnp.inf)


def kl(p: Poisson, q: Poisson):
    """``KL = lambda_p (log lambda_p - log lambda_q) - lambda_p + lambda_q``."""
    rate_p, rate_q = jnp.exp(p.log_rate), jnp.exp(q.log_rate)
    return rate_p * (p.log_rate - q.log_rate) - rate_p + rate_q


registry.register(Poisson, registry.Ops(
    log_prob=log_prob,
    mode=lambda t: jnp.floor(jnp.exp(t.log_rate)).astype(jnp.int32),  # argmax_y: floor(lambda)
    mean=lambda t: jnp.exp(t.log_rate),
    variance=lambda t: jnp.exp(t.log_rate),
    sample=lambda key, t: jax.random.poisson(key, jnp.exp(t.log_rate)).astype(jnp.int32),
    event_shape=lambda t: jnp.shape(t.log_rate),
))
registry.register_kl(Poisson, Poisson, kl)
