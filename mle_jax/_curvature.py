"""The curvature of the summed NLL for ``mle_jax.inference``, in memory linear in the number of examples.

With ``L(v) = -sum_i m_i w_i log Pr(y_i | x_i, v)`` over the flat trained parameters v (k of them):

    hessian     H = grad^2 L(v)
    meat        B = sum_i m_i w_i s_i s_i'         s_i = grad_v log Pr(y_i | x_i, v), the score of example i
    expected    I = sum_i m_i w_i J_i' F(theta_i) J_i    (J_i = d theta_i / d v, F the Fisher information of theta,
                                                      each type's own closed form: registry.fisher)
    diagonal    H_jj for every j                   (Hessian-vector products H e_j)
    columns     (H^-1)_jj for chosen j             (conjugate gradients on H z = e_j)

Each is a sum over examples, so the data are cut into chunks of ``size`` rows (sliced in place; the
last chunk is the last ``size`` rows, those already counted masked out) and a ``lax.scan`` adds one chunk's term at a time
to a k x k (or k) total: memory O(size k + k^2) whatever N is, never the (N, k) score matrix, the
(N, d, k) Jacobian or the N x N Jacobian of the per-example log-likelihoods. The meat weighs each
score by ``w_i``, not ``w_i^2``: weights are frequencies, so a row of weight 3 is three rows, each
adding ``s_i s_i'`` (HC0 on the expanded data).

Every function is pure in ``(v, parts, data)`` (``parts``: ``mle_jax._params.partition`` of the params,
whose trained leaves v replaces), so one jitted copy per recipe serves every call.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from . import models
from ._params import Params
from .distributions import registry

CG_TOL = 1e-12  # conjugate gradients stop at ||H z - e_j|| <= CG_TOL
DENSE_ELEMENTS = 2**18  # a dense chunk's rows times k: its Jacobian (2 MiB in float64) stays in cache for X' W X


class Data(NamedTuple):
    """The examples as the curvature sees them: ``w`` (N,) weights (1 where none were given) and
    ``m`` (N,) a boolean mask (True where none was given)."""

    x: Any
    y: jax.Array
    w: jax.Array
    m: jax.Array


def counted(c: Data) -> Data:
    """The chunk with ``m_i`` False where ``w_i = 0`` as well: a row of weight 0 is dropped as a masked one is, so
    each select below takes its (possibly non-finite: a NaN target, a count of -1 under jit) per-example
    gradient and curvature away, where ``0 * NaN`` would have made H and B NaN."""
    return c._replace(m=c.m & (c.w != 0))


def chunk_sum(term, data: Data, size: int):
    """``sum_c term(chunk_c)`` over the chunks of ``size`` rows: a scan over the chunks, each sliced in
    place (``dynamic_slice``: no padded copy of the data). Where ``size`` does not divide N the last
    chunk is the last ``size`` rows, with the rows an earlier chunk counted masked out: every chunk has
    one shape, so ``term`` is traced and compiled once."""
    n = data.m.shape[0]
    size = min(size, n)
    count = -(-n // size)
    if count == 1:  # one chunk: no scan
        return term(data)
    first = jnp.arange(size)

    def add(total, i):
        start = jnp.minimum(i * size, n - size)  # the last chunk ends at row n
        chunk = jax.tree_util.tree_map(lambda a: jax.lax.dynamic_slice_in_dim(a, start, size), data)
        chunk = chunk._replace(m=chunk.m & (start + first >= i * size))  # rows counted already add nothing
        return jax.tree_util.tree_map(jnp.add, total, term(chunk)), None
    shapes = jax.eval_shape(term, jax.tree_util.tree_map(lambda a: a[:size], data))
    zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    return jax.lax.scan(add, zeros, jnp.arange(count))[0]


def _params_at(parts):
    """``u -> params`` with the trained leaves taken from the flat vector u (ravel_pytree order)."""
    unravel = ravel_pytree(parts.trained)[1]
    return lambda u: parts.replace(trained=unravel(u)).params()


def _nll(recipe, parts):
    """``(u, chunk) -> -sum_i m_i w_i log Pr(y_i | x_i, u)`` over one chunk (the recipe's reduction)."""
    at = _params_at(parts)
    return lambda u, c: recipe.reduce(at(u), c.x, c.y, c.w, c.m)


def hessian(recipe, v, parts, data: Data, *, size: int, masked: bool = True):
    """``H = grad^2 L(v)``, k x k: per chunk the Gauss-Newton split of ``_split`` where the trained
    params are a ``Params`` (model and family) of a recipe whose NLL is its raw outputs' kernels
    (``recipe.raw``), else ``jax.hessian`` (a pytree of params; inference's analytic-weights NLL).
    ``masked=False`` says that every row is counted (neither a mask nor weights were given): a row's design
    then needs no select (a non-finite row makes the loss non-finite anyway), one pass over the chunk fewer."""
    if not _splits(recipe, parts):
        nll = _nll(recipe, parts)
        return chunk_sum(lambda c: jax.hessian(nll)(v, c), data, size)
    family_cols = _family_columns(parts.trained)
    return chunk_sum(lambda c: _split(recipe, v, parts, c, family_cols, hessian=True, meat=False,
                                      masked=masked)[0], data, size)


def meat(recipe, v, parts, data: Data, *, size: int):
    """``B = sum_i m_i w_i s_i s_i'``, k x k; masked rows add 0. Per-example scores from ``_split``'s
    raw-space gradients where it applies, else ``vmap(grad)`` of each example's NLL."""
    if not _splits(recipe, parts):
        return chunk_sum(lambda c: _meat_by_grad(recipe, v, parts, c), data, size)
    family_cols = _family_columns(parts.trained)
    return chunk_sum(lambda c: _split(recipe, v, parts, c, family_cols, hessian=False, meat=True)[1], data, size)


def sandwich(recipe, v, parts, data: Data, *, size: int):
    """``(H, B)``: the Hessian and the meat in one pass over the data (the per-example Jacobian of the
    raw outputs and their gradients computed once for both)."""
    if not _splits(recipe, parts):
        nll = _nll(recipe, parts)
        return chunk_sum(lambda c: (jax.hessian(nll)(v, c), _meat_by_grad(recipe, v, parts, c)), data, size)
    family_cols = _family_columns(parts.trained)
    return chunk_sum(lambda c: _split(recipe, v, parts, c, family_cols, hessian=True, meat=True), data, size)


def _splits(recipe, parts) -> bool:
    """Whether ``_split`` applies: a recipe with raw outputs and ``Params`` (not a bare pytree)."""
    return isinstance(parts.trained, Params) and hasattr(recipe, "raw")


def _family_columns(trained) -> np.ndarray:
    """The flat indices (``ravel_pytree`` order) of the family's trained params (a learned sigma)."""
    flags = [np.full(np.size(a), name == "family") for name, part in zip(trained._fields, trained)
             for a in jax.tree_util.tree_leaves(part)]
    return np.flatnonzero(np.concatenate(flags)) if flags else np.zeros(0, int)


class Kronecker(NamedTuple):
    """Where a ``models.linear`` model's params sit in v: ``pos[a, j]`` is the flat index of the
    coefficient of design column j (the intercept's 1 first where there is one) in raw output
    ``a + first`` (``first`` = 1 with a reference output fixed at 0, else 0)."""

    pos: np.ndarray  # (q, J) ints
    intercept: bool
    first: int


def _kronecker(recipe, parts) -> Kronecker | None:
    """The ``Kronecker`` layout where the recipe's model is an ``apply`` made by ``mj.models.linear``
    (the model says so: ``models.linear_form``) and its trained params are exactly its ``w`` (and
    ``b``) at their shapes; None otherwise (any other model, a frozen ``b``, a batched recipe)."""
    form = models.linear_form(recipe.model)
    if form is None or recipe.batched or recipe.takes_key or recipe.stateful:
        return None
    want = {"w": (form.d, *form.raw_shape), **({"b": form.raw_shape} if form.intercept else {})}
    model = parts.trained.model
    if (not isinstance(model, dict) or set(model) != set(want)
            or any(model[name] is None or tuple(np.shape(model[name])) != shape for name, shape in want.items())):
        return None
    q = int(np.prod(form.raw_shape, dtype=int))
    if int(np.prod(recipe.family.raw_shape, dtype=int)) != q + form.reference:
        return None
    leaves, treedef = jax.tree_util.tree_flatten(parts.trained)  # ravel_pytree's order
    offsets = np.cumsum([0] + [int(np.size(a)) for a in leaves])
    index = jax.tree_util.tree_unflatten(treedef, [np.arange(o, o + np.size(a)).reshape(np.shape(a))
                                                   for o, a in zip(offsets, leaves)]).model
    cols = [index["b"].reshape(q, 1)] if form.intercept else []
    pos = np.concatenate(cols + [index["w"].reshape(form.d, q).T], axis=1)
    return Kronecker(pos, form.intercept, int(form.reference))


def _design(kron: Kronecker, x, dtype):
    """``(1, x_i')`` per row (``x_i'`` without an intercept), (n, J) in ``dtype``."""
    x = jnp.asarray(x, dtype)
    return jnp.concatenate([jnp.ones((x.shape[0], 1), dtype), x], axis=1) if kron.intercept else x


def _kronecker_gram(kron: Kronecker, xt, weighted, k: int):
    """``sum_i J_i' C_i J_i`` (k x k, zero on the columns not in ``kron.pos``) for ``J_i = I_q (x) xt_i``:
    block (a, b) is ``X' diag(C[:, a, b]) X``, one Gram per pair a <= b (C symmetric), all from one
    contraction over the rows of ``[C_p x_i]_p`` (n, P, J) with X (measured 30% faster on XLA:CPU than
    ``X' [C_p x_i']_p`` as one (J, n) x (n, P J) product); the block of (b, a) is the same Gram."""
    q, cols = kron.pos.shape
    first = kron.first
    upper_a, upper_b = np.triu_indices(q)
    pair = np.zeros((q, q), int)
    pair[upper_a, upper_b] = pair[upper_b, upper_a] = np.arange(upper_a.size)
    c = weighted[:, first + upper_a, first + upper_b]  # (n, P): u_i C_i[a, b] for a <= b
    grams = jax.lax.dot_general(c[:, :, None] * xt[:, None, :], xt, (((0,), (0,)), ((), ())))  # (P, J, J)
    blocks = jnp.transpose(grams[pair], (0, 2, 1, 3)).reshape(q * cols, q * cols)  # [(a, j), (b, l)]
    flat = kron.pos.reshape(-1)
    return jnp.zeros((k, k), blocks.dtype).at[flat[:, None], flat[None, :]].set(blocks)


def _scalar_gram(kron: Kronecker, x, weights, live, k: int, extra=None, roots: tuple[int, ...] = ()):
    """``sum_i c_i xt_i xt_i'`` (k x k, zero off ``kron.pos``) for one raw output (q = 1), ``xt_i = (1, x_i')``,
    for each column c of ``weights`` (n, p; 0 on rows not counted; the Hessian's ``u_i C_i`` and the meat's
    ``u_i g_i^2``): ``X' diag(c) X`` by ``_grams``, the intercept's row ``sum_i c_i x_i`` and corner
    ``sum_i c_i`` by fused reductions, so the design with its column of ones is never formed
    (``_kronecker_gram`` forms it). ``live`` (n,) masks the rows of x (None: every row of x is counted or
    finite, so ``0 * x_i`` is 0). With ``extra`` (n, e), also ``sum_i extra_i xt_i'`` (e, J; 0 where not
    counted; then ``weights`` is the Hessian's one column, and both come from one contraction over the rows, which
    reads x once): ``(grams (p, k, k), cross or None)``."""
    x = jnp.asarray(x, weights.dtype)
    if live is not None:
        x = jnp.where(live[:, None], x, 0.0)
    p, d = weights.shape[1], x.shape[1]
    cross = None
    if extra is None:
        grams = _grams(x, weights, roots)
    else:  # the Hessian's one column and the family's cross terms (e, J): one contraction over the rows
        both = jax.lax.dot_general(jnp.concatenate([weights * x, extra], axis=1), x, (((0,), (0,)), ((), ())))
        grams, cross = both[None, :d], both[d:]
        if kron.intercept:
            cross = jnp.concatenate([jnp.sum(extra, axis=0)[:, None], cross], axis=1)
    if kron.intercept:
        rows = jnp.sum(weights[:, :, None] * x[:, None, :], axis=0).reshape(p, 1, d)
        corner = jnp.sum(weights, axis=0).reshape(p, 1, 1)
        grams = jnp.concatenate([jnp.concatenate([corner, rows], axis=2),
                                 jnp.concatenate([jnp.swapaxes(rows, 1, 2), grams], axis=2)], axis=1)
    flat = kron.pos.reshape(-1)
    return jnp.zeros((p, k, k), grams.dtype).at[:, flat[:, None], flat[None, :]].set(grams), cross


def _grams(x, weights, roots: tuple[int, ...] = ()):
    """``sum_i c_i x_i x_i'`` (p, d, d) for each column c of ``weights`` (n, p), x (n, d): one symmetric product
    over the rows each (``_symmetric``). The columns in ``roots`` (static: those whose weights are >= 0 or NaN by
    construction, the meat's ``u_i g_i^2``) as ``Z' Z`` with ``Z = sqrt(c) x`` (one scaled copy of the chunk, the
    same operand on both sides: 9% faster on XLA:CPU than ``(c x)' x``, which also reads x); the others (the
    Hessian's ``u_i C_i``, negative for a family that is not log-concave) as ``(c x)' x``. The choice is static,
    not a ``lax.cond`` on the weights' signs, which ``vmap`` (a simulation study's vmapped inference) turns into
    both products and a select."""
    def gram(j):
        c = weights[:, j, None]
        if j in roots:
            z = jnp.sqrt(c) * x
            return _symmetric(z, z)
        return _symmetric(c * x, x)
    return jnp.stack([gram(j) for j in range(weights.shape[1])])


SPLIT_COLUMNS = 64  # a Gram of at least this many columns is computed as its upper block triangle


def _symmetric(a, b):
    """``a' b`` (d, d) for a (n, d) and b (n, d) whose product is symmetric (``a = c x, b = x`` or ``a = b = z``).
    From d = ``SPLIT_COLUMNS`` on, only its upper block triangle is multiplied: with the columns cut at h = d / 2,

        a' b = [[G11, G12], [G12', G22]],   [G11 G12] = a[:, :h]' b  (h, d),   G22 = a[:, h:]' b[:, h:],

    3/4 of the multiply-adds of the whole product (XLA has no ``syrk``, BLAS's symmetric rank-k update, which
    does half). Both products read the operands transposed, (d, n), so that each block is a contiguous run of
    rows: cut along the columns of the (n, d) layout instead, the blocks were strided copies and no faster
    than the whole product. Measured on XLA:CPU at d = 101 (chunks of 2^18 elements): 0.76 of the whole
    product's CPU time (d = 64: 0.86, d = 200: 0.79; d = 41: 1.1, hence the threshold); cut into 3 or 4 blocks,
    no faster than 2. The same sums in another order: equal to ``a' b`` to rounding."""
    d = a.shape[1]
    if d < SPLIT_COLUMNS:
        return jax.lax.dot_general(a, b, (((0,), (0,)), ((), ())))
    h = d // 2
    at, bt = a.T, b.T

    def product(p, q):
        return jax.lax.dot_general(p, q, (((1,), (1,)), ((), ())))
    top = product(at[:h], bt)  # (h, d): [G11 G12]
    low = product(at[h:], bt[h:])  # (d - h, d - h): G22
    return jnp.concatenate([top, jnp.concatenate([top[:, h:].T, low], axis=1)], axis=0)


def _split(recipe, v, parts, c: Data, family_cols, *, hessian: bool, meat: bool, masked: bool = True):
    """One chunk's ``(H or None, B or None)`` from one pass over its examples. With z_i the model's raw
    outputs (r per example), ``l_i(f, z_i)`` example i's NLL given them (f: the family's params),
    ``g_i = dl_i/dz_i`` (r), ``C_i = d^2 l_i/dz_i^2`` (r x r), ``J_i = dz_i/dv`` (r x k, by reverse
    mode per example) and ``u_i = m_i w_i``:

        H = sum_i u_i J_i' C_i J_i  +  grad^2_v sum_i u_i g_i' z_i(v)  (g_i held fixed)
        B = sum_i u_i s_i s_i'      s_i = J_i' g_i + dl_i/df          (the score, up to its sign)

    on the model's columns; the family's columns (and rows) of H are Hessian-vector products of the
    chunk's NLL. The first term of H and B are one matrix product each over the stacked rows
    (``X' W X`` and ``S' U S`` for a GLM); for a model linear in its params the second term is a
    symbolic zero, so a GLM's Hessian costs one product instead of forward-over-reverse ``jax.hessian``'s
    k passes. Exact for any model. For a ``models.linear`` model (``_kronecker``) the Jacobian is not
    formed: ``J_i = I_q (x) (1, x_i')``, the first term is ``q (q + 1) / 2`` weighted Grams
    (``_kronecker_gram``: ``N J^2 q (q + 1) / 2`` multiply-adds against the dense ``N r k^2`` with k = qJ),
    the second is exactly zero, and the score is ``g_i (x) (1, x_i')``. With one raw output and no family
    parameter (a GLM) the score is ``g_i J_i``, so B is a Gram like H's first term, ``sum_i u_i g_i^2 J_i' J_i``:
    both come from ``_grams`` (the meat's as ``Z' Z`` with ``Z = sqrt(u g^2) J``), no score matrix."""
    at = _params_at(parts)
    k, family = v.size, recipe.family
    fam = at(v).family
    c = counted(c)

    def raw(u, x):
        return recipe.raw(at(u), x)[0]

    z = raw(v, c.x)
    n, shape = z.shape[0], z.shape[1:]
    r = int(np.prod(shape, dtype=int))
    flat = z.reshape(n, r)

    def loss(f, z_i, y_i):  # one example's NLL given its raw outputs (flat): -(a k_i + b), Density's affine
        return -family.log_prob(f, z_i.reshape(shape), y_i)

    def slope_curvature(z_i, y_i):  # (g_i, C_i): the gradient and (by forward over reverse) the Hessian in z_i
        slope = functools.partial(jax.grad(loss, argnums=1), fam, y_i=y_i)
        g, curv = jax.vmap(lambda e: jax.jvp(slope, (z_i,), (e,)))(jnp.eye(r, dtype=z.dtype))
        return g[0], curv
    g, curv = jax.vmap(slope_curvature)(flat, c.y)  # (n, r), (n, r, r)
    live = c.m[:, None]
    g, u = jnp.where(live, g, 0.0), jnp.where(c.m, c.w, 0.0)  # a masked row adds nothing, even a NaN
    kron = _kronecker(recipe, parts)
    if kron is not None:  # a models.linear model: J_i = I_q (x) (1, x_i'), never formed
        q = kron.pos.shape[0]

        def design():
            return jnp.where(live, _design(kron, c.x, z.dtype), 0.0)

        def gauss_newton_kron(weighted):  # linear in v: the second term is exactly 0
            return _kronecker_gram(kron, design(), weighted, k)

        def grams_kron(weights, roots):  # q = 1: the Grams of one output, (p, k, k)
            return _scalar_gram(kron, c.x, weights, c.m if masked else None, k, roots=roots)[0]

        def second_kron():
            return 0.0

        def scores_kron():  # J_i' g_i = g_i (x) (1, x_i'), placed at kron.pos
            outer = (g[:, kron.first:kron.first + q, None] * design()[:, None, :]).reshape(n, -1)
            return jnp.zeros((n, k), outer.dtype).at[:, kron.pos.reshape(-1)].set(outer)
        gauss_newton, model_scores, grams_of, second = gauss_newton_kron, scores_kron, grams_kron, second_kron
    else:
        one = jax.tree_util.Partial(jax.tree_util.tree_map, lambda a: a[None])
        jac = jax.vmap(lambda x_i: jax.jacrev(lambda w: raw(w, one(x_i))[0])(v))(c.x).reshape(n, r, k)
        jac = jnp.where(live[:, :, None], jac, 0.0)

        def second_dense():  # grad^2_v sum_i u_i g_i' z_i(v): a symbolic zero for a model linear in v
            fixed = jax.lax.stop_gradient(u[:, None] * g)
            return jax.hessian(lambda w: jnp.vdot(fixed, raw(w, c.x).reshape(n, r)))(v)

        def gauss_newton_dense(weighted):
            wj = weighted[:, :, 0, None] * jac if r == 1 else jnp.einsum("nab,nbk->nak", weighted, jac)
            h = jac.reshape(n * r, k).T @ wj.reshape(n * r, k)  # sum_i u_i J_i' C_i J_i: one matrix product
            return h + second_dense()

        def grams_dense(weights, roots):  # r = 1: sum_i c_i J_i' J_i for each column c, (p, k, k)
            return _grams(jac[:, 0], weights, roots)

        def scores_dense():  # J_i' g_i, (n, k)
            return g[:, 0, None] * jac[:, 0] if r == 1 else jnp.einsum("nr,nrk->nk", g, jac)
        gauss_newton, model_scores, grams_of, second = gauss_newton_dense, scores_dense, grams_dense, second_dense
    if not family_cols.size and (r == 1 if kron is None else kron.pos.shape[0] == 1):  # one output, no family params
        a = 0 if kron is None else kron.first  # s_i = g_ia J_i: B = sum_i u_i g_ia^2 J_i' J_i, a Gram like H's
        weights = jnp.stack(([u * jnp.where(c.m, curv[:, a, a], 0.0)] if hessian else [])
                            + ([u * g[:, a] ** 2] if meat else []), axis=1)  # (n, 1 or 2): the Grams' weights
        grams = grams_of(weights, (weights.shape[1] - 1,) if meat else ())  # the meat's u g^2 >= 0: by roots
        h = None
        if hessian:
            h = grams[0] + second()
            h = 0.5 * (h + h.T)
        return h, (grams[-1] if meat else None)
    h = b = None
    if hessian:
        weighted = u[:, None, None] * jnp.where(live[:, :, None], curv, 0.0)
        if family_cols.size and kron is not None and kron.pos.shape[0] == 1:  # cross terms in the Gram's contraction
            mixed, own = _family_second(loss, at, v, family_cols, flat, c.y)
            mixed = u[:, None] * jnp.where(live, mixed[:, kron.first], 0.0)  # (n, f): u_i d2 l_i / dz_i df
            grams, cross = _scalar_gram(kron, c.x, weighted[:, kron.first, kron.first, None],
                                        c.m if masked else None, k, mixed)
            h = grams[0]
            rows = (jnp.zeros((family_cols.size, k), h.dtype).at[:, kron.pos[0]].set(cross)
                    .at[:, family_cols].set(jnp.sum(u[:, None, None] * jnp.where(live[:, :, None], own, 0.0), axis=0)))
            h = h.at[family_cols, :].set(rows).at[:, family_cols].set(rows.T)
        else:
            h = gauss_newton(weighted)
            if family_cols.size:  # the family's rows by Hessian-vector products of the chunk's NLL
                nll = _nll(recipe, parts)
                cols = jax.vmap(lambda j: _hvp(nll, v, c, _unit(k, j).astype(v.dtype)))(jnp.asarray(family_cols))
                h = h.at[family_cols, :].set(cols).at[:, family_cols].set(cols.T)
        h = 0.5 * (h + h.T)
    if meat:
        scores = model_scores()
        if family_cols.size:  # dl_i/df at the raw outputs (which do not depend on f), in v's columns
            own = jax.vmap(jax.grad(lambda w, z_i, y_i: loss(at(w).family, z_i, y_i)), in_axes=(None, 0, 0))
            scores = scores + jnp.where(live, own(v, jax.lax.stop_gradient(flat), c.y), 0.0)
        b = scores.T @ (u[:, None] * scores)
    return h, b


def _family_second(loss, at, v, family_cols, flat, y):
    """Each example's second derivatives in the family's trained params f (their flat entries
    ``v[family_cols]``, e of them): ``(d2 l_i / dz_i df (n, r, e), d2 l_i / df2 (n, e, e))`` at the raw
    outputs ``flat`` (n, r), by forward over reverse of one example's NLL (elementwise: no pass over x).
    With them the family's rows of H are ``sum_i u_i J_i' d2 l_i / dz_i df`` and ``sum_i u_i d2 l_i / df2``
    (exact for a model linear in v), in place of Hessian-vector products of the whole NLL."""
    cols = jnp.asarray(family_cols)

    def one(f, z_i, y_i):  # z_i flat (r,): loss reshapes it
        return loss(at(v.at[cols].set(f)).family, z_i, y_i)

    def both(z_i, y_i):
        f = v[cols]
        return (jax.jacfwd(jax.grad(one, argnums=1), argnums=0)(f, z_i, y_i),
                jax.hessian(one, argnums=0)(f, z_i, y_i))
    return jax.vmap(both)(flat, y)


def _meat_by_grad(recipe, v, parts, c: Data):
    """One chunk's ``sum_i m_i w_i s_i s_i'`` from per-example scores ``vmap(grad)`` of the recipe's
    own reduction on one example (any recipe: inference's analytic-weights NLL)."""
    at = _params_at(parts)
    c = counted(c)

    def log_lik(u, x_i, y_i):
        one = jax.tree_util.Partial(jax.tree_util.tree_map, lambda a: a[None])
        return -recipe.reduce(at(u), one(x_i), one(y_i))

    scores = jax.vmap(jax.grad(log_lik), in_axes=(None, 0, 0))(v, c.x, c.y)  # (size, k)
    scores = jnp.where(c.m[:, None], scores, 0.0)  # a masked row's score may be non-finite
    return scores.T @ (jnp.where(c.m, c.w, 0.0)[:, None] * scores)


def expected_information(recipe, v, parts, data: Data, *, size: int):
    """``I = sum_i m_i w_i J_i' F(theta_i) J_i`` with ``J_i = d theta_i / d v`` (jacfwd through predict)."""
    at = _params_at(parts)

    def term(c):
        c = counted(c)

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
