"""A pure fit for research code: ``solve = solver(recipe, optimizer, steps)``, one compiled loop.

    phi_hat = argmin_phi L(phi; x, y, w),   L = the recipe's training loss (mean or sum)

``solve(params, x, y, *, key=None, weights=None, mask=None) -> (params_hat, history)`` runs
``steps`` optimizer updates in one ``lax.while_loop`` with no host work, so it composes with
``jax.jit`` and ``jax.vmap`` (over data sets, starting points, keys, weights: a simulation study,
a bootstrap, a sweep of seeds is ONE program), and ``jax.grad`` (below). Each step is the step
``fit`` runs (``mle_jax._fit_step.make_step``), so a solve and a ``fit`` with the same arguments
take the same steps; what ``fit`` adds is host work (chunks, bar, callback, checkpoints,
validation, the separation check, messages).

Stopping: ``tol`` has ``Objective(tol=...)``'s meaning, the loop ends (``history.converged``)
at the first step whose gradient norm of the objective, ``||grad L(phi_t)||_2``, is ``<= tol``,
returning ``phi_t``; a non-finite loss ends it too (``history.result == 3``), returning the last
parameters whose loss was finite (``fit``'s rule). ``history.floored`` says that a family parameter
ended on its link's floor (``softplus(raw) <= eps``, where its raw gradient vanishes: "converged" there is
no MLE; ``mle_jax._floors``), and ``history.stopped`` is then ``Stop.BOUNDARY``; an eager call warns
(``BoundaryWarning``). Under ``vmap`` the loop runs until every
problem has ended, and a problem that has ended is frozen: its parameters, history and counts
no longer change (the batched ``while_loop`` selects its old carry).

Differentiation: implicit, at the optimum. The solution is wrapped in ``jax.lax.custom_root``
on the first-order condition ``g(phi; data) = grad_phi L(phi; data) = 0``, so by the implicit
function theorem

    d phi_hat / d data = -H^{-1} d g / d data,   H = grad^2_phi L(phi_hat)

(the influence function; ``H`` is formed densely from Hessian-vector products and solved,
one ``P x P`` system for ``P`` trained scalars: meant for statistical models, not for large
networks). Gradients flow to whatever the loss closes over (``x``, a float ``y``, ``weights``);
the derivative with respect to the starting ``params`` is zero. It is exact only where the solve
reached a stationary point (use ``tol`` and check ``history.converged``); the loop itself is
never differentiated (a ``while_loop`` cannot be reversed, and unrolling ``steps`` updates would
keep every step's parameters). Solves whose loss is random or changes from step to step (a model
with a ``key``, a stateful model, ``Minibatches``) have no fixed first-order condition: they run
the plain loop, whose reverse-mode derivative JAX refuses.

Checks: building the solver checks the recipe, optimizer, ``steps`` and ``tol`` (named
``TypeError``/``ValueError``). A call on concrete arrays (outside ``jit``/``vmap``) checks shapes
and, with ``recipe.validate``, the data values as ``fit`` does (once per data set). Inside
``jit``/``vmap`` the data are tracers: shapes are still checked, values are NOT (there is no host
check on device); call ``recipe.check(x, y, weights, mask)`` once on the concrete data instead.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Generic, NamedTuple, TypeVar, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from ._boundary import as_array
from ._cache import concrete_or_inline
from ._checks import check_batch, is_concrete
from ._fit_options import RESULTS, Minibatches, Objective, Stop, code, count
from ._floors import describe, on_floor, on_floor_traced
from .diagnostics import BOUNDARY, BoundaryWarning
from ._fit_step import Keys, StepOptions, _ends, initial_carry, make_step
from ._params import Params, Parts, partition
from .recipe import Recipe

__all__ = ["History", "solver"]

P = TypeVar("P", bound=Params)


class History(NamedTuple):
    """What a solve reports, all on device (under ``vmap``, each field gains the batch axis).

    Fields:
      loss: the training loss at each step run, float32, shape ``(steps,)``; NaN after the last
        step run (``fit``'s ``history`` is ``loss[:steps]``).
      steps: int32, the steps run (updates computed; ``fit``'s ``steps_run``).
      result: int32, why the loop ended: 0 ran every step, 1 converged (gradient norm <= tol),
        3 a non-finite loss (``mle_jax._fit_options.RESULTS``; ``history.stopped`` names it).
      floored: bool, whether a family parameter the family declares ``softplus(raw) + eps``
        (``Family.positive``) ended on the floor, ``softplus(raw) <= eps``: its raw gradient vanishes
        there, so neither ``converged`` nor the last step means an MLE (``mle_jax._floors``).
    """

    loss: jax.Array
    steps: jax.Array
    result: jax.Array
    floored: jax.Array

    @property
    def converged(self) -> jax.Array:
        """True where the gradient norm fell to ``tol``."""
        return self.result == code(Stop.CONVERGED)

    @property
    def finite(self) -> jax.Array:
        """True where no loss was NaN or inf."""
        return self.result != code(Stop.NON_FINITE)

    @property
    def stopped(self) -> Stop:
        """The ``Stop`` of an unbatched, concrete history (read on the host); ``Stop.BOUNDARY`` in place of
        "completed" or "converged" where ``floored``."""
        stop = RESULTS[int(self.result)]
        return Stop.BOUNDARY if bool(self.floored) and stop in (Stop.COMPLETED, Stop.CONVERGED) else stop


class Solve(Generic[P]):
    """``solve(params, x, y, *, key=None, weights=None, mask=None) -> (params, History)``: pure."""

    def __init__(self, recipe: Recipe, optimizer, steps: int | Minibatches, tol: float | None, reduction: str):
        self.recipe, self.optimizer, self.steps, self.tol, self.reduction = recipe, optimizer, steps, tol, reduction
        jitted = recipe.programs.get(("solve", optimizer, steps, tol, reduction), lambda: jax.jit(self._run))
        self._core = concrete_or_inline(self._run, jitted)  # one compile per recipe and settings; inlined in a trace

    def __repr__(self) -> str:
        return f"solver({self.recipe.name}, steps={self.steps}, tol={self.tol}, reduction={self.reduction!r})"

    def __call__(self, params: P, x, y, *, key=None, weights=None, mask=None) -> tuple[P, History]:
        recipe, name = self.recipe, "solve"
        if not isinstance(params, Params):
            raise TypeError(f"{name}: params must come from recipe.init(model_params) (an mle_jax Params); "
                            f"got {type(params).__name__}")
        x, y = as_array(name, "x", x), as_array(name, "y", y)
        weights, mask = as_array(name, "weights", weights), as_array(name, "mask", mask)
        n = check_batch(name, x, y, ("weights", weights), ("mask", mask))
        batches = self.steps if isinstance(self.steps, Minibatches) else None
        if batches is not None and not batches.batch_size <= n:
            raise ValueError(f"{name}: Minibatches batch_size must lie in [1, {n}] (the examples); "
                             f"got {batches.batch_size}")
        needs_key = recipe.takes_key or batches is not None
        if needs_key and key is None:
            raise ValueError(f"{name}: {'the model takes a key' if recipe.takes_key else 'Minibatches shuffle'}: "
                             f"pass solve(..., key=jax.random.key(0))")
        if key is not None and not needs_key:
            raise ValueError(f"{name}: a key was given but nothing draws from it (the model has no `key` "
                             f"keyword and steps are not Minibatches)")
        if recipe.validate and is_concrete((x, y, weights, mask)):  # on device there is no host check
            recipe.check(x, y, weights, mask, mean=self.reduction == "mean")
        out = self._core(partition(params), x, y, key, weights, mask)
        fitted, history = cast(P, out[0].params()), out[1]
        if is_concrete(history.floored) and bool(history.floored):  # an eager call: say which, as fit does
            floored = on_floor(fitted.family, recipe.family.positive)
            message = Stop.BOUNDARY.message(boundary=BOUNDARY, floored=describe(floored),
                                            stopped=RESULTS[int(history.result)])
            warnings.warn(f"{name}: {message}", BoundaryWarning, stacklevel=2)
        return fitted, history

    # ------------------------------------------------------------------ the device side
    def _options(self, n: int) -> tuple[int, StepOptions]:
        batches = self.steps if isinstance(self.steps, Minibatches) else None
        total = batches.total(n) if batches is not None else cast(int, self.steps)
        return total, StepOptions(n=n, keyed=self.recipe.takes_key,
                                  batch_size=None if batches is None else batches.batch_size,
                                  every=None, patience=None, reduction=self.reduction, tol=self.tol)

    def _run(self, parts: Parts, x, y, key, weights, mask):
        n = jax.tree_util.tree_leaves(y)[0].shape[0]
        total, opts = self._options(n)
        data = (x, y, weights, mask)
        keys = Keys(key if opts.batch_size is not None else None,
                    jax.random.split(key)[1] if opts.keyed and key is not None else None)
        if self.recipe.takes_key or self.recipe.stateful or opts.batch_size is not None:
            solution, (rest, history) = self._loop(parts, data, keys, total, opts)
            return rest.replace(trained=solution), history
        # the loop runs on constants (never differentiated); custom_root gives its solution the
        # implicit derivative of grad L(solution; data) = 0 (its solve is the identity on it)
        found, (rest, history) = self._loop(*jax.lax.stop_gradient((parts, data, keys)), total, opts)
        objective = _objective(self.recipe, parts, data, self.reduction)
        solution = jax.lax.custom_root(jax.grad(objective), found, lambda _f, guess: guess, _dense_solve)
        return rest.replace(trained=solution), history

    def _loop(self, parts: Parts, data, keys: Keys, total: int, opts: StepOptions):
        """``total`` steps of ``make_step`` in a while_loop: ``(trained, (parts, History))``."""
        one_step = make_step(self.recipe, self.optimizer, opts)
        schedule = opts.schedule()
        carry = initial_carry(parts, self.optimizer.init(parts.trained), opts)
        bad = jnp.int32(code(Stop.NON_FINITE))

        def body(state):
            i, c, good, losses = state
            new, (loss, _) = one_step(c, keys, data, None, schedule)
            finite = jnp.isfinite(loss)
            good = jax.tree_util.tree_map(lambda a, b: jnp.where(finite, a, b), c.params, good)
            new = new._replace(result=_ends(new.result, ~finite, Stop.NON_FINITE))
            return i + 1, new, good, losses.at[i].set(loss)

        start = (jnp.int32(0), carry, carry.params, jnp.full((total,), jnp.nan, jnp.float32))
        ran, carry, good, losses = jax.lax.while_loop(lambda s: (s[0] < total) & (s[1].result == 0), body, start)
        params = jax.tree_util.tree_map(lambda a, b: jnp.where(carry.result == bad, a, b), good, carry.params)
        floored = on_floor_traced(params.params().family, self.recipe.family.positive)
        return params.trained, (params, History(losses, ran, carry.result, floored))


def _objective(recipe: Recipe, parts: Parts, data, reduction: str) -> Callable:
    """``trained -> L``: the training loss whose gradient is zero at the solution (closes over the data)."""
    x, y, w, m = data

    def objective(trained):
        params = parts.replace(trained=trained).params()
        return recipe.objective(params, x, y, w, m, "loss", reduction, None, train=True)[0]
    return objective


def _dense_solve(hvp: Callable, b):
    """Solve ``H v = b`` for the linear ``hvp(v) = H v``: ``H`` formed densely (P Hessian-vector
    products, by forward mode) and factorised; ``custom_root``'s tangent solve."""
    flat, unravel = ravel_pytree(b)
    if flat.size == 0:
        return b
    matrix = jax.jacfwd(lambda v: ravel_pytree(hvp(unravel(v)))[0])(jnp.zeros_like(flat))
    return unravel(jnp.linalg.solve(matrix, flat))


def solver(recipe: Recipe, optimizer: optax.GradientTransformation, steps: int | Minibatches,
           tol: float | None = None, *, reduction: str = "mean") -> Solve:
    """A pure ``solve(params, x, y, *, key=None, weights=None, mask=None) -> (params, History)``.

    Args:
      recipe: from ``mj.recipe(model, family)``.
      optimizer: any optax ``GradientTransformation`` (``optax.lbfgs()`` too, full batch).
      steps: the optimizer updates (an int; the length of ``History.loss``), or
        ``Minibatches(batch_size, epochs=... | steps=...)`` (needs ``key=``).
      tol: ``Objective(tol=...)``'s meaning: converged at the first step whose gradient norm of the
        objective is ``<= tol``; the remaining steps are skipped (frozen under ``vmap``).
      reduction: ``"mean"`` (default, as ``fit``) or ``"sum"``: the objective minimised.

    Returns:
      ``solve``, pure: usable under ``jax.jit``, ``jax.vmap`` and (implicitly, at the optimum)
      ``jax.grad``; see the module docstring. Called eagerly it checks its inputs and runs one
      compiled program; inside ``jit``/``vmap`` the data's values are not checked.

    >>> import jax, jax.numpy as jnp, optax, mle_jax as mj
    >>> r = mj.recipe(lambda p, x: x @ p["w"], mj.poisson())
    >>> x = jnp.stack([jnp.ones(4), jnp.arange(4.0)], axis=1)
    >>> ys = jnp.array([[1.0, 2, 2, 5], [0.0, 1, 3, 4]])          # two data sets
    >>> solve = mj.solver(r, optax.lbfgs(), steps=50, tol=1e-6)
    >>> fits, history = jax.jit(jax.vmap(solve, in_axes=(None, None, 0)))(r.init({"w": jnp.zeros(2)}), x, ys)
    >>> fits.model["w"].shape, bool(history.converged.all())
    ((2, 2), True)
    """
    name = "solver"
    if not isinstance(recipe, Recipe):
        raise TypeError(f"{name}: recipe must come from mj.recipe(model, family); got {type(recipe).__name__}")
    if not isinstance(optimizer, optax.GradientTransformation):
        hint = (f"; {getattr(optimizer, '__name__', 'it')} is a factory: call it, e.g. optax.adam(1e-3)"
                if callable(optimizer) else "")
        raise TypeError(f"{name}: optimizer must be an optax GradientTransformation (such as optax.adam(1e-3)); "
                        f"got {type(optimizer).__name__}{hint}")
    if not isinstance(steps, Minibatches):
        if steps is None:
            raise ValueError(f"{name}: give the number of steps (steps=500, or Minibatches(batch_size, epochs=...))")
        steps = cast(int, count(name, "steps", steps))
    objective = Objective(reduction=cast(Any, reduction), tol=tol)  # checks reduction and tol, by Objective's rules
    return Solve(recipe, optimizer, steps, objective.tol, objective.reduction)

