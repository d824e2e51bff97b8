"""Step 3 of the recipe: minimise the NLL with any optax optimizer.

    phi_hat = argmin_phi  -sum_i log Pr(y_i | f[x_i, phi])

All steps of a chunk run fused in one ``lax.scan`` inside one ``jit``; the data
are arguments of that compiled program (never baked-in constants), and the
compiled program is cached, so a second ``fit`` with the same recipe,
optimizer, shapes and options does not compile again. Between chunks the host
updates the progress bar, stops early, and writes checkpoints.

Every step is guarded: when the loss is NaN or inf the fit stops, names the
step, and returns the last parameters whose loss was finite.
"""

from __future__ import annotations

import functools
import math
import sys
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .checks import check_batch
from .recipe import Recipe


class FitResult(NamedTuple):
    """What ``fit`` returns.

    Fields:
      params: the fitted parameters: the best by validation NLL when validation
        data were given, the last finite ones when the loss became NaN/inf,
        the final ones otherwise.
      history: the training loss at every step run (float32 or better), shape (steps_run,).
      stopped: ``"completed"``, ``"converged"`` (``tol``), ``"early_stopping"`` or ``"non_finite"``.
      message: a sentence saying why the fit stopped.
      opt_state: the optimizer state after the last step run (not finite after a non-finite stop).
      val_history: ``(steps, validation mean NLL)`` at each evaluation, shape (E, 2), or None.
      best_step: the step (1-based count of updates) of the best validation NLL, or None.
      epoch_history: the mean training loss per epoch (minibatch fits), or None.
    """

    params: Any
    history: np.ndarray
    stopped: str
    message: str
    opt_state: Any
    val_history: np.ndarray | None = None
    best_step: int | None = None
    epoch_history: np.ndarray | None = None

    @property
    def steps_run(self) -> int:
        return int(self.history.shape[0])


class _Watch(NamedTuple):
    """Validation state, carried only when validation data are given."""

    best: Any             # best parameters by validation NLL
    best_val: jax.Array
    best_step: jax.Array  # updates applied when the best was seen, or -1
    bad_evals: jax.Array  # evaluations since the last improvement
    alive: jax.Array      # False once the loss was not finite or patience ran out
    stopped_at: jax.Array  # updates applied when patience ran out, or -1


class _Carry(NamedTuple):
    """The scan's state: only what the fit's options need (None carries nothing).

    A plain fit carries exactly what a hand-written scan does, the parameters and the
    optimizer state: on small models every extra scalar op in the loop body costs as
    much as the model. Non-finite losses are found by the host in the returned losses.
    """

    params: Any
    opt_state: Any
    step: jax.Array | None = None   # updates so far (minibatch shuffles, validation schedule)
    perm: jax.Array | None = None   # this epoch's shuffle (minibatch fits)
    watch: _Watch | None = None
    converged_at: jax.Array | None = None  # the step whose gradient norm fell to tol, or -1


class _Start(NamedTuple):
    start_step: int
    carry: _Carry


class _Options(NamedTuple):
    n: int
    batch_size: int | None
    reduction: str
    eval_every: int | None
    patience: int | None
    tol: float | None = None


def _take(tree, idx):
    return None if tree is None else jax.tree_util.tree_map(lambda a: jnp.take(a, idx, axis=0), tree)


def _batch(opts: _Options, carry: _Carry, key, data):
    """This step's batch: everything (full batch) or a slice of the epoch's shuffle."""
    if opts.batch_size is None:
        return carry.perm, data
    per_epoch = opts.n // opts.batch_size
    b = carry.step % per_epoch
    perm = jax.lax.cond(
        b == 0,
        lambda: jax.random.permutation(jax.random.fold_in(key, carry.step // per_epoch), opts.n),
        lambda: carry.perm)
    idx = jax.lax.dynamic_slice(perm, (b * opts.batch_size,), (opts.batch_size,))
    return perm, tuple(_take(d, idx) for d in data)


@functools.lru_cache(maxsize=128)
def _opt_init(optimizer):
    """``optimizer.init`` compiled once per optimizer: run eagerly it is one dispatch per leaf,
    which on a GPU cost more than a short fit's steps."""
    return jax.jit(optimizer.init)


@functools.lru_cache(maxsize=128)
def _runner(recipe: Recipe, optimizer, opts: _Options, length: int):
    """A jitted ``(carry, key, data, val) -> (carry, (losses, val_nlls))`` running ``length`` steps."""
    extra_args = isinstance(optimizer, optax.GradientTransformationExtraArgs)

    def objective(params, x, y, w, m):
        return recipe.reduce(params, x, y, w, m, kind="loss", reduction=opts.reduction)

    def one_step(carry: _Carry, key, data, val):
        perm, (x, y, w, m) = _batch(opts, carry, key, data)
        loss, grads = jax.value_and_grad(objective)(carry.params, x, y, w, m)
        if extra_args:  # L-BFGS and other optimizers that use the value and a line search
            updates, opt_state = optimizer.update(
                grads, carry.opt_state, carry.params, value=loss, grad=grads,
                value_fn=lambda p: objective(p, x, y, w, m))
        else:
            updates, opt_state = optimizer.update(grads, carry.opt_state, carry.params)
        new = carry._replace(params=optax.apply_updates(carry.params, updates), opt_state=opt_state,
                             step=None if carry.step is None else carry.step + 1, perm=perm)
        if opts.tol is not None:  # converged: the gradient norm at this step's parameters is <= tol
            done = optax.tree_utils.tree_norm(grads) <= opts.tol
            new = new._replace(params=jax.lax.cond(done, lambda: carry.params, lambda: new.params),
                               converged_at=jnp.where(done, carry.step, -1))
        new, val_nll = _evaluate(opts, recipe, new, jnp.isfinite(loss), val)
        return new, (loss.astype(jnp.float32), val_nll)

    def until_converged(carry: _Carry, key, data, val):
        """With ``tol``: once converged, every remaining step is skipped (a cond), not computed."""
        def skip(c):
            nan = jnp.float32(jnp.nan)
            return c._replace(step=c.step + 1), (nan, None if val is None else nan)
        return jax.lax.cond(carry.converged_at >= 0, skip, lambda c: one_step(c, key, data, val), carry)

    def run(carry, key, data, val):
        if carry.opt_state is None:  # a fit of one chunk initialises the optimizer in the same program
            carry = carry._replace(opt_state=optimizer.init(carry.params))
        body = one_step if opts.tol is None else until_converged
        return jax.lax.scan(lambda c, _: body(c, key, data, val), carry, None, length=length)

    return jax.jit(run)


def _evaluate(opts: _Options, recipe: Recipe, carry: _Carry, finite, val):
    """Every ``eval_every`` steps: the validation mean NLL, the best parameters, patience."""
    if val is None:
        return carry, None
    watch = carry.watch
    ok = watch.alive & finite
    due = ok & (carry.step % opts.eval_every == 0)
    val_nll = jax.lax.cond(
        due, lambda: recipe.reduce(carry.params, *val, kind="nll", reduction="mean").astype(jnp.float32),
        lambda: jnp.float32(jnp.nan))
    improved = due & (val_nll < watch.best_val)
    bad = jnp.where(due, jnp.where(improved, 0, watch.bad_evals + 1), watch.bad_evals)
    patient = True if opts.patience is None else bad < opts.patience
    alive = ok & patient
    return carry._replace(watch=_Watch(
        best=jax.lax.cond(improved, lambda: carry.params, lambda: watch.best),
        best_val=jnp.where(improved, val_nll, watch.best_val),
        best_step=jnp.where(improved, carry.step, watch.best_step),
        bad_evals=bad, alive=alive,
        stopped_at=jnp.where(ok & ~patient, carry.step, watch.stopped_at))), val_nll


def _progress_bar(progress, total):
    if progress is None:
        progress = sys.stderr.isatty() and total >= 2000
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is the optional 'progress' extra
        return None
    return tqdm(total=total, unit="step", desc="fit", leave=False)


def fit(recipe: Recipe, params, x, y, optimizer: optax.GradientTransformation, steps: int | None = None,
        *, epochs: int | None = None, batch_size: int | None = None, key=None,
        weights=None, mask=None, reduction: str = "mean",
        validation: tuple | None = None, eval_every: int | None = None, patience: int | None = None,
        tol: float | None = None,
        progress: bool | None = None, chunk_size: int | None = None, callback: Callable | None = None,
        checkpoint_dir=None, checkpoint_every: int | None = None, mesh=None, opt_state=None) -> FitResult:
    """Fit ``params`` by minimising the recipe's loss with an optax optimizer.

    Args:
      recipe: from ``mj.recipe(model, family)``.
      params: ``recipe.init(model_params)``.
      x, y: the training data (leading axis = examples); validated once here.
      optimizer: any optax ``GradientTransformation``; ``optax.lbfgs()`` works
        full-batch (it receives the value and a ``value_fn`` for its line search).
      steps: the number of optimizer updates; or give ``epochs`` with ``batch_size``.
      batch_size: minibatch size (None: full batch). Each epoch uses a fresh shuffle
        drawn from ``key`` (required); the remainder of an epoch is dropped.
      weights, mask: per-example weights and mask (see ``recipe``).
      reduction: ``"mean"`` (default; learning rates do not scale with N) or ``"sum"``
        (the lecture's L[phi]). The minimiser is the same.
      validation: ``(x_val, y_val)``; its mean NLL is computed every ``eval_every``
        steps and the result keeps the best parameters.
      patience: stop after this many evaluations without improvement.
      tol: stop when the gradient norm of the loss falls to ``tol`` (``stopped ==
        "converged"``); the remaining steps of the scan are skipped, not computed.
      progress: a tqdm bar (None: on when stderr is a terminal and the fit is long).
      chunk_size: steps fused per compiled scan (None: all of them, or 1/20 of them
        when a bar, patience or a callback needs the host in between).
      callback: ``callback(steps_done, history_so_far)`` after every chunk.
      checkpoint_dir, checkpoint_every: save the fit's whole state with orbax every
        ``checkpoint_every`` steps; a fit started again with the same arguments and
        directory resumes from the latest checkpoint.
      mesh: a ``jax.sharding.Mesh``: the data are split along the batch axis over its
        first axis and the parameters replicated; the gradient is reduced across
        devices by XLA (see ``mle_jax.sharding``).
      opt_state: start from this optimizer state (default ``optimizer.init(params)``).

    Returns:
      A ``FitResult`` with ``.params``, ``.history`` (loss per step), ``.stopped``, ``.message``.
    """
    n = check_batch("fit", x, y, ("weights", weights), ("mask", mask))
    if recipe.validate:  # once per data set: the recipe remembers the arrays it has checked
        recipe.check(x, y, weights, mask)
        if validation is not None:
            recipe.check(*validation)
    total, opts = _plan(n, steps, epochs, batch_size, key, reduction, validation, eval_every, patience, tol)
    if opts.batch_size is None:  # the key only draws the minibatch shuffles
        key = None
    bar = _progress_bar(progress, total)
    if chunk_size is None:
        chunked = bar is not None or patience is not None or callback is not None
        chunk_size = max(1, math.ceil(total / 20)) if chunked else total
    if checkpoint_every is not None:
        if checkpoint_dir is None or checkpoint_every < 1:
            raise ValueError("fit: checkpoint_every needs a checkpoint_dir and must be >= 1")
        chunk_size = min(chunk_size, checkpoint_every)
    if opt_state is None and (chunk_size < total or checkpoint_dir is not None or mesh is not None):
        opt_state = _opt_init(optimizer)(params)  # else the first (and only) chunk's program does it
    carry = _initial_carry(params, opt_state, opts)
    data, val = (x, y, weights, mask), (None if validation is None else tuple(validation))
    history, done, store, starts = [], 0, None, [None, None]
    if checkpoint_dir is not None:
        from .checkpoint import Checkpoints
        store = Checkpoints(checkpoint_dir)
        restored = store.restore(carry)
        if restored is not None:
            carry, past = restored
            history, done = [past], len(past)
    if mesh is not None:
        from .sharding import replicate, shard_batch
        carry, data, val = replicate(mesh, carry), shard_batch(mesh, data), shard_batch(mesh, val)
    if bar is not None:
        bar.update(done)
    bad_step = None
    try:
        while done < total:
            length = min(chunk_size, total - done)
            if checkpoint_every is not None:  # chunks end on checkpoint boundaries
                length = min(length, checkpoint_every - done % checkpoint_every)
            starts = [starts[1], _Start(done, carry)]  # to replay up to the last finite loss, if need be
            carry, (chunk_losses, chunk_vals) = _runner(recipe, optimizer, opts, length)(carry, key, data, val)
            # one transfer from the device per chunk
            chunk_losses, chunk_vals, converged_at, alive = jax.device_get(
                (chunk_losses, chunk_vals, carry.converged_at, None if carry.watch is None else carry.watch.alive))
            chunk_vals = np.full(length, np.nan, np.float32) if chunk_vals is None else chunk_vals
            history.append(np.stack([chunk_losses, chunk_vals], axis=-1))
            converged_at = -1 if converged_at is None else int(converged_at)
            ran = length if converged_at < 0 else max(0, converged_at + 1 - done)  # steps actually computed
            bad = np.flatnonzero(~np.isfinite(chunk_losses[:ran]))
            if bad.size:
                bad_step = done + int(bad[0])
            done += length
            if bad_step is not None:
                break
            if store is not None and (done % checkpoint_every == 0 or done == total):
                store.save(done, carry, np.concatenate(history))
            if bar is not None:
                bar.update(length)
                bar.set_postfix(loss=f"{float(np.mean(chunk_losses[-max(1, length // 10):])):.4g}")
            if callback is not None:
                callback(done, np.concatenate(history)[:, 0])
            if (alive is not None and not bool(alive)) or converged_at >= 0:
                break
    finally:
        if bar is not None:
            bar.close()
        if store is not None:
            store.close()
    both = np.concatenate(history) if history else np.zeros((0, 2), np.float32)
    last_finite = None if bad_step is None else _last_finite(recipe, optimizer, opts, bad_step, starts, key,
                                                               data, val)
    return _result(carry, bad_step, last_finite, both[:, 0], both[:, 1], opts, total)


def _last_finite(recipe, optimizer, opts, bad_step: int, starts, key, data, val):
    """The parameters whose loss was the last finite one, replayed from a chunk's start carry.

    Steps are deterministic, so replaying from the start of the chunk (or of the one
    before) reproduces them exactly; nothing is paid unless a loss was not finite.
    """
    target = max(bad_step - 1, 0)  # at step 0 the starting parameters are all there is
    for start in reversed(starts):
        if start is not None and start.start_step <= target:
            length = target - start.start_step
            if length == 0:
                return start.carry.params
            replayed, _ = _runner(recipe, optimizer, opts, length)(start.carry, key, data, val)
            return replayed.params
    raise AssertionError("no chunk start precedes the non-finite step")  # pragma: no cover


def _plan(n, steps, epochs, batch_size, key, reduction, validation, eval_every, patience, tol=None):
    if batch_size is not None:
        if not 1 <= batch_size <= n:
            raise ValueError(f"fit: batch_size must lie in [1, {n}]; got {batch_size}")
        if key is None:
            raise ValueError("fit: minibatches need an explicit PRNG key for the shuffles (key=...)")
        if (steps is None) == (epochs is None):
            raise ValueError("fit: give exactly one of steps or epochs")
        total = steps if steps is not None else epochs * (n // batch_size)
    else:
        if epochs is not None:
            raise ValueError("fit: epochs needs a batch_size; full-batch fits count steps")
        if steps is None:
            raise ValueError("fit: give the number of steps")
        total = steps
    if total < 1:
        raise ValueError(f"fit: the number of steps must be >= 1; got {total}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"fit: reduction must be 'mean' or 'sum'; got {reduction!r}")
    if validation is None and (patience is not None or eval_every is not None):
        raise ValueError("fit: eval_every and patience need validation=(x_val, y_val)")
    if validation is not None:
        eval_every = eval_every or max(1, total // 100)
    if patience is not None and patience < 1:
        raise ValueError(f"fit: patience must be >= 1; got {patience}")
    if tol is not None and not tol > 0:
        raise ValueError(f"fit: tol must be > 0; got {tol}")
    return total, _Options(n, batch_size, reduction, eval_every, patience, tol)


def _initial_carry(params, opt_state, opts: _Options):
    carry = _Carry(params=params, opt_state=opt_state)
    if opts.batch_size is not None or opts.eval_every is not None or opts.tol is not None:
        carry = carry._replace(step=jnp.array(0, jnp.int32))
    if opts.tol is not None:
        carry = carry._replace(converged_at=jnp.array(-1, jnp.int32))
    if opts.batch_size is not None:
        carry = carry._replace(perm=jnp.arange(opts.n, dtype=jnp.int32))
    if opts.eval_every is not None:
        carry = carry._replace(watch=_Watch(
            best=params, best_val=jnp.array(jnp.inf, jnp.float32), best_step=jnp.array(-1, jnp.int32),
            bad_evals=jnp.array(0, jnp.int32), alive=jnp.array(True), stopped_at=jnp.array(-1, jnp.int32)))
    return carry


def _result(carry: _Carry, bad_step, last_finite, losses, vals, opts: _Options, total) -> FitResult:
    watch = carry.watch
    stopped_at = -1 if watch is None else int(watch.stopped_at)
    if bad_step is not None:
        history = losses[:bad_step + 1]
        stopped, params = "non_finite", last_finite
        message = (f"stopped at step {bad_step}: the loss was {history[-1]} (not finite); "
                   f"returning the parameters of step {max(bad_step - 1, 0)}, the last with a finite loss")
    elif carry.converged_at is not None and int(carry.converged_at) >= 0:
        at = int(carry.converged_at)
        history, stopped, params = losses[:at + 1], "converged", carry.params
        message = f"converged at step {at}: the gradient norm fell to tol = {opts.tol:g}"
    elif stopped_at >= 0:
        history, stopped, params = losses[:stopped_at], "early_stopping", carry.params
        message = (f"stopped early at step {stopped_at}: no better validation NLL in "
                   f"{opts.patience} evaluations")
    else:
        history, stopped, params = losses[:total], "completed", carry.params
        message = f"completed {len(history)} steps"
    val_history, best_step = None, None
    if watch is not None:
        idx = np.flatnonzero(np.isfinite(vals[:len(history)]))
        val_history = np.stack([idx + 1, vals[idx]], axis=1) if len(idx) else np.zeros((0, 2))
        if int(watch.best_step) >= 0:
            best_step, params = int(watch.best_step), watch.best
            if stopped != "non_finite":
                message += f"; kept the best validation NLL {float(watch.best_val):.6g} (step {best_step})"
    epoch_history = None
    if opts.batch_size is not None:
        per_epoch = opts.n // opts.batch_size
        whole = len(history) // per_epoch * per_epoch
        epoch_history = history[:whole].astype(np.float64).reshape(-1, per_epoch).mean(axis=1)
    return FitResult(params, history, stopped, message, carry.opt_state, val_history, best_step, epoch_history)
