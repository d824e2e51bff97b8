"""Student's t distribution: regression robust to outliers (heavy tails).

    Pr(y | nu, mu, s) = Gamma((nu+1)/2) / (Gamma(nu/2) sqrt(nu pi) s) (1 + z^2/nu)^(-(nu+1)/2),   z = (y - mu)/s

The normaliser is computed as ``R(nu/2) - log(2 pi)/2`` with ``R(h) = lgamma(h + 1/2) - lgamma(h) -
log(h)/2`` (``_normaliser``), which tends to 0 as nu grows: at nu = 1e8 the
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
from .registry import Param
import jax.numpy as jnp
from jax.scipy.special import gammaln, log_ndtr

from . import registry
from ..checks import check_event_shape
from .incomplete import log_betainc
from .normal import _z, loc_shape
from .special import (HALF_LOG_2PI, STIRLING_MIN, _safe, digamma_minus_log, log1mexp, log1pmx_series,
                      stirling_corr)

LOG_2 = math.log(2.0)


class StudentT(NamedTuple):
    """Parameters of one example's Student t: ``df`` (nu > 0), ``loc`` (mu), ``scale`` (s > 0)."""

    df: Param
    loc: Param
    scale: Param


def _log1p_square(t):
    """``log(1 + t^2) = 2 log m + log1p(1/m^2 - 1 + (t/m)^2)`` with ``m = max(|t|, 1)``: finite for
    ``|t|`` up to float max (``t^2`` itself overflows at 1e20), ``log1p(t^2)`` exactly for ``|t| <= 1``."""
    m = jnp.maximum(jnp.abs(t), 1.0)
    return 2 * jnp.log(m) + jnp.log1p((1 / jnp.square(m) - 1) + jnp.square(t / m))


def _normaliser(h):
    """``R(h) = lgamma(h + 1/2) - lgamma(h) - log(h)/2``; for h >= 10 Stirling's
    ``h log1pmx(1/(2h)) + corr(h + 1/2) - corr(h)``, which tends to 0 (no ``log h`` to cancel)."""
    big = h >= STIRLING_MIN
    hb, hs = _safe(big, h, STIRLING_MIN), _safe(~big, h, 1.0)
    stirling = hb * log1pmx_series(0.5 / hb) + stirling_corr(hb + 0.5) - stirling_corr(hb)
    return jnp.where(big, stirling, gammaln(hs + 0.5) - gammaln(hs) - 0.5 * jnp.log(hs))


def standard_log_prob(z, df):
    """``log Pr`` of the standard t at ``z``, without ``-log s``:
    ``R(nu/2) - log(2 pi)/2 - (nu + 1)/2 log(1 + z^2/nu)`` (``_normaliser``)."""
    half = 0.5 * df
    return _normaliser(half) - HALF_LOG_2PI - (half + 0.5) * _log1p_square(z / jnp.sqrt(df))


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
    return (h + 0.5) * digamma_gap + HALF_LOG_2PI - _normaliser(h) + jnp.log(theta.scale)


def _log_lower_tail(df, t):
    """``log Pr(T <= -|t| sqrt(nu))`` for the standard t at ``z = t sqrt(nu)``:
    ``log I_x(nu/2, 1/2) - log 2`` with ``x = 1/(1 + t^2)``, from ``log x`` and ``log(1 - x)``."""
    log1p_sq = _log1p_square(t)
    log_x = -log1p_sq
    log_1mx = 2 * jnp.log(jnp.abs(t)) - log1p_sq
    return log_betainc(0.5 * df, jnp.full_like(df, 0.5), log_x, log_1mx) - LOG_2


def _fisher(z, df):
    """Fisher's (1925) expansion ``F(z) = Phi(z) - phi(z) (g1(z)/nu + g2(z)/nu^2)`` in log space
    (Abramowitz and Stegun 26.7.5), ``g1 = (z^3 + z)/4``, ``g2 = (5z^7 + 16z^5 + 3z^3 - 3z)/96``."""
    g = (z ** 3 + z) / 4 / df + (5 * z ** 7 + 16 * z ** 5 + 3 * z ** 3 - 3 * z) / 96 / jnp.square(df)
    log_phi = -0.5 * jnp.square(z) - HALF_LOG_2PI
    log_big_phi = log_ndtr(z)
    return log_big_phi + jnp.log1p(-jnp.exp(log_phi - log_big_phi) * g)


def log_cdf(theta: StudentT, y):
    """``log Pr(Y <= y)`` in log space, exact in both tails and differentiable in nu; ``t.logcdf``.

    At ``z = 0`` exactly (where ``log|z|`` has no derivative) the value is ``log 1/2`` and the
    derivative ``2 f(0)``, written out. In float32 with ``nu >= 1e4`` and ``z^4 / nu < 1e-2`` the
    incomplete beta's argument ``nu / (nu + z^2)`` rounds to 1, so Fisher's expansion is used there
    (its error is below 1e-5 relative in that region; see docs/reliability.md).
    """
    z = _z(theta, y)
    df = jnp.broadcast_to(theta.df, jnp.shape(z)).astype(z.dtype)
    zero = z == 0
    t = _safe(~zero, z, 1.0) / jnp.sqrt(df)
    lower = _log_lower_tail(df, t)
    general = jnp.where(t < 0, lower, log1mexp(lower))
    if z.dtype == jnp.float32:
        near_normal = (df >= 1e4) & (jnp.square(jnp.square(z)) < 1e-2 * df)
        general = jnp.where(near_normal, _fisher(_safe(near_normal, z, 0.0), _safe(near_normal, df, 1e4)),
                            general)
    at_zero = -LOG_2 + 2 * jnp.exp(standard_log_prob(jnp.zeros_like(z), df)) * _safe(zero, z, 0.0)
    return jnp.where(zero, at_zero, general)


def log_sf(theta: StudentT, y):
    """``log Pr(Y > y)``: the mirror image of ``log_cdf``; ``t.logsf``."""
    return log_tail(theta, y, True)


def log_tail(theta: StudentT, y, upper):
    """``log_sf`` where ``upper``, ``log_cdf`` elsewhere, in one incomplete beta (the mirror image)."""
    y = jnp.asarray(y)
    return log_cdf(StudentT(theta.df, jnp.where(upper, -theta.loc, theta.loc), theta.scale), jnp.where(upper, -y, y))


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
    log_tail=log_tail,
    event_shape=loc_shape,
))
