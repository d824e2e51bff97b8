"""Step 3 of the recipe: minimise the NLL with any optax optimizer.

    phi_hat = argmin_phi  -sum_i log Pr(y_i | f[x_i, phi])

``fit`` is built from parts: the option groups and stop reasons
(``_fit_options``: ``Minibatches``, ``Objective``, ``Validation``, ``Run`` with
``Progress`` and ``Checkpoints``), the device side, the compiled loop of optimizer
steps whose carry holds the loop's result code (``_fit_step``), and the host side,
the chunk loop with its hooks and the replay after a non-finite loss (``_fit_loop``).
Every argument is checked here, before anything compiles.

Every step is guarded: when the loss is NaN or inf the fit stops, names the
step, and returns the last parameters whose loss was finite (or, with
validation data, the best by validation NLL), saying which it returned.

What a fit cannot deliver is said in its message and warned with a named class
(``mle_jax.diagnostics``): perfect separation of a discrete family's data (the
MLE does not exist: ``PerfectSeparationWarning``), a family parameter on its
link's floor (its raw gradient vanishes there, so a small one is no maximum:
``BoundaryWarning``) and a validation that kept
nothing (every validation NLL NaN or inf, or none computed: ``ValidationWarning``).
Fits that differ only in their number of steps, ``Validation``'s ``every`` and
``patience`` or ``Objective``'s ``tol`` run one compiled program (``_fit_step``).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Generic, NamedTuple, TypeVar, cast

import jax
import numpy as np
import optax
from jax.typing import ArrayLike

from ._fit_loop import Job, drive
from ._fit_options import Minibatches, Objective, Run, Stop, Validation, count, settings
from ._fit_step import Carry, Keys, StepOptions, initial_carry, opt_init
from ._boundary import as_array
from ._stream import fit_stream, is_stream
from ._checks import check_batch, local
from .diagnostics import (BOUNDARY, SEPARATION, BoundaryWarning, PerfectSeparationWarning, ValidationWarning,
                          bounded_likelihood, separated)
from ._floors import describe, on_floor
from ._params import Params, is_trained, partition
from . import links
from .glm_start import HELD, _family_mle, _kind, _started, profiled
from .recipe import Recipe

__all__ = ["FitResult", "fit"]

P = TypeVar("P", bound=Params)


class FitResult(NamedTuple, Generic[P]):
    """What ``fit`` returns; ``FitResult[P]`` for params of type ``P``.

    Fields:
      params: the fitted parameters: the best by validation NLL when validation
        data were given, the last finite ones when the loss became NaN/inf,
        the final ones otherwise (``message`` says which).
      history: the training loss at every step run (float32 or better), shape (steps_run,).
      stopped: a ``Stop`` (a str: ``"completed"``, ``"converged"``, ``"early_stopping"``, ``"non_finite"``,
        ``"perfect_separation"``: a discrete family's fit that separates the data, whose
        maximum-likelihood estimate does not exist; see ``mle_jax.diagnostics``; ``"exhausted"``: a
        stream of batches ended first; ``"boundary"``: a family's own positive parameter ended on its
        link's floor, ``softplus(raw) <= eps``, where its raw gradient vanishes, so the fit's
        "completed" or "converged" is no MLE; see ``mle_jax._floors``).
      message: a sentence saying why the fit stopped and what it returned.
      opt_state: the optimizer state after the last step run (not finite after a non-finite stop).
      val_history: ``(steps, validation mean NLL)`` at each evaluation, shape (E, 2), or None.
      best_step: the step (1-based count of updates) of the best validation NLL, or None.
      epoch_history: the mean training loss per epoch (minibatch fits), or None.
    """

    params: P
    history: np.ndarray
    stopped: Stop
    message: str
    opt_state: optax.OptState
    val_history: np.ndarray | None = None
    best_step: int | None = None
    epoch_history: np.ndarray | None = None

    @property
    def steps_run(self) -> int:
        return int(self.history.shape[0])


def fit(recipe: Recipe, params: P, x: Any, y: Any, optimizer: optax.GradientTransformation,
        steps: int | Minibatches | None = None, *, key: ArrayLike | None = None, weights: Any = None,
        mask: Any = None, objective: Objective | None = None,
        validation: Validation | tuple[ArrayLike, ArrayLike] | None = None, run: Run | None = None,
        start: str | None = None) -> FitResult[P]:
    """Fit ``params`` by minimising the recipe's loss with an optax optimizer.

    Args:
      recipe: from ``mj.recipe(model, family)``.
      params: ``recipe.init(model_params)``: any pytree; its inexact arrays are trained.
      x, y: the training data (leading axis = examples): arrays, pandas / polars frames and series,
        torch tensors or any array-like (read once: ``mle_jax._boundary.as_array``); validated once here.
        Or ``x`` an iterable of ``(x_b, y_b)`` / ``(x_b, y_b, w_b)`` batches and ``y=None`` (a generator,
        a torch / grain DataLoader, ``mj.batches`` over a memmap): one step per batch, prefetched
        (``mle_jax._stream``); ``stopped == "exhausted"`` when it ends before ``steps`` (``None``: one pass).
      optimizer: any optax ``GradientTransformation`` (called: ``optax.adam(1e-3)``);
        ``optax.lbfgs()`` works full-batch (it receives the value and a ``value_fn``), and so does
        ``mj.newton()`` (exact Hessian, Cholesky, line search): pick Newton for few parameters (a GLM,
        k up to a few hundred) on a full batch, above all on badly scaled designs, where L-BFGS
        stalls short of the MLE; L-BFGS for many parameters or cheap steps; Adam for minibatches.
      steps: the number of full-batch optimizer updates, or ``Minibatches(batch_size, epochs=...)``
        (or ``steps=...``): shuffled minibatches.
      key: a PRNG key: draws the minibatch shuffles and, for a model with a ``key``,
        a fresh model key every step (``fold_in(split(key)[1], step)``), reproducibly.
      weights, mask: per-example weights and mask (see ``recipe``). Weights are frequency weights in the
        objective, ``-sum_i m_i w_i log Pr(y_i)`` (a row of weight 3 counts as three rows); for the
        coefficients of a GLM that is the same as precision weights, but what they mean matters after the
        fit: ``mj.inference(..., weights=w, weight_kind="frequency" | "analytic")`` (nobs, a learned
        sigma, the robust SEs).
      objective: ``Objective(reduction="mean", tol=None)``: the mean or summed NLL, and the gradient
        norm at which the fit has converged (``Stop.CONVERGED``; ``Stop.BOUNDARY`` instead where a family
        parameter ends on its link's floor, whose raw gradient is 0 there whatever the likelihood does).
      validation: ``Validation(x_val, y_val, every=None, patience=None)`` or ``(x_val, y_val)``: keep
        the best parameters by validation NLL, stop early after ``patience`` evaluations.
      run: ``Run(progress=None, checkpoints=None, mesh=None, opt_state=None)``: the bar and callback,
        orbax checkpoints, data-parallel devices and the starting optimizer state (see ``Run``).
      start: None (the default: the fit starts at ``params``) or ``"intercept_only"``, for a GLM
        (``mj.models.linear``, one of ``mj.intercept_only``'s families): the fit starts at the intercept-only
        MLE, ``mj.intercept_only(recipe, y, params, weights=, mask=)`` (``w = 0``, ``b = g(mean y)``, the
        multinomial's ``log(p_k / p_0)``), as scikit-learn and glum start; ``params`` gives the shapes, the
        dtype and any family parameter fixed as a Python number, not the values. A learned Gamma shape
        (``gamma("mean")``) or Normal sigma is profiled out: the coefficients (whose MLE does not depend on
        it) are fitted with it held at 1, then it is set to its MLE given them (``mj.family_mle``), which
        is the joint MLE in fewer steps. The history, the validation NLLs and ``opt_state`` are
        then those of the coefficients' fit at shape (sigma) 1: an exponential's (least squares') loss
        (after a non-finite loss the parameter is returned at its value in ``params``); ``tol`` keeps its
        meaning at the profiled value (that fit is continued with ``tol / a`` or ``tol sigma^2`` where it
        stopped short of it; with validation, minibatches or checkpoints it is "completed" instead).
        Recompiles nothing between fits: the held value is one constant.

    Returns:
      A ``FitResult[P]`` with ``.params``, ``.history`` (loss per step), ``.stopped``, ``.message``.
    """
    objective, validation, run = _groups(objective, validation, run)
    _check_arguments(recipe, params, optimizer, key)
    if start not in STARTS:
        raise ValueError(f"fit: start must be one of {STARTS}; got {start!r}")
    if is_stream(x):  # an iterable of (x_b, y_b[, w_b]) batches: mle_jax._stream
        if start is not None:
            raise ValueError("fit: start='intercept_only' needs the whole y (its mean); x is a stream of batches: "
                             "compute the start with mj.intercept_only on the targets and pass it as params")
        if y is not None:
            raise ValueError(f"fit: x is a stream of batches ({type(x).__name__}), whose batches carry their "
                             f"targets: pass y=None, fit(r, params, batches, None, optimizer, steps=K)")
        return _boundary(recipe, fit_stream(recipe, params, x, optimizer, steps, key=key, weights=weights, mask=mask,
                                    objective=objective, validation=validation, run=run))
    x, y = as_array("fit", "x", x), as_array("fit", "y", y)
    weights, mask = as_array("fit", "weights", weights), as_array("fit", "mask", mask)
    n = check_batch("fit", x, y, ("weights", weights), ("mask", mask))
    total, opts = _plan(recipe, n, steps, objective, validation, key)
    val = None if validation is None else (as_array("fit", "x_val", validation.x),
                                           as_array("fit", "y_val", validation.y))
    if recipe.validate:  # once per data set: the recipe remembers the arrays it has checked
        recipe.check(x, y, weights, mask, mean=opts.reduction == "mean", params=params)
        if val is not None:
            recipe.check(*val, mean=True)
    first: Params = params
    held = None
    solve_run = run
    if start is not None:  # the GLM's intercept-only MLE, a learned dispersion held (then profiled, below)
        first, held, state = _start(recipe, params, y, weights, mask, optimizer if run.opt_state is None else None)
        if state is not None:  # optimizer.init of the start, computed by the start's program
            solve_run = dataclasses.replace(run, opt_state=state)
    if run.opt_state is not None:
        _check_opt_state(optimizer, partition(first).trained, run.opt_state)
    key = cast("jax.Array | None", key)  # checked above
    keys = Keys(key if opts.batch_size is not None else None,
                jax.random.split(key)[1] if opts.keyed and key is not None else None)
    data = (x, y, weights, mask)
    if held is not None and val is None and opts.batch_size is None:  # the loop computes the profiled MLE too
        opts = opts._replace(profile=_kind(recipe))
    result, reached, given = _solve(recipe, first, data, val, optimizer, opts, keys, total, solve_run)
    if held is not None:  # the dispersion's MLE given the coefficients (after a non-finite loss: its start)
        if result.stopped == Stop.NON_FINITE:
            fitted = result.params._replace(family={**result.params.family, held: params.family[held]})
            result = result._replace(params=fitted)
        else:
            refit = validation is None and opts.batch_size is None and run.checkpoints is None
            result = _profile(recipe, result, reached, given, held, data, optimizer, opts, keys, total,
                              Run(progress=False, mesh=run.mesh) if refit else None)
    return cast(FitResult[P], _boundary(recipe, result))


def _solve(recipe: Recipe, first: Params, data, val, optimizer, opts, keys: Keys, total: int,
           run: Run) -> tuple[FitResult, jax.Array | None, tuple | None]:
    """The fit from ``first`` with checked arguments (``run.opt_state``, if any, checked too): its result (the
    separation checked), where it converged the gradient norm it reached (at most ``tol``; a device scalar,
    read only where needed), else None, and with ``opts.profile`` the profiled dispersion's MLE given the
    carry's last parameters (``glm_start.given_model``: value on the host, raw on the device), else None."""
    parts = partition(first)
    opt_state = run.opt_state
    if opt_state is None:  # compiled apart, so that every fit of this recipe and optimizer runs one program
        opt_state = opt_init(recipe, optimizer)(parts.trained)
    job = Job(recipe, optimizer, opts, keys, data, val, opts.schedule(), [])
    carry, stop, both, last_finite = drive(job, initial_carry(parts, opt_state, opts), total, run)
    result = _result(carry, stop, last_finite, both[:, 0], both[:, 1], opts)
    reached = carry.grad_norm if stop is Stop.CONVERGED else None  # on the device: read only by a profile
    # at the returned parameters only where they are the carry's (no validation's best, no non-finite replay)
    given = job.given[0] if job.given and stop is not Stop.NON_FINITE and val is None else None
    return _diagnose(recipe, result, data, opts.reduction, opts.batch_size or opts.n), reached, given


_REFITS = 3  # held fits with a tighter tol after the first (the profiled dispersion moves little between them)


def _profile(recipe: Recipe, result: FitResult, reached: jax.Array | None, given: tuple | None, held: str, data,
             optimizer, opts: StepOptions, keys: Keys, total: int, refit: Run | None) -> FitResult:
    """The held fit's result with the dispersion at its MLE given the coefficients (``_family_mle``), and ``tol``
    kept on the model's own objective: its gradient in the coefficients at the profiled dispersion is the held
    one's times ``c``, ``1 / sigma^2`` (Normal: ``d/dbeta (r^2 / 2 sigma^2)``) or the shape ``a`` (Gamma: the
    score ``a sum (y/mu - 1) dmu``), so "converged" at ``tol`` holds there where the gradient norm the held fit
    reached (``reached``, at most the tol it was given) is at most ``tol / c``; otherwise the held fit is
    continued from where it stopped (its program, its optimizer state: nothing compiles) with that tighter
    ``tol`` (a sigma of 1e-5 took a tol of 1e-6 to 1e-16: 2% off OLS before); where it cannot (steps used up,
    validation, minibatches, checkpoints: ``refit`` None, else the ``Run`` of the continued fit) "converged"
    becomes "completed". ``given``: the dispersion's MLE at the result's parameters as the loop computed it
    (``_solve``), or None: computed here."""
    x, y, weights, mask = data
    tol = opts.tol
    for attempt in range(_REFITS + 1):
        fitted = _family_mle(recipe, result.params, x, y, weights, mask, "fit", floor_ok=True, checked=True,
                             given=given)
        if result.stopped != Stop.CONVERGED or tol is None or reached is None:
            return result._replace(params=fitted)
        norm, raw = jax.device_get((reached, fitted.family[held]))  # one transfer (raw is ready: _family_mle read it)
        norm, raw = float(norm), np.asarray(raw)
        value = float(np.logaddexp(0.0, raw.astype(np.float64))) + links.floor(raw.dtype)  # softplus(raw) + eps
        c = 1.0 / value ** 2 if held == "scale" else value
        if norm * c <= tol * (1 + 1e-9):
            return result._replace(params=fitted)
        left = total - result.steps_run
        if refit is None or left < 1 or attempt == _REFITS:
            why = (f"; the coefficients' fit converged at the held {held} = 1 (gradient {norm:.3g}), which at the "
                   f"profiled {held} is a gradient of {norm * c:.3g} > tol = {tol:g}: not converged")
            return result._replace(params=fitted, stopped=Stop.COMPLETED, message=result.message + why)
        # the dispersion moves a little with the coefficients: half the margin
        again, reached, given = _solve(recipe, result.params, data, None, optimizer, opts._replace(tol=tol / c * 0.5),
                                       keys, left, dataclasses.replace(refit, opt_state=result.opt_state))
        result = again._replace(history=np.concatenate([result.history, again.history]))
    raise AssertionError("unreachable")


STARTS = (None, "intercept_only")


def _start(recipe: Recipe, params: Params, y, weights, mask, optimizer) -> tuple[Params, str | None, Any]:
    """``start="intercept_only"``: the intercept-only MLE (``mj.intercept_only``), the name of the family
    parameter held at ``HELD`` for the coefficients' fit (a learned Gamma shape or Normal sigma), or None, and
    ``optimizer.init`` at the start, computed in the start's program (None without an ``optimizer``)."""
    name = profiled(recipe)
    held = name if name is not None and is_trained(params.family[name]) else None
    if held is not None:
        params = params._replace(family={**params.family, held: HELD})
    first, state = _started(recipe, y, params, weights, mask, optimizer)
    return first, held, state


def _groups(objective, validation, run) -> tuple[Objective, Validation | None, Run]:
    """The option groups, defaults made and kinds checked (each group checks its own fields)."""
    if objective is None:
        objective = Objective()
    elif not isinstance(objective, Objective):
        raise TypeError(f"fit: objective must be Objective(reduction=..., tol=...); got {type(objective).__name__}")
    if validation is not None and not isinstance(validation, Validation):
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise TypeError("fit: validation must be Validation(x_val, y_val, ...) or a pair (x_val, y_val); "
                            f"got {type(validation).__name__}")
        validation = Validation(*validation)
    if run is None:
        run = Run()
    elif not isinstance(run, Run):
        raise TypeError(f"fit: run must be Run(progress=..., checkpoints=..., mesh=..., opt_state=...); "
                        f"got {type(run).__name__}")
    return objective, validation, run


def _check_arguments(recipe, params, optimizer, key) -> None:
    """Named errors for arguments of the wrong kind, before anything is traced."""
    if not isinstance(recipe, Recipe):
        raise TypeError(f"fit: recipe must come from mj.recipe(model, family); got {type(recipe).__name__}")
    if not isinstance(params, Params):
        raise TypeError(f"fit: params must come from recipe.init(model_params) (an mle_jax Params); "
                        f"got {type(params).__name__}")
    if not isinstance(optimizer, optax.GradientTransformation):
        hint = (f"; {getattr(optimizer, '__name__', 'it')} is a factory: call it, e.g. optax.adam(1e-3)"
                if callable(optimizer) else "")
        raise TypeError(f"fit: optimizer must be an optax GradientTransformation (such as optax.adam(1e-3)); "
                        f"got {type(optimizer).__name__}{hint}")
    if key is not None and not (isinstance(key, jax.Array) or isinstance(key, np.ndarray)):
        raise TypeError(f"fit: key must be a PRNG key (jax.random.key(0) or PRNGKey(0)); got {type(key).__name__}")


def _check_opt_state(optimizer, trained, opt_state) -> None:
    """``opt_state`` must have the tree, shapes and dtypes of ``optimizer.init(trained)`` (found by
    tracing ``init`` on shapes only: nothing runs or compiles)."""
    expected = jax.eval_shape(optimizer.init, trained)
    want, got = jax.tree_util.tree_structure(expected), jax.tree_util.tree_structure(opt_state)
    if want != got:
        raise ValueError(f"fit: opt_state does not match this optimizer and params: optimizer.init(params) "
                         f"has the structure {want}, the opt_state passed has {got} (pass the opt_state of "
                         f"a fit with the same optimizer and parameters, or None to start afresh)")
    paths = jax.tree_util.tree_leaves_with_path(expected)
    for (path, e), g in zip(paths, jax.tree_util.tree_leaves(opt_state)):
        shape, dtype = np.shape(g), jax.dtypes.canonicalize_dtype(getattr(g, "dtype", np.asarray(g).dtype))
        if shape != e.shape or dtype != jax.dtypes.canonicalize_dtype(e.dtype):
            raise ValueError(f"fit: opt_state{jax.tree_util.keystr(path)} has shape {shape} and dtype {dtype}; "
                             f"optimizer.init(params) gives shape {e.shape} and dtype {e.dtype} (pass the "
                             f"opt_state of a fit with the same optimizer and parameters, or None)")


def _plan(recipe: Recipe, n: int, steps, objective: Objective, validation: Validation | None, key):
    """The number of steps and the compiled step's options, from checked arguments."""
    batches = steps if isinstance(steps, Minibatches) else None
    if batches is not None:
        if not batches.batch_size <= n:
            raise ValueError(f"fit: Minibatches batch_size must lie in [1, {n}] (the examples); "
                             f"got {batches.batch_size}")
        if key is None:
            raise ValueError("fit: Minibatches need an explicit PRNG key for the shuffles (key=...)")
        total = batches.total(n)
    elif steps is None:
        raise ValueError("fit: give the number of steps (steps=500, or steps=Minibatches(batch_size, epochs=...))")
    else:
        total = cast(int, count("fit", "steps", steps))  # not None: steps is not
    if recipe.takes_key and key is None:
        raise ValueError("fit: the model takes a key (dropout or other noise); pass fit(..., key=jax.random.key(0)) "
                         "to draw a fresh one every step")
    every = patience = None
    if validation is not None:
        every, patience = validation.every or max(1, total // 100), validation.patience
        if every > total:
            raise ValueError(f"fit: Validation every={every} never happens in a fit of {total} steps "
                             f"(no validation NLL, no best parameters); give every <= {total}")
    size = None if batches is None else batches.batch_size
    return total, StepOptions(n=n, keyed=recipe.takes_key, batch_size=size, every=every, patience=patience,
                              **settings(objective))


def _no_best(steps_run: int, every) -> str:
    """Why validation kept no parameters (and a ``ValidationWarning`` saying so)."""
    if steps_run >= every:
        why = ("every validation NLL was NaN or inf (check the validation data and the model on them): "
               "no best parameters were kept; returning the final ones")
    else:
        why = (f"the fit stopped after {steps_run} steps, before the first validation at step {every}: "
               f"no best parameters were kept; returning the final ones")
    warnings.warn(f"fit: {why}", ValidationWarning, stacklevel=4)
    return why


def _separation(recipe: Recipe, params, data, size: int) -> tuple[bool, float]:
    """``diagnostics.separated`` over the training data, in slices of ``size`` examples (a minibatch
    fit's batch: its data need not fit one forward pass), stopping at the first slice with an
    example whose label has probability <= 1/2."""
    n, smallest = jax.tree_util.tree_leaves(data[1])[0].shape[0], math.inf
    for start in range(0, n, size):
        part = data if size >= n else jax.tree_util.tree_map(lambda a: a[start:start + size], data)
        log_probs = recipe.log_prob(params, part[0], part[1])
        is_separated, least = _everywhere(separated(local(log_probs), *map(local, part[2:])), log_probs)
        if not is_separated and not math.isnan(least):  # nan: no example counted in this slice
            return False, least
        smallest = min(smallest, least) if not math.isnan(least) else smallest
    return smallest < math.inf, smallest


def _everywhere(verdict: tuple[bool, float], log_probs) -> tuple[bool, float]:
    """``separated``'s verdict over every process's rows: on arrays split over several processes
    (``jax.distributed``) each process judged its own rows (``local``); the verdicts are gathered
    (``process_allgather``), so that every process takes the same branch."""
    if not isinstance(log_probs, jax.Array) or log_probs.is_fully_addressable:
        return verdict
    from jax.experimental import multihost_utils
    rows = np.asarray(multihost_utils.process_allgather(np.array(verdict, np.float64))).reshape(-1, 2)
    counted = ~np.isnan(rows[:, 1])
    if not counted.any():
        return False, math.nan
    return bool(np.all(rows[counted, 0] == 1.0)), float(np.min(rows[counted, 1]))


def _diagnose(recipe: Recipe, result: FitResult, data, reduction: str, size: int) -> FitResult:
    """Perfect separation (see ``mle_jax.diagnostics``): for a discrete family, when every example's
    label has fitted probability above 1/2, say so in the message (``Stop.SEPARATION`` when the
    fit claimed it completed or converged) and warn with ``PerfectSeparationWarning``.

    The per-example log-likelihoods are computed only when the last loss allows it (a mean
    below log 2; always with ``reduction="sum"``), so most fits pay nothing."""
    if not bounded_likelihood(recipe.family) or result.steps_run == 0 or result.stopped == Stop.NON_FINITE:
        return result
    last = result.history[np.isfinite(result.history)]
    if reduction == "mean" and not (last.size and last[-1] < math.log(2.0)):
        return result
    is_separated, smallest = _separation(recipe, result.params, data, size)
    if not is_separated:
        return result
    stopped = result.stopped
    if stopped in (Stop.COMPLETED, Stop.CONVERGED):
        stopped = Stop.SEPARATION
    message = Stop.SEPARATION.message(separation=SEPARATION, smallest=smallest, stopped=result.message)
    warnings.warn(f"fit: {message}", PerfectSeparationWarning, stacklevel=3)
    return result._replace(stopped=stopped, message=message)


def _boundary(recipe: Recipe, result: FitResult) -> FitResult:
    """A family parameter on its link's floor (``mle_jax._floors``): its raw gradient vanishes there, so
    say so in the message (``Stop.BOUNDARY`` when the fit claimed it completed or converged) and warn
    with ``BoundaryWarning``. Reads the family's few trained numbers on the host: no device program."""
    if result.steps_run == 0 or result.stopped == Stop.NON_FINITE:
        return result
    floored = on_floor(getattr(result.params, "family", None), recipe.family.positive)  # its declared leaves
    if not floored:
        return result
    stopped = result.stopped
    if stopped in (Stop.COMPLETED, Stop.CONVERGED):
        stopped = Stop.BOUNDARY
    message = Stop.BOUNDARY.message(boundary=BOUNDARY, floored=describe(floored), stopped=result.message)
    warnings.warn(f"fit: {message}", BoundaryWarning, stacklevel=3)
    return result._replace(stopped=stopped, message=message)


def _result(carry: Carry, stop: Stop, last_finite, history, vals, opts: StepOptions) -> FitResult:
    """The ``FitResult`` of a loop that ended with ``stop`` after ``len(history)`` steps."""
    watch, params, steps = carry.watch, carry.params, len(history)
    best_step = None if watch is None or int(watch.best_step) < 0 else int(watch.best_step)
    facts: dict[str, Any] = dict(steps=steps, last=steps - 1, tol=opts.tol, patience=opts.patience,
                 loss=history[-1] if steps else math.nan)
    if stop is Stop.NON_FINITE:
        if best_step is not None and watch is not None:
            params, returned = watch.best, (f"the parameters of step {best_step}, the best by validation NLL "
                                            f"({float(watch.best_val):.6g})")
        elif steps == 1:
            params, returned = last_finite, ("the starting parameters (their loss is not finite: check the data "
                                             "and the start)")
        else:
            params, returned = last_finite, f"the parameters of step {steps - 2}, the last with a finite loss"
        facts["returned"] = returned
    message = stop.message(**facts)
    val_history = None
    if watch is not None:
        idx = np.flatnonzero(np.isfinite(vals))
        val_history = np.stack([idx + 1, vals[idx]], axis=1) if len(idx) else np.zeros((0, 2))
        if best_step is not None and stop is not Stop.NON_FINITE:
            params = watch.best
            message += f"; kept the best validation NLL {float(watch.best_val):.6g} (step {best_step})"
        elif stop is not Stop.NON_FINITE:
            message += "; " + _no_best(steps, opts.every)
    epoch_history = None
    if opts.batch_size is not None:
        per_epoch = opts.n // opts.batch_size
        whole = steps // per_epoch * per_epoch
        epoch_history = history[:whole].astype(np.float64).reshape(-1, per_epoch).mean(axis=1)
    return FitResult(params.params(), history, stop, message, carry.opt_state, val_history, best_step,
                     epoch_history)
