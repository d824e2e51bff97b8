"""Input checks: shapes at trace time, values once, eagerly, at the public boundary.

Shape checks cost nothing under ``jit`` (shapes are static) and run on every
call. Value checks need concrete arrays: they run in NumPy before anything is
jitted, and every failure is a ``ValueError`` that names the family, the rule,
the number of bad entries and the first bad index and value. On traced arrays
(inside a user's ``jit``/``grad``/``scan``) values cannot be read: the recipe
warns once and points to the eager check (``recipe.check``) instead.
"""

from __future__ import annotations

import numpy as np
import jax


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
    first = int(np.flatnonzero(rows)[0])
    value = np.asarray(values)[first].tolist()
    count = int(rows.sum())
    unit = ("example" if bad.ndim > 1 else "entry") if count == 1 else ("examples" if bad.ndim > 1 else "entries")
    raise ValueError(
        f"{name}: {what} {value!r} at index {first} is not {rule} "
        f"({count} bad {unit}; the first is shown)")


def check_finite(name: str, values, what: str) -> None:
    """Raise if a floating array holds NaN or inf."""
    arr = np.asarray(values)
    if np.issubdtype(arr.dtype, np.inexact):
        fail_entries(name, "finite (no NaN or inf)", ~np.isfinite(arr), arr, what)


def check_batch(name: str, x, y, *extra) -> int:
    """Check that x, y (and per-example weights, masks) share a non-empty leading axis."""
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


def _leading(name, tree, what):
    sizes = {np.shape(a)[0] if np.ndim(a) else None for a in jax.tree_util.tree_leaves(tree)}
    if None in sizes:
        raise ValueError(f"{name}: {what} needs a leading batch axis; got a scalar")
    if len(sizes) != 1:
        raise ValueError(f"{name}: the leaves of {what} disagree on the number of examples: {sorted(sizes)}")
    return sizes.pop()


def _shapes(tree):
    shapes = [np.shape(a) for a in jax.tree_util.tree_leaves(tree)]
    return shapes[0] if len(shapes) == 1 else shapes


def check_weights(name: str, weights, mask) -> None:
    """Weights must be finite and >= 0; a mask must be boolean or 0/1."""
    if weights is not None:
        w = np.asarray(weights)
        check_finite(name, w, "weights")
        fail_entries(name, ">= 0", w < 0, w, "weights")
    if mask is not None:
        m = np.asarray(mask)
        if m.dtype != np.bool_:
            fail_entries(name, "boolean (or 0/1)", (m != 0) & (m != 1), m, "mask")
