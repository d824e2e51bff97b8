"""Families for vector targets: y in R^D with a full covariance.

    mj.mvn_cholesky(D)    raw: D means + D(D+1)/2 Cholesky entries (diagonal through softplus)
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .. import links
from ..distributions import MultivariateNormal
from ._arguments import whole_number
from ._family import Family, Spec, build, split
from ._support import real


def mvn_cholesky(dim: int) -> Family:
    """Multivariate Normal with a full covariance from a Cholesky link.

    The model emits ``D + D(D+1)/2`` raw values: the mean, then the lower triangle of L row by
    row, its diagonal through ``softplus + eps`` (positive, so ``Sigma = L L^T`` is positive
    definite). The density uses triangular solves only. Support: y a finite real vector of
    shape (D,). scipy: ``multivariate_normal.logpdf``. Reference: Williams (1996), Cholesky
    parameterisations of covariance in neural networks.
    """
    d = whole_number("mvn_cholesky", "dim", dim, 1)
    rows, cols = np.tril_indices(d)

    def theta(fp, raw):
        loc, entries = split(raw, (d, len(rows)))
        tril = jnp.zeros((d, d), raw.dtype).at[rows, cols].set(entries)
        diagonal = links.softplus.forward(jnp.diagonal(tril))
        return MultivariateNormal(loc, tril - jnp.diag(jnp.diagonal(tril)) + jnp.diag(diagonal))

    return build(spec=Spec("mvn_cholesky", args=(d,)), support=real, theta=theta, raw_shape=(d + len(rows),),
                 event_shape=(d,))
