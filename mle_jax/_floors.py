"""A family's own positive parameter on its link's floor, where the gradient test cannot see.

A family's own positive parameters (a learned ``scale``, ``df``, ``total_count``, ``concentration``,
``shape``, ``precision``, an ordinal family's cutpoint ``gaps``) are ``theta = softplus(s) + eps``
of a raw ``s``, with the floor ``eps = finfo(dtype).eps`` (``mle_jax.links``). Where
``softplus(s) <= eps`` the floor makes up half the value or more, and the link flattens:

    d log theta / d s = sigmoid(s) / (softplus(s) + eps)  ~  e^s / eps  ->  0   as s -> -inf

so the raw gradient that ``Objective(tol)`` reads is the natural one scaled by ``e^s`` (``1e-31`` at
``s = -70``): a fit that walked there reports a small gradient at a point that is not a maximum.
Newton from a far start does: the Gamma GLM with targets of ``1e30`` started at an intercept of
0.2 takes the shape's raw value to ``-70 .. -650`` before the intercept reaches ``log 1e30``, since
for a mean ``1e30`` too small the shape's own optimum (``log a - psi(a) = mean(y / mu - log(y / mu)
- 1)``, about ``1 / mean(y / mu) = 1e-30``) lies below the floor; when the mean arrives the shape cannot come
back and the fit says "converged" with a likelihood far below the MLE's. Or the supremum is at the
boundary itself (a learned sigma on data fitted exactly, an empty ordinal category, a scale below
eps in the data's units): no estimate there is an MLE either.

Which leaves go through the link is the family's own declaration, ``Family.positive`` (the keys of its
``init`` dict that are ``softplus(raw) + eps``; a combinator's is its inner family's; ``mj.family(...,
positive=...)`` for a family of the user's, whose leaves are otherwise not read): names alone say nothing
(a user's ``scale = exp(raw)`` has no floor). ``on_floor`` reads those leaves on the host after the loop
(a few numbers, no device program); ``fit`` then says so (``Stop.BOUNDARY`` in place of "completed" or
"converged", and ``mle_jax.diagnostics.BoundaryWarning``). ``mj.solver`` flags it on device
(``History.floored``, ``on_floor_traced``; a ``BoundaryWarning`` when called eagerly), ``mj.bootstrap``
warns for an estimate or replicates on the floor, and ``mj.inference`` warns for an estimate there (its
standard errors are those of the flattened link, not of an MLE). statsmodels flags an estimate on its bound the same way
(``ConvergenceWarning`` for a variance component at 0, ``MixedLM``).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import local
from ._params import is_trained


class Floored(NamedTuple):
    """One entry of a family's positive parameter on its floor: ``value = softplus(raw) + floor``."""

    name: str       # dotted, with the entry's index for an array leaf: "shape", "0.total_count[1]", "gaps[0]"
    raw: float
    value: float
    floor: float

    def describe(self) -> str:
        e = math.exp(-abs(self.raw))
        slope = 1.0 / (1.0 + e) if self.raw >= 0 else e / (1.0 + e)  # sigmoid(raw)
        return (f"{self.name} = {self.value:.6g} (raw {self.raw:.6g}) is at its link's floor eps = {self.floor:.3g} "
                f"(softplus(raw) + eps, d {self.name} / d raw = {slope:.3g})")


def on_floor(fparams: Any, positive: tuple[str, ...]) -> list[Floored]:
    """The entries of ``fparams`` (a family's own parameters) with ``softplus(raw) <= eps``, read from the
    leaves the family declares ``softplus(raw) + eps`` (``Family.positive``: keys of its dict), on the host.
    Only inexact arrays count: a Python float is a fixed parameter, not fitted."""
    if not isinstance(fparams, dict):
        return []
    return [f for name in positive if name in fparams and is_trained(fparams[name])
            for f in _entries(name, fparams[name])]


def on_floor_traced(fparams: Any, positive: tuple[str, ...]) -> jax.Array:
    """Whether any declared entry of ``fparams`` has ``softplus(raw) <= eps`` (``on_floor``), as a bool array
    computed on device: usable under ``jit`` and ``vmap`` (``mj.solver``'s ``History.floored``).
    ``softplus(raw) <= eps`` is ``raw <= log(expm1(eps))``, a threshold computed once per dtype in float64."""
    hit = jnp.zeros((), bool)
    if isinstance(fparams, dict):
        for name in positive:
            value = fparams.get(name)
            if value is not None and is_trained(value):  # a Python float is fixed, not fitted (as on_floor)
                raw = jnp.asarray(value)
                hit = hit | jnp.any(raw <= threshold(raw.dtype))
    return hit


def threshold(dtype: Any) -> float:
    """The raw value where ``softplus(raw) = eps`` of ``dtype``: ``log(expm1(eps))`` (about ``log eps``)."""
    return math.log(math.expm1(float(np.finfo(dtype).eps)))


def _entries(name: str, value) -> list[Floored]:
    raw = np.asarray(local(value))
    floor = float(np.finfo(raw.dtype).eps)
    flat = raw.astype(np.float64).reshape(-1)
    with np.errstate(invalid="ignore"):
        soft = np.logaddexp(0.0, flat)  # softplus(raw), exact in float64 for any float32 raw
    at = np.flatnonzero(soft <= floor)  # NaN compares False: a non-finite fit is said by fit's guard
    return [Floored(name if raw.ndim == 0 else f"{name}{list(map(int, np.unravel_index(i, raw.shape)))}",
                    float(flat[i]), float(soft[i] + floor), floor) for i in at]


def describe(floored: list[Floored]) -> str:
    """The entries on their floor (at most three named), and what that means, for ``Stop.BOUNDARY``'s message."""
    named = "; ".join(f.describe() for f in floored[:3])
    more = f" (and {len(floored) - 3} more)" if len(floored) > 3 else ""
    return (f"{named}{more}. Either the fit walked there from a start far from the optimum (start nearer it: "
            f"an intercept at the log of y's mean, or y rescaled), or the likelihood rises towards the floor "
            f"(a scale fitted to 0, an empty ordinal category: no MLE), or the MLE lies below eps in the data's "
            f"units (rescale y)")
