"""The negative binomial distribution: overdispersed counts (variance above the mean).

    Pr(y | r, pi) = Gamma(y + r) / (Gamma(r) y!) (1 - pi)^r pi^y,   y in {0, 1, 2, ...},   pi = sig(logits)

the Poisson whose rate is Gamma(r, (1 - pi)/pi) distributed: mean ``r e^logits``, variance
``mean / (1 - pi)``, which is the Poisson's as r grows.

scipy equivalent: ``scipy.stats.nbinom(n=total_count, p=sigmoid(-logits))``.
Reference: Prince, *Understanding Deep Learning*, section 5.6; Hilbe, *Negative Binomial Regression* (2011).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

from . import registry
from ..checks import check_event_shape


class NegativeBinomial(NamedTuple):
    """Parameters of one example's negative binomial: ``total_count`` (r > 0) and ``logits`` (log-odds of pi)."""

    total_count: jax.Array
    logits: jax.Array


def log_prob(theta: NegativeBinomial, y):
    """``lnG(y + r) - lnG(r) - ln y! + r log_sigmoid(-z) + y log_sigmoid(z)``; ``nbinom.logpmf``."""
    check_event_shape("NegativeBinomial", y, jnp.shape(theta.logits))
    r, z = theta.total_count, theta.logits
    y = jnp.asarray(y, jnp.result_type(z))
    value = (gammaln(y + r) - gammaln(r) - gammaln(y + 1)
             + r * jax.nn.log_sigmoid(-z) + y * jax.nn.log_sigmoid(z))
    return jnp.where((y >= 0) & (y == jnp.floor(y)), value, -jnp.inf)


def mean(theta: NegativeBinomial):
    return theta.total_count * jnp.exp(theta.logits)


def sample(key, theta: NegativeBinomial):
    """The gamma-Poisson mixture: ``lambda ~ Gamma(r) e^logits``, ``y ~ Poisson(lambda)``."""
    k1, k2 = jax.random.split(key)
    rate = jax.random.gamma(k1, theta.total_count) * jnp.exp(theta.logits)
    return jax.random.poisson(k2, rate).astype(jnp.int32)


registry.register(NegativeBinomial, registry.Ops(
    log_prob=log_prob,
    # argmax_y: floor((r - 1) pi / (1 - pi)) for r > 1, else 0
    mode=lambda t: jnp.floor(jnp.maximum(t.total_count - 1, 0) * jnp.exp(t.logits)).astype(jnp.int32),
    mean=mean,
    variance=lambda t: mean(t) / jax.nn.sigmoid(-t.logits),
    sample=sample,
    event_shape=lambda t: jnp.shape(t.logits),
))
