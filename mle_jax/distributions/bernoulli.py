"""The Bernoulli distribution on logits: binary classification.

    Pr(y | lambda) = (1 - lambda)^(1 - y) lambda^y,   y in {0, 1},   lambda = sig(z)

Kept on the logit ``z`` so that every quantity is exact at any finite or
infinite logit: ``log Pr(y | z) = log_sigmoid((2y - 1) z)``, which is 0 or
``-|z|`` at ``|z| = 1e4`` and never ``0 * inf``.

scipy equivalent: ``scipy.stats.bernoulli(expit(logits))``.
Reference: Prince, *Understanding Deep Learning*, eq. 5.17-5.19; the lecture, Example 2.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import discrete, registry
from ..checks import check_event_shape


class Bernoulli(NamedTuple):
    """Parameters of one example's Bernoulli: ``logits`` = log(lambda / (1 - lambda))."""

    logits: jax.Array


def log_probs(theta: Bernoulli):
    """``[log Pr(y=0), log Pr(y=1)] = [log_sigmoid(-z), log_sigmoid(z)]`` on a last axis."""
    z = theta.logits
    return jnp.stack([jax.nn.log_sigmoid(-z), jax.nn.log_sigmoid(z)], axis=-1)


def log_prob(theta: Bernoulli, y):
    """``log Pr(y | z) = log_sigmoid((2y - 1) z)`` for hard labels y in {0, 1}.

    Soft labels y in [0, 1] (label smoothing) get
    ``y log_sigmoid(z) + (1 - y) log_sigmoid(-z)`` with 0 * (-inf) = 0.
    Equals ``scipy.stats.bernoulli.logpmf(y, expit(z))`` = -BCE(z, y).
    The gradient in z is exactly ``sigmoid(z) - y``.
    """
    check_event_shape("Bernoulli", y, jnp.shape(theta.logits))
    z = theta.logits
    y = jnp.asarray(y)
    if jnp.issubdtype(y.dtype, jnp.integer) or y.dtype == jnp.bool_:
        sign = 2 * y.astype(z.dtype) - 1
        return jax.nn.log_sigmoid(sign * z)
    p = jnp.stack([1 - y, y], axis=-1).astype(z.dtype)
    return -discrete.cross_entropy(jnp.log(p), log_probs(theta))


def sample(key, theta: Bernoulli):
    """Draw y in {0, 1} (int32) with ``Pr(y = 1) = sigmoid(z)``."""
    return jax.random.bernoulli(key, jax.nn.sigmoid(theta.logits)).astype(jnp.int32)


def quantile(theta: Bernoulli, q):
    """Smallest y in {0, 1} with ``Pr(Y <= y) >= q``; ``bernoulli.ppf``."""
    return (q > jax.nn.sigmoid(-theta.logits)).astype(jnp.int32)


registry.register(Bernoulli, registry.Ops(
    log_prob=log_prob,
    # argmax_y Pr(y): 1 where lambda > 1/2, i.e. z > 0 (the lecture's threshold at 0.5)
    mode=lambda t: (t.logits > 0).astype(jnp.int32),
    mean=lambda t: jax.nn.sigmoid(t.logits),
    variance=lambda t: jax.nn.sigmoid(t.logits) * jax.nn.sigmoid(-t.logits),
    sample=sample,
    entropy=lambda t: discrete.entropy(log_probs(t)),
    quantile=quantile,
    event_shape=lambda t: jnp.shape(t.logits),
))
registry.register_kl(Bernoulli, Bernoulli, lambda p, q: discrete.kl(log_probs(p), log_probs(q)))
registry.register_cross_entropy(
    Bernoulli, Bernoulli, lambda p, q: discrete.cross_entropy(log_probs(p), log_probs(q)))
