"""The recipe: steps 2-4 of the lecture in one object.

    L[phi] = -sum_i log Pr(y_i | f[x_i, phi])                       (Prince, eq. 5.7)

``recipe(model, family)`` composes a model with a family ``raw -> theta`` and
gives the batched, reduced, jitted functions as methods of a ``Recipe``:
``nll``, ``mean_nll``, ``loss``, ``log_prob``, ``predict``, ``point``, ...
Here the model meets the family: the recipe ``vmap``s both over the examples and reduces the
per-example terms (``mj.losses`` gives the same terms unreduced, for a step of your own). The
programs compiled for a recipe live on it, in ``recipe.programs`` (one bounded
``mle_jax._cache.Programs``): its own methods' under ``("recipe", name)``, those of ``fit`` and
``inference`` under ``("fit", ...)`` and ``("inference", ...)``; all are freed with the recipe.

Models (see ``docs`` in README, "Models from flax and equinox"):

- per example (default): ``model(params, x_i) -> raw``; the recipe ``vmap``s it;
- ``batched=True``: ``model(params, x) -> raw`` of shape ``(N, *raw_shape)``;
- a model with a ``key`` keyword gets a PRNG key (``model(params, x_i, key=k)``;
  a fresh one per example, split from the key given), ``key=None`` meaning
  deterministic evaluation (what ``predict`` and ``point`` use);
- a model with a ``state`` keyword is stateful (batched only):
  ``model(params, x, state=s, train=t) -> (raw, new_state)``; training
  (``train_loss`` and ``fit``) runs it with ``train=True`` and keeps the new
  state, evaluation with ``train=False`` (running averages).

Params are any pytree (see ``mle_jax._params``): inexact arrays are trained,
every other leaf is carried unchanged and never differentiated.

Checks: shapes at trace time on every call (free under jit); values eagerly,
once per data set, when the arrays are concrete (``CheckMemory``); on traced
arrays a single warning says the value check could not run.
"""

from __future__ import annotations

import functools
import inspect
import math
import warnings
from typing import Any, Callable, Literal, TypeAlias, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from . import distributions as dist
from ._cache import Programs, is_concrete
from ._boundary import CheckMemory, as_array, check_nnx_modules, keywords
from ._checks import check_batch, check_finite, check_weights, local
from .families import Family, as_raw
from .families._family import drop_rows
from .distributions._support import check_kept
from ._params import Params, Parts, float_dtype, partition
from ._reductions import Reduction, affine_as, reduce_terms
from .models import linear_rows

__all__ = ["Params", "Recipe", "Reduction", "Theta", "recipe", "reduce_terms"]

Theta: TypeAlias = Any
"""A batched theta: one registered theta type (``mj.Normal``, ``mj.Bernoulli``, ..., or your own),
every leaf with a leading axis N; which one is fixed by the recipe's family (``recipe.predict``)."""

Kind: TypeAlias = Literal["nll", "loss"]
"""What a recipe reduces: ``"nll"``, or ``"loss"``, the training objective (``Recipe.loss``)."""


def _batched_raw(family: Family, out, n: int):
    """A batched model's output checked against ``(N, *raw_shape)`` (at trace time)."""
    out, want = jnp.asarray(out), (n,) + tuple(family.raw_shape)
    if out.shape == want:
        return out
    if math.prod(family.raw_shape) == 1 and len(family.raw_shape) <= 1 and out.shape in ((n,), (n, 1)):
        return out.reshape(want)
    raise ValueError(f"{family.name}: the batched model's raw output has shape {out.shape}; for {n} examples "
                     f"this family needs (N, *raw_shape) = {want}")


_Method = TypeVar("_Method", bound=Callable)


def _compiled(method: _Method) -> _Method:
    """``method`` jitted once per recipe and kept in ``recipe.programs`` under ``("recipe", name)``
    when called on concrete arrays; inlined as is inside a caller's trace, where a nested jit
    boundary would only keep XLA from fusing. Its keyword arguments are static."""
    name = method.__name__

    @functools.wraps(method)
    def call(self, *args, **static):
        if not is_concrete(args):
            return method(self, *args, **static)
        build = lambda: jax.jit(functools.partial(method, self), static_argnames=tuple(static))  # noqa: E731
        return self.programs.get(("recipe", name), build)(*args, **static)
    return call  # type: ignore[return-value]


class Recipe:
    """A model and a family composed into batched likelihood functions (see ``recipe``).

    Attributes: ``model``, ``family``, ``validate``, ``batched``, ``takes_key`` (the model
    has a ``key`` keyword), ``stateful`` (the model has a ``state`` keyword).
    """

    def __init__(self, model: Callable, family: Family, *, validate: bool = True, batched: bool = False):
        if not isinstance(family, Family):
            raise TypeError(f"recipe: family must be an mle_jax Family (e.g. mj.normal()); got {type(family).__name__}")
        if not callable(model):
            raise TypeError(f"recipe: model must be a function (params, x) -> raw; got {type(model).__name__}")
        self.model, self.family, self.validate, self.batched = model, family, bool(validate), bool(batched)
        names = keywords(model)
        self.takes_key, self.stateful = "key" in names, "state" in names
        if self.stateful and not (self.batched and "train" in names):
            raise ValueError("recipe: a model with state takes the whole batch and a train flag: "
                             "recipe(model, family, batched=True) with model(params, x, *, state, train) "
                             "-> (raw, new_state)")
        self.name = f"recipe({getattr(model, '__name__', 'model')}, {family.name})"
        self.memory = CheckMemory()
        self.programs = Programs()  # every compiled program of this recipe (mle_jax._cache): bounded, dies with it

    def __repr__(self) -> str:
        return self.name

    # ------------------------------------------------------------------ the composition
    def init(self, model_params, state=None) -> Params:
        """``Params(model_params, family's own parameters, state)``; ``state`` for stateful models."""
        if self.stateful and state is None:
            raise ValueError(f"{self.name}: the model has state; pass it: recipe.init(model_params, state=...)")
        if state is not None and not self.stateful:
            raise ValueError(f"{self.name}: state given but the model has no `state` keyword")
        check_nnx_modules(self.name, model_params)
        return Params(model_params, self.family.init(float_dtype(model_params)), state)

    def raw(self, params: Params, x, key=None, train: bool = False):
        """The model's raw outputs ``(N, *raw_shape)`` and its new state (None without state). Unjitted."""
        n = jax.tree_util.tree_leaves(x)[0].shape[0]
        if self.batched:
            kwargs = {} if not self.takes_key else {"key": key}
            if self.stateful:
                out, state = self.model(params.model, x, state=params.state, train=train, **kwargs)
                return _batched_raw(self.family, out, n), state
            return _batched_raw(self.family, self.model(params.model, x, **kwargs), n), None
        if key is None:
            # models.linear(d) with one raw output: its batched twin, where the plain dot's gradient is faster
            rows = linear_rows(self.model) if self.family.raw_shape == () else None
            eta = None if rows is None else rows(params.model, x)
            if eta is not None:
                return eta, None
            call = self.model if not self.takes_key else functools.partial(self.model, key=None)
            return jax.vmap(lambda x_i: as_raw(self.family, call(params.model, x_i)))(x), None
        one = lambda x_i, k: as_raw(self.family, self.model(params.model, x_i, key=k))  # noqa: E731
        return jax.vmap(one)(x, jax.random.split(key, n)), None

    def objective(self, params: Params, x, y, weights=None, mask=None, kind: Kind = "nll",
                  reduction: str = "sum", key=None, train: bool = False, data=None):
        """``(value, new_state)``: the reduction of ``kind`` (``"nll"`` or ``"loss"``). Unchecked, unjitted.

        ``data``: ``data_term(y, weights, mask, kind, reduction, dtype)`` of these same arguments, computed once
        by the caller (``fit``, for the steps of a full-batch fit): the family's split kernel's free part
        is evaluated and ``data`` added, the same value to rounding. Ignored where ``data_term`` is None."""
        if kind not in ("nll", "loss"):
            raise ValueError(f"kind must be 'nll' or 'loss'; got {kind!r}")
        family = self.family
        raw, state = self.raw(params, x, key, train)
        # dropped rows with a target off the support: a target on it and masked out, so that they add exactly 0 to
        # every derivative too (the "double where")
        y, mask = drop_rows(family, y, weights, mask)
        term, class_weight = family.training.term, family.training.weight
        if kind == "loss" and class_weight is not None:  # class weights join the example weights
            class_weights = jax.vmap(class_weight)(y)
            weights = class_weights if weights is None else weights * class_weights
        if kind == "loss" and term is not None:
            terms = jax.vmap(term, in_axes=(None, 0, 0))(params.family, raw, y)
            return reduce_terms(terms, weights, mask, reduction), state
        # -sum_i (a k_i + b) = -(a sum_i k_i + b sum_i w_i): scale, shift and sign once, not per example
        split = family.density.split if data is not None and self._splits(kind) else None
        if split is not None:  # k_i = free_i + data_i, the data's reduction given: a sum_i free_i + a data
            frees = jax.vmap(split.free, in_axes=(None, 0, 0))(params.family, raw, y)
            affine = family.density.affine_at(params.family, raw)
            # in the reduction's dtype (float32 for bfloat16 / float16 terms), as reduce_terms takes the affine:
            # a shift (and a data sum) rounded to the terms' bfloat16 would be N times one rounding
            free = reduce_terms(frees, weights, mask, reduction, affine)
            return -(free + affine_as(affine, free.dtype)[0] * jnp.asarray(data, free.dtype)), state
        kernels = jax.vmap(family.kernel, in_axes=(None, 0, 0))(params.family, raw, y)
        return -reduce_terms(kernels, weights, mask, reduction, family.density.affine_at(params.family, raw)), state

    def _splits(self, kind: Kind) -> bool:
        """Whether ``kind``'s terms are the family's kernel with its data-only part apart (``Split``)."""
        training = self.family.training
        return self.family.density.split is not None and (kind == "nll" or (training.term is None
                                                                           and training.weight is None))

    def data_term(self, y, weights=None, mask=None, kind: Kind = "nll", reduction: str = "sum", dtype=None):
        """``sum_i m_i w_i data(y_i)`` (``/ sum_i m_i w_i`` for ``"mean"``): the reduction of the family's
        data-only terms (``families.Split``), or None where ``kind``'s terms have none. Unjitted."""
        if not self._splits(kind):
            return None
        split = self.family.density.split
        assert split is not None
        y, mask = drop_rows(self.family, y, weights, mask)  # the free part's rows (``objective``)
        # in float32 at least, as the free part (the kernels compute in float32 at least: ``at_least_float32``)
        dtype = jnp.result_type(float) if dtype is None else jnp.promote_types(dtype, jnp.float32)
        return reduce_terms(jax.vmap(lambda y_i: split.data(y_i, dtype))(y), weights, mask, reduction)

    def reduce(self, params: Params, x, y, weights=None, mask=None, kind: Kind = "nll",
               reduction: Reduction = "sum", *, key=None):
        """The unchecked, unjitted reduction (evaluation mode), for composing inside your own jitted code."""
        return self.objective(params, x, y, weights, mask, kind, reduction, key)[0]

    # ------------------------------------------------------------------ compiled kernels
    @_compiled
    def _reduce(self, parts: Parts, x, y, weights, mask, key, *, kind, reduction, train):
        return self.objective(parts.params(), x, y, weights, mask, kind, reduction, key, train)

    @_compiled
    def _log_prob(self, parts: Parts, x, y, key):
        params = parts.params()
        raw, _ = self.raw(params, x, key)
        return jax.vmap(self.family.log_prob, in_axes=(None, 0, 0))(params.family, raw, y)

    @_compiled
    def _predict(self, parts: Parts, x):
        params = parts.params()
        raw, _ = self.raw(params, x)
        return jax.vmap(self.family.theta, in_axes=(None, 0))(params.family, raw)

    # ------------------------------------------------------------------ the public methods
    def nll(self, params: Params, x: Any, y: Any, weights=None, mask=None, *, key=None) -> jax.Array:
        """``-sum_i m_i w_i log Pr(y_i | theta(x_i))``: the lecture's ``L[phi]`` (evaluation mode)."""
        args = self._boundary(params, x, y, weights, mask, key)
        return self._reduce(*args, kind="nll", reduction="sum", train=False)[0]

    def mean_nll(self, params: Params, x: Any, y: Any, weights=None, mask=None, *, key=None) -> jax.Array:
        """The weighted mean NLL, ``sum_i m_i w_i t_i / sum_i m_i w_i``."""
        args = self._boundary(params, x, y, weights, mask, key, mean=True)
        return self._reduce(*args, kind="nll", reduction="mean", train=False)[0]

    def loss(self, params: Params, x: Any, y: Any, weights=None, mask=None, reduction: Reduction = "mean",
             *, key=None) -> jax.Array:
        """The training objective: ``mean_nll`` unless the family reweights (beta-NLL, class weights)."""
        args = self._boundary(params, x, y, weights, mask, key, mean=reduction == "mean")
        return self._reduce(*args, kind="loss", reduction=reduction, train=False)[0]

    def train_loss(self, params: Params, x: Any, y: Any, weights=None, mask=None, reduction: Reduction = "mean",
                   *, key=None) -> tuple[jax.Array, Any]:
        """``(loss, new_state)`` in training mode (``train=True``): what ``fit`` differentiates.

        For your own loop with a stateful model: ``(loss, state), grads =
        jax.value_and_grad(r.train_loss, has_aux=True)(params, x, y, key=k)``, then
        ``params._replace(state=state)`` after the update.
        """
        args = self._boundary(params, x, y, weights, mask, key, mean=reduction == "mean")
        return self._reduce(*args, kind="loss", reduction=reduction, train=True)

    def log_prob(self, params: Params, x: Any, y: Any, *, key=None) -> jax.Array:
        """The per-example log-likelihoods ``log Pr(y_i | theta(x_i))``, shape (N,)."""
        parts, x, y, _, _, key = self._boundary(params, x, y, None, None, key)
        return self._log_prob(parts, x, y, key)

    def predict(self, params: Params, x: Any) -> Theta:
        """The batched theta (deterministic evaluation): the full predictive distribution."""
        parts, x = self._inputs(params, x)
        return self._predict(parts, x)

    def point(self, params: Params, x: Any) -> jax.Array:
        """The mode of the prediction, ``argmax_y Pr(y | theta(x))``."""
        return jax.vmap(dist.mode)(self.predict(params, x))

    def interval(self, params: Params, x: Any, coverage: float = 0.95):
        """The central predictive interval ``(lower, upper)`` of the given coverage."""
        return dist.interval(self.predict(params, x), coverage)

    def sample(self, key, params: Params, x: Any) -> jax.Array:
        """One draw of ``y_i ~ Pr(y | theta(x_i))`` per example."""
        theta = self.predict(params, x)
        keys = jax.random.split(key, jax.tree_util.tree_leaves(theta)[0].shape[0])
        return jax.vmap(dist.sample)(keys, theta)

    def evaluate(self, params: Params, x: Any, y: Any, **kwargs) -> dict:
        """Held-out metrics that fit the family: ``mle_jax.scores.evaluate(self, params, x, y, ...)``."""
        from .scores import evaluate
        return evaluate(self, params, x, y, **kwargs)

    # ------------------------------------------------------------------ checks
    def check(self, x: Any, y: Any, weights=None, mask=None, *, mean: bool = False, params: Any = None) -> None:
        """The eager value check; the same immutable jax arrays are checked only once.

        With ``mean``, weights, mask and class weights must also leave some example
        (a mean over no example is 0/0); a sum over none is 0. With ``params``, counts and labels must also
        stay whole in the float dtype the model computes in (its parameters' and x's, float32 at least: under
        x64 a float32 model reads a count above 2^24 rounded; remembered with the data, by that dtype).
        """
        name = self.name
        check_batch(name, x, y, ("weights", weights), ("mask", mask))
        leaves = jax.tree_util.tree_leaves((x, y, weights, mask))
        immutable = all(isinstance(a, jax.Array) for a in leaves)
        problem = self.memory.recall(leaves) if immutable else None
        if problem is None:
            x, y, weights, mask = jax.tree_util.tree_map(local, (x, y, weights, mask))  # a process's own rows
            for leaf in jax.tree_util.tree_leaves(x):
                check_finite(name, leaf, "x")
            self.family.check(y)
            check_weights(name, weights, mask)
            problem = self._weight_problem(y, weights, mask)
            if immutable:
                self.memory.remember(leaves, problem)
        if params is not None and self.family.support.exact:
            dtype = compute_dtype(params, x)
            if not (immutable and self.memory.kept(leaves, dtype)):
                check_kept(name, self.family.support, local(y), dtype)
                if immutable:
                    self.memory.keep(leaves, dtype)
        if mean and problem:
            raise ValueError(f"{name}: {problem}")

    def _weight_problem(self, y, weights, mask) -> str:
        """Why weights, mask and class weights leave no example ("" when some example is left)."""
        w = np.ones(np.shape(y)[0]) if weights is None else np.asarray(weights, np.float64)
        if mask is not None:
            w = w * (np.asarray(mask) != 0)
        if not w.any():
            what = " and ".join(n for n, v in (("weights", weights), ("mask", mask)) if v is not None)
            verb = "leaves" if what == "mask" else "leave"  # "the mask leaves", "the weights (and mask) leave"
            return (f"the {what} {verb} no example (every weight is 0 or masked out); "
                    f"a mean NLL over no example is 0/0")
        tiny = _smallest_normal(weights)
        if tiny and not (w >= tiny).any():  # XLA reads a subnormal as 0 (on CPU and GPU): every weight would be 0
            return (f"every weight is below {jnp.dtype(jax.dtypes.canonicalize_dtype(np.asarray(weights).dtype))}'s "
                    f"smallest normal number ({tiny:.3g}), which the computation reads as 0, so a mean NLL over them "
                    f"is 0/0; scale the weights up (a weighted mean does not depend on their scale)")
        class_weight = self.family.training.weight
        if class_weight is not None:
            class_weights = np.asarray(jax.vmap(class_weight)(jnp.asarray(y)), np.float64)
            if not (w * class_weights).any():
                return ("the class weights give every example of this data set weight 0; "
                        "the training loss would be 0/0")
        return ""

    def _inputs(self, params, x) -> tuple[Parts, Any]:
        """The params partitioned for the compiled kernels and the inputs (a list made an array), checked."""
        x = as_array(self.name, "x", x)
        check_batch(self.name, x, jax.tree_util.tree_leaves(x)[0])
        return partition(params), x

    def _boundary(self, params, x, y, weights=None, mask=None, key=None, mean=False) -> tuple:
        """Shape checks always; value checks once per data set on concrete arrays.

        Returns the params partitioned for the compiled kernels and the data (lists made arrays).
        """
        parts = partition(params)
        name = self.name
        x = as_array(name, "x", x)
        y, weights, mask = (as_array(name, what, v) for what, v in (("y", y), ("weights", weights), ("mask", mask)))
        if key is not None and not self.takes_key:
            raise ValueError(f"{name}: a key was given but the model has no `key` keyword")
        if self.validate and is_concrete((x, y, weights, mask)):
            self.check(x, y, weights, mask, mean=mean, params=params)  # shapes and values
            return parts, x, y, weights, mask, key
        check_batch(name, x, y, ("weights", weights), ("mask", mask))
        if self.validate and not self.memory.warned:
            self.memory.warned = True
            warnings.warn(
                f"{name}: x and y are traced (inside jit/grad/vmap/scan), so their values "
                f"cannot be checked here; call recipe.check(x, y) once on the concrete data, "
                f"or pass validate=False to silence this", stacklevel=3)
        return parts, x, y, weights, mask, key


def compute_dtype(params: Any, x: Any) -> Any:
    """The float dtype a model of ``params`` computes in on ``x``: the parameters' float dtype promoted with x's
    (a linear model's raw outputs'), float32 at least (the kernels widen half precision)."""
    dtype = jnp.promote_types(float_dtype(params), jnp.float32)
    for leaf in jax.tree_util.tree_leaves(x):
        if jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            dtype = jnp.promote_types(dtype, jnp.result_type(leaf))
    return dtype


def _smallest_normal(weights) -> float:
    """The smallest normal number of the dtype the weights are computed in (0.0 for none or integer weights)."""
    if weights is None:
        return 0.0
    dtype = jax.dtypes.canonicalize_dtype(np.asarray(weights).dtype)
    return float(jnp.finfo(dtype).tiny) if jnp.issubdtype(dtype, jnp.floating) else 0.0


def recipe(model: Callable, family: Family, *, validate: bool = True, batched: bool = False) -> Recipe:
    """Compose ``model(params, x_i) -> raw`` (ONE example; the whole batch with ``batched``) with a ``family``.

    Args:
      model: a pure function of the model parameters phi and one example's input;
        returns the raw output the family needs (a scalar is fine for one value).
        A ``key`` keyword makes it random (dropout), a ``state`` keyword stateful
        (BatchNorm); see the module docstring.
      family: e.g. ``mj.normal(0.2)``, ``mj.bernoulli()``, ``mj.categorical(K)``.
      validate: check data values (finite x and y, labels on the support,
        weights >= 0, some weight > 0) eagerly, once per data set. ``False`` skips it.
      batched: the model maps the whole batch, ``(params, x) -> (N, *raw_shape)``.

    Returns:
      A ``Recipe`` whose methods take ``params = recipe.init(model_params)``: ``nll``,
      ``mean_nll``, ``loss``, ``train_loss``, ``log_prob``, ``predict``, ``point``,
      ``interval``, ``sample``, ``evaluate``, ``check``, ``reduce``.

    Example:
      >>> import jax.numpy as jnp, mle_jax as mj
      >>> r = mj.recipe(lambda p, x: p["w"] * x + p["b"], mj.normal(scale=1.0))
      >>> params = r.init({"w": jnp.float32(2.0), "b": jnp.float32(0.0)})
      >>> float(r.nll(params, jnp.array([1.0]), jnp.array([2.0])))  # log(2 pi) / 2
      0.9189385...
    """
    return Recipe(model, family, validate=validate, batched=batched)
