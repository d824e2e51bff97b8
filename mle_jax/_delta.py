"""The delta method after the fit: a family's own parameters on their natural scale, and E[y | x].

For a smooth function g of the flat trained parameters v with covariance C (``mj.inference``'s
``cov``), the delta method gives

    Var g(v_hat) ~= J C J',    J = d g / d v  at v_hat          (Pawitan, *In All Likelihood*, 2001, 4.7)

``natural`` takes g = the family's parameters through their links (``sigma = softplus(s) + eps``,
``df``, ``total_count``, ``concentration``, ``shape``, ``precision``; an ordinal family's cutpoints
``c = first_cut + cumsum([0, softplus(gaps) + eps])``). With the observed information the result is
the standard error the same fit would report in the natural parametrisation (the Hessian transforms
as ``J' H J`` at a stationary point), e.g. statsmodels' for a negative binomial's alpha = 1 / r.

``mean_interval`` takes g = E[y | x_new]: ``method="endpoint"`` (statsmodels' default for GLMs,
``get_prediction().conf_int()``) puts the Wald interval on the model's raw output eta (the linear
predictor) and maps its ends through the mean, ``[m(eta - z se_eta), m(eta + z se_eta)]``, which
stays inside the mean's range (a probability in (0, 1)); ``method="delta"`` is ``m -+ z se_m``
(statsmodels' ``conf_int(method="delta")``). Derivatives are ``jax.grad``, per row by ``vmap``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from . import distributions as dist
from . import links

POSITIVE = ("scale", "df", "total_count", "concentration", "shape", "precision")
"""The built-in families' positive parameters, each ``softplus(raw) + eps``: read by name only where the caller
does not pass the family's own declaration (``Family.positive``)."""


def natural_values(fparams: Any, extra: dict[str, Callable] | None = None,
                   positive: tuple[str, ...] | None = None) -> dict[str, jax.Array]:
    """The family's own parameters on their natural scale, by dotted name (``scale``, ``df``, ...).

    ``positive``: the keys the family declares ``softplus(raw) + eps`` (``Family.positive``); those leaves
    are shown through softplus, no others (a family of your own whose ``scale`` is ``exp(raw)`` and declares
    nothing is not shown as ``softplus(raw)``). None: the built-in names ``POSITIVE``. Nested containers
    (a combinator's inner family) give dotted names; an ordinal family's ``first_cut`` and ``gaps`` (declared)
    give ``cutpoints``. ``extra`` maps a leaf name to its inverse link (for a family of your own; it wins
    over ``positive``); names neither declared nor in ``extra`` are left out."""
    extra = extra or {}
    declared = POSITIVE if positive is None else tuple(positive)
    out: dict[str, jax.Array] = {}

    def walk(node, prefix):
        if isinstance(node, dict):
            items, ordinal = list(node.items()), "first_cut" in node and "gaps" in node and (
                positive is None or "gaps" in declared)
            if ordinal:
                gaps = links.softplus.forward(node["gaps"])
                first = jnp.asarray(node["first_cut"])
                zero = jnp.zeros(first.shape + (1,), gaps.dtype)
                out[prefix + "cutpoints"] = first[..., None] + jnp.concatenate([zero, jnp.cumsum(gaps, -1)], -1)
        elif isinstance(node, (list, tuple)):
            items, ordinal = list(enumerate(node)), False
        else:
            return
        for key, value in items:
            name = f"{prefix}{key}"
            if ordinal and key in ("first_cut", "gaps"):
                continue
            if isinstance(value, (dict, list, tuple)):
                walk(value, name + ".")
            elif key in extra:
                out[name] = extra[key](value)
            elif key in declared:
                out[name] = links.softplus.forward(value)
    walk(fparams, "")
    return out


def natural(at: Callable, v, cov, variance, extra=None, positive=None) -> dict[str, tuple[Any, Any]]:
    """``{name: (estimate, se)}``: ``natural_values`` of ``at(v).family`` with delta-method SEs.

    ``cov`` the k x k covariance of v (None: only the variances ``variance`` are used, as if v's
    entries were uncorrelated)."""
    shapes = jax.eval_shape(lambda u: natural_values(at(u).family, extra, positive), v)  # nothing runs yet
    if not shapes:
        return {}

    def flat(u):
        return ravel_pytree(natural_values(at(u).family, extra, positive))[0]

    values, jac = jax.jit(lambda u: (flat(u), jax.jacrev(flat)(u)))(v)  # one program, not op by op
    jac = np.asarray(jac, np.float64)  # (d, k): d natural numbers
    if cov is not None:
        var = np.einsum("dk,kl,dl->d", jac, cov, jac)
    else:
        var = (jac ** 2) @ np.nan_to_num(variance)
    values, se = np.asarray(values, np.float64), np.sqrt(np.maximum(var, 0.0))
    out, start = {}, 0
    for name in sorted(shapes):  # ravel_pytree's order: a dict's keys sorted
        size = int(np.prod(shapes[name].shape))
        out[name] = (_plain(values[start:start + size].reshape(shapes[name].shape)),
                     _plain(se[start:start + size].reshape(shapes[name].shape)))
        start += size
    return {name: out[name] for name in shapes}


def _plain(a):
    a = np.asarray(a, np.float64)
    return float(a) if a.shape == () else a


def _raw_one(recipe, at, u, x_i):
    """The model's raw output for one example at flat parameters u."""
    one = jax.tree_util.tree_map(lambda a: a[None], x_i)
    return recipe.raw(at(u), one)[0][0]


def _mean_of(family, fp, raw):
    return jnp.reshape(dist.mean(family.theta(fp, raw)), ())


def _intervals(recipe, parts, v, c, x_new, z, *, method: str, dense: bool, rows: int):
    """The compiled body of ``mean_interval``: per row the centre (eta or the mean) and its delta-method SE
    (``c`` the covariance, or the variances where not ``dense``), then the interval."""
    unravel = ravel_pytree(parts.trained)[1]
    at = lambda u: parts.replace(trained=unravel(u)).params()  # noqa: E731
    family = recipe.family

    def quad(g):
        return g @ (c @ g) if dense else (g * g) @ c

    def row(x_i):
        if method == "endpoint":
            value, g = jax.value_and_grad(lambda u: jnp.reshape(_raw_one(recipe, at, u, x_i), ()))(v)
        else:
            value, g = jax.value_and_grad(lambda u: _mean_of(family, at(u).family, _raw_one(recipe, at, u, x_i)))(v)
        return value, jnp.sqrt(quad(g))

    center, se = jax.lax.map(row, x_new, batch_size=rows)
    if method == "delta":
        return center, center - z * se, center + z * se
    fp, shape = at(v).family, family.raw_shape
    mean_at = jax.vmap(lambda e: _mean_of(family, fp, jnp.reshape(e, shape)))
    lower, upper = mean_at(center - z * se), mean_at(center + z * se)
    return mean_at(center), jnp.minimum(lower, upper), jnp.maximum(lower, upper)


def mean_interval(recipe, parts, v, cov, variance, x_new, z: float, method: str, rows: int = 1024):
    """``(mean, lower, upper)`` of E[y | x_new] per row (see the module docstring); one compiled program per
    recipe, method and shapes (kept in ``recipe.programs``)."""
    family = recipe.family
    unravel = ravel_pytree(parts.trained)[1]
    at = lambda u: parts.replace(trained=unravel(u)).params()  # noqa: E731
    first = jax.tree_util.tree_map(lambda a: a[0], x_new)
    raw_shape = jax.eval_shape(functools.partial(_raw_one, recipe, at), v, first).shape
    mean_shape = jax.eval_shape(lambda u, x_i: dist.mean(family.theta(at(u).family, _raw_one(recipe, at, u, x_i))),
                                v, first).shape
    if int(np.prod(mean_shape)) != 1:
        raise ValueError(f"mean_interval: E[y | x] of {family.name} has shape {mean_shape} per example; "
                         f"only a scalar mean has an interval here")
    if method == "endpoint" and int(np.prod(raw_shape)) != 1:
        raise ValueError(f"mean_interval: method='endpoint' maps an interval of the model's one raw output "
                         f"(the linear predictor) through the mean, but {family.name} takes raw of shape "
                         f"{raw_shape}; use method='delta'")
    program = recipe.programs.get(("inference", "mean_interval"), lambda: jax.jit(
        functools.partial(_intervals, recipe), static_argnames=("method", "dense", "rows")))
    c = jnp.asarray(np.nan_to_num(variance) if cov is None else cov)
    out = program(parts, v, c, x_new, z, method=method, dense=cov is not None, rows=min(rows, _rows(x_new)))
    return tuple(np.asarray(a, np.float64) for a in out)


def _rows(x) -> int:
    return int(jax.tree_util.tree_leaves(x)[0].shape[0])
