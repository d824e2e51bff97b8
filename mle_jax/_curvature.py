"""The curvature of the summed NLL for ``mle_jax.inference``, in memory linear in the number of examples.

With ``L(v) = -sum_i m_i w_i log Pr(y_i | x_i, v)`` over the flat trained parameters v (k of them):

    hessian     H = grad^2 L(v)
    meat        B = sum_i m_i w_i s_i s_i'         s_i = grad_v log Pr(y_i | x_i, v), the score of example i
    expected    I = sum_i m_i w_i J_i' F(theta_i) J_i    (J_i = d theta_i / d v, F the Fisher information of theta,
                                                      each type's own closed form: registry.fisher)
    diagonal    H_jj for every j                   (Hessian-vector products H e_j)
    columns     (H^-1)_jj for chosen j             (conjugate gradients on H z = e_j)

Each is a sum over examples, so the data are cut into chunks of ``size`` rows (sliced in place; the
rows after the last whole chunk are one more call) and a ``lax.scan`` adds one chunk's term at a time
to a k x k (or k) total: memory O(size k + k^2) whatever N is, never the (N, k) score matrix, the
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

from ._params import Params
from ._reductions import reduce_terms
from .distributions import registry

CG_TOL = 1e-12  # conjugate gradients stop at ||H z - e_j|| <= CG_TOL


class Data(NamedTuple):
    """The examples as the curvature sees them: ``w`` (N,) weights (1 where none were given) and
    ``m`` (N,) a boolean mask (True where none was given)."""

    x: Any
    y: jax.Array
    w: jax.Array
    m: jax.Array


def chunk_sum(term, data: Data, size: int):
    """``sum_c term(chunk_c)`` over the chunks of ``size`` rows: a scan over the whole chunks, each
    sliced in place (``dynamic_slice``: no padded copy of the data), plus one call on the rest."""
    n = data.m.shape[0]
    count, rest = divmod(n, size)
    if count <= 1 and rest == 0:  # one chunk: no scan
        return term(data)

    def rows(start, length):
        return jax.tree_util.tree_map(lambda a: jax.lax.dynamic_slice_in_dim(a, start, length), data)
    total = None
    if count > 0:
        first = rows(0, size)
        zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(term, first))

        def add(total, i):
            return jax.tree_util.tree_map(jnp.add, total, term(rows(i * size, size))), None
        total = jax.lax.scan(add, zeros, jnp.arange(count))[0]
    if rest:
        tail = jax.tree_util.tree_map(lambda a: a[count * size:], data)
        total = term(tail) if total is None else jax.tree_util.tree_map(jnp.add, total, term(tail))
    assert total is not None  # n >= 1 rows: a whole chunk or a rest
    return total


def _params_at(parts):
    """``u -> params`` with the trained leaves taken from the flat vector u (ravel_pytree order)."""
    unravel = ravel_pytree(parts.trained)[1]
    return lambda u: parts.replace(trained=unravel(u)).params()


def _nll(recipe, parts):
    """``(u, chunk) -> -sum_i m_i w_i log Pr(y_i | x_i, u)`` over one chunk (the recipe's reduction)."""
    at = _params_at(parts)
    return lambda u, c: recipe.reduce(at(u), c.x, c.y, c.w, c.m)


def hessian(recipe, v, parts, data: Data, *, size: int):
    """``H = grad^2 L(v)``, k x k: per chunk the Gauss-Newton split of ``_split_hessian`` where the
    trained params are a ``Params`` (model and family) of a recipe whose NLL is its raw outputs'
    kernels (``recipe.raw``), else ``jax.hessian`` (a pytree of params; inference's analytic-weights NLL)."""
    if not isinstance(parts.trained, Params) or not hasattr(recipe, "raw"):
        nll = _nll(recipe, parts)
        return chunk_sum(lambda c: jax.hessian(nll)(v, c), data, size)
    family_cols = _family_columns(parts.trained)
    return chunk_sum(lambda c: _split_hessian(recipe, v, parts, c, family_cols), data, size)


def _family_columns(trained) -> np.ndarray:
    """The flat indices (``ravel_pytree`` order) of the family's trained params (a learned sigma)."""
    flags = [np.full(np.size(a), name == "family") for name, part in zip(trained._fields, trained)
             for a in jax.tree_util.tree_leaves(part)]
    return np.flatnonzero(np.concatenate(flags)) if flags else np.zeros(0, int)


def _split_hessian(recipe, v, parts, c: Data, family_cols):
    """One chunk's Hessian with ``L(v) = G(v, z(v))``, z the model's raw outputs (N x r) and G the
    NLL given them (which depends on v only through the family's params):

        H = sum_i J_i' (d^2 G / dz_i^2) J_i  +  grad^2_v sum_i c_i' z_i(v)  (c_i = dG/dz_i held fixed)

    on the model's columns (J_i = dz_i/dv by reverse mode, per example); the family's columns (and
    rows) are Hessian-vector products of L itself. For a model linear in its params (a GLM) the
    second term is a symbolic zero, so H costs one ``X' W X`` product instead of the two matrix
    products of forward-over-reverse ``jax.hessian`` (half the time); for others it is exact too."""
    at = _params_at(parts)
    k = v.size

    def raw(u, x):
        return recipe.raw(at(u), x)[0]

    def nll_given(u, z):  # recipe.objective's "nll" with the raw outputs given
        p = at(u)
        kernels = jax.vmap(recipe.family.kernel, in_axes=(None, 0, 0))(p.family, z, c.y)
        return -reduce_terms(kernels, c.w, c.m, "sum", recipe.family.affine(p.family))

    z = raw(v, c.x)
    n, r = z.shape[0], int(np.prod(z.shape[1:], dtype=int))
    one = jax.tree_util.Partial(jax.tree_util.tree_map, lambda a: a[None])
    jac = jax.vmap(lambda x_i: jax.jacrev(lambda u: raw(u, one(x_i))[0])(v))(c.x).reshape(n, r, k)
    jac = jnp.where(c.m[:, None, None], jac, 0.0)  # a masked row adds nothing, whatever its x
    dz = jax.grad(nll_given, argnums=1)(v, z)
    units = jnp.eye(r, dtype=z.dtype)
    curv = jax.vmap(lambda e: jax.jvp(lambda z: jax.grad(nll_given, argnums=1)(v, z), (z,),
                                      (jnp.broadcast_to(e.reshape(z.shape[1:]), z.shape),))[1].reshape(n, r))(units)
    # curv[a, i, b] = d^2 G / dz_ia dz_ib (G is a sum over examples: its z-Hessian is block diagonal)
    wj = jnp.einsum("aib,ibq->iaq", curv, jac)
    h = jac.reshape(n * r, k).T @ wj.reshape(n * r, k)  # sum_i J_i' (d^2 G / dz_i^2) J_i: one matrix product
    fixed = jax.lax.stop_gradient(dz)
    h = h + jax.hessian(lambda u: jnp.vdot(fixed, raw(u, c.x)))(v)
    if family_cols.size:
        nll = _nll(recipe, parts)
        cols = jax.vmap(lambda j: _hvp(nll, v, c, _unit(k, j).astype(v.dtype)))(jnp.asarray(family_cols))
        h = h.at[family_cols, :].set(cols).at[:, family_cols].set(cols.T)
    return 0.5 * (h + h.T)


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
