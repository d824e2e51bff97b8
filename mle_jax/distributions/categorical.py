"""The Categorical distribution on logits: multiclass classification.

    Pr(y = k | z) = softmax_k(z) = exp(z_k) / sum_k' exp(z_k'),   y in {0, ..., K-1}

Labels are 0-based (the lecture's classes 1..K are 0..K-1 here). A logit of
``-inf`` is a class of probability 0 (a mask); it contributes 0 to entropy, KL
and cross-entropy and gets gradient 0.

scipy equivalent: ``scipy.stats.multinomial(1, softmax(logits))`` (one draw).
Reference: Prince, *Understanding Deep Learning*, eq. 5.22-5.24; the lecture, Example 3.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import discrete, registry
from ..checks import check_event_shape


class Categorical(NamedTuple):
    """Parameters of one example's Categorical: ``logits`` of shape (K,)."""

    logits: jax.Array


def log_probs(theta: Categorical):
    """``log softmax(z)``: the shift by ``max z`` makes logits of 1e9 exact."""
    return jax.nn.log_softmax(theta.logits, axis=-1)


def log_prob(theta: Categorical, y):
    """``log Pr(y | z) = z_y - log sum_k exp(z_k)`` for an integer label y in [0, K).

    Computed as ``(z - max z)_y - log sum exp(z - max z)``: the target logit is
    gathered, never multiplied by a one-hot. Equals ``-optax.softmax_cross_entropy_with_integer_labels``.
    """
    check_event_shape("Categorical", y, jnp.shape(theta.logits)[:-1])
    z = theta.logits
    shifted = z - jax.lax.stop_gradient(jnp.max(z, axis=-1, keepdims=True))
    target = jnp.take_along_axis(shifted, jnp.asarray(y)[..., None], axis=-1)[..., 0]
    return target - jnp.log(jnp.sum(jnp.exp(shifted), axis=-1))


def probs(theta: Categorical):
    """``softmax(z)``: the class probabilities."""
    return jax.nn.softmax(theta.logits, axis=-1)


def mean(theta: Categorical):
    """``E[y] = sum_k k p_k`` (the expected 0-based label); see ``probs`` for the vector."""
    p = probs(theta)
    return jnp.sum(p * jnp.arange(p.shape[-1], dtype=p.dtype), axis=-1)


registry.register(Categorical, registry.Ops(
    log_prob=log_prob,
    mode=lambda t: jnp.argmax(t.logits, axis=-1).astype(jnp.int32),
    mean=mean,
    sample=lambda key, t: jax.random.categorical(key, t.logits, axis=-1).astype(jnp.int32),
    entropy=lambda t: discrete.entropy(log_probs(t)),
    event_shape=lambda t: jnp.shape(t.logits)[:-1],
))
registry.register_kl(Categorical, Categorical, lambda p, q: discrete.kl(log_probs(p), log_probs(q)))
registry.register_cross_entropy(
    Categorical, Categorical, lambda p, q: discrete.cross_entropy(log_probs(p), log_probs(q)))
