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

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from . import distributions as dist
from . import links

POSITIVE = ("scale", "df", "total_count", "concentration", "shape", "precision")
"""The families' own positive parameters, each ``softplus(raw) + eps`` (``mle_jax.families``)."""


def natural_values(fparams: Any, extra: dict[str, Callable] | None = None) -> dict[str, jax.Array]:
    """The family's own parameters on their natural scale, by dotted name (``scale``, ``df``, ...).

    Nested containers (a combinator's inner family) give dotted names; an ordinal family's
    ``first_cut`` and ``gaps`` give ``cutpoints``. ``extra`` maps a leaf name to its inverse link
    (for a family of your own); names neither known nor in ``extra`` are left out."""
    extra = extra or {}
    out: dict[str, jax.Array] = {}

    def walk(node, prefix):
        items = (node.items() if isinstance(node, dict)
                 else enumerate(node) if isinstance(node, (list, tuple)) else ())
        items = list(items)
        keys = {k for k, _ in items}
        ordinal = {"first_cut", "gaps"} <= keys
        if ordinal:
            gaps = links.softplus.forward(node["gaps"])
            first = jnp.asarray(node["first_cut"])
            zero = jnp.zeros(first.shape + (1,), gaps.dtype)
            out[prefix + "cutpoints"] = first[..., None] + jnp.concatenate([zero, jnp.cumsum(gaps, -1)], -1)
        for key, value in items:
            name = f"{prefix}{key}"
            if ordinal and key in ("first_cut", "gaps"):
                continue
            if isinstance(value, (dict, list, tuple)):
                walk(value, name + ".")
            elif key in extra:
                out[name] = extra[key](value)
            elif key in POSITIVE:
                out[name] = links.softplus.forward(value)
    walk(fparams, "")
    return out


def natural(at: Callable, v, cov, variance, extra=None) -> dict[str, tuple[Any, Any]]:
    """``{name: (estimate, se)}``: ``natural_values`` of ``at(v).family`` with delta-method SEs.

    ``cov`` the k x k covariance of v (None: only the variances ``variance`` are used, as if v's
    entries were uncorrelated)."""
    names = list(natural_values(at(v).family, extra))
    if not names:
        return {}

    def flat(u):
        return ravel_pytree(natural_values(at(u).family, extra))

    values, unravel = flat(v)
    jac = np.asarray(jax.jacrev(lambda u: flat(u)[0])(v), np.float64)  # (d, k): d natural numbers
    if cov is not None:
        var = np.einsum("dk,kl,dl->d", jac, cov, jac)
    else:
        var = (jac ** 2) @ np.nan_to_num(variance)
    estimate, se = unravel(values), unravel(jnp.sqrt(jnp.asarray(np.maximum(var, 0.0))))
    return {n: (_plain(estimate[n]), _plain(se[n])) for n in names}


def _plain(a):
    a = np.asarray(a, np.float64)
    return float(a) if a.shape == () else a


def mean_interval(recipe, at: Callable, v, cov, variance, x_new, z: float, method: str, rows: int = 1024):
    """``(mean, lower, upper)`` of E[y | x_new] per row (see the module docstring)."""
    family = recipe.family

    def raw_one(u, x_i):
        one = jax.tree_util.tree_map(lambda a: a[None], x_i)
        return recipe.raw(at(u), one)[0][0]

    def mean_of(fp, raw):
        m = dist.mean(family.theta(fp, raw))
        return jnp.reshape(m, ())

    first = jax.tree_util.tree_map(lambda a: a[0], x_new)
    raw_shape = jax.eval_shape(raw_one, v, first).shape
    mean_shape = jax.eval_shape(lambda u, x_i: dist.mean(family.theta(at(u).family, raw_one(u, x_i))),
                                v, first).shape
    if int(np.prod(mean_shape)) != 1:
        raise ValueError(f"mean_interval: E[y | x] of {family.name} has shape {mean_shape} per example; "
                         f"only a scalar mean has an interval here")
    if method == "endpoint" and int(np.prod(raw_shape)) != 1:
        raise ValueError(f"mean_interval: method='endpoint' maps an interval of the model's one raw output "
                         f"(the linear predictor) through the mean, but {family.name} takes raw of shape "
                         f"{raw_shape}; use method='delta'")
    c = None if cov is None else jnp.asarray(cov)
    var_v = jnp.asarray(np.nan_to_num(variance))

    def quad(g):
        return g @ (c @ g) if c is not None else (g * g) @ var_v

    def row(x_i):
        if method == "endpoint":
            eta_of = lambda u: jnp.reshape(raw_one(u, x_i), ())  # noqa: E731
            eta, g = jax.value_and_grad(eta_of)(v)
            return eta, jnp.sqrt(quad(g))
        m, g = jax.value_and_grad(lambda u: mean_of(at(u).family, raw_one(u, x_i)))(v)
        return m, jnp.sqrt(quad(g))

    @jax.jit
    def run(x):
        center, se = jax.lax.map(row, x, batch_size=rows)
        if method == "delta":
            return center, center - z * se, center + z * se
        fp = at(v).family
        shape = raw_shape
        ends = [jax.vmap(lambda e: mean_of(fp, jnp.reshape(e, shape)))(center + s * z * se) for s in (-1.0, 1.0)]
        mean = jax.vmap(lambda e: mean_of(fp, jnp.reshape(e, shape)))(center)
        return mean, jnp.minimum(*ends), jnp.maximum(*ends)
    return tuple(np.asarray(a, np.float64) for a in run(x_new))
