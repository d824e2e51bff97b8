"""The nonparametric bootstrap as one vmapped solve: rows resampled as multinomial frequency weights.

    c^(b) ~ Multinomial(N, (1/N, ..., 1/N)),    phi^(b) = argmin_phi  sum_i c_i^(b) w_i l_i(phi),   b = 1..n

Resampling the N rows with replacement is the same as weighting row i by the number of times it is
drawn, ``c_i``; so each replicate is a solve of the same data with weights ``c^(b)`` (times the
user's ``weights``, which are kept attached to their rows; masked-out rows are never drawn and N is
the number of rows left). All replicates run as ``jax.vmap`` of one ``mle_jax.solver`` over their
keys, ``chunk_size`` at a time (one compiled program; memory bounded by the chunk, not by n). Each
replicate starts from ``params`` (the estimate). Replicate ``b`` draws its counts from
``jax.random.split(key, n)[b]`` alone (``counts``), so the result does not depend on ``chunk_size``.

From the n replicates: ``se`` is their standard deviation (ddof 1) and ``conf_int(level)`` the
percentile interval ``(q_{(1-level)/2}, q_{(1+level)/2})`` (NumPy's default, linear, quantiles),
both over the replicates whose loss stayed finite, as pytrees shaped like params. Reference: Efron
and Tibshirani, *An Introduction to the Bootstrap* (1993), ch. 6 and 13. ``scipy.stats.bootstrap``
with ``method="percentile"`` is the same interval for a statistic of resampled rows.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._boundary import as_array
from ._checks import check_batch, check_weights
from ._fit_options import Minibatches, Stop, code, count
from ._floors import describe, on_floor
from .diagnostics import BoundaryWarning
from ._params import Params, trained_mask
from .recipe import Recipe
from .solver import History, Solve, solver

__all__ = ["BootstrapResult", "bootstrap", "counts", "replicates"]

P = TypeVar("P", bound=Params)
ROWS_PER_CHUNK = 2**22  # default chunk_size: about this many (replicate, row) weights at once


def counts(key, n_rows: int, rows=None) -> jax.Array:
    """One replicate's frequency weights: how often each of ``n_rows`` rows is drawn in ``len(rows)``
    draws with replacement from ``rows`` (default all rows), float32 of shape ``(n_rows,)``. Pure."""
    if rows is None:
        idx = jax.random.randint(key, (n_rows,), 0, n_rows)
    else:
        rows = jnp.asarray(rows)
        idx = rows[jax.random.randint(key, rows.shape, 0, rows.shape[0])]
    return jnp.zeros(n_rows, jnp.float32).at[idx].add(1.0)


def replicates(solve: Solve, params, x, y, keys, weights=None, rows=None):
    """``(params, History)`` of one bootstrap replicate per key (leading axis ``len(keys)``), each a
    solve from ``params`` with ``counts(key, N, rows)`` times ``weights`` as its weights. Pure: usable
    under ``jit`` and ``vmap`` (e.g. over data sets, for a simulation study of the bootstrap)."""
    n_rows = jax.tree_util.tree_leaves(y)[0].shape[0]

    def one(key):
        c = counts(key, n_rows, rows)
        w = c if weights is None else c * weights
        draws = solve.recipe.takes_key or isinstance(solve.steps, Minibatches)  # the solve's own key
        return solve(params, x, y, weights=w.astype(jnp.result_type(float)),
                     key=jax.random.fold_in(key, 1) if draws else None)
    return jax.vmap(one)(keys)


@dataclass(frozen=True)
class BootstrapResult(Generic[P]):
    """What ``bootstrap`` found.

    Fields:
      params: the replicates' parameters, a pytree shaped like params with a leading axis n.
      history: their ``History`` (leading axis n): loss per step, steps run, why each ended.
      estimate: the params the replicates started from (the estimate being bootstrapped).
      keys: the n keys (replicate b's counts are ``counts(keys[b], N)``).
    """

    params: P
    history: History
    estimate: P
    keys: jax.Array

    @property
    def valid(self) -> np.ndarray:
        """Per replicate, whether its loss stayed finite (the ones ``se`` and ``conf_int`` use)."""
        return np.asarray(self.history.result) != code(Stop.NON_FINITE)

    def _map(self, fn: Callable[[np.ndarray], np.ndarray]):
        """``fn`` over the valid replicates of each trained leaf; other leaves are the estimate's."""
        ok = self.valid
        leaves, treedef = jax.tree_util.tree_flatten(self.estimate)
        reps = jax.tree_util.tree_leaves(self.params)
        out = [fn(np.asarray(r, np.float64)[ok]) if t else e
               for e, r, t in zip(leaves, reps, trained_mask(self.estimate))]
        return treedef.unflatten(out)

    @property
    def se(self) -> P:
        """The bootstrap standard error: the replicates' standard deviation (ddof 1), shaped like params."""
        return cast(P, self._map(lambda r: r.std(axis=0, ddof=1)))

    def conf_int(self, level: float = 0.95) -> tuple[P, P]:
        """Percentile intervals ``(lower, upper)``: the ``(1 -+ level) / 2`` quantiles of the replicates."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"conf_int: level must lie in (0, 1); got {level}")
        a = (1.0 - level) / 2
        return (cast(P, self._map(lambda r: np.quantile(r, a, axis=0))),
                cast(P, self._map(lambda r: np.quantile(r, 1.0 - a, axis=0))))


def bootstrap(recipe: Recipe, params: P, x, y, optimizer: optax.GradientTransformation, steps: int | Minibatches,
              n: int, key, *, tol: float | None = None, weights=None, mask=None, chunk_size: int | None = None,
              reduction: str = "mean") -> BootstrapResult[P]:
    """The nonparametric bootstrap of ``params`` (the MLE), ``n`` replicates in one vmapped solve.

    Args:
      recipe, params, x, y: the fitted recipe, its estimate and the data it was fitted to.
      optimizer, steps, tol, reduction: each replicate's solve (``mj.solver``; ``optax.lbfgs()`` with a
        ``tol`` reaches each replicate's optimum in a few dozen steps for a GLM).
      n: the number of replicates.
      key: a PRNG key; replicate b's resample is drawn from ``jax.random.split(key, n)[b]``.
      weights, mask: as in ``fit``: weights stay with their rows, masked-out rows are never drawn.
      chunk_size: replicates solved at once (default: about 2^22 / N, at most n): the memory bound.

    Returns:
      A ``BootstrapResult`` with ``.params`` (leading axis n), ``.se``, ``.conf_int(level)``. Replicates
      whose loss became NaN or inf are left out of both, with a ``RuntimeWarning``. A ``BoundaryWarning``
      where ``params`` or some replicates have a family parameter on its link's floor (``softplus(raw) <=
      eps``, ``History.floored``): its raw gradient vanishes there, so a replicate cannot leave it, and its
      spread (se, intervals) is the floor's, not the sampling distribution's.

    >>> import jax, jax.numpy as jnp, optax, mle_jax as mj
    >>> r = mj.recipe(lambda p, x: p["mu"], mj.normal(1.0))
    >>> y = jnp.array([0.3, 1.2, -0.4, 2.0, 0.9, 1.1])
    >>> b = mj.bootstrap(r, r.init({"mu": y.mean()}), jnp.zeros((6, 1)), y, optax.lbfgs(), 20, n=200,
    ...                  key=jax.random.key(0), tol=1e-6)
    >>> b.params.model["mu"].shape, bool(0.2 < b.se.model["mu"] < 0.5)
    ((200,), True)
    """
    name = "bootstrap"
    if not isinstance(params, Params):
        raise TypeError(f"{name}: params must come from recipe.init(model_params) (an mle_jax Params); "
                        f"got {type(params).__name__}")
    n = cast(int, count(name, "n", n, minimum=2))
    chunk_size = count(name, "chunk_size", chunk_size)
    if key is None or not isinstance(key, (jax.Array, np.ndarray)):
        raise TypeError(f"{name}: key must be a PRNG key (jax.random.key(0)); got {type(key).__name__}")
    solve = solver(recipe, optimizer, steps, tol, reduction=reduction)  # checks recipe, optimizer, steps, tol
    x, y = as_array(name, "x", x), as_array(name, "y", y)
    weights, mask = as_array(name, "weights", weights), as_array(name, "mask", mask)
    n_rows = check_batch(name, x, y, ("weights", weights), ("mask", mask))
    check_weights(name, weights, mask)
    if recipe.validate:
        recipe.check(x, y, weights, mask, mean=reduction == "mean")
    rows = None if mask is None else np.flatnonzero(np.asarray(mask) != 0)
    if rows is not None and rows.size == 0:
        raise ValueError(f"{name}: the mask leaves no row to resample")
    size = min(n, chunk_size or max(1, ROWS_PER_CHUNK // n_rows))
    program = recipe.programs.get(("bootstrap", optimizer, steps, tol, reduction),
                                  lambda: jax.jit(lambda *a: replicates(solve, *a)))
    keys = jax.random.split(key, n)
    chunks = []
    for start in range(0, n, size):
        part = keys[start:start + size]
        if part.shape[0] < size:  # the last chunk padded to the compiled size (its extra replicates dropped)
            part = jnp.concatenate([part, keys[:size - part.shape[0]]])
        chunks.append(program(params, x, y, part, weights, None if rows is None else jnp.asarray(rows)))
    out = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a)[:n], *chunks)
    result = BootstrapResult(cast(P, out[0]), out[1], params, keys)
    _floored(name, recipe, params, result)
    bad = int((~result.valid).sum())
    if bad:
        warnings.warn(f"{name}: {bad} of {n} replicates had a non-finite loss and are left out of se and "
                      f"conf_int", RuntimeWarning, stacklevel=2)
    if tol is not None:
        unconverged = int((~np.asarray(result.history.converged) & result.valid).sum())
        if unconverged:
            warnings.warn(f"{name}: {unconverged} of {n} replicates did not reach tol={tol:g} in {steps} steps "
                          f"(their last parameters are used; raise steps)", RuntimeWarning, stacklevel=2)
    return result


def _floored(name: str, recipe: Recipe, params, result: BootstrapResult) -> None:
    """A ``BoundaryWarning`` where the estimate, or some finite replicates, end with a family parameter on its
    link's floor (``mle_jax._floors``): a solve cannot move a parameter whose raw gradient has vanished."""
    at_estimate = on_floor(params.family, recipe.family.positive)
    if at_estimate:
        warnings.warn(f"{name}: the estimate is on a link's floor, {describe(at_estimate)}. Every replicate starts "
                      f"there and cannot leave it (its raw gradient vanishes): the bootstrap of that parameter "
                      f"measures the floor, not the sampling distribution", BoundaryWarning, stacklevel=3)
        return
    floored = int((np.asarray(result.history.floored) & result.valid).sum())
    if floored:
        warnings.warn(f"{name}: {floored} of {result.valid.size} replicates ended with a family parameter on its "
                      f"link's floor (softplus(raw) <= eps; history.floored): their estimate of it is no MLE, and "
                      f"se and conf_int include them", BoundaryWarning, stacklevel=3)
