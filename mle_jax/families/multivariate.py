"""Families for vector targets: y in R^D with a full covariance.

    mj.mvn_cholesky(D)    raw: D means + D(D+1)/2 Cholesky entries (diagonal through softplus)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from .. import links
from ..distributions import MultivariateNormal
from ..distributions.special import HALF_LOG_2PI
from ._arguments import whole_number
from ._family import Family, PerExample, Spec, build, split, unstack
from ._support import real

# up to this dimension the kernel is the unrolled forward substitution (D(D+1)/2 scalar multiply-adds
# per example, fused with the rest); above it the theta's log_prob (a batched triangular solve)
UNROLLED_MAX_DIM = 8


def mvn_cholesky(dim: int) -> Family:
    """Multivariate Normal with a full covariance from a Cholesky link.

    The model emits ``D + D(D+1)/2`` raw values: the mean, then the lower triangle of L row by
    row, its diagonal through ``softplus + eps`` (positive, so ``Sigma = L L^T`` is positive
    definite). The density uses triangular solves only. Support: y a finite real vector of
    shape (D,). scipy: ``multivariate_normal.logpdf``. Reference: Williams (1996), Cholesky
    parameterisations of covariance in neural networks.

    Up to ``D = 8`` the per-example density is the forward substitution written out on the raw
    entries (``_forward_substitution_kernel``), the same divisions and products as LAPACK's solve,
    without building L or calling a batched triangular solve.
    """
    d = whole_number("mvn_cholesky", "dim", dim, 1)
    rows, cols = np.tril_indices(d)

    def theta(fp, raw):
        loc, entries = split(raw, (d, len(rows)))
        tril = jnp.zeros((d, d), raw.dtype).at[rows, cols].set(entries)
        diagonal = links.softplus.forward(jnp.diagonal(tril))
        return MultivariateNormal(loc, tril - jnp.diag(jnp.diagonal(tril)) + jnp.diag(diagonal))

    kernel = _forward_substitution_kernel(d) if d <= UNROLLED_MAX_DIM else None
    return build(spec=Spec("mvn_cholesky", args=(d,)), support=real, theta=theta, raw_shape=(d + len(rows),),
                 event_shape=(d,), kernel=kernel)


def _forward_substitution_kernel(d: int) -> PerExample:
    """``log N(y | mu, L L^T) = -|z|^2 / 2 - sum_i log L_ii - D log(2 pi) / 2`` with
    ``z_i = (y_i - mu_i - sum_{j < i} L_ij z_j) / L_ii`` unrolled over the static ``D``: scalar operations
    on one example's raw entries (row by row, as ``np.tril_indices``), ``L_ii = softplus(raw) + eps``.

    The derivative is written out (``custom_jvp``): with ``w = L^{-T} z`` (back substitution),
    ``d/dmu = w``, ``d/dL_ij = w_i z_j`` below the diagonal, ``d/draw_ii = (w_i z_i - 1 / L_ii) sig(raw_ii)``
    and ``d/dy = -w``, returned as one vector per example (autodiff of the unrolled form would scatter each
    raw entry's gradient into its own (N, P) array). The rule is itself differentiable."""
    rows, cols = np.tril_indices(d)
    where = {(int(i), int(j)): d + m for m, (i, j) in enumerate(zip(rows, cols))}  # raw index of L_ij

    def parts(raw, y):
        """The value, one example's raw entries, ``z = L^{-1} (y - mu)`` and the diagonal ``L_ii``."""
        r, ys = unstack(raw), unstack(y)
        z: list[jax.Array] = []
        diagonal = [links.softplus.forward(r[where[i, i]]) for i in range(d)]
        for i in range(d):
            residual = ys[i] - r[i]
            for j in range(i):
                residual = residual - r[where[i, j]] * z[j]
            z.append(residual / diagonal[i])
        square, log_det = z[0] * z[0], jnp.log(diagonal[0])
        for i in range(1, d):
            square, log_det = square + z[i] * z[i], log_det + jnp.log(diagonal[i])
        value = -0.5 * square - log_det - d * HALF_LOG_2PI
        return value, r, z, diagonal

    @jax.custom_jvp
    def log_density(raw, y):
        return parts(raw, y)[0]

    def log_density_jvp(primals, tangents):
        raw, y = primals
        d_raw, d_y = tangents
        value, r, z, diagonal = parts(raw, y)
        w: list[jax.Array] = list(z)
        for i in reversed(range(d)):  # w = L^{-T} z
            residual = z[i]
            for k in range(i + 1, d):
                residual = residual - r[where[k, i]] * w[k]
            w[i] = residual / diagonal[i]
        tangent = jnp.zeros_like(value)
        if not isinstance(d_raw, SymbolicZero):
            grad = list(w)
            for i, j in zip(rows.tolist(), cols.tolist()):
                grad.append((w[i] * z[i] - 1 / diagonal[i]) * jax.nn.sigmoid(r[where[i, i]]) if i == j
                            else w[i] * z[j])
            tangent = tangent + jnp.sum(jnp.stack(grad) * d_raw)
        if not isinstance(d_y, SymbolicZero):
            tangent = tangent - jnp.sum(jnp.stack(w) * d_y)
        return value, tangent

    log_density.defjvp(log_density_jvp, symbolic_zeros=True)

    def kernel(fp, raw, y):
        return log_density(raw, jnp.asarray(y, raw.dtype))
    return kernel
