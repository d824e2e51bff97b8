"""The recipe: steps 2-4 of the lecture in one combinator.

    L[phi] = -sum_i log Pr(y_i | f[x_i, phi])                       (Prince, eq. 5.7)

``recipe(model, family)`` composes a per-example model ``(params, x_i) -> raw``
with a family ``raw -> theta`` and gives the batched, reduced, jitted
functions: ``nll``, ``mean_nll``, ``log_prob``, ``predict``, ``point``. This is
the only module that ``vmap``s over examples, reduces, and ``jit``s.

Reductions (one algebra for every family): with per-example terms ``t_i``,
weights ``w_i`` (default 1) and a mask ``m_i`` (default all True),

    sum  = sum_i m_i w_i t_i
    mean = sum_i m_i w_i t_i / sum_i m_i w_i      (the honest denominator)

Masked-out examples contribute exactly 0, even where their term is not finite.
Terms in bfloat16 / float16 are accumulated in float32.

Checks: shapes at trace time on every call (free under jit); values eagerly,
once per data set, when the arrays are concrete; on traced arrays a single
warning says the value check could not run.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from . import distributions as dist
from .checks import check_batch, check_finite, check_weights, is_concrete
from .families import Family, as_raw


class Params(NamedTuple):
    """All trainable parameters: the model's ``phi`` and the family's own (e.g. a learned sigma)."""

    model: Any
    family: Any


class Recipe(NamedTuple):
    """A model and a family composed into batched likelihood functions (see ``recipe``)."""

    model: Callable
    family: Family
    validate: bool
    init: Callable
    nll: Callable
    mean_nll: Callable
    loss: Callable
    log_prob: Callable
    predict: Callable
    point: Callable
    interval: Callable
    sample: Callable
    check: Callable
    reduce: Callable


def _float_dtype(tree):
    for leaf in jax.tree_util.tree_leaves(tree):
        if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            return jnp.result_type(leaf)
    return jnp.result_type(float)


def _accumulate(terms):
    """Sum in at least float32: bfloat16 / float16 terms must not drift."""
    acc = jnp.promote_types(terms.dtype, jnp.float32)
    return jnp.sum(terms, dtype=acc).astype(jnp.promote_types(terms.dtype, acc))


def reduce_terms(terms, weights=None, mask=None, reduction: str = "sum", affine=None):
    """Reduce per-example terms ``t_i`` (shape (N,)) by ``sum`` or ``mean``, with weights and a mask.

    ``affine = (a, b)`` (optional) maps every term to ``a t_i + b``, applied once after the sum:
    ``sum = a sum_i m_i w_i t_i + b sum_i m_i w_i``, ``mean = sum / sum_i m_i w_i``.
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean'; got {reduction!r}")
    weighted = weights is not None or mask is not None
    if weighted:
        w = jnp.ones_like(terms) if weights is None else jnp.asarray(weights, terms.dtype)
        if mask is not None:
            w = jnp.where(mask, w, jnp.zeros_like(w))
            terms = jnp.where(mask, terms, jnp.zeros_like(terms))
        total, count = _accumulate(w * terms), _accumulate(w)
    else:
        total, count = _accumulate(terms), terms.shape[0]
    if affine is None:
        return total / count if reduction == "mean" else total
    scale, shift = affine
    if reduction == "mean":
        return scale * (total / count) + shift
    return scale * total + count * shift


def recipe(model: Callable, family: Family, *, validate: bool = True) -> Recipe:
    """Compose ``model(params, x_i) -> raw`` (ONE example) with a ``family``.

    Args:
      model: a pure function of the model parameters phi and one example's input;
        returns the raw output the family needs (a scalar is fine for one value).
      family: e.g. ``mj.normal(0.2)``, ``mj.bernoulli()``, ``mj.categorical(K)``.
      validate: check data values (finite x and y, labels on the support,
        weights >= 0) eagerly, once per data set. ``False`` skips it.

    Returns:
      A ``Recipe`` whose functions take ``params = recipe.init(model_params)``:

      - ``nll(params, x, y, weights=None, mask=None)``: ``-sum_i log Pr(y_i | theta(x_i))``.
      - ``mean_nll(...)``: the weighted mean (divided by the sum of the weights used).
      - ``loss(..., reduction="mean")``: the training objective (``mean_nll`` unless
        the family reweights, as beta-NLL does).
      - ``log_prob(params, x, y)``: the per-example log-likelihoods, shape (N,).
      - ``predict(params, x)``: the batched theta, the full predictive distribution.
      - ``point(params, x)``: its mode, ``argmax_y Pr(y | theta(x))``.
      - ``interval(params, x, coverage=0.95)``, ``sample(key, params, x)``.
      - ``check(x, y, weights=None, mask=None)``: the eager value check.
      - ``reduce(params, x, y, weights, mask, kind, reduction)``: the unchecked,
        unjitted reduction, for composing inside your own jitted code.

    Example:
      >>> import jax.numpy as jnp, mle_jax as mj
      >>> r = mj.recipe(lambda p, x: p["w"] * x + p["b"], mj.normal(scale=1.0))
      >>> params = r.init({"w": jnp.float32(2.0), "b": jnp.float32(0.0)})
      >>> float(r.nll(params, jnp.array([1.0]), jnp.array([2.0])))  # log(2 pi) / 2
      0.9189385...
    """
    if not isinstance(family, Family):
        raise TypeError(f"recipe: family must be an mle_jax Family (e.g. mj.normal()); got {type(family).__name__}")
    name = f"recipe({getattr(model, '__name__', 'model')}, {family.name})"
    state = {"checked": [], "warned": False}

    def raw_of(params, x_i):
        return as_raw(family, model(params.model, x_i))

    def example_theta(params, x_i):
        return family.theta(params.family, raw_of(params, x_i))

    def example_term(fn):
        def term(params, x_i, y_i):
            return fn(params.family, raw_of(params, x_i), y_i)
        return jax.vmap(term, in_axes=(None, 0, 0))

    batched = {"log_prob": example_term(family.log_prob), "kernel": example_term(family.kernel),
               "loss": None if family.loss is None else example_term(family.loss)}

    def reduce(params, x, y, weights=None, mask=None, kind="nll", reduction="sum"):
        if kind not in ("nll", "loss"):
            raise ValueError(f"kind must be 'nll' or 'loss'; got {kind!r}")
        if kind == "loss" and family.loss_weight is not None:  # class weights join the example weights
            class_weights = jax.vmap(family.loss_weight)(y)
            weights = class_weights if weights is None else weights * class_weights
        if kind == "loss" and batched["loss"] is not None:
            return reduce_terms(batched["loss"](params, x, y), weights, mask, reduction)
        # -sum_i (a k_i + b) = -(a sum_i k_i + b sum_i w_i): scale, shift and sign once, not per example
        kernels = batched["kernel"](params, x, y)
        return -reduce_terms(kernels, weights, mask, reduction, family.affine(params.family))

    def check(x, y, weights=None, mask=None):
        """The eager value check; the same immutable jax arrays are checked only once."""
        check_batch(name, x, y, ("weights", weights), ("mask", mask))
        leaves = jax.tree_util.tree_leaves((x, y, weights, mask))
        immutable = all(isinstance(a, jax.Array) for a in leaves)
        if immutable and any(len(seen) == len(leaves) and all(a is ref() for a, ref in zip(leaves, seen))
                             for seen in state["checked"]):
            return
        for leaf in jax.tree_util.tree_leaves(x):
            check_finite(name, leaf, "x")
        family.check(y)
        check_weights(name, weights, mask)
        if immutable:  # remember (weakly) the last few data sets: training and validation, say
            state["checked"] = (state["checked"] + [[weakref.ref(a) for a in leaves]])[-4:]

    def boundary(x, y=None, weights=None, mask=None):
        """Shape checks always; value checks once per data set on concrete arrays."""
        if y is None:
            check_batch(name, x, jax.tree_util.tree_leaves(x)[0])
            return
        if validate and is_concrete((x, y, weights, mask)):
            check(x, y, weights, mask)  # shapes and values
            return
        check_batch(name, x, y, ("weights", weights), ("mask", mask))
        if validate and not state["warned"]:
            state["warned"] = True
            warnings.warn(
                f"{name}: x and y are traced (inside jit/grad/vmap/scan), so their values "
                f"cannot be checked here; call recipe.check(x, y) once on the concrete data, "
                f"or pass validate=False to silence this", stacklevel=3)

    def jitted(fn, **options):
        """``fn`` compiled when called on concrete arrays; inlined as is inside a caller's trace,
        where a nested jit boundary would only keep XLA from fusing across it."""
        compiled = jax.jit(fn, **options)

        def call(*args, **kwargs):
            return (compiled if is_concrete(args) else fn)(*args, **kwargs)
        return call

    jit_reduce = jitted(reduce, static_argnames=("kind", "reduction"))
    jit_log_prob = jitted(batched["log_prob"])
    jit_predict = jitted(jax.vmap(example_theta, in_axes=(None, 0)))

    def nll(params, x, y, weights=None, mask=None):
        boundary(x, y, weights, mask)
        return jit_reduce(params, x, y, weights, mask, kind="nll", reduction="sum")

    def mean_nll(params, x, y, weights=None, mask=None):
        boundary(x, y, weights, mask)
        return jit_reduce(params, x, y, weights, mask, kind="nll", reduction="mean")

    def loss(params, x, y, weights=None, mask=None, reduction="mean"):
        boundary(x, y, weights, mask)
        return jit_reduce(params, x, y, weights, mask, kind="loss", reduction=reduction)

    def log_prob(params, x, y):
        boundary(x, y)
        return jit_log_prob(params, x, y)

    def predict(params, x):
        boundary(x)
        return jit_predict(params, x)

    def point(params, x):
        return jax.vmap(dist.mode)(predict(params, x))

    def interval(params, x, coverage=0.95):
        return dist.interval(predict(params, x), coverage)

    def sample(key, params, x):
        theta = predict(params, x)
        keys = jax.random.split(key, jax.tree_util.tree_leaves(theta)[0].shape[0])
        return jax.vmap(dist.sample)(keys, theta)

    def init(model_params):
        return Params(model_params, family.init(_float_dtype(model_params)))

    return Recipe(model, family, validate, init, nll, mean_nll, loss, log_prob, predict, point,
                  interval, sample, check, reduce)
