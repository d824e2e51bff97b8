"""Quantile regression as a likelihood: the asymmetric Laplace family.

    mj.asymmetric_laplace(0.9)                   raw: mu    scale b = 1: the NLL is the check loss
    mj.asymmetric_laplace(0.9, "learned")        raw: mu    one global b in the family's params
    mj.asymmetric_laplace(0.9, "softplus")       raw: (mu, s)  b = softplus(s) + eps per example

With a global scale (fixed or learned) the MLE of the location is the q-th regression quantile
(Koenker and Bassett, 1978): ``-log Pr = rho_q(y - mu) / b + log b - log(q (1 - q))``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..distributions import AsymmetricLaplace
from ._arguments import _number, parse_scale, scale_option
from ._family import Family, Spec
from ._location_scale import location_scale


def _level(label: str, q: object) -> float:
    """The quantile level: a real number strictly inside (0, 1)."""
    number = _number(q)
    if number is None or not (0.0 < number < 1.0):
        raise ValueError(f"{label}: q (the quantile level) must lie in the open interval (0, 1); got {q!r}")
    return number


def asymmetric_laplace(q: float, scale: float | str = 1.0, *, init_scale: float = 1.0) -> Family:
    """Asymmetric Laplace family for quantile regression at level ``q`` (fixed, 0 < q < 1):

        log Pr(y | mu, b) = log(q (1 - q) / b) - rho_q((y - mu) / b),   rho_q(u) = u (q - 1{u < 0})

    The model emits the location mu, the q-quantile of y (``mj.quantile(theta, q) == mu``); with a
    global scale the location's MLE minimises the check loss ``sum_i rho_q(y_i - mu_i)``, so a linear
    model's fit is ``statsmodels.regression.quantile_regression.QuantReg(y, X).fit(q=q)``.

    Args:
      q: the quantile level, in (0, 1).
      scale: b as for ``normal``: a positive float (default 1: the NLL is the check loss plus
        ``-log(q (1 - q))``), ``"learned"`` (one global b = softplus(s) + eps, whose MLE is the mean
        check loss), or a positive link's name (the model emits (mu, s)).
      init_scale: the starting b for ``"learned"``.

    Support: y real. The theta is ``AsymmetricLaplace(mu, b, q)``; scipy:
    ``laplace_asymmetric(sqrt(q/(1-q)), mu, b / sqrt(q (1 - q)))``. The check function has a kink at
    y = mu: observed-information (Hessian) standard errors of mu are not meaningful (use the bootstrap);
    the fit wants many steps of a first-order optimiser or a smoothed start. Reference: Koenker and
    Machado (1999); Yu and Moyeed (2001), Bayesian quantile regression.
    """
    label = f"asymmetric_laplace({q!r}, scale={scale!r})"
    level = _level(label, q)
    spec = parse_scale(label, scale, init_scale)
    shift = math.log(level) + math.log1p(-level)

    def theta_of(fp, loc, b):
        return AsymmetricLaplace(loc, b, jnp.asarray(level, jnp.result_type(loc)))

    @jax.custom_jvp
    def check(z):
        # -rho_q(z): (1 - q) z below the kink, -q z above; -inf at z = +-inf (no inf - inf), NaN at NaN
        return jnp.where(z < 0, (1.0 - level) * z, -level * z)

    @check.defjvp
    def check_jvp(primals, tangents):
        # d/dz: 1 - q below the kink, -q above, 1/2 - q at z = 0 (the midpoint of the two, where max's gradient
        # would pick one side), NaN at NaN (0 z). Value and slope each end in a select: XLA:CPU then computes
        # each in one loop fusion and hands the sums one N-vector each; with max(q z, (q - 1) z) and sign(z) the
        # reductions' YNN fusions took the max and sign themselves, 1.4-2.2 times the time of the hand-written
        # loss at N = 1e4 in float64 (experiments/benchmarks/families.py; README, Performance)
        (z,), (dz,) = primals, tangents
        slope = jnp.where(z < 0, 1.0 - level, jnp.where(z > 0, -level, (0.5 - level) + 0.0 * z))
        return check(z), slope * dz

    def standard_log_prob(fp, z):
        return check(z)

    def constant(fp):
        return shift

    return location_scale(Spec("asymmetric_laplace", args=(level,), options=(("scale", scale_option(spec)),)),
                          spec, theta_of=theta_of, standard_log_prob=standard_log_prob, shift=constant)
