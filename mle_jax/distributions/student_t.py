"""Student's t distribution: regression robust to outliers (heavy tails).

    Pr(y | nu, mu, s) = Gamma((nu+1)/2) / (Gamma(nu/2) sqrt(nu pi) s) (1 + z^2/nu)^(-(nu+1)/2),   z = (y - mu)/s

The normaliser is computed as ``R(nu/2) - log(2 pi)/2`` with ``R(h) = lgamma(h + 1/2) - lgamma(h) -
log(h)/2`` (``special.lgamma_diff_minus_log``), which tends to 0 as nu grows: at nu = 1e8 the
density is the Normal's to float32 round-off, where the plain difference of log-gammas cancels
to -9.9 instead of -1.04. The CDF uses ``log I_x(nu/2, 1/2)`` in log space (``incomplete``), exact
in the far tails and differentiable in nu.

scipy equivalent: ``scipy.stats.t(df, loc, scale)``.
Reference: Prince, *Understanding Deep Learning*, problem 5.9 (robust regression).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import registry
from ..checks import check_event_shape
from .incomplete import log_betainc
from .normal import _z, loc_shape
from .special import HALF_LOG_2PI, _safe, digamma_minus_log, lgamma_diff_minus_log, log1mexp

LOG_2 = math.log(2.0)


class StudentT(NamedTuple):
    """Parameters of one example's Student t: ``df`` (nu > 0), ``loc`` (mu), ``scale`` (s > 0)."""

    df: jax.Array
    loc: jax.Array
    scale: jax.Array


def _log1p_square(t):
    """``log(1 + t^2)``, finite for ``|t|`` up to float max (``t^2`` itself overflows at 1e20)."""
    big = jnp.abs(t) > 1.0
    tb = _safe(big, t, 2.0)
    ts = _safe(~big, t, 0.0)
    return jnp.where(big, 2 * jnp.log(jnp.abs(tb)) + jnp.log1p(jnp.square(1 / tb)), jnp.log1p(jnp.square(ts)))


def standard_log_prob(z, df):
    """``log Pr`` of the standard t at ``z``, without ``-log s``:
    ``R(nu/2) - log(2 pi)/2 - (nu + 1)/2 log(1 + z^2/nu)``."""
    half = 0.5 * df
    return lgamma_diff_minus_log(0.5, half) - HALF_LOG_2PI - (half + 0.5) * _log1p_square(z / jnp.sqrt(df))


def log_prob(theta: StudentT, y):
    """``scipy.stats.t.logpdf(y, df, loc, scale)``."""
    check_event_shape("StudentT", y, jnp.shape(theta.loc))
    return standard_log_prob(_z(theta, y), theta.df) - jnp.log(theta.scale)


def entropy(theta: StudentT):
    """``(nu+1)/2 [psi((nu+1)/2) - psi(nu/2)] + log(sqrt(nu) B(nu/2, 1/2)) + log s``, written with
    ``h = nu/2`` as ``(h + 1/2) [log1p(1/(2h)) + D(h + 1/2) - D(h)] + log(2 pi)/2 - R(h) + log s``,
    ``D(x) = psi(x) - log x``: every term bounded as nu grows (the limit is the Normal's entropy)."""
    h = 0.5 * theta.df
    digamma_gap = jnp.log1p(0.5 / h) + digamma_minus_log(h + 0.5) - digamma_minus_log(h)
    return (h + 0.5) * digamma_gap + HALF_LOG_2PI - lgamma_diff_minus_log(0.5, h) + jnp.log(theta.scale)


def _log_lower_tail(df, t):
    """``log Pr(T <= -|t| sqrt(nu))`` for the standard t at ``z = t sqrt(nu)``:
    ``log I_x(nu/2, 1/2) - log 2`` with ``x = 1/(1 + t^2)``, from ``log x`` and ``log(1 - x)``."""
    log1p_sq = _log1p_square(t)
    log_x = -log1p_sq
    log_1mx = 2 * jnp.log(jnp.abs(t)) - log1p_sq
    return log_betainc(0.5 * df, jnp.full_like(df, 0.5), log_x, log_1mx) - LOG_2


def log_cdf(theta: StudentT, y):
    """``log Pr(Y <= y)`` in log space, exact in both tails and differentiable in nu; ``t.logcdf``.

    At ``z = 0`` exactly (where ``log|z|`` has no derivative) the value is ``log 1/2`` and the
    derivative ``2 f(0)``, written out.
    """
    z = _z(theta, y)
    df = jnp.broadcast_to(theta.df, jnp.shape(z)).astype(z.dtype)
    zero = z == 0
    t = _safe(~zero, z, 1.0) / jnp.sqrt(df)
    lower = _log_lower_tail(df, t)
    general = jnp.where(t < 0, lower, log1mexp(lower))
    at_zero = -LOG_2 + 2 * jnp.exp(standard_log_prob(jnp.zeros_like(z), df)) * _safe(zero, z, 0.0)
    return jnp.where(zero, at_zero, general)


def log_sf(theta: StudentT, y):
    """``log Pr(Y > y)``: the mirror image of ``log_cdf``; ``t.logsf``."""
    return log_cdf(StudentT(theta.df, -theta.loc, theta.scale), -jnp.asarray(y))


def mode(theta: StudentT):
    return jnp.broadcast_to(theta.loc, jnp.broadcast_shapes(jnp.shape(theta.loc), jnp.shape(theta.df)))


def mean(theta: StudentT):
    """``mu`` for nu > 1, undefined (NaN) otherwise; ``t.mean``."""
    return jnp.where(theta.df > 1, theta.loc, jnp.nan)


def variance(theta: StudentT):
    """``s^2 nu / (nu - 2)`` for nu > 2, inf for 1 < nu <= 2, NaN otherwise; ``t.var``."""
    t = theta
    return jnp.where(t.df > 2, jnp.square(t.scale) * t.df / (t.df - 2), jnp.where(t.df > 1, jnp.inf, jnp.nan))


def sample(key, theta: StudentT):
    return theta.loc + theta.scale * jax.random.t(key, theta.df, jnp.shape(theta.loc), jnp.result_type(theta.loc))


registry.register(StudentT, registry.Ops(
    log_prob=log_prob,
    mode=mode,
    mean=mean,
    variance=variance,
    sample=sample,
    entropy=entropy,
    log_cdf=log_cdf,
    log_sf=log_sf,
    event_shape=loc_shape,
))
