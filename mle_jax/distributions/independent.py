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

import jax
import jax.numpy as jnp
import numpy as np

from . import _twins, registry


class Independent(NamedTuple):
    """D independent outputs; ``base`` holds theta of all D outputs stacked on axis 0."""

    base: Any


def _base(theta: Independent):
    """The base theta, checked to hold the D outputs on its last example axis."""
    if not registry.batch_shape(theta.base):
        raise ValueError(f"Independent needs a base theta whose fields have an output axis of length D "
                         f"(e.g. Independent(mj.Normal(jnp.zeros(D), jnp.ones(D)))); got a single "
                         f"{type(theta.base).__name__} with scalar fields")
    return theta.base


def _per_output(name):
    """``name`` of the base theta, one value per output (mode, mean, variance, quantile)."""
    def fn(theta: Independent, *args):
        return registry.function(theta.base, name)(_base(theta), *args)
    fn.__name__ = f"independent_{name}"
    return fn


def log_prob(theta: Independent, y):
    """``sum_d log Pr(y_d | theta_d)``."""
    return jnp.sum(registry.function(theta.base, "log_prob")(_base(theta), y), axis=-1)


def entropy(theta: Independent):
    """``sum_d H(theta_d)``."""
    return jnp.sum(registry.function(theta.base, "entropy")(_base(theta)), axis=-1)


def sample(key, theta: Independent):
    return registry.function(theta.base, "sample")(key, _base(theta))


def kl(p: Independent, q: Independent):
    """``sum_d KL(p_d || q_d)``."""
    return jnp.sum(registry.kl(_base(p), _base(q)), axis=-1)


def cross_entropy(p: Independent, q: Independent):
    """``sum_d CE(p_d, q_d)``: the base pair's closed form, else its ``H + KL``."""
    return jnp.sum(registry.cross_entropy(_base(p), _base(q)), axis=-1)


def _event_shape(theta: Independent):
    return registry.function(theta.base, "event_shape")(_base(theta))


def _batch_shape(theta: Independent):
    """The base's example axes less the last, which holds the D outputs of one example."""
    return registry.batch_shape(_base(theta))[:-1]


def _isf(theta: Independent, p):
    return registry.isf(_base(theta), p)


def fisher(theta: Independent):
    """``F = sum_d P_d' F(theta_d) P_d``: each output's information (the base's ``fisher``) placed at its
    own fields' entries of ``ravel_pytree(theta)``; a field shared by every output (a scalar) adds the
    D blocks' entries at its one place."""
    base = _base(theta)
    (outputs,) = registry.batch_shape(base)[-1:]
    leaves = [jnp.asarray(leaf) for leaf in jax.tree.leaves(base)]
    index, offset = [], 0
    for leaf in leaves:  # the place in ravel_pytree(theta) of output d's entries of this field
        own = np.arange(leaf.size).reshape(leaf.shape) if leaf.ndim else np.zeros(outputs, int)
        index.append(offset + own.reshape(outputs, -1))
        offset += leaf.size
    at = np.concatenate(index, axis=1)  # (D, m)
    wide = jax.tree.map(lambda leaf: jnp.broadcast_to(leaf, (outputs,)) if jnp.ndim(leaf) == 0 else leaf, base)
    blocks = jax.vmap(registry.fisher)(wide)  # (D, m, m)
    return jnp.zeros((offset, offset), blocks.dtype).at[at[:, :, None], at[:, None, :]].add(blocks)


def to_tfp(theta: Independent):
    """TFP's twin: ``tfd.Independent(twin of base, reinterpreted_batch_ndims=1)``."""
    return _twins.tfd().Independent(_twins.to_tfp(_base(theta)), reinterpreted_batch_ndims=1)


def to_distrax(theta: Independent):
    """distrax's twin: ``distrax.Independent(twin of base, reinterpreted_batch_ndims=1)``."""
    return _twins.distrax().Independent(_twins.to_distrax(_base(theta)), reinterpreted_batch_ndims=1)


def from_tfp(dist) -> Independent:
    """From an ``Independent`` of one reinterpreted axis (counted from the static shapes: the count
    itself may be traced)."""
    axes = len(dist.distribution.batch_shape) - len(dist.batch_shape)
    if axes != 1:
        raise _twins.unconvertible(dist, f" of {axes} reinterpreted axes (Independent(base) reinterprets one)")
    return Independent(_twins.from_tfp(dist.distribution))


registry.register(Independent, registry.Ops(
    log_prob=log_prob,
    mode=_per_output("mode"),
    mean=_per_output("mean"),
    variance=_per_output("variance"),
    sample=sample,
    entropy=entropy,
    quantile=_per_output("quantile"),
    isf=_isf,
    event_shape=_event_shape,
    batch_shape=_batch_shape,
    fisher=fisher,
    to_tfp=to_tfp,
    to_distrax=to_distrax,
    tfp_names=('Independent',),
    from_tfp=from_tfp,
    event_ndims=lambda theta: 1 + registry.event_ndims(theta.base),  # the D outputs: a vector target
    support=lambda theta: registry.support(theta.base),
))
registry.register_kl(Independent, Independent, kl)
registry.register_cross_entropy(Independent, Independent, cross_entropy)
