"""The curvature of the summed NLL for ``mle_jax.inference``, in memory linear in the number of examples.

With ``L(v) = -sum_i m_i w_i log Pr(y_i | x_i, v)`` over the flat trained parameters v (k of them):

    hessian     H = grad^2 L(v)
    meat        B = sum_i m_i w_i s_i s_i'         s_i = grad_v log Pr(y_i | x_i, v), the score of example i
    expected    I = sum_i m_i w_i J_i' F(theta_i) J_i    (J_i = d theta_i / d v, F the Fisher information of theta,
                                                      each type's own closed form: registry.fisher)
    diagonal    H_jj for every j                   (Hessian-vector products H e_j)
    columns     (H^-1)_jj for chosen j             (conjugate gradients on H z = e_j)

Each is a sum over examples, so the data are cut into chunks of ``size`` rows (the last one padded
with masked-out copies of the first row) and a ``lax.scan`` adds one chunk's term at a time to a
k x k (or k) total: memory O(size k + k^2) whatever N is, never the (N, k) score matrix, the
(N, d, k) Jacobian or the N x N Jacobian of the per-example log-likelihoods. The meat weighs each
score by ``w_i``, not ``w_i^2``: weights are frequencies, so a row of weight 3 is three rows, each
adding ``s_i s_i'`` (HC0 on the expanded data).

Every function is pure in ``(v, parts, data)`` (``parts``: ``mle_jax._params.partition`` of the params,
whose trained leaves v replaces), so one jitted copy per recipe serves every call.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .distributions import registry

CG_TOL = 1e-12  # conjugate gradients stop at ||H z - e_j|| <= CG_TOL


class Data(NamedTuple):
    """The examples as the curvature sees them: ``w`` (N,) weights (1 where none were given) and
    ``m`` (N,) a boolean mask (True where none was given)."""

    x: Any
    y: jax.Array
    w: jax.Array
    m: jax.Array


def chunked(data: Data, size: int) -> Data:
    """``data`` as ``(count, size, ...)`` chunks; the rows that pad the last chunk copy the first row
    (values on the support) and are masked out."""
    n = data.m.shape[0]
    count = -(-n // size)
    pad = count * size - n

    def rows(a, fill=None):
        a = jnp.asarray(a)
        extra = jnp.broadcast_to(a[:1] if fill is None else fill, (pad,) + a.shape[1:])
        return jnp.concatenate([a, extra.astype(a.dtype)]).reshape((count, size) + a.shape[1:])
    x, y, w = jax.tree_util.tree_map(rows, (data.x, data.y, data.w))
    return Data(x, y, w, rows(data.m, jnp.zeros((), bool)))


def chunk_sum(term, data: Data, size: int):
    """``sum_c term(chunk_c)`` over the chunks of ``size`` rows, by a scan."""
    if data.m.shape[0] == size:  # one chunk: no scan
        return term(data)
    chunks = chunked(data, size)
    first = jax.tree_util.tree_map(lambda a: a[0], chunks)
    zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(term, first))

    def add(total, chunk):
        return jax.tree_util.tree_map(jnp.add, total, term(chunk)), None
    return jax.lax.scan(add, zeros, chunks)[0]


def _params_at(parts):
    """``u -> params`` with the trained leaves taken from the flat vector u (ravel_pytree order)."""
    unravel = ravel_pytree(parts.trained)[1]
    return lambda u: parts.replace(trained=unravel(u)).params()


def _nll(recipe, parts):
    """``(u, chunk) -> -sum_i m_i w_i log Pr(y_i | x_i, u)`` over one chunk (the recipe's reduction)."""
    at = _params_at(parts)
    return lambda u, c: recipe.reduce(at(u), c.x, c.y, c.w, c.m)


def hessian(recipe, v, parts, data: Data, *, size: int):
    """``H = grad^2 L(v)``, k x k."""
    nll = _nll(recipe, parts)
    return chunk_sum(lambda c: jax.hessian(nll)(v, c), data, size)


def meat(recipe, v, parts, data: Data, *, size: int):
    """``B = sum_i m_i w_i s_i s_i'`` from per-example scores ``vmap(grad)``; masked rows add 0."""
    at = _params_at(parts)

    def log_lik(u, x_i, y_i):  # the recipe's own reduction on one example
        one = jax.tree_util.Partial(jax.tree_util.tree_map, lambda a: a[None])
        return -recipe.reduce(at(u), one(x_i), one(y_i))

    def term(c):
        scores = jax.vmap(jax.grad(log_lik), in_axes=(None, 0, 0))(v, c.x, c.y)  # (size, k)
        scores = jnp.where(c.m[:, None], scores, 0.0)  # a masked row's score may be non-finite
        return scores.T @ (jnp.where(c.m, c.w, 0.0)[:, None] * scores)
    return chunk_sum(term, data, size)


def expected_information(recipe, v, parts, data: Data, *, size: int):
    """``I = sum_i m_i w_i J_i' F(theta_i) J_i`` with ``J_i = d theta_i / d v`` (jacfwd through predict)."""
    at = _params_at(parts)

    def term(c):
        def flat_thetas(u):
            return jax.vmap(lambda t: ravel_pytree(t)[0])(recipe.predict(at(u), c.x))

        jac = jax.jacfwd(flat_thetas)(v)  # (size, d, k)
        fisher = jax.vmap(registry.fisher)(recipe.predict(at(v), c.x))  # (size, d, d)
        w = jnp.where(c.m, c.w, 0.0)
        fisher = jnp.where(c.m[:, None, None], fisher, 0.0)
        return jnp.einsum("n,nda,nde,neb->ab", w, jac, fisher, jac)
    return chunk_sum(term, data, size)


def _hvp(nll, v, c, t):
    """``H_c t`` for one chunk's NLL by forward-over-reverse differentiation."""
    return jax.jvp(lambda u: jax.grad(nll)(u, c), (v,), (t,))[1]


def _unit(k, j):
    return jnp.zeros(k, jnp.float64).at[j].set(1.0)


def hessian_diagonal(recipe, v, parts, data: Data, *, size: int, batch: int):
    """``H_jj = (H e_j)_j`` for every j: k Hessian-vector products, ``batch`` at a time."""
    nll, k = _nll(recipe, parts), v.size

    def term(c):
        return jax.lax.map(lambda j: _hvp(nll, v, c, _unit(k, j))[j], jnp.arange(k), batch_size=batch)
    return chunk_sum(term, data, size)


def inverse_diagonal(recipe, v, parts, data: Data, js, *, size: int, batch: int):
    """``((H^-1)_jj, ||z|| ||H z - e_j||)`` for each j in ``js``: z solves ``H z = e_j`` by conjugate
    gradients (Hessian-vector products only). The second value bounds the error of ``z_j``
    (``(H^-1)_jj = z_j - z'r + O(r^2)`` with ``r = H z - e_j``); it is large or NaN where CG did not
    converge (H singular or indefinite along e_j)."""
    nll, k = _nll(recipe, parts), v.size

    def apply(t):
        return chunk_sum(lambda c: _hvp(nll, v, c, t), data, size)

    def column(j):
        e = _unit(k, j)
        z, _ = jax.scipy.sparse.linalg.cg(apply, e, tol=CG_TOL, maxiter=10 * k)
        return z[j], jnp.linalg.norm(z) * jnp.linalg.norm(apply(z) - e)
    return jax.lax.map(column, js, batch_size=batch)


def singular_tol(eig) -> float:
    """The numerical rank's threshold for ascending eigenvalues ``eig`` of a symmetric matrix: 1e-10 of
    the largest (a matrix of zeros has rank 0)."""
    return 1e-10 * max(abs(float(eig[-1])), float(np.finfo(np.float64).tiny))
