"""The multivariate Normal with a full covariance, parameterised by its Cholesky factor.

    Pr(y | mu, L) = exp(-||L^{-1} (y - mu)||^2 / 2) / ((2 pi)^{D/2} prod_d L_dd),   Sigma = L L^T,   y in R^D

Only triangular solves: never an inverse or a determinant.

scipy equivalent: ``scipy.stats.multivariate_normal(mean=loc, cov=scale_tril @ scale_tril.T)``.
Reference: Prince, *Understanding Deep Learning*, section 5.5 and appendix C.3.2.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
from .registry import Param
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from . import registry
from ..checks import check_event_shape
from .normal import loc, loc_shape

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class MultivariateNormal(NamedTuple):
    """Parameters of one example's multivariate Normal: ``loc`` (D,) and ``scale_tril`` (D, D), lower
    triangular with a positive diagonal."""

    loc: Param
    scale_tril: Param


def _half_log_det(scale_tril):
    return jnp.sum(jnp.log(jnp.diagonal(scale_tril, axis1=-2, axis2=-1)), axis=-1)


def log_prob(theta: MultivariateNormal, y):
    """``-||L^{-1}(y - mu)||^2 / 2 - sum_d log L_dd - D log(2 pi) / 2``; ``multivariate_normal.logpdf``."""
    check_event_shape("MultivariateNormal", y, jnp.shape(theta.loc))
    z = solve_triangular(theta.scale_tril, y - theta.loc, lower=True)
    d = theta.loc.shape[-1]
    return -0.5 * jnp.sum(jnp.square(z), axis=-1) - _half_log_det(theta.scale_tril) - d * HALF_LOG_2PI


def entropy(theta: MultivariateNormal):
    d = theta.loc.shape[-1]
    return d * (0.5 + HALF_LOG_2PI) + _half_log_det(theta.scale_tril)


def kl(p: MultivariateNormal, q: MultivariateNormal):
    """``(tr(Sq^-1 Sp) + ||Lq^-1 (mu_q - mu_p)||^2 - D + log det Sq - log det Sp) / 2`` by triangular solves."""
    m = solve_triangular(q.scale_tril, p.scale_tril, lower=True)
    z = solve_triangular(q.scale_tril, q.loc - p.loc, lower=True)
    d = p.loc.shape[-1]
    return 0.5 * (jnp.sum(jnp.square(m)) + jnp.sum(jnp.square(z)) - d) + _half_log_det(q.scale_tril) \
        - _half_log_det(p.scale_tril)


def sample(key, theta: MultivariateNormal):
    eps = jax.random.normal(key, jnp.shape(theta.loc), jnp.result_type(theta.loc))
    return theta.loc + theta.scale_tril @ eps


def variance(theta: MultivariateNormal):
    """The diagonal of ``Sigma = L L^T``."""
    return jnp.sum(jnp.square(theta.scale_tril), axis=-1)


registry.register(MultivariateNormal, registry.Ops(
    log_prob=log_prob,
    mode=loc,
    mean=loc,
    variance=variance,
    sample=sample,
    entropy=entropy,
    event_shape=loc_shape,
))
registry.register_kl(MultivariateNormal, MultivariateNormal, kl)
