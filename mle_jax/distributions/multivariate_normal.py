"""The multivariate Normal with a full covariance, parameterised by its Cholesky factor.

    Pr(y | mu, L) = exp(-||L^{-1} (y - mu)||^2 / 2) / ((2 pi)^{D/2} prod_d L_dd),   Sigma = L L^T,   y in R^D

Only triangular solves: never an inverse or a determinant.

scipy equivalent: ``scipy.stats.multivariate_normal(mean=loc, cov=scale_tril @ scale_tril.T)``.
Reference: Prince, *Understanding Deep Learning*, section 5.5 and appendix C.3.2.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
from .registry import Param
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from . import _twins, registry
from .._checks import check_event_shape
from .normal import loc, loc_shape
from .special import HALF_LOG_2PI, expm1mx


class MultivariateNormal(NamedTuple):
    """Parameters of one example's multivariate Normal: ``loc`` (D,) and ``scale_tril`` (D, D), lower
    triangular with a positive diagonal."""

    loc: Param
    scale_tril: Param


def _log_diagonal(scale_tril):
    return jnp.log(jnp.diagonal(scale_tril, axis1=-2, axis2=-1))


def _half_log_det(scale_tril):
    """``log det Sigma / 2 = sum_d log L_dd``."""
    return jnp.sum(_log_diagonal(scale_tril), axis=-1)


def _solve(scale_tril, b):
    """``L^{-1} b`` for vectors ``b`` (..., D), by a triangular solve; batched L and b alike."""
    return solve_triangular(scale_tril, b[..., None], lower=True)[..., 0]


def log_prob(theta: MultivariateNormal, y):
    """``-||L^{-1}(y - mu)||^2 / 2 - sum_d log L_dd - D log(2 pi) / 2``; ``multivariate_normal.logpdf``."""
    check_event_shape("MultivariateNormal", y, jnp.shape(theta.loc))
    z = _solve(theta.scale_tril, y - theta.loc)
    d = theta.loc.shape[-1]
    return -0.5 * jnp.sum(jnp.square(z), axis=-1) - _half_log_det(theta.scale_tril) - d * HALF_LOG_2PI


def entropy(theta: MultivariateNormal):
    d = theta.loc.shape[-1]
    return d * (0.5 + HALF_LOG_2PI) + _half_log_det(theta.scale_tril)


def kl(p: MultivariateNormal, q: MultivariateNormal):
    """``(tr(Sq^-1 Sp) + ||Lq^-1 (mu_q - mu_p)||^2 - D + log det Sq - log det Sp) / 2``.

    With ``M = Lq^-1 Lp`` (lower triangular, diagonal ``exp(r_d)``, ``r_d = log Lp_dd - log Lq_dd``):
    ``tr(Sq^-1 Sp) = ||M||_F^2`` and ``log det Sq - log det Sp = -2 sum_d r_d``, so

        KL = (sum_{i > j} M_ij^2 + sum_d (exp(2 r_d) - 1 - 2 r_d) + ||Lq^-1 (mu_q - mu_p)||^2) / 2,

    a sum of terms >= 0 (``expm1mx``: no cancellation near 0; never the ratio of the diagonals).
    Where the diagonal part overflows (scales 1e20 against 1e-20 in float32) the KL is +inf (the
    triangular solve would give ``0 * inf = NaN`` off the diagonal). Batched thetas give one KL each.
    """
    m = solve_triangular(q.scale_tril, p.scale_tril, lower=True)
    z = _solve(q.scale_tril, q.loc - p.loc)
    r = _log_diagonal(p.scale_tril) - _log_diagonal(q.scale_tril)
    diagonal = jnp.sum(expm1mx(2 * r), axis=-1)
    below = jnp.sum(jnp.square(jnp.tril(m, -1)), axis=(-2, -1))
    value = 0.5 * (below + diagonal + jnp.sum(jnp.square(z), axis=-1))
    return jnp.where(jnp.isposinf(diagonal), jnp.inf, value)


def sample(key, theta: MultivariateNormal):
    """``mu + L eps`` with ``eps ~ N(0, I_D)``; one draw per example."""
    eps = jax.random.normal(key, jnp.shape(theta.loc), jnp.result_type(theta.loc, theta.scale_tril))
    return theta.loc + jnp.einsum("...ij,...j->...i", theta.scale_tril, eps)


def variance(theta: MultivariateNormal):
    """The diagonal of ``Sigma = L L^T``."""
    return jnp.sum(jnp.square(theta.scale_tril), axis=-1)


def batch_shape(theta):
    """The examples' axes: every axis of the fields but the last (one example's components)."""
    return jnp.shape(theta.loc)[:-1]


def to_tfp(theta: MultivariateNormal):
    """TFP's twin: ``tfd.MultivariateNormalTriL(loc, scale_tril)``."""
    return _twins.tfd().MultivariateNormalTriL(theta.loc, theta.scale_tril)


def to_distrax(theta: MultivariateNormal):
    """distrax's twin: ``distrax.MultivariateNormalTri(loc, scale_tril, is_lower=True)``."""
    return _twins.distrax().MultivariateNormalTri(theta.loc, theta.scale_tril, is_lower=True)


def from_tfp(dist) -> MultivariateNormal:
    """From any TFP multivariate normal with a lower triangular (or diagonal) scale; a scale with
    negative diagonal entries becomes the equal covariance's Cholesky factor (columns flipped)."""
    linalg = _twins.linalg()
    if not isinstance(dist.scale, (linalg.LinearOperatorLowerTriangular, linalg.LinearOperatorDiag)):
        raise TypeError(f"mj.from_tfp: {_twins.describe(dist)} has a {type(dist.scale).__name__} scale; "
                        f"mle_jax needs a lower triangular one (MultivariateNormalTriL or ...Diag)")
    scale = dist.scale.to_dense()
    d, full = scale.shape[-1], _twins.full(dist)
    sign = jnp.where(jnp.diagonal(scale, axis1=-2, axis2=-1) < 0, -1.0, 1.0).astype(scale.dtype)
    loc = jnp.zeros(scale.shape[:-1], scale.dtype) if dist.loc is None else dist.loc
    return MultivariateNormal(full(loc, (d,)), full(scale * sign[..., None, :], (d, d)))


registry.register(MultivariateNormal, registry.Ops(
    domain={"loc": "vector", "scale_tril": "positive_diagonal"},
    log_prob=log_prob,
    mode=loc,
    mean=loc,
    variance=variance,
    sample=sample,
    entropy=entropy,
    batch_shape=batch_shape,
    event_shape=loc_shape,
    to_tfp=to_tfp,
    to_distrax=to_distrax,
    tfp_names=('MultivariateNormalTriL', 'MultivariateNormalDiag', 'MultivariateNormalLinearOperator'),
    from_tfp=from_tfp,
    event_ndims=lambda theta: 1,  # a vector target: no CRPS (its generalisation is the energy score)
))
registry.register_kl(MultivariateNormal, MultivariateNormal, kl)
