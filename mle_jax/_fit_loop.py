"""The host side of ``fit``: the chunk loop, its hooks, and the replay after a non-finite loss.

The device runs a chunk of steps in one compiled program (``_fit_step``); between
chunks the host reads the chunk's losses and the loop's result code (one transfer),
saves a checkpoint, moves the bar and calls the callback. Nothing here runs per step.
``drive`` runs a fit's loop as its ``Run`` group says (bar, chunks, callback,
checkpoints, mesh).
"""

from __future__ import annotations

import math
import sys
import warnings
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from ._fit_options import RESULTS, FitEvent, Run, Stop
from ._fit_step import CAPACITY, Carry, Keys, Schedule, StepOptions, constant, program, unknown_norm
from .recipe import Recipe


class Start(NamedTuple):
    """The carry at the start of a chunk: a point to replay from."""

    step: int
    carry: Carry


class Job(NamedTuple):
    """Everything a chunk needs that does not change during the fit."""

    recipe: Recipe
    optimizer: Any
    opts: StepOptions
    keys: Keys
    data: tuple
    val: tuple | None
    schedule: Schedule
    given: list  # the last call's profiled dispersion (value on the host, raw on the device) with opts.profile

    def run(self, carry: Carry, n: int):
        """Up to ``n`` steps on the device: ``(carry, losses, val_nlls, stop)``, the losses of the steps
        up to the one that ended the fit (all ``n`` if none did) and the ``Stop`` its carry's result code
        names (``COMPLETED``: still running); by calls of at most ``CAPACITY`` steps each, dispatched
        without waiting and read back in one transfer. A fit whose steps can end it (``opts.watched``: a
        ``tol``, patience) reads the previous call's result code before the next call: a fit of 2000 steps
        that converged in 10 dispatches no second call (a call that runs no step still costs ~0.3 ms)."""
        run, outputs, count = program(self.recipe, self.optimizer, self.opts), [], jax.dtypes.canonicalize_dtype(int).name
        given = None
        for start in range(0, n, CAPACITY):  # the count a shared device scalar (_fit_step.constant): no transfer
            if start and self.opts.watched and int(jax.device_get(carry.result)):
                break  # ended by a step of the previous call: nothing left to run
            carry, out, ran, given = run(carry, constant(min(CAPACITY, n - start), count), self.keys, self.data,
                                         self.val, self.schedule)
            outputs.append((ran, out))
        # with a profile, its raw value and the gradient norm too, which fit._profile reads next: one transfer
        # (a jax array keeps the host copy it was read into), not a second wait
        outputs, result, value, _ = jax.device_get((outputs, carry.result, None if given is None else given[0],
                                                    None if given is None else (given[1], carry.grad_norm)))
        self.given[:] = [] if given is None else [(value, given[1])]  # the last call's: at the carry returned
        losses = np.concatenate([out[0][:ran] for ran, out in outputs] or [np.zeros(0, np.float32)])
        vals = (np.full(len(losses), np.nan, np.float32) if self.val is None
                else np.concatenate([out[1][:ran] for ran, out in outputs]))
        stop = RESULTS[int(result)]
        if stop is Stop.NON_FINITE:  # a plain fit's loop ran on past it: the steps up to the first
            last = int(np.flatnonzero(~np.isfinite(losses))[0]) + 1
            losses, vals = losses[:last], vals[:last]
        return carry, losses, vals, stop


class Hooks(NamedTuple):
    """What the host does between chunks (each None when not asked for)."""

    store: Any = None           # mle_jax._checkpoint.Store
    every: int | None = None    # checkpoint every this many steps
    bar: Any = None             # a tqdm bar
    callback: Callable | None = None


_warned_no_tqdm = [False]


def progress_bar(requested: bool | None, total: int):
    """A tqdm.auto bar (notebooks and terminals) when requested, or by default on a terminal for long fits.
    A requested bar without tqdm installed warns once per process."""
    wanted = sys.stderr.isatty() and total >= 2000 if requested is None else requested
    if not wanted:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is the optional 'progress' extra
        if requested and not _warned_no_tqdm[0]:
            _warned_no_tqdm[0] = True
            warnings.warn("fit: Run(progress=True) needs tqdm: pip install 'mle_jax[progress]'; "
                          "fitting without a bar", stacklevel=3)
        return None
    return tqdm(total=total, unit="step", desc="fit", leave=False)


def drive(job: Job, carry: Carry, total: int, run: Run):
    """``total`` steps (fewer if one ends the fit) from ``carry``, or from the latest checkpoint:
    ``(carry, stop, history, last_finite)``, ``history`` the (loss, validation NLL) rows of the steps
    run and ``last_finite`` the parameters before a non-finite loss (None unless one was replayed)."""
    progress, checkpoints = run.report, run.checkpoints
    bar, every = progress_bar(progress.bar, total), None if checkpoints is None else checkpoints.every
    chunk = progress.chunk_size
    if chunk is None:
        chunked = bar is not None or job.opts.patience is not None or progress.callback is not None
        chunk = max(1, math.ceil(total / 20)) if chunked else total
    chunk = chunk if every is None else min(chunk, every)
    starts, history, done, store = [Start(0, carry)], [], 0, None
    try:
        if checkpoints is not None:
            from ._checkpoint import Store
            store = Store(checkpoints.directory)
            done, carry, history = _resume(store, carry, total)
        if run.mesh is not None:
            from .sharding import replicate, shard_batch
            carry = replicate(run.mesh, carry)
            job = job._replace(data=shard_batch(run.mesh, job.data), val=shard_batch(run.mesh, job.val))
        if bar is not None:
            bar.update(done)
        carry, history, stop, chunk_starts = run_chunks(
            job, carry, done, total, chunk, history, Hooks(store, every, bar, progress.callback))
        both = np.concatenate(history) if history else np.zeros((0, 2), np.float32)
        last_finite = None
        if stop is Stop.NON_FINITE and (carry.watch is None or int(carry.watch.best_step) < 0):
            last_finite = replay(job, max(len(both) - 2, 0), starts + chunk_starts, store)
    finally:
        if bar is not None:
            bar.close()
        if store is not None:
            store.close()
    return carry, stop, both, last_finite


def _restore(store, carry: Carry, step: int | None = None):
    """``store.restore`` into ``carry``'s structure. A fit with a ``tol`` carries the last step's gradient norm, one
    without does not; a checkpoint of the same fit with the other choice (written before the carry held the norm,
    or with ``tol`` added or dropped since, as before the norm was carried) restores too, the norm unknown where
    the fit has a ``tol`` (``carry``'s own, inf) and dropped where it has none."""
    try:
        return store.restore(carry, step)
    except ValueError:
        norm = unknown_norm() if carry.grad_norm is None else None
        try:
            restored = store.restore(carry._replace(grad_norm=norm), step)
        except ValueError:
            restored = None
        if restored is None:
            raise
        done, state, past = restored
        return done, state._replace(grad_norm=carry.grad_norm), past


def _resume(store, carry: Carry, total: int) -> tuple[int, Carry, list]:
    """``(steps done, carry, history)`` from the latest checkpoint in ``store``, or from the start."""
    restored = _restore(store, carry)
    if restored is None:
        return 0, carry, []
    done, carry, past = restored
    if done > total:
        raise ValueError(f"fit: the checkpoint in {store.directory} is at step {done}, past the {total} steps "
                         f"asked for; ask for at least {done} steps to resume it, or pass another "
                         f"Checkpoints directory (or delete this one) to start afresh")
    return done, carry, [past]


def run_chunks(job: Job, carry: Carry, done: int, total: int, chunk: int, history: list, hooks: Hooks):
    """Run chunks until ``total`` steps or a step that ends the fit (its code in the carry).

    Returns ``(carry, history, stop, starts)``: ``history`` the (loss, validation NLL) rows of every
    step computed, ``stop`` the loop's ``Stop`` (``COMPLETED`` when it ran every step), ``starts``
    the last two chunk starts (for the replay after a non-finite loss).
    """
    starts: list = [None, None]
    val_nll, stop = None, RESULTS[int(jax.device_get(carry.result))]  # not COMPLETED: resumed after the end
    while done < total and stop is Stop.COMPLETED:
        length = min(chunk, total - done)
        if hooks.every is not None:  # chunks end on checkpoint boundaries
            length = min(length, hooks.every - done % hooks.every)
        starts = [starts[1], Start(done, carry)]
        carry, losses, vals, stop = job.run(carry, length)
        history.append(np.stack([losses, vals], axis=-1))
        done += len(losses)
        if stop is Stop.NON_FINITE:
            break
        finite_vals = vals[np.isfinite(vals)]
        val_nll = float(finite_vals[-1]) if finite_vals.size else val_nll
        _between_chunks(carry, done, total, stop, losses, val_nll, history, hooks)
    return carry, history, stop, starts


def _between_chunks(carry: Carry, done: int, total: int, stop: Stop, losses, val_nll, history,
                    hooks: Hooks) -> None:
    at_end = done == total or stop is not Stop.COMPLETED
    if hooks.store is not None and (at_end or (hooks.every is not None and done % hooks.every == 0)):
        hooks.store.save(done, carry, np.concatenate(history))
    if hooks.bar is not None:
        hooks.bar.update(len(losses))
        hooks.bar.set_postfix(loss=f"{float(np.mean(losses[-max(1, len(losses) // 10):])):.4g}")
    if hooks.callback is not None:
        hooks.callback(FitEvent(done, carry.params.params(), float(losses[-1]), val_nll,
                                np.concatenate(history)[:, 0]))


def replay(job: Job, target: int, starts: list, store=None):
    """The parameters (``Parts``) after ``target`` steps, replayed from the latest known carry.

    Steps are deterministic, so replaying from a chunk's start, the fit's start or an
    older checkpoint reproduces them exactly; nothing is paid unless a loss was not finite.
    """
    start = max((s for s in starts if s is not None and s.step <= target), key=lambda s: s.step)
    if store is not None:
        older = [s for s in store.steps() if start.step < s <= target]
        if older:
            step, carry, _ = _restore(store, start.carry, older[-1])
            start = Start(step, carry)
    carry, left = start.carry, target - start.step
    if left > 0:
        carry, _, _, _ = job.run(carry, left)
    return carry.params
