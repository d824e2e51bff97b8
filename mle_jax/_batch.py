"""Examples out of a batched theta: ``take(theta, i)``.

``r.predict(params, x)`` returns ONE theta whose every field has a leading axis of N examples
(``Normal(loc=(N,), scale=(N,))``); ``take(theta, i)`` is example i's theta, the kind that
``mj.log_prob(theta, y_i)`` and ``mj.to_tfp`` take (a slice or an index array keeps a batch).
Indexing the NamedTuple itself (``theta[0]``) would give its first field, not its first example.

``take`` lives here, not in ``mle_jax.interop``: it acts on mle_jax's own thetas, needs no
optional extra, and is what any user of ``r.predict`` indexes with; interop only converts.
"""

from __future__ import annotations

import numpy as np

import jax
import jax.numpy as jnp

from ._checks import is_concrete
from .distributions import registry


def take(theta, index):
    """Example(s) ``index`` of a batched theta: ``theta`` with every field indexed on its leading axis.

    Args:
      theta: a batched theta (every field with the same leading size N), e.g. ``r.predict(params, x)``.
      index: an integer (negative counts from the end), a slice, or an integer array.

    Out-of-range indices are an IndexError when they are concrete; a traced out-of-range index
    gives NaN fields (never silently the last example, as plain JAX indexing would clamp to).

    Example:
      >>> import jax.numpy as jnp, mle_jax as mj
      >>> mj.take(mj.Normal(jnp.array([0.0, 1.0]), jnp.array([1.0, 2.0])), 1)
      Normal(loc=Array(1., dtype=float32), scale=Array(2., dtype=float32))
    """
    registry.entries(theta)  # a TypeError naming the known thetas unless theta is one
    n = _batch_size(theta)
    if isinstance(index, slice):
        return jax.tree.map(lambda a: a[index], theta)
    index = jnp.asarray(index)
    if not jnp.issubdtype(index.dtype, jnp.integer):
        raise TypeError(f"take: index must be an integer, an integer array or a slice; got dtype {index.dtype}")
    if is_concrete(index):
        bad = (np.asarray(index) < -n) | (np.asarray(index) >= n)
        if bad.any():
            raise IndexError(f"take: index {np.asarray(index)[bad].ravel()[0]} is out of range for a theta "
                             f"of {n} examples")
    return jax.tree.map(lambda a: jnp.take(a, index, axis=0, mode="fill"), theta)


def _batch_size(theta) -> int:
    """N, the first of the theta's example axes (``registry.batch_shape``: a Categorical's classes,
    a mixture's components and a multivariate Normal's dimensions are not example axes)."""
    shape = registry.batch_shape(theta)
    if not shape:
        raise ValueError(f"take: this {type(theta).__name__} holds one example, not a batch (its fields "
                         f"have no example axis); batched thetas come from r.predict or jax.vmap")
    leading = [np.shape(leaf)[:1] for leaf in jax.tree.leaves(theta)]
    if any(size != shape[:1] for size in leading):
        raise ValueError(f"take: the fields of {type(theta).__name__} disagree on the number of examples "
                         f"(leading axes {leading}); give every field the same leading axis of N")
    return int(shape[0])


__all__ = ["take"]
