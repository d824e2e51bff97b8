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


def _times(a, b):
    """``a * b`` with ``0 * inf = 0``."""
    return jnp.where(a == 0, jnp.zeros_like(b), a * b)


@jax.custom_jvp
def binary_nll(z, y):
    """Binary cross-entropy ``-log Pr(y | z) = softplus(z) - y z`` for y in [0, 1].

    Written ``max(z, 0) - y z + log1p(exp(-|z|))`` with the linear part taken as
    ``(1 - y) z`` for z >= 0 and ``-y z`` below, and ``0 * inf = 0``: exact at every
    finite and infinite logit (0 or ``|z|`` for hard labels, never ``inf - inf``). Its
    derivative is defined to be exactly ``sig(z) - y`` in z (and ``-z`` in y).
    """
    linear = jnp.where(z >= 0, _times(1 - y, z), _times(y, -z))
    return linear + jnp.log1p(jnp.exp(-jnp.abs(z)))


@binary_nll.defjvp
def _binary_nll_jvp(primals, tangents):
    z, y = primals
    dz, dy = tangents
    e = jnp.exp(-jnp.abs(z))  # shared by the value and sig(z)
    value = jnp.where(z >= 0, _times(1 - y, z), _times(y, -z)) + jnp.log1p(e)
    sigmoid = jnp.where(z >= 0, jnp.ones_like(e), e) / (1 + e)
    return value, (sigmoid - y) * dz + _times(dy, -z)


def log_prob(theta: Bernoulli, y):
    """``log Pr(y | z) = -(softplus(z) - y z)``: y in {0, 1}, or a soft label in [0, 1].

    For hard labels this is ``y log sig(z) + (1 - y) log sig(-z)``; equals
    ``scipy.stats.bernoulli.logpmf(y, expit(z))`` = -BCE(z, y). Exact at logits of
    +-1e4 and +-inf; the gradient in z is exactly ``y - sig(z)``.
    """
    check_event_shape("Bernoulli", y, jnp.shape(theta.logits))
    z = theta.logits
    return -binary_nll(z, jnp.asarray(y).astype(z.dtype))


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
