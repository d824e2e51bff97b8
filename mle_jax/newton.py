"""Newton's method for ``fit``: the exact Hessian, a Cholesky solve and optax's line search.

    H_t = grad^2 L(phi_t)                        forward-over-reverse (``jax.linearize`` of the gradient)
    d_t = -(H_t + lambda_t diag(H_t))^{-1} g_t   one Cholesky factorisation; lambda_t = 0 where H_t is
                                                 positive definite, else the smallest Marquardt damping
                                                 that makes it so (and -g_t where none does)
    phi_{t+1} = phi_t + eta_t d_t                eta_t from optax's backtracking (Armijo) line search,
                                                 1 first: near the optimum every step is a full step

Affine invariant: the iterates for the design ``X A`` are those for ``X`` mapped by ``A^-1`` (up to
rounding), so unscaled covariates (a design with a condition number of 1e6-1e10 from columns on
scales far apart) cost Newton nothing, where a first-order or quasi-Newton method (optax's L-BFGS
from a gradient of wildly different scales) stalls short of the optimum. The damping
``lambda diag(H)`` keeps that invariance under column scaling, and Cholesky's rounding error depends
only on the diagonally scaled condition number (van der Sluis), so column scales far apart do not
break the factorisation either. Convergence is quadratic near the optimum: a GLM reaches the MLE to
the last digits of float64 in 5-10 steps, each costing one Hessian, ``O(N k^2)`` time and ``O(N k)``
memory for k parameters (the tangents of the Hessian are taken ``batch_size`` at a time when given:
``O(N batch_size)``), and ``O(k^3)`` for the factorisation.

Inside ``mj.fit`` (and ``mj.solver``), where the loss is the recipe's NLL and the params are a recipe's
``Params`` on a full batch, the Hessian is assembled from the model's raw outputs instead
(``mle_jax._curvature.hessian``, the split that ``mj.inference`` uses): with z_i the raw outputs,
``C_i = d^2 l_i / dz_i^2`` each example's curvature in them and ``J_i = dz_i/dphi``,

    H = (sum_i u_i J_i' C_i J_i + grad^2 sum_i u_i g_i' z_i) / normaliser     (u_i = m_i w_i)

one ``X' W X`` product per chunk of rows for a GLM (the second term a symbolic zero for a linear
model; for a ``mj.models.linear`` model with q raw outputs, such as a multinomial, q (q + 1) / 2 weighted
Grams ``X' diag(u C[a, b]) X`` and no Jacobian), the family's own parameters (a learned shape) by Hessian-vector products, and the
normaliser ``sum_i u_i`` for the default ``"mean"`` objective (1 for ``"sum"``). It is the same
matrix to rounding, but the per-example work is done once, not once per tangent. ``fit`` passes it
as the extra argument ``hessian_fn`` (``curvature="auto"``, the default); ``curvature="hvp"`` keeps
forward-over-reverse everywhere. The line search stores the value and gradient at the point it
accepts (``store_grad``), which ``fit`` reads back (``optax.value_and_grad_from_state``) instead of
evaluating them again: a step costs one Hessian, one value and gradient, and one value per halving.

Fisher scoring is the same step with the expected information in place of H; for a canonical link
(the logistic, multinomial, Poisson and binomial GLMs) the two coincide, so Newton IS Fisher scoring
(statsmodels' IRLS). With another link (the log-link Gamma and negative binomial) the observed H is
used: positive definite at the optimum, damped where it is not on the way.

When to pick it: few parameters (k up to a few hundred) and a full batch (the Hessian of a
minibatch is not the Hessian); otherwise ``optax.lbfgs()``. scipy: ``minimize(method="Newton-CG")``
(with a CG solve), statsmodels' ``fit(method="newton")``. Reference: Nocedal and Wright, *Numerical
Optimization* (2006), sections 3.1 (backtracking), 3.4 (Newton with Hessian modification).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from . import _curvature
from ._reductions import weights_as

DAMPING_START = 1e-8  # the first Marquardt damping tried where H is not positive definite ...
DAMPING_TRIES = 12    # ... then x100 each time (up to 1e14, i.e. a scaled gradient step), then -g
HESSIAN_FN = "hessian_fn"  # the extra argument by which fit hands an optimizer the objective's Hessian
CURVATURES = ("auto", "hvp")


class ScaleByNewtonState(NamedTuple):
    """The last step's Marquardt damping (0: a pure Newton step; inf: the gradient was used)."""

    damping: jax.Array


def hessian(value_fn: Callable[[Any], jax.Array], params, *, batch_size: int | None = None) -> jax.Array:
    """``grad^2 value_fn(params)`` as a k x k matrix over the flat params (``ravel_pytree`` order).

    The gradient is linearised once (its residuals cost what one gradient costs) and that linear
    map is applied to the k unit vectors, ``batch_size`` at a time (all at once when None): memory
    ``O(N batch_size)`` on N examples, never a Jacobian over the examples.
    """
    flat, unravel = ravel_pytree(params)
    _, hvp = jax.linearize(lambda u: ravel_pytree(jax.grad(value_fn)(unravel(u)))[0], flat)
    eye = jnp.eye(flat.size, dtype=flat.dtype)
    h = jax.vmap(hvp)(eye) if batch_size is None else jax.lax.map(hvp, eye, batch_size=batch_size)
    return 0.5 * (h + h.T)


def newton_direction(h: jax.Array, g: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(d, lambda)``: ``d = -(H + lambda diag(H))^{-1} g`` by Cholesky with the smallest damping
    ``lambda`` in ``{0, 1e-8, 1e-6, ...}`` that gives a finite factor and a descent direction
    (``g'd < 0``); ``(-g, inf)`` where none does."""
    scale = jnp.where(jnp.diag(h) > 0, jnp.diag(h), jnp.max(jnp.abs(jnp.diag(h))) + jnp.finfo(h.dtype).tiny)

    def solve(lam):
        factor = jax.scipy.linalg.cho_factor(h + jnp.diag(lam * scale), lower=True)
        d = -jax.scipy.linalg.cho_solve(factor, g)
        return d, jnp.all(jnp.isfinite(d)) & (jnp.vdot(g, d) < 0)

    def next_try(state):
        i, _, _, _ = state
        lam = jnp.where(i == 0, 0.0, DAMPING_START * 100.0 ** (i - 1)).astype(h.dtype)
        d, ok = solve(lam)
        return i + 1, d, lam, ok

    start = (jnp.int32(0), jnp.zeros_like(g), jnp.zeros((), h.dtype), jnp.array(False))
    i, d, lam, ok = jax.lax.while_loop(lambda s: ~s[3] & (s[0] <= DAMPING_TRIES), next_try, start)
    return jnp.where(ok, d, -g), jnp.where(ok, lam, jnp.inf)


def _check_curvature(curvature: str) -> str:
    if curvature not in CURVATURES:
        raise ValueError(f"newton: curvature must be one of {CURVATURES}; got {curvature!r}")
    return curvature


def takes_hessian(optimizer) -> bool:
    """Whether ``optimizer.update`` takes the extra argument ``hessian_fn`` (``newton``, ``scale_by_newton``):
    then ``fit`` passes it the objective's Hessian from the raw outputs where the recipe allows."""
    try:
        return HESSIAN_FN in inspect.signature(optimizer.update).parameters
    except (TypeError, ValueError):
        return False


def scale_by_newton(*, batch_size: int | None = None, curvature: str = "auto") -> optax.GradientTransformationExtraArgs:
    """The Newton direction ``-H^{-1} g`` of ``value_fn`` at ``params`` (see the module's docstring).

    An optax ``GradientTransformationExtraArgs``: its ``update(updates, state, params, *, value_fn,
    hessian_fn, **extra)`` reads the extra argument ``value_fn`` (the objective, as ``fit`` and optax's
    line searches pass it) and returns the direction for a line search to scale; ``updates`` are the
    gradient. ``hessian_fn`` (``params -> k x k``, ``ravel_pytree`` order; ``fit`` passes the split
    Hessian of the module's docstring where it applies) is used in place of forward-over-reverse
    differentiation of ``value_fn`` when given and ``curvature="auto"``; ``curvature="hvp"`` ignores it.
    Chain it with ``optax.scale_by_backtracking_linesearch`` (what ``newton`` does) or
    ``optax.scale_by_zoom_linesearch``.
    """
    _check_curvature(curvature)

    def init(params):
        return ScaleByNewtonState(jnp.zeros((), ravel_pytree(params)[0].dtype))

    def update(updates, state, params=None, *, value_fn=None, hessian_fn=None, **extra):
        if curvature == "hvp":
            hessian_fn = None
        if params is None or (value_fn is None and hessian_fn is None):
            raise ValueError("scale_by_newton: update needs params and the extra argument value_fn "
                             "(mj.fit passes both; by hand: update(g, state, params, value_fn=f))")
        g, unravel = ravel_pytree(updates)
        if hessian_fn is not None:
            h = hessian_fn(params)
        else:
            assert value_fn is not None
            h = hessian(value_fn, params, batch_size=batch_size)
        d, lam = newton_direction(h.astype(g.dtype), g)
        return unravel(d.astype(g.dtype)), ScaleByNewtonState(lam.astype(state.damping.dtype))

    return optax.GradientTransformationExtraArgs(init, update)


class NewtonState(NamedTuple):
    """``newton``'s state: the direction's (the damping) and the line search's."""

    direction: Any  # ScaleByNewtonState
    linesearch: Any


def newton(*, batch_size: int | None = None, max_linesearch_steps: int = 30,
           curvature: str = "auto") -> optax.GradientTransformationExtraArgs:
    """Newton's method with a backtracking line search: an optimizer for ``mj.fit`` (and ``mj.solver``).

        d_t = -H_t^{-1} g_t (Cholesky; Marquardt-damped or -g_t where H_t is not positive definite)
        phi_{t+1} = phi_t + eta_t d_t, eta_t: the first of 1, 1/2, 1/4, ... with sufficient decrease

    The direction is ``scale_by_newton``'s, the step length ``optax.scale_by_backtracking_linesearch``'s
    (Armijo's rule, the full step tried first, halved up to ``max_linesearch_steps`` times). Where the
    Newton decrement ``-g'd`` is at the rounding level of the loss (``<= 16 eps |L|``: the optimum, to
    float precision) no change of L can confirm a step, and the full step is taken as it is (the
    quadratic model is exact there): the last digits of the MLE come for free, and the step costs no
    search.

    Args:
      batch_size: the Hessian's tangents taken this many at a time (memory ``O(N batch_size)``);
        None (default): all k at once, the fastest for k up to a few hundred.
      max_linesearch_steps: the most halvings of the step per iteration.
      curvature: ``"auto"`` (default): inside ``fit``, the Hessian assembled from the model's raw outputs
        where the loss is the recipe's NLL on a full batch (``X' W X`` for a GLM: the module's
        docstring), else forward-over-reverse; ``"hvp"``: forward-over-reverse always.

    Use it on a full batch with few parameters (a GLM, a small parametric model: k up to a few hundred),
    with ``Objective(tol=...)`` to stop at a gradient norm; it converges in a handful of steps,
    whatever the design's scaling. For many parameters or minibatches use ``optax.lbfgs()`` or Adam.
    See the module's docstring for the method and its references.

    >>> import jax.numpy as jnp, numpy as np, mle_jax as mj
    >>> x = np.linspace(-2, 2, 64)[:, None]; y = (np.sin(3 * x[:, 0]) > 0).astype(np.int32)
    >>> r = mj.recipe(lambda p, x_i: x_i @ p["w"] + p["b"], mj.bernoulli())
    >>> res = mj.fit(r, r.init({"w": jnp.zeros(1), "b": jnp.zeros(())}), x, y, mj.newton(), steps=20,
    ...              objective=mj.Objective(tol=1e-6))
    >>> res.stopped == "converged", res.steps_run <= 6
    (True, True)
    """
    direction = scale_by_newton(batch_size=batch_size, curvature=_check_curvature(curvature))
    # store_grad: the accepted point's value and gradient stay in the state, where fit reads them back. optax gets
    # that gradient by transposing the value's JVP at a Python 1.0, a cotangent of the default float: where the
    # params' float is narrower (float32 under jax_enable_x64) it is refused, so there the state keeps no gradient
    # (``grad`` None) and fit evaluates it at the accepted point
    # a tuple indexed by store (False, True), not a dict: immutable, so that two newton() compare equal as keys of
    # compiled programs (mle_jax._cache.structure: a fresh newton() per fit compiles nothing again)
    searches = tuple(optax.scale_by_backtracking_linesearch(
        max_backtracking_steps=max_linesearch_steps, decrease_factor=0.5, increase_factor=float("inf"),
        store_grad=store) for store in (False, True))

    def init(params):
        leaf = jax.tree_util.tree_leaves(params)[0]
        store = jnp.result_type(leaf) == jnp.result_type(float)
        return NewtonState(direction.init(params), searches[int(bool(store))].init(params))

    def update(updates, state, params=None, *, value=None, grad=None, value_fn=None, hessian_fn=None, **extra):
        if value is None or value_fn is None:
            raise ValueError("newton: update needs the extra arguments value and value_fn (mj.fit passes them)")
        grad = updates if grad is None else grad
        d, direction_state = direction.update(updates, state.direction, params, value_fn=value_fn,
                                              hessian_fn=hessian_fn)
        decrement = -jnp.asarray(optax.tree.vdot(d, grad))
        at_rounding = decrement <= 16 * jnp.finfo(jnp.result_type(value)).eps * jnp.abs(value)
        # a full step without a search stores no value: inf makes value_and_grad_from_state evaluate it
        unsearched = state.linesearch._replace(value=jnp.full_like(state.linesearch.value, jnp.inf))
        search = searches[int(state.linesearch.grad is not None)]
        d, search_state = jax.lax.cond(
            at_rounding, lambda: (d, unsearched),
            lambda: search.update(d, state.linesearch, params, value=value, grad=grad, value_fn=value_fn))
        return d, NewtonState(direction_state, search_state)

    return optax.GradientTransformationExtraArgs(init, update)


def objective_hessian(recipe, parts, x, y, weights, mask, reduction: str) -> Callable[[Any], jax.Array] | None:
    """``trained -> grad^2`` of fit's objective (the recipe's NLL, ``reduction`` over ``weights`` and ``mask``)
    as a k x k matrix by ``mle_jax._curvature.hessian``'s split (``X' W X`` for a GLM), over chunks of about
    2^18 / k rows; None where the split does not apply (the training loss is not the NLL, or the params
    are not a recipe's ``Params``): then ``scale_by_newton`` differentiates ``value_fn`` itself."""
    training = recipe.family.training
    if training.term is not None or training.weight is not None or not _curvature._splits(recipe, parts):
        return None
    v = ravel_pytree(parts.trained)[0]
    n = jax.tree_util.tree_leaves(x)[0].shape[0]
    if weights is None:
        w = jnp.ones(n, v.dtype)
    elif reduction == "mean":  # the mean's weights in (0, 1], in their own dtype, as reduce_terms scales them
        w = weights_as(weights, v.dtype)
    else:  # a sum's weights in the wider of their dtype and the parameters' (float64 weights of 1e-40 are 0 in
        w = weights_as(weights, v.dtype, "sum")  # float32): the Hessian is summed there, then cast once
    m = jnp.ones(n, bool) if mask is None else jnp.asarray(mask, bool)
    data = _curvature.Data(x, y, w, m)
    size = min(n, max(1, _curvature.DENSE_ELEMENTS // max(1, v.size)))
    count = jnp.sum(jnp.where(m, w, 0.0)) if reduction == "mean" else jnp.ones((), v.dtype)
    count = jnp.where(count > 0, count, 1.0)  # a mean over no example is 0: so is its Hessian

    def hessian_fn(trained):
        h = _curvature.hessian(recipe, ravel_pytree(trained)[0], parts, data, size=size,
                               masked=mask is not None or weights is not None)
        return (jnp.asarray(h) / count).astype(v.dtype)
    return hessian_fn
