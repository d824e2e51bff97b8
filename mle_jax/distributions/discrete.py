"""Information quantities of a discrete distribution given by its log-probabilities.

Bernoulli and Categorical both reduce to a vector ``logp`` of log-probabilities
over their outcomes. Entropy, cross-entropy and KL are written once here, with
the convention ``0 log 0 = 0``: an outcome of probability 0 (``logp = -inf``,
a masked class) contributes exactly 0, in value and in gradient, never NaN.
"""

from __future__ import annotations

import jax.numpy as jnp


def _where_zero(zero, value_fn, arg):
    """``where(zero, 0, value_fn(arg))`` with the "double where".

    ``jnp.where`` differentiates both branches, so the unused branch is fed a
    harmless 0 instead of the value that would give NaN.
    """
    safe = jnp.where(zero, jnp.zeros_like(arg), arg)
    return jnp.where(zero, jnp.zeros_like(safe), value_fn(safe))


def mul_exp(logp, x):
    """``exp(logp) * x`` with ``0 * x = 0`` wherever ``logp = -inf``."""
    zero = jnp.isneginf(logp)
    safe_x = jnp.where(zero, jnp.zeros_like(x), x)
    return _where_zero(zero, jnp.exp, logp) * safe_x


def entropy(logp):
    """``H(p) = -sum_k p_k log p_k`` in nats, ``0 log 0 = 0``."""
    return -jnp.sum(mul_exp(logp, logp), axis=-1)


def cross_entropy(logp, logq):
    """``CE(p, q) = -sum_k p_k log q_k`` in nats; ``+inf`` where q misses p's support."""
    return -jnp.sum(mul_exp(logp, logq), axis=-1)


def kl(logp, logq):
    """``KL(p || q) = sum_k p_k (log p_k - log q_k)``; terms with ``p_k = 0`` are 0.

    Clipped at 0 from below: the exact value is >= 0 and rounding must not make
    it negative.
    """
    zero = jnp.isneginf(logp)
    diff = jnp.where(zero, jnp.zeros_like(logp), logp - logq)
    return jnp.maximum(jnp.sum(mul_exp(logp, diff), axis=-1), 0.0)
