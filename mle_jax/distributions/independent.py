"""Independent outputs: a vector whose entries are independent draws of one family.

    Pr(y | theta) = prod_d Pr(y_d | theta_d)   so   log Pr(y | theta) = sum_d log Pr(y_d | theta_d)

``Independent(base)`` reinterprets the last batch axis of ``base`` (a theta
whose fields carry a leading axis of length D) as one event: log-probability,
entropy and KL are sums over d, mode, mean and samples are per d.

scipy equivalent: the sum of the per-dimension ``logpdf``.
Reference: Prince, *Understanding Deep Learning*, eq. 5.25-5.26; the lecture, "Multiple outputs".
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from . import registry


class Independent(NamedTuple):
    """D independent outputs; ``base`` holds theta of all D outputs stacked on axis 0."""

    base: Any


def _per_output(name):
    """``name`` of the base theta, one value per output (mode, mean, variance, quantile)."""
    def fn(theta: Independent, *args):
        return registry.op(theta.base, name)(theta.base, *args)
    fn.__name__ = f"independent_{name}"
    return fn


def log_prob(theta: Independent, y):
    """``sum_d log Pr(y_d | theta_d)``."""
    return jnp.sum(registry.op(theta.base, "log_prob")(theta.base, y), axis=-1)


def entropy(theta: Independent):
    """``sum_d H(theta_d)``."""
    return jnp.sum(registry.op(theta.base, "entropy")(theta.base), axis=-1)


def sample(key, theta: Independent):
    return registry.op(theta.base, "sample")(key, theta.base)


def kl(p: Independent, q: Independent):
    """``sum_d KL(p_d || q_d)``."""
    return jnp.sum(registry.kl(p.base, q.base), axis=-1)


def cross_entropy(p: Independent, q: Independent):
    """``sum_d CE(p_d, q_d)``: the base pair's closed form, else its ``H + KL``."""
    return jnp.sum(registry.cross_entropy(p.base, q.base), axis=-1)


def _event_shape(theta: Independent):
    shape = registry.op(theta.base, "event_shape")(theta.base)
    if not shape:
        raise ValueError("Independent needs a base with a leading output axis")
    return shape


registry.register(Independent, registry.Ops(
    log_prob=log_prob,
    mode=_per_output("mode"),
    mean=_per_output("mean"),
    variance=_per_output("variance"),
    sample=sample,
    entropy=entropy,
    quantile=_per_output("quantile"),
    event_shape=_event_shape,
))
registry.register_kl(Independent, Independent, kl)
registry.register_cross_entropy(Independent, Independent, cross_entropy)
