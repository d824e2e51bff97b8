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


def _base(name):
    return lambda t, *args: registry.op(t.base, name)(t.base, *args)


def _summed(name):
    return lambda t, *args: jnp.sum(registry.op(t.base, name)(t.base, *args), axis=-1)


def _pair(fn_of):
    def fn(p, q):
        inner = fn_of(p.base, q.base)
        if inner is None:
            raise NotImplementedError(
                f"no closed form for {type(p.base).__name__} || {type(q.base).__name__}")
        return jnp.sum(inner(p.base, q.base), axis=-1)
    return fn


def _event_shape(t):
    shape = registry.op(t.base, "event_shape")(t.base)
    if not shape:
        raise ValueError("Independent needs a base with a leading output axis")
    return shape


registry.register(Independent, registry.Ops(
    log_prob=lambda t, y: jnp.sum(registry.op(t.base, "log_prob")(t.base, y), axis=-1),
    mode=_base("mode"),
    mean=_base("mean"),
    variance=_base("variance"),
    sample=lambda key, t: registry.op(t.base, "sample")(key, t.base),
    entropy=_summed("entropy"),
    quantile=_base("quantile"),
    event_shape=_event_shape,
))
registry.register_kl(Independent, Independent, _pair(registry.kl_fn))
registry.register_cross_entropy(Independent, Independent, _pair(registry.ce_fn))
