"""The host side of ``fit``: the chunk loop, its hooks, and the replay after a non-finite loss.

The device runs a chunk of steps in one compiled program (``fit_step``); between
chunks the host reads the chunk's losses (one transfer), finds a non-finite loss,
saves a checkpoint, moves the bar and calls the callback. Nothing here runs per step.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from .fit_options import FitEvent
from .fit_step import CAPACITY, Carry, Keys, Schedule, StepOptions, program
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

    def run(self, carry: Carry, n: int):
        """``n`` steps on the device: ``(carry, losses[:n], val_nlls[:n])``, by calls of at most
        ``CAPACITY`` steps each, dispatched without waiting and read back in one transfer."""
        run, outputs = program(self.recipe, self.optimizer, self.opts), []
        for start in range(0, n, CAPACITY):
            length = min(CAPACITY, n - start)
            carry, out = run(carry, length, self.keys, self.data, self.val, self.schedule)
            outputs.append((length, out))
        outputs = jax.device_get(outputs)
        losses = np.concatenate([out[0][:length] for length, out in outputs])
        vals = (np.full(n, np.nan, np.float32) if self.val is None
                else np.concatenate([out[1][:length] for length, out in outputs]))
        return carry, losses, vals


class Hooks(NamedTuple):
    """What the host does between chunks (each None when not asked for)."""

    store: Any = None           # mle_jax.checkpoint.Store
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
            warnings.warn("fit(progress=True) needs tqdm: pip install 'mle_jax[progress]'; "
                          "fitting without a bar", stacklevel=3)
        return None
    return tqdm(total=total, unit="step", desc="fit", leave=False)


def run_chunks(job: Job, carry: Carry, done: int, total: int, chunk: int, history: list, hooks: Hooks):
    """Run chunks until ``total`` steps, a non-finite loss, convergence or early stopping.

    Returns ``(carry, history, bad_step, starts)``: ``bad_step`` is the first step whose loss
    was not finite (None if none), ``starts`` the last two chunk starts (for the replay).
    """
    starts: list = [None, None]
    val_nll = None
    while done < total:
        length = min(chunk, total - done)
        if hooks.every is not None:  # chunks end on checkpoint boundaries
            length = min(length, hooks.every - done % hooks.every)
        starts = [starts[1], Start(done, carry)]
        carry, losses, vals = job.run(carry, length)
        ended = _ended(carry)
        history.append(np.stack([losses, vals], axis=-1))
        ran = length if ended is None else max(0, min(length, ended - done))  # steps actually computed
        bad = np.flatnonzero(~np.isfinite(losses[:ran]))
        if bad.size:
            return carry, history, done + int(bad[0]), starts
        done += length
        finite_vals = vals[np.isfinite(vals)]
        val_nll = float(finite_vals[-1]) if finite_vals.size else val_nll
        _between_chunks(carry, done, total, losses, val_nll, history, hooks)
        if ended is not None:
            break
    return carry, history, None, starts


def _ended(carry: Carry) -> int | None:
    """The number of steps after which the program stopped computing (converged: the converged
    step's loss is the last; patience ran out: the update that ran it out is the last), or None."""
    converged_at, stopped_at = jax.device_get(
        (carry.converged_at, None if carry.watch is None else carry.watch.stopped_at))
    ends = ([int(converged_at) + 1] if converged_at is not None and converged_at >= 0 else []) + (
        [int(stopped_at)] if stopped_at is not None and stopped_at >= 0 else [])
    return min(ends) if ends else None


def _between_chunks(carry: Carry, done: int, total: int, losses, val_nll, history, hooks: Hooks) -> None:
    if hooks.store is not None and (done == total or (hooks.every is not None and done % hooks.every == 0)):
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
            step, carry, _ = store.restore(start.carry, older[-1])
            start = Start(step, carry)
    carry, left = start.carry, target - start.step
    if left > 0:
        carry, _, _ = job.run(carry, left)
    return carry.params
