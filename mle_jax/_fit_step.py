"""The device side of ``fit``: the optimizer step and the compiled loop that runs a chunk of steps.

    phi_{t+1} = phi_t + optimizer.update(grad_phi L_batch(phi_t))

One compiled program runs ``n <= CAPACITY`` steps in a ``lax.while_loop`` whose trip
count is an argument: the losses go into a buffer of ``CAPACITY`` entries, the only
length the program is compiled for, and the host runs longer chunks as several calls
(dispatched without waiting, read back once). The values of the options named in
``TRACED`` (``Validation``'s ``every`` and ``patience``, ``Objective``'s ``tol``) are
arguments too (a ``Schedule`` of traced scalars); only whether each is given is compiled
in. So fits that differ only in their number of steps (50, 1500 or 10**6), ``every``,
``patience`` or ``tol`` run one program, compiled once.

The loop's carry holds its result (optimistix's ``RESULTS``): an int32 code, 0 while it
runs, set by the step that ends the fit (the gradient norm at ``tol``, patience run out, a
non-finite loss; ``_fit_options.RESULTS`` maps it to a ``Stop``), and the loop stops there.
A fit that checks nothing else per step (no ``tol``, no validation) pays nothing per step
for it: its call finds a non-finite loss once, in its loss buffer, after its last step
(then the host cuts the history at the first). Otherwise the carry holds only what the
fit's options need (``None`` carries nothing): a plain fit carries the trained parameters,
the optimizer state and the code; one with a ``tol`` also the gradient norm of its last step
(the norm the converged step reached, which ``fit``'s profiled dispersion reads).

Programs are cached on the recipe (``recipe.programs``, ``mle_jax._cache.Programs``), so
they, and the optimizers they were built for, live no longer than the recipe does.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._fit_options import Stop, code
from .newton import HESSIAN_FN, objective_hessian, takes_hessian
from ._params import Parts, float_dtype, with_state
from .recipe import Recipe

CAPACITY = 1024  # the steps one call of a program can run: the length of its loss buffer
TRACED = ("every", "patience", "tol")  # options whose values reach the program as arguments


class StepOptions(NamedTuple):
    """The step's options (hashable), named as the groups name them: ``Minibatches.batch_size``,
    ``Validation.every`` (resolved) and ``patience``, and every field of ``Objective`` (a new one
    is a field here, filled by ``fit`` from the group by its name)."""

    n: int
    keyed: bool  # the model takes a key: a fresh one every step
    batch_size: int | None
    every: int | None
    patience: int | None
    reduction: str  # Objective's fields from here on
    tol: float | None
    profile: str | None = None  # fit(start=)'s profiled dispersion (glm_start's kind): the loop computes its MLE

    @property
    def watched(self) -> bool:
        """Whether each step checks for an end (``tol`` or validation); else each call does, once."""
        return self.tol is not None or self.every is not None

    @property
    def compiled(self) -> StepOptions:
        """What the program is compiled for: the ``TRACED`` options reduced to whether each is given."""
        return self._replace(**{name: None if getattr(self, name) is None else True for name in TRACED})

    def schedule(self) -> Schedule:
        """The values the program reads at run time (unused ones are placeholders); each a device scalar
        made once per value and shared (``constant``), so a repeated fit puts nothing on the device."""
        return Schedule(constant(self.every or 1, "int32"), constant(self.patience or 1, "int32"),
                        constant(float(self.tol or 0.0), jax.dtypes.canonicalize_dtype(np.float64).name))


@functools.lru_cache(maxsize=256, typed=True)
def constant(value: int | float, dtype: str) -> jax.Array:
    """The device scalar ``value`` in ``dtype``, made once (outside any trace) and shared by every fit:
    a scalar made per call is a host-to-device transfer each, ~20 us of a tiny fit's fixed cost. Arrays
    are immutable and no program donates its arguments, so sharing one is safe."""
    with jax.ensure_compile_time_eval():
        return jnp.asarray(value, dtype)


class Schedule(NamedTuple):
    """The traced values of ``TRACED``: validate every ``every`` steps, stop after ``patience``
    evaluations without improvement, converged when the gradient norm is <= ``tol``."""

    every: jax.Array
    patience: jax.Array
    tol: jax.Array


class Watch(NamedTuple):
    """Validation state, carried only when validation data are given."""

    best: Any             # best parameters (Parts) by validation NLL
    best_val: jax.Array
    best_step: jax.Array  # updates applied when the best was seen, or -1
    bad_evals: jax.Array  # evaluations since the last improvement


class Carry(NamedTuple):
    """The loop's state."""

    params: Parts
    opt_state: Any
    result: jax.Array               # int32: 0 while running, else the code of the Stop that ended it
    step: jax.Array | None = None   # updates so far (shuffles, model keys, validation schedule)
    perm: jax.Array | None = None   # this epoch's shuffle (minibatch fits)
    watch: Watch | None = None
    grad_norm: jax.Array | None = None  # with a tol: the gradient norm at the last step's parameters (tol's dtype)


class Keys(NamedTuple):
    shuffle: jax.Array | None  # draws each epoch's shuffle (minibatch fits)
    model: jax.Array | None    # draws each step's model key (models with a `key`)


def unknown_norm() -> jax.Array:
    """The gradient norm before any step (or after a resume that did not keep it): inf, in tol's dtype."""
    return constant(math.inf, jax.dtypes.canonicalize_dtype(np.float64).name)


def initial_carry(parts: Parts, opt_state, opts: StepOptions) -> Carry:
    carry = Carry(params=parts, opt_state=opt_state, result=constant(0, "int32"))
    if opts.batch_size is not None or opts.every is not None or opts.keyed:
        carry = carry._replace(step=constant(0, "int32"))
    if opts.batch_size is not None:
        carry = carry._replace(perm=jnp.arange(opts.n, dtype=jnp.int32))
    if opts.tol is not None:  # what the converged step reached (fit's profiled dispersion reads it: fit._profile)
        carry = carry._replace(grad_norm=unknown_norm())
    if opts.every is not None:
        carry = carry._replace(watch=Watch(
            best=parts, best_val=constant(float("inf"), "float32"), best_step=constant(-1, "int32"),
            bad_evals=constant(0, "int32")))
    return carry


def _ends(result, condition, stop: Stop):
    """``result``, or ``stop``'s code where the loop was still running and ``condition`` holds."""
    return jnp.where((result == 0) & condition, jnp.int32(code(stop)), result)


def _cached(recipe: Recipe, key, build):
    return recipe.programs.get(("fit",) + key, build)


def opt_init(recipe: Recipe, optimizer):
    """``optimizer.init`` compiled once per recipe and optimizer: run eagerly it is one dispatch
    per leaf, which on a GPU cost more than a short fit's steps. Optimizers are keyed by what they
    compute (``_cache.structure``): a fresh ``optax.lbfgs()`` per fit reuses the programs of the last."""
    return _cached(recipe, ("init", recipe.programs.key_of(optimizer)), lambda: jax.jit(optimizer.init))


def program(recipe: Recipe, optimizer, opts: StepOptions):
    """The jitted ``(carry, n, keys, data, val, schedule) -> (carry, (losses, val_nlls), ran, given)``
    running ``ran <= n <= CAPACITY`` steps (fewer when a step ends the fit); one per recipe,
    optimizer and ``opts.compiled``. ``given``: with ``opts.profile``, the profiled dispersion's MLE
    given the last parameters (``glm_start.given_model``: what ``fit`` sets it to), computed in the same
    program (no second program, no second wait: 0.3 ms of a 4 ms fit); else None."""
    opts = opts.compiled
    return _cached(recipe, ("run", recipe.programs.key_of(optimizer), opts),
                   lambda: _build(recipe, optimizer, opts, CAPACITY))


def _take(tree, idx):
    return None if tree is None else jax.tree_util.tree_map(lambda a: jnp.take(a, idx, axis=0), tree)


def _batch(opts: StepOptions, carry: Carry, key, data):
    """This step's batch: everything (full batch) or a slice of the epoch's shuffle."""
    if opts.batch_size is None:
        return carry.perm, data
    step = carry.step
    assert step is not None  # minibatch fits carry the step
    per_epoch = opts.n // opts.batch_size
    b = step % per_epoch
    perm = jax.lax.cond(
        b == 0,
        lambda: jax.random.permutation(jax.random.fold_in(key, step // per_epoch), opts.n).astype(jnp.int32),
        lambda: carry.perm)
    idx = jax.lax.dynamic_slice(perm, (b * opts.batch_size,), (opts.batch_size,))
    return perm, tuple(_take(d, idx) for d in data)


def _from_line_search(loss_fn, trained, opt_state):
    """``(loss, grads)`` at ``trained`` from the optimizer state's line search (``optax.value_and_grad_from_state``:
    its stored value and gradient where the value is finite, else evaluated), or ``None`` where the state
    keeps no single value and gradient (a first-order optimizer, or several line searches)."""
    try:
        return optax.value_and_grad_from_state(loss_fn)(trained, state=opt_state)
    except (ValueError, KeyError):
        return None


def make_step(recipe: Recipe, optimizer, opts: StepOptions):
    """The one optimizer step ``(carry, keys, data, val, schedule) -> (carry, (loss, val_nll))`` that
    ``fit``'s compiled loop (``program``) and ``mle_jax.solver`` both run: this step's batch, the loss
    and its gradient at ``carry.params``, the optimizer update, and the step's end (a non-finite loss
    when ``opts.watched``, the gradient norm at ``tol``, validation). Pure; traced, never run, here."""
    extra_args = isinstance(optimizer, optax.GradientTransformationExtraArgs)
    # a line search (optax.lbfgs's zoom) keeps the value and gradient at the point it accepted, which is this
    # step's point: read them back rather than evaluate the loss again (half of L-BFGS's evaluations), where
    # the loss is one function of the parameters (full batch, no model key, no model state)
    reuse = extra_args and opts.batch_size is None and not opts.keyed and not recipe.stateful
    # Newton (mj.newton) takes the objective's Hessian assembled from the raw outputs (X'WX for a GLM), same condition
    split = reuse and takes_hessian(optimizer)

    def one_step(carry: Carry, keys: Keys, data, val, schedule: Schedule, fixed=None):
        """``fixed``: ``data_term`` of the full batch (``_build``), or None: the objective's data-only part."""
        perm, (x, y, w, m) = _batch(opts, carry, keys.shuffle, data)
        key = jax.random.fold_in(keys.model, carry.step) if opts.keyed else None  # type: ignore[arg-type]
        parts = carry.params

        def objective(trained, parts: Parts, x, y, w, m, key):
            params = parts.replace(trained=trained).params()
            return recipe.objective(params, x, y, w, m, "loss", opts.reduction, key, train=True, data=fixed)
        cached = _from_line_search(lambda t: objective(t, parts, x, y, w, m, key)[0], parts.trained,
                                   carry.opt_state) if reuse else None
        if cached is not None:
            (loss, grads), state = cached, None
        else:
            (loss, state), grads = jax.value_and_grad(objective, has_aux=True)(parts.trained, parts, x, y, w, m, key)
        leaves = jax.tree_util.tree_leaves(grads)
        # a NaN gradient at a finite loss (a where's other branch, an L-BFGS search's stale value) makes every
        # update NaN: it ends the fit as a non-finite loss does, these parameters the last finite ones kept
        if leaves:
            loss = jnp.where(jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in leaves])), loss, jnp.nan)
        def update():
            if not extra_args:
                return optimizer.update(grads, carry.opt_state, parts.trained)
            # L-BFGS and other optimizers that use the value and a line search
            hessian_fn = objective_hessian(recipe, parts, x, y, w, m, opts.reduction) if split else None
            more = {} if hessian_fn is None else {HESSIAN_FN: hessian_fn}
            return optimizer.update(grads, carry.opt_state, parts.trained, value=loss, grad=grads,
                                    value_fn=lambda t: objective(t, parts, x, y, w, m, key)[0], **more)
        done = norm = None
        if opts.tol is not None:  # converged at this step's parameters: no update is computed (nor its search)
            norm = jnp.asarray(optax.tree_utils.tree_norm(grads), schedule.tol.dtype)
            done = norm <= schedule.tol
            updates, opt_state = jax.lax.cond(done, lambda: _unchanged(grads, carry.opt_state),
                                              lambda: _like(update(), grads, carry.opt_state))
        else:
            updates, opt_state = update()
        new_parts = parts.replace(trained=optax.apply_updates(parts.trained, updates))
        if recipe.stateful:  # the model's new state (BatchNorm statistics) replaces the old, undifferentiated
            new_parts = with_state(new_parts, state)
        finite = jnp.isfinite(loss)
        new = carry._replace(params=new_parts, opt_state=opt_state,
                             step=None if carry.step is None else carry.step + 1, perm=perm,
                             grad_norm=None if carry.grad_norm is None else norm)
        if opts.watched:  # this step's end, first of all a non-finite loss (no evaluation after it)
            new = new._replace(result=_ends(carry.result, ~finite, Stop.NON_FINITE))
        if done is not None:  # converged: the gradient norm at this step's parameters is <= tol
            new = new._replace(params=jax.lax.cond(done, lambda: carry.params, lambda: new.params),
                               result=_ends(new.result, done, Stop.CONVERGED))
        new, val_nll = _evaluate(opts, schedule, recipe, new, finite, val)
        return new, (jnp.asarray(loss, jnp.float32), val_nll)

    return one_step


def _unchanged(grads, opt_state):
    """The update of a converged step: zero updates and the optimizer state as it was."""
    return jax.tree_util.tree_map(jnp.zeros_like, grads), opt_state


def _like(update, grads, opt_state):
    """A step's ``(updates, state)`` in the types of its converged twin (``_unchanged``): updates in the
    gradients' dtypes, the state in the old state's, so that both branches of the ``lax.cond`` agree
    with ``update`` traced once (the state is a loop carry, so only a weak type can differ)."""
    updates, state = update
    return (jax.tree_util.tree_map(lambda u, g: jnp.asarray(u, g.dtype), updates, grads),
            jax.tree_util.tree_map(lambda a, o: jax.lax.convert_element_type(a, o.dtype) if hasattr(o, "dtype")
                                   else a, state, opt_state))


def _build(recipe: Recipe, optimizer, opts: StepOptions, size: int):
    one_step = make_step(recipe, optimizer, opts)

    def run(carry: Carry, n, keys: Keys, data, val, schedule: Schedule):
        buffer = jnp.full((size,), jnp.nan, jnp.float32)
        # a full batch's data-only terms (the Poisson's log y!) are one number: summed here, once per call,
        # not in every evaluation of the objective in the loop (``Recipe.objective``'s ``data``)
        fixed = None if opts.batch_size is not None else recipe.data_term(
            data[1], data[2], data[3], "loss", opts.reduction, float_dtype(carry.params.params().model))

        def loop(state):
            i, c, losses, vals = state
            c, (loss, val_nll) = one_step(c, keys, data, val, schedule, fixed)
            return i + 1, c, losses.at[i].set(loss), None if vals is None else vals.at[i].set(val_nll)

        start = (jnp.int32(0), carry, buffer, None if val is None else buffer)
        if opts.watched:
            ran, carry, losses, vals = jax.lax.while_loop(lambda s: (s[0] < n) & (s[1].result == 0), loop, start)
        else:  # nothing ends it early but a non-finite loss, found once after the last step
            ran, carry, losses, vals = jax.lax.while_loop(lambda s: s[0] < n, loop, start)
            bad = jnp.any(~jnp.isfinite(losses) & (jnp.arange(size) < ran))
            carry = carry._replace(result=_ends(carry.result, bad, Stop.NON_FINITE))
        given = None
        if opts.profile is not None:  # full batch (fit profiles only there): the dispersion given these parameters
            from .glm_start import _combined, given_model
            given = given_model(recipe, opts.profile, carry.params.params(), data[0], data[1], _combined(*data[2:]))
        return carry, (losses, vals), ran, given

    return jax.jit(run)


def _evaluate(opts: StepOptions, schedule: Schedule, recipe: Recipe, carry: Carry, finite, val):
    """Every ``schedule.every`` steps: the validation mean NLL (evaluation mode), the best parameters, patience."""
    if val is None:
        return carry, None
    watch, step = carry.watch, carry.step
    assert watch is not None and step is not None  # carried with validation data
    due = finite & (step % schedule.every == 0)

    def evaluate():
        value, _ = recipe.objective(carry.params.params(), *val, kind="nll", reduction="mean")
        return value.astype(jnp.float32)
    val_nll = jax.lax.cond(due, evaluate, lambda: jnp.float32(jnp.nan))
    improved = due & (val_nll < watch.best_val)
    bad = jnp.where(due, jnp.where(improved, 0, watch.bad_evals + 1), watch.bad_evals)
    result = carry.result if opts.patience is None else _ends(carry.result, bad >= schedule.patience,
                                                               Stop.EARLY_STOPPING)
    return carry._replace(result=result, watch=Watch(
        best=jax.lax.cond(improved, lambda: carry.params, lambda: watch.best),
        best_val=jnp.where(improved, val_nll, watch.best_val),
        best_step=jnp.where(improved, step, watch.best_step),
        bad_evals=bad)), val_nll
