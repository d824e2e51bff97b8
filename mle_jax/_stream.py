"""Streams of batches: ``fit(r, params, batches, None, optimizer, steps=K)``.

``batches`` is any iterable of ``(x_b, y_b)`` or ``(x_b, y_b, w_b)`` (a generator, a torch or grain
DataLoader, ``mle_jax.batches`` over a memmap); step t is one optimizer update on batch t:

    phi_{t+1} = phi_t + optimizer.update(grad_phi L_t(phi_t)),   L_t = the mean (or sum) NLL of batch t

- One compiled program: every batch has the first batch's shape. A shorter batch (the last one of
  an epoch) is padded to it with copies of its last row, masked out (``mask`` weights them 0, so the
  step is exactly the step on the short batch); a longer one, or another dtype or trailing shape, is
  a named ValueError.
- Prefetched: each batch is checked on the host (``recipe.check``, once per batch) and put on the
  device (``jax.device_put``, asynchronous) ``prefetch`` steps ahead of the step that uses it, while
  the device runs the steps before it (JAX dispatches asynchronously, as flax's
  ``prefetch_to_device`` relies on). The host waits for step t - 1 once it has dispatched step t, so
  at most two steps are in flight and ``PREFETCH + 2`` batches alive at once (four), however far
  the host could run ahead of the device.
- The same guards as an in-memory fit (``_fit_step``: the loop's result code): a non-finite loss
  stops the fit and returns the last parameters whose loss was finite; ``Objective.tol``,
  ``Validation`` and ``patience`` stop it as they do in memory. The host reads the losses and the
  code every ``Progress.chunk_size`` steps (default 100) and then runs the bar, the callback and
  the checkpoints; batches already pulled past a stop are dropped.
- A stream that ends before ``steps`` (or ``steps=None``: one pass) stops with ``Stop.EXHAUSTED``.
- Checkpoints save the loop's state and loss history; the stream's position is the caller's: a fit
  resumed from a checkpoint at step s takes its next batch as batch s, so pass the stream from
  batch s on (``mle_jax.batches(..., start=s)``, ``itertools.islice(loader, s, None)``, a
  loader's own state).
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._fit_loop import Hooks, _between_chunks, _resume, progress_bar
from ._fit_options import RESULTS, Minibatches, Stop, count, settings
from ._fit_step import Keys, StepOptions, _ends, initial_carry, make_step, opt_init
from ._params import partition

PREFETCH = 2        # batches on the device ahead of the step that runs
READ_EVERY = 100    # steps between two reads of the losses and the result code (default chunk_size)


def is_stream(x) -> bool:
    """Whether ``x`` is an iterable of batches rather than one data set: an iterable that is not an
    array (no ``shape``, no ``__array__``), a Python list, tuple or dict, nor a string."""
    return (isinstance(x, Iterable) and not isinstance(x, (list, tuple, dict, str, bytes))
            and not hasattr(x, "shape") and not hasattr(x, "__array__"))


def host(value):
    """One leaf of a batch as an array: a jax array stays on its device; a torch tensor, a pandas or
    polars column, a list become NumPy (``np.asarray``; torch tensors detached)."""
    if value is None or isinstance(value, (jax.Array, np.ndarray)):
        return value
    if hasattr(value, "detach"):  # torch
        value = value.detach().cpu().numpy()
    if hasattr(value, "to_numpy"):  # pandas / polars
        value = value.to_numpy()
    return np.asarray(value)


class Batch:
    """Reads the items of a stream as ``(x, y, w)`` of one fixed shape (the first item's)."""

    def __init__(self, name: str):
        self.name, self.size, self.signature = name, 0, None  # size 0: no batch read yet
        self.signature: Any

    def read(self, item, index: int):
        """``((x, y, w, mask), rows)``: item ``index`` checked, padded to the first item's rows."""
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise TypeError(f"{self.name}: batch {index} of the stream is a {type(item).__name__}; each batch must "
                            f"be a pair (x, y) or a triple (x, y, weights)")
        x = jax.tree_util.tree_map(host, item[0])
        y, w = host(item[1]), host(item[2]) if len(item) == 3 else None
        if y is None:
            raise TypeError(f"{self.name}: batch {index} of the stream has y None; each batch must be (x, y) or "
                            f"(x, y, weights) with y an array of targets")
        leaves = jax.tree_util.tree_leaves((x, y))
        rows = int(np.shape(y)[0]) if np.ndim(y) else 0
        signature = (jax.tree_util.tree_structure((x, y, w)),
                     [(np.shape(a)[1:], np.dtype(a.dtype).name) for a in leaves + ([] if w is None else [w])])
        if not self.size:
            self.size, self.signature = rows, signature
        if signature != self.signature:
            raise ValueError(f"{self.name}: batch {index} of the stream has the trailing shapes and dtypes "
                             f"{signature[1]} (and structure {signature[0]}); the first batch had {self.signature[1]} "
                             f"({self.signature[0]}): one compiled program serves batches of one shape and dtype")
        if not 0 < rows <= self.size:
            raise ValueError(f"{self.name}: batch {index} of the stream has {rows} rows; batches need between 1 "
                             f"and {self.size} rows (the first batch's, the shape the step is compiled for)")
        mask = np.arange(self.size) < rows
        if rows < self.size:  # the last row repeated (values on the support), masked out
            index_rows = np.minimum(np.arange(self.size), rows - 1)
            x, y, w = jax.tree_util.tree_map(lambda a: a[index_rows], (x, y, w))
        return (x, y, w, mask), rows


class Prefetch:
    """The next batches of an iterator, checked and put on the device ahead of use (at most ``size``)."""

    def __init__(self, batches, want: int | None, put, size: int = PREFETCH):
        self.iterator, self.want, self.put, self.size = iter(batches), want, put, size
        self.pulled, self.exhausted, self.queue = 0, False, collections.deque()
        self.fill()

    def pull(self) -> None:
        if self.exhausted or (self.want is not None and self.pulled >= self.want):
            return
        try:
            item = next(self.iterator)
        except StopIteration:
            self.exhausted = True
            return
        self.queue.append(self.put(item, self.pulled))
        self.pulled += 1

    def fill(self) -> None:
        while len(self.queue) < self.size and not self.exhausted and (self.want is None or self.pulled < self.want):
            self.pull()

    def next(self):
        """The next device batch, or None when the stream (or the steps asked for) is done."""
        return self.queue.popleft() if self.queue else None


def _stream_step(recipe, optimizer, opts: StepOptions):
    """The jitted ``((carry, keep), keys, batch, val, schedule) -> ((carry, keep), loss, val_nll, ran)``:
    ``fit``'s own step (``_fit_step.make_step``) on one batch, its result code set by a non-finite
    loss too. Once a step has ended the loop the state no longer changes (``ran = 0``), by a select,
    not a branch: no loop or branch in the program, so a GPU never hands a predicate back to the host
    and steps queue up behind each other. ``keep`` holds the last parameters whose loss was finite."""
    one_step = make_step(recipe, optimizer, opts)

    def step(state, keys, batch, val, schedule):
        carry, keep = state
        running = carry.result == 0
        new, (loss, val_nll) = one_step(carry, keys, batch, val, schedule)
        finite = jnp.isfinite(loss)
        new = new._replace(result=_ends(new.result, ~finite, Stop.NON_FINITE))
        kept = jax.tree_util.tree_map(lambda a, b: jnp.where(finite, a, b), carry.params, keep)
        state = jax.tree_util.tree_map(lambda a, b: jnp.where(running, a, b), (new, kept), (carry, keep))
        nan = jnp.float32(jnp.nan)
        return (state, jnp.where(running, loss, nan), nan if val_nll is None else jnp.where(running, val_nll, nan),
                running.astype(jnp.int32))
    return recipe.programs.get(("fit", "stream", recipe.programs.key_of(optimizer), opts.compiled), lambda: jax.jit(step))


def fit_stream(recipe, params, batches, optimizer, steps, *, key, weights, mask, objective, validation, run):
    """``fit`` over a stream of batches (see the module docstring); arguments as ``fit``'s, checked there."""
    from .fit import _check_opt_state, _result
    if weights is not None or mask is not None:
        raise ValueError("fit: with a stream of batches, weights come in each batch as (x, y, weights) and "
                         "masks are not taken; pass weights=None and mask=None")
    if isinstance(steps, Minibatches):
        raise ValueError("fit: a stream of batches is already batched; give steps=K (the batches to take) or "
                         "steps=None (until the stream ends), not Minibatches")
    total = count("fit", "steps", steps)
    if run.mesh is not None:
        raise ValueError("fit: Run(mesh=...) is not supported with a stream of batches; shard the data as a "
                         "global array and fit it in memory, or stream on one device")
    if recipe.takes_key and key is None:
        raise ValueError("fit: the model takes a key (dropout or other noise); pass fit(..., key=jax.random.key(0)) "
                         "to draw a fresh one every step")
    every = patience = None
    if validation is not None:
        every, patience = validation.every or max(1, (total or 10000) // 100), validation.patience
        if total is not None and every > total:
            raise ValueError(f"fit: Validation every={every} never happens in a fit of {total} steps "
                             f"(no validation NLL, no best parameters); give every <= {total}")
    val = None if validation is None else (validation.x, validation.y)
    if val is not None and recipe.validate:
        recipe.check(*val, mean=True)
    reading, mean = Batch("fit"), objective.reduction == "mean"

    def put(item, index):
        data, rows = reading.read(item, index)
        if recipe.validate:
            x, y, w, _ = data
            cut = jax.tree_util.tree_map(lambda a: a[:rows], (x, y, w))
            recipe.check(*cut, mean=mean)
        return jax.device_put(data)

    progress, checkpoints = run.report, run.checkpoints
    every_ckpt = None if checkpoints is None else checkpoints.every
    chunk = progress.chunk_size or READ_EVERY
    chunk = chunk if every_ckpt is None else min(chunk, every_ckpt)
    store = None
    parts = partition(params)
    opt_state = run.opt_state
    if opt_state is not None:
        _check_opt_state(optimizer, parts.trained, opt_state)
    else:
        opt_state = opt_init(recipe, optimizer)(parts.trained)
    opts = None
    bar = progress_bar(progress.bar, total or 0) if total else None
    try:
        done, history = 0, []
        feed = None
        if checkpoints is not None:
            from ._checkpoint import Store
            store = Store(checkpoints.directory)
        feed = Prefetch(batches, None, put, size=1)  # the first batch fixes the shape the step compiles for
        if not feed.queue:
            raise ValueError("fit: the stream of batches is empty (its first next() raised StopIteration)")
        opts = StepOptions(n=reading.size or 1, keyed=recipe.takes_key, batch_size=None, every=every,
                           patience=patience, **settings(objective))
        carry = initial_carry(parts, opt_state, opts)
        if store is not None:
            done, carry, history = _resume(store, carry, total if total is not None else sys.maxsize)
        feed.want, feed.size = None if total is None else total - done, PREFETCH
        if feed.want is not None and feed.want <= 0:  # resumed at the last step: nothing left to run
            feed.queue.clear()
        feed.fill()
        step = _stream_step(recipe, optimizer, opts)
        keys = Keys(None, jax.random.split(key)[1] if opts.keyed and key is not None else None)
        schedule = opts.schedule()
        if bar is not None:
            bar.update(done)
        carry, keep, done, stop = _loop(feed, step, (carry, carry.params), keys, val, schedule, chunk, done,
                                        total, history, Hooks(store, every_ckpt, bar, progress.callback))
    finally:
        if bar is not None:
            bar.close()
        if store is not None:
            store.close()
    both = np.concatenate(history) if history else np.zeros((0, 2), np.float32)
    result = _result(carry, stop, keep, both[:, 0], both[:, 1], opts)
    if stop is Stop.EXHAUSTED and total is not None:
        result = result._replace(message=result.message + f" (of the {total} asked for)")
    return result


def _loop(feed: Prefetch, step, state, keys, val, schedule, chunk: int, done: int, total, history, hooks):
    """Steps on the stream's batches until it ends, ``total`` steps, or a step ends the fit;
    ``(carry, keep, done, stop)``."""
    stop, outputs = RESULTS[int(jax.device_get(state[0].result))], []
    while stop is Stop.COMPLETED:
        batch = feed.next()
        if batch is None:  # the stream (or the steps asked for) is done
            break
        state, *out = step(state, keys, batch, val, schedule)  # dispatched, not waited for
        outputs.append(out)
        del batch
        if len(outputs) >= 2:  # back-pressure: at most two steps (and their batches) in flight, however
            jax.block_until_ready(outputs[-2][0])  # far the host could run ahead of the device
        feed.pull()  # the host reads the next batch while the device runs this step
        if len(outputs) >= chunk or not feed.queue:
            outputs, result = jax.device_get((outputs, state[0].result))  # one transfer
            losses, vals, ran = (np.asarray(column) for column in zip(*outputs))
            outputs = []
            losses, vals = losses[ran == 1], vals[ran == 1]
            history.append(np.stack([losses, vals], axis=-1).astype(np.float32))
            done += len(losses)
            stop = RESULTS[int(result)]
            if stop is Stop.COMPLETED and feed.exhausted and not feed.queue:
                stop = Stop.EXHAUSTED  # the stream ended before the steps asked for (or, steps=None, at all)
            if stop is not Stop.NON_FINITE and len(losses):
                finite = vals[np.isfinite(vals)]
                _between_chunks(state[0], done, -1 if total is None else total, stop, losses,
                                float(finite[-1]) if finite.size else None, history, hooks)
    return state[0], state[1], done, stop
