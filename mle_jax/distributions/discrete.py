"""Information quantities of a discrete distribution given by its log-probabilities.

Bernoulli and Categorical both reduce to a vector ``logp`` of log-probabilities
over their outcomes. Entropy, cross-entropy and KL are written once here, with
the convention ``0 log 0 = 0``: an outcome of probability 0 (``logp = -inf``,
a masked class) contributes exactly 0, in value and in gradient, never NaN.
"""

from __future__ import annotations

import jax.numpy as jnp

from .special import nonnegative


def _where_zero(zero, value_fn, arg):
    """``where(zero, 0, value_fn(arg))`` with the "double where".

    ``jnp.where`` differentiates both branches, so the unused branch is fed a
    harmless 0 instead of the value that would give NaN.
    """
    safe = jnp.where(zero, jnp.zeros_like(arg), arg)
    return jnp.where(zero, jnp.zeros_like(safe), value_fn(safe))


def mul_exp(logp, x):
    """``exp(logp) * x`` with ``0 * x = 0`` wherever ``logp = -inf``, and ``+-inf`` wherever ``x`` is
    infinite and ``logp > -inf`` (``exp(logp)`` may round to 0 there, but the outcome has positive
    probability: ``KL(Bernoulli(-100) || Bernoulli(-inf))`` is inf, not ``0 * inf = NaN``)."""
    zero = jnp.isneginf(logp)
    infinite = jnp.isinf(x) & ~zero
    safe_x = jnp.where(zero | infinite, jnp.zeros_like(x), x)
    return jnp.where(infinite, x, _where_zero(zero, jnp.exp, logp) * safe_x)


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
    return nonnegative(jnp.sum(mul_exp(logp, diff), axis=-1))


def entropy_of(log_probs):
    """The entropy of a theta type whose outcomes' log-probabilities are ``log_probs(theta)``."""
    def theta_entropy(theta):
        return entropy(log_probs(theta))
    return theta_entropy


def kl_of(log_probs):
    """The KL divergence of two thetas of a type with ``log_probs``."""
    def theta_kl(p, q):
        return kl(log_probs(p), log_probs(q))
    return theta_kl


def cross_entropy_of(log_probs):
    """The cross-entropy of two thetas of a type with ``log_probs``."""
    def theta_cross_entropy(p, q):
        return cross_entropy(log_probs(p), log_probs(q))
    return theta_cross_entropy
