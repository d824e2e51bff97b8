"""Input checks: shapes at trace time, values once, eagerly, at the public boundary.

Shape checks cost nothing under ``jit`` (shapes are static) and run on every
call. Value checks need concrete arrays: they run in NumPy before anything is
jitted, and every failure is a ``ValueError`` that names the family, the rule,
the number of bad entries and the first bad index and value. Values are checked
as the computation will see them: cast to the dtype JAX uses (float64 -> float32 and
int64 -> int32 without 64-bit mode; ``computed``), so an overflow, a wrapped integer or
a value rounded off its support is an error, not a silent inf. On traced arrays
(inside a user's ``jit``/``grad``/``scan``) values cannot be read: the recipe
warns once and points to the eager check (``recipe.check``) instead.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.core
import jax.numpy as jnp
import numpy as np


def check_event_shape(name: str, y, expected: tuple[int, ...]) -> None:
    """Raise unless one example's target ``y`` has exactly the shape ``expected``.

    mle_jax never broadcasts a target against a prediction: a (1,) target for a
    scalar Normal is the first sign of the (N,) vs (N,1) bug that silently makes
    an (N,N) loss elsewhere.
    """
    shape = tuple(np.shape(y))
    if shape != tuple(expected):
        raise ValueError(
            f"{name}: one example's target has shape {shape} but the distribution "
            f"expects shape {tuple(expected)}; mle_jax never broadcasts targets "
            f"against predictions (reshape y so that y[i] has shape {tuple(expected)})")


def check_side_shape(name: str, y, side) -> None:
    """Raise unless a censored observation's ``side`` has the shape of its value ``y`` (a direct
    ``censored_log_prob`` call; ``mj.censored`` reads both from one target): a side of another shape
    would broadcast the value against it."""
    if tuple(np.shape(side)) != tuple(np.shape(y)):
        raise ValueError(
            f"{name}: side has shape {tuple(np.shape(side))} but y has shape {tuple(np.shape(y))}; a "
            f"censored observation's side (-1, 0 or +1) takes its value's shape, and mle_jax never "
            f"broadcasts one against the other")


def local(value):
    """The values this process can read: ``value`` itself, or, for a global ``jax.Array`` split over
    several processes (``jax.distributed``; ``is_fully_addressable`` False), this process's rows as
    one NumPy array: its ``addressable_shards`` in order along the leading (batch) axis, a shard
    replicated on several local devices taken once; a 0-d or fully replicated array (a fitted
    parameter under a mesh) is its first local shard, whole. Each process checks the values of its own rows."""
    if not isinstance(value, jax.Array) or value.is_fully_addressable:
        return value
    if value.ndim == 0 or value.is_fully_replicated:
        return np.asarray(value.addressable_shards[0].data)
    parts = {}
    for shard in value.addressable_shards:
        rows = shard.index[0] if shard.index else slice(None)
        parts.setdefault(rows.start or 0, shard.data)
    return np.concatenate([np.asarray(parts[start]) for start in sorted(parts)])


def is_concrete(*arrays) -> bool:
    """True when no argument is a tracer, so its values can be read."""
    leaves = jax.tree_util.tree_leaves(arrays)
    return not any(isinstance(a, jax.core.Tracer) for a in leaves)


def fail_entries(name: str, rule: str, bad: np.ndarray, values: np.ndarray, what: str = "y") -> None:
    """Raise a ValueError describing the examples of ``values`` where ``bad`` holds.

    ``bad`` has the shape of ``values``; an example (a row along the leading
    axis) is bad when any of its entries is.
    """
    bad = np.asarray(bad)
    if not bad.any():
        return
    rows = bad.reshape(len(bad), -1).any(axis=1) if bad.ndim > 1 else bad
    first = _first_row(bad)
    shown = np.asarray(values)
    if is_float(shown.dtype) and shown.dtype.itemsize < 4:  # bfloat16 / float16: show as a Python float
        shown = shown.astype(np.float32)
    value = shown[first].tolist()
    count = int(rows.sum())
    unit = ("example" if bad.ndim > 1 else "entry") if count == 1 else ("examples" if bad.ndim > 1 else "entries")
    raise ValueError(
        f"{name}: {what} {value!r} at index {first} is not {rule} "
        f"({count} bad {unit}; the first is shown)")


def _first_row(bad: np.ndarray) -> int:
    rows = bad.reshape(len(bad), -1).any(axis=1) if bad.ndim > 1 else bad
    return int(np.flatnonzero(rows)[0])


def is_float(dtype) -> bool:
    """A floating dtype, bfloat16 and float16 included (NumPy does not count bfloat16 as inexact)."""
    return bool(jnp.issubdtype(dtype, jnp.floating))


def as_float64(values) -> np.ndarray:
    """A floating array viewed in float64 (exact for every float dtype), for comparisons."""
    return np.asarray(values).astype(np.float64)


def _computed_dtype(arr: np.ndarray, dtype=None) -> np.dtype:
    """``dtype``, or by default the one JAX computes ``arr`` in (``jax.dtypes.canonicalize_dtype``)."""
    return np.dtype(jax.dtypes.canonicalize_dtype(arr.dtype) if dtype is None else dtype)


def computed(values, dtype=None) -> np.ndarray:
    """``values`` as the computation will see them: cast to ``dtype``, by default the dtype JAX uses for their dtype
    (``jax.dtypes.canonicalize_dtype``: float64 -> float32 and int64 -> int32 unless 64-bit mode is on) and, for
    floats, with subnormal numbers flushed to 0 as XLA does on the CPU. Floats come back viewed in float64
    (exact), integers in int64."""
    arr = np.asarray(values)
    target = _computed_dtype(arr, dtype)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is what the caller looks for
        seen = arr.astype(target)
    if is_float(target):
        tiny = float(jnp.finfo(target).tiny)
        wide = seen.astype(np.float64)
        return np.where(np.abs(wide) < tiny, 0.0, wide)
    if arr.dtype == np.bool_:
        return seen
    return seen.astype(np.int64)


def check_cast(name: str, values, what: str = "y", lost=None, exact: bool = False, dtype=None) -> None:
    """Raise if casting ``values`` to the dtype they are computed in changes them where it matters:
    an integer wraps around, a finite float overflows to inf, ``lost(seen)`` holds where the
    computed value leaves the support (1e-50 -> 0 for a positive y; 1 - 1e-10 -> 1 for the unit
    interval), or, with ``exact``, any finite value changes (counts and labels; integers are also
    computed in floating point, so they must stay whole there).

    ``dtype``: by default the dtype JAX computes in (``computed``); given (a float dtype), the one
    the model computes in, which can be narrower: under x64 a float32 model reads a count above
    2^24 rounded (``distributions._support.check_kept``). The error names which of the two it is."""
    arr = np.asarray(values)
    if arr.size == 0 or arr.dtype == np.bool_:
        return
    target = _computed_dtype(arr, dtype)
    seen = computed(arr, target)
    if is_float(target):  # a float, or an integer read as a float (``dtype`` given)
        original = as_float64(arr)
        bad = np.isfinite(original) & ~np.isfinite(seen)
        if exact:
            bad = bad | (np.isfinite(original) & _changed(seen, arr))
    else:
        original = arr
        bad = seen != original
    if lost is not None:
        bad = bad | np.asarray(lost(seen))
    if exact and not is_float(target) and not bad.any():  # integers computed in floating point stay whole
        target = jax.dtypes.canonicalize_dtype(np.float64)
        seen = computed(arr.astype(np.float64))
        bad = _changed(seen, arr)
    if not bad.any():
        return
    wide = is_float(target) and np.dtype(target).itemsize >= 8  # float64 already: 64-bit mode cannot help
    where, fix = (("the dtype JAX computes in", "rescale the data" if wide else "enable 64-bit mode with "
                   "jax.config.update('jax_enable_x64', True) or rescale the data") if dtype is None else
                  ("the dtype the model computes in", "give the model float64 parameters (and x) so that it "
                   "computes in float64"))
    fail_entries(
        name, f"kept by the cast to {np.dtype(target).name}, {where} (it becomes "
        f"{np.asarray(seen)[_first_row(bad)].tolist()!r}); {fix}", bad, arr, what)


def _changed(seen: np.ndarray, arr: np.ndarray) -> np.ndarray:
    """Where the computed floats ``seen`` (``computed``: viewed in float64) are not the values of ``arr``: integers
    compared as integers (compared in float64, a count of 2^53 + 1 equals its rounding 2^53, so it passed as kept);
    a value off int64's range is changed."""
    if is_float(arr.dtype):
        return seen != as_float64(arr)
    inside = np.isfinite(seen) & (np.abs(seen) < 2.0 ** 63)
    whole = np.where(inside, seen, 0.0).astype(np.int64)
    return ~inside | (whole != arr.astype(np.int64))


def check_finite(name: str, values, what: str) -> None:
    """Raise if a floating array (bfloat16 included) holds NaN or inf, or if the cast to the
    dtype JAX computes in overflows a float or wraps an integer (``check_cast``)."""
    arr = np.asarray(values)
    if is_float(arr.dtype):
        native = arr.dtype in (np.float16, np.float32, np.float64)  # else bfloat16: viewed in float64
        finite = np.isfinite(arr if native else as_float64(arr))
        if not finite.all():
            fail_entries(name, "finite (no NaN or inf)", ~finite, arr, what)
    # a value the cast can change only if there is a cast: same dtype, no overflow, no wrap (one pass saved
    # for data already in the dtype JAX computes in: a stream checks each of its batches)
    if jnp.issubdtype(arr.dtype, jnp.number) and jax.dtypes.canonicalize_dtype(arr.dtype) != arr.dtype:
        check_cast(name, arr, what)


def check_batch(name: str, x, y, *extra) -> int:
    """Check that x, y (and per-example weights, masks) share a non-empty leading axis."""
    for label, value in (("y", y),) + tuple(extra):
        one_array(name, label, value)
    n_x = _leading(name, x, "x")
    n_y = _leading(name, y, "y")
    if n_x != n_y:
        raise ValueError(
            f"{name}: x has {n_x} examples (leading axis) but y has {n_y}; "
            f"shapes {_shapes(x)} and {np.shape(y)}")
    for label, arr in extra:
        if arr is not None and np.shape(arr) != (n_y,):
            raise ValueError(
                f"{name}: {label} must have shape ({n_y},), one entry per example; got {np.shape(arr)}")
    if n_y == 0:
        raise ValueError(f"{name}: the data set is empty (0 examples)")
    return n_y


def one_array(name: str, what: str, value) -> None:
    """y, weights and masks are one array each (x may be any pytree). A tuple or dict of arrays would
    be read by its leaves, or stacked the wrong way round: ``(values, sides)`` of 2 examples looks
    like a (2, 2) array whose rows are the columns."""
    if isinstance(value, (tuple, dict)):
        raise ValueError(
            f"{name}: {what} is a Python {type(value).__name__} of {len(value)} entries; it must be one "
            f"array with the examples on its leading axis. Stack the columns, e.g. "
            f"jnp.stack([values, sides], axis=1) for a censored target of shape (N, 2)")


def _leading(name: str, tree: Any, what: str) -> int:
    shapes = [np.shape(a) for a in jax.tree_util.tree_leaves(tree)]
    scalar = not shapes or any(len(shape) == 0 for shape in shapes)
    if scalar and isinstance(tree, (list, tuple)):
        raise ValueError(
            f"{name}: {what} is a Python {type(tree).__name__}, which JAX reads as a pytree of "
            f"separate leaves, not as examples; pass an array (jnp.asarray({what}))")
    if scalar:
        raise ValueError(f"{name}: {what} needs a leading batch axis; got a scalar")
    sizes = sorted({int(shape[0]) for shape in shapes})
    if len(sizes) != 1:
        raise ValueError(f"{name}: the leaves of {what} disagree on the number of examples: {sizes}")
    return sizes[0]


def _shapes(tree):
    shapes = [np.shape(a) for a in jax.tree_util.tree_leaves(tree)]
    return shapes[0] if len(shapes) == 1 else shapes


def check_weights(name: str, weights, mask) -> None:
    """Weights must be finite and >= 0 (bfloat16 included); a mask must be boolean or 0/1."""
    if weights is not None:
        w = np.asarray(weights)
        check_finite(name, w, "weights")
        fail_entries(name, ">= 0", as_float64(w) < 0, w, "weights")
    if mask is not None:
        m = np.asarray(mask)
        if m.dtype != np.bool_:
            fail_entries(name, "boolean (or 0/1)", (m != 0) & (m != 1), m, "mask")
