"""Student's t distribution: regression robust to outliers (heavy tails).

    Pr(y | nu, mu, s) = Gamma((nu+1)/2) / (Gamma(nu/2) sqrt(nu pi) s) (1 + z^2/nu)^(-(nu+1)/2),   z = (y - mu)/s

scipy equivalent: ``scipy.stats.t(df, loc, scale)``.
Reference: Prince, *Understanding Deep Learning*, problem 5.9 (robust regression).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import betainc, betaln, digamma, gammaln

from . import registry
from ..checks import check_event_shape


class StudentT(NamedTuple):
    """Parameters of one example's Student t: ``df`` (nu > 0), ``loc`` (mu), ``scale`` (s > 0)."""

    df: jax.Array
    loc: jax.Array
    scale: jax.Array


def standard_log_prob(z, df):
    """``log Pr`` of the standard t at ``z``, without ``-log s``."""
    half = 0.5 * (df + 1)
    return gammaln(half) - gammaln(0.5 * df) - 0.5 * jnp.log(df * math.pi) - half * jnp.log1p(jnp.square(z) / df)


def log_prob(theta: StudentT, y):
    """``scipy.stats.t.logpdf(y, df, loc, scale)``."""
    check_event_shape("StudentT", y, jnp.shape(theta.loc))
    return standard_log_prob((y - theta.loc) / theta.scale, theta.df) - jnp.log(theta.scale)


def entropy(theta: StudentT):
    """``(nu+1)/2 [psi((nu+1)/2) - psi(nu/2)] + log(sqrt(nu) B(nu/2, 1/2)) + log s``."""
    nu = theta.df
    return (0.5 * (nu + 1) * (digamma(0.5 * (nu + 1)) - digamma(0.5 * nu))
            + 0.5 * jnp.log(nu) + betaln(0.5 * nu, 0.5) + jnp.log(theta.scale))


def _tail(theta: StudentT, z):
    """``Pr(T > |z|) = I_{nu / (nu + z^2)}(nu/2, 1/2) / 2``."""
    nu = theta.df
    return 0.5 * betainc(0.5 * nu, 0.5, nu / (nu + jnp.square(z)))


def log_cdf(theta: StudentT, y):
    """``log Pr(Y <= y)`` from the incomplete beta function; ``t.logcdf``."""
    z = (y - theta.loc) / theta.scale
    return jnp.where(z < 0, jnp.log(_tail(theta, z)), jnp.log1p(-_tail(theta, z)))


def log_sf(theta: StudentT, y):
    """``log Pr(Y > y)``: the mirror image of ``log_cdf``; ``t.logsf``."""
    return log_cdf(StudentT(theta.df, -theta.loc, theta.scale), -y)


registry.register(StudentT, registry.Ops(
    log_prob=log_prob,
    mode=lambda t: t.loc,
    mean=lambda t: jnp.where(t.df > 1, t.loc, jnp.nan),
    variance=lambda t: jnp.where(t.df > 2, jnp.square(t.scale) * t.df / (t.df - 2),
                                 jnp.where(t.df > 1, jnp.inf, jnp.nan)),
    sample=lambda key, t: t.loc + t.scale * jax.random.t(key, t.df, jnp.shape(t.loc), jnp.result_type(t.loc)),
    entropy=entropy,
    log_cdf=log_cdf,
    log_sf=log_sf,
    event_shape=lambda t: jnp.shape(t.loc),
))
