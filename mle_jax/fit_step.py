"""The device side of ``fit``: the optimizer step and the compiled loop that runs a chunk of steps.

    phi_{t+1} = phi_t + optimizer.update(grad_phi L_batch(phi_t))

One compiled program runs ``n <= CAPACITY`` steps in a ``lax.while_loop`` whose trip
count is an argument: the losses go into a buffer of ``CAPACITY`` entries, the only
length the program is compiled for, and the host runs longer chunks as several calls
(dispatched without waiting, read back once). The validation schedule, the patience
and ``tol`` are arguments too (a ``Schedule`` of traced scalars); only whether each is
given is compiled in. So fits that differ only in their number of steps (50, 1500 or
10**6), their ``eval_every``, ``patience`` or ``tol`` run one program, compiled once.
Its carry holds only what the fit's options need (``None`` carries nothing): a plain
fit carries exactly what a hand-written scan does, the trained parameters and the
optimizer state.

Programs are cached on the recipe (``recipe.programs``, the newest
``PROGRAMS_KEPT``), so they, and the optimizers they were built for, live no
longer than the recipe does.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .params import Parts, with_state
from .recipe import Recipe

PROGRAMS_KEPT = 8
CAPACITY = 1024  # the steps one call of a program can run: the length of its loss buffer


class StepOptions(NamedTuple):
    """The fit's step options as given (hashable). The program is compiled for ``compiled``:
    the values of ``eval_every``, ``patience`` and ``tol`` reach it as a ``Schedule``."""

    n: int
    batch_size: int | None
    reduction: str
    eval_every: int | None
    patience: int | None
    tol: float | None
    keyed: bool  # the model takes a key: a fresh one every step

    @property
    def compiled(self) -> StepOptions:
        """The options with ``eval_every``, ``patience`` and ``tol`` reduced to whether each is given."""
        given = lambda v: None if v is None else True  # noqa: E731
        return self._replace(eval_every=given(self.eval_every), patience=given(self.patience), tol=given(self.tol))

    def schedule(self) -> Schedule:
        """The values the program reads at run time (unused ones are placeholders)."""
        return Schedule(jnp.asarray(self.eval_every or 1, jnp.int32), jnp.asarray(self.patience or 1, jnp.int32),
                        jnp.asarray(self.tol or 0.0, jnp.result_type(float)))


class Schedule(NamedTuple):
    """The traced settings of a program: validate every ``every`` steps, stop after ``patience``
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
    alive: jax.Array      # False once the loss was not finite or patience ran out
    stopped_at: jax.Array  # updates applied when patience ran out, or -1


class Carry(NamedTuple):
    """The loop's state. Non-finite losses are found by the host in the returned losses."""

    params: Parts
    opt_state: Any
    step: jax.Array | None = None   # updates so far (shuffles, model keys, validation schedule)
    perm: jax.Array | None = None   # this epoch's shuffle (minibatch fits)
    watch: Watch | None = None
    converged_at: jax.Array | None = None  # the step whose gradient norm fell to tol, or -1


class Keys(NamedTuple):
    shuffle: jax.Array | None  # draws each epoch's shuffle (minibatch fits)
    model: jax.Array | None    # draws each step's model key (models with a `key`)


def initial_carry(parts: Parts, opt_state, opts: StepOptions) -> Carry:
    carry = Carry(params=parts, opt_state=opt_state)
    if opts.batch_size is not None or opts.eval_every is not None or opts.tol is not None or opts.keyed:
        carry = carry._replace(step=jnp.array(0, jnp.int32))
    if opts.tol is not None:
        carry = carry._replace(converged_at=jnp.array(-1, jnp.int32))
    if opts.batch_size is not None:
        carry = carry._replace(perm=jnp.arange(opts.n, dtype=jnp.int32))
    if opts.eval_every is not None:
        carry = carry._replace(watch=Watch(
            best=parts, best_val=jnp.array(jnp.inf, jnp.float32), best_step=jnp.array(-1, jnp.int32),
            bad_evals=jnp.array(0, jnp.int32), alive=jnp.array(True), stopped_at=jnp.array(-1, jnp.int32)))
    return carry


def _cached(recipe: Recipe, key, build):
    return recipe.programs.get(("fit",) + key, build)


def opt_init(recipe: Recipe, optimizer):
    """``optimizer.init`` compiled once per recipe and optimizer: run eagerly it is one dispatch
    per leaf, which on a GPU cost more than a short fit's steps."""
    return _cached(recipe, ("init", optimizer), lambda: jax.jit(optimizer.init))


def program(recipe: Recipe, optimizer, opts: StepOptions):
    """The jitted ``(carry, n, keys, data, val, schedule) -> (carry, (losses, val_nlls))`` running
    ``n <= CAPACITY`` steps; one per recipe, optimizer and ``opts.compiled``."""
    opts = opts.compiled
    return _cached(recipe, ("run", optimizer, opts), lambda: _build(recipe, optimizer, opts, CAPACITY))


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
        lambda: jax.random.permutation(jax.random.fold_in(key, step // per_epoch), opts.n),
        lambda: carry.perm)
    idx = jax.lax.dynamic_slice(perm, (b * opts.batch_size,), (opts.batch_size,))
    return perm, tuple(_take(d, idx) for d in data)


def _build(recipe: Recipe, optimizer, opts: StepOptions, size: int):
    extra_args = isinstance(optimizer, optax.GradientTransformationExtraArgs)

    def objective(trained, parts: Parts, x, y, w, m, key):
        params = parts.replace(trained=trained).params()
        return recipe.objective(params, x, y, w, m, "loss", opts.reduction, key, train=True)

    def one_step(carry: Carry, keys: Keys, data, val, schedule: Schedule):
        perm, (x, y, w, m) = _batch(opts, carry, keys.shuffle, data)
        key = jax.random.fold_in(keys.model, carry.step) if opts.keyed else None  # type: ignore[arg-type]
        parts = carry.params
        (loss, state), grads = jax.value_and_grad(objective, has_aux=True)(parts.trained, parts, x, y, w, m, key)
        if extra_args:  # L-BFGS and other optimizers that use the value and a line search
            updates, opt_state = optimizer.update(
                grads, carry.opt_state, parts.trained, value=loss, grad=grads,
                value_fn=lambda t: objective(t, parts, x, y, w, m, key)[0])
        else:
            updates, opt_state = optimizer.update(grads, carry.opt_state, parts.trained)
        new_parts = parts.replace(trained=optax.apply_updates(parts.trained, updates))
        if recipe.stateful:  # the model's new state (BatchNorm statistics) replaces the old, undifferentiated
            new_parts = with_state(new_parts, state)
        new = carry._replace(params=new_parts, opt_state=opt_state,
                             step=None if carry.step is None else carry.step + 1, perm=perm)
        if opts.tol is not None:  # converged: the gradient norm at this step's parameters is <= tol
            done = optax.tree_utils.tree_norm(grads) <= schedule.tol
            new = new._replace(params=jax.lax.cond(done, lambda: carry.params, lambda: new.params),
                               converged_at=jnp.where(done, carry.step, -1))  # type: ignore[arg-type]
        new, val_nll = _evaluate(opts, schedule, recipe, new, jnp.isfinite(loss), val)
        return new, (loss.astype(jnp.float32), val_nll)

    def running(carry: Carry):
        """False once the gradient norm fell to tol or patience ran out: no further step is computed."""
        going = jnp.bool_(True)
        if opts.tol is not None:
            going &= carry.converged_at < 0  # type: ignore[operator]
        if opts.patience is not None:
            going &= carry.watch.stopped_at < 0  # type: ignore[union-attr]
        return going

    def run(carry: Carry, n, keys: Keys, data, val, schedule: Schedule):
        buffer = jnp.full((size,), jnp.nan, jnp.float32)

        def loop(state):
            i, c, losses, vals = state
            c, (loss, val_nll) = one_step(c, keys, data, val, schedule)
            return i + 1, c, losses.at[i].set(loss), None if vals is None else vals.at[i].set(val_nll)

        start = (jnp.int32(0), carry, buffer, None if val is None else buffer)
        _, carry, losses, vals = jax.lax.while_loop(lambda s: (s[0] < n) & running(s[1]), loop, start)
        return carry, (losses, vals)

    return jax.jit(run)


def _evaluate(opts: StepOptions, schedule: Schedule, recipe: Recipe, carry: Carry, finite, val):
    """Every ``schedule.every`` steps: the validation mean NLL (evaluation mode), the best parameters, patience."""
    if val is None:
        return carry, None
    watch, step, every = carry.watch, carry.step, schedule.every
    assert watch is not None and step is not None  # carried with validation data
    ok = watch.alive & finite
    due = ok & (step % every == 0)

    def evaluate():
        value, _ = recipe.objective(carry.params.params(), *val, kind="nll", reduction="mean")
        return value.astype(jnp.float32)
    val_nll = jax.lax.cond(due, evaluate, lambda: jnp.float32(jnp.nan))
    improved = due & (val_nll < watch.best_val)
    bad = jnp.where(due, jnp.where(improved, 0, watch.bad_evals + 1), watch.bad_evals)
    patient = True if opts.patience is None else bad < schedule.patience
    alive = ok & patient
    return carry._replace(watch=Watch(
        best=jax.lax.cond(improved, lambda: carry.params, lambda: watch.best),
        best_val=jnp.where(improved, val_nll, watch.best_val),
        best_step=jnp.where(improved, step, watch.best_step),
        bad_evals=bad, alive=alive,
        stopped_at=jnp.where(ok & ~patient, step, watch.stopped_at))), val_nll
