"""Batches read from arrays too large for memory: ``mj.batches(x, y, batch_size)`` for ``fit`` on a stream.

``batches(x, y, B)`` yields ``(x[rows], y[rows])`` (and ``weights[rows]``) for consecutive (or, with
``shuffle``, shuffled) blocks of ``B`` rows; ``x`` and ``y`` are anything that indexes by rows and
has a leading length: a ``np.memmap``, an h5py or zarr array, a NumPy or jax array. Only the
rows of one batch are read at a time: the whole array is never converted (``np.asarray`` is
called on the rows of one batch, never on ``x``), so memory holds a few batches whatever the
file's size. Every batch has ``B`` rows but the last of an epoch (unless ``drop_last``), which
``fit`` pads and masks (its step is the step on those rows alone).

It is re-iterable: each ``iter`` starts again at batch ``start`` (to resume a checkpointed fit at
step s, pass ``start=s``), and ``len`` is the number of batches it yields.
"""

from __future__ import annotations

from typing import Any, cast

import jax
import numpy as np

from ._fit_options import count


def _length(name: str, a) -> int:
    shape = getattr(a, "shape", None)
    if shape is None or len(shape) == 0:
        raise ValueError(f"batches: {name} needs a leading axis of examples (an array, a memmap, an h5py or zarr "
                         f"array); got {type(a).__name__}")
    return int(shape[0])


class Batches:
    """Blocks of rows of ``(x, y[, weights])``; see ``batches``."""

    def __init__(self, x, y, batch_size: int, weights=None, *, shuffle: bool = False, key: Any = None,
                 epochs: int = 1, drop_last: bool = False, start: int = 0):
        self.batch_size = cast(int, count("batches", "batch_size", batch_size))  # not None: given
        self.epochs = cast(int, count("batches", "epochs", epochs))
        self.start = cast(int, count("batches", "start", start, minimum=0))
        arrays = jax.tree_util.tree_leaves(x) + [y] + ([] if weights is None else [weights])
        sizes = {_length("x, y and weights", a) for a in arrays}
        if len(sizes) != 1:
            raise ValueError(f"batches: x, y and weights disagree on the number of examples: {sorted(sizes)}")
        self.n = sizes.pop()
        if self.n == 0:
            raise ValueError("batches: the data set is empty (0 examples)")
        if shuffle and key is None:
            raise ValueError("batches: shuffle=True needs a PRNG key (key=jax.random.key(0)) for the shuffles")
        self.x, self.y, self.weights, self.shuffle, self.key = x, y, weights, bool(shuffle), key
        self.per_epoch = self.n // self.batch_size if drop_last else -(-self.n // self.batch_size)
        if self.per_epoch == 0:
            raise ValueError(f"batches: drop_last with batch_size={batch_size} above the {self.n} examples "
                             f"leaves no batch")

    def __len__(self) -> int:
        return max(0, self.epochs * self.per_epoch - self.start)

    def __iter__(self):
        order, order_epoch = None, -1
        for i in range(self.start, self.epochs * self.per_epoch):
            epoch, b = divmod(i, self.per_epoch)
            if self.shuffle and epoch != order_epoch:  # one permutation per epoch
                order = np.asarray(jax.random.permutation(jax.random.fold_in(self.key, epoch), self.n))
                order_epoch = epoch
            lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, self.n)
            rows = slice(lo, hi) if order is None else np.sort(order[lo:hi])

            def take(a, rows=rows):
                return np.asarray(a[rows])
            out = (jax.tree_util.tree_map(take, self.x), take(self.y))
            yield out if self.weights is None else out + (take(self.weights),)


def batches(x, y, batch_size: int, weights=None, *, shuffle: bool = False, key: Any = None, epochs: int = 1,
            drop_last: bool = False, start: int = 0) -> Batches:
    """``(x_b, y_b[, w_b])`` blocks of ``batch_size`` rows, read one batch at a time (module docstring).

    Args:
      x: an array-like with a leading axis of examples (``np.memmap``, h5py / zarr array, NumPy, jax),
        or a pytree of them; y, weights: the same (weights optional).
      batch_size: rows per batch (the last of an epoch has the rest, unless ``drop_last``).
      shuffle, key: a fresh permutation of the rows each epoch, ``permutation(fold_in(key, epoch), N)``.
      epochs: passes over the rows; start: the first batch yielded (to resume at step ``start``).

    Examples:
      >>> import numpy as np, mle_jax as mj
      >>> stream = mj.batches(np.arange(10.0)[:, None], np.arange(10.0), 4)
      >>> [b[1].tolist() for b in stream]
      [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0], [8.0, 9.0]]
    """
    return Batches(x, y, batch_size, weights, shuffle=shuffle, key=key, epochs=epochs, drop_last=drop_last,
                   start=start)


__all__ = ["Batches", "batches"]
